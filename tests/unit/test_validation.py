"""Migration validation: each check breaks alone, all are reported together, none escapes."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from lpmlab import topology
from lpmlab.errors import MigrationError
from lpmlab.hmc import validation as V
from lpmlab.hmc.validation import (
    CHECKS,
    CODES,
    Finding,
    LabSnapshot,
    MigrationRequestView,
    ViosState,
    validate,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "validation.md"
LUN = "lpar1.img"


# -- builders ------------------------------------------------------------------------------------
@functools.cache
def healthy() -> LabSnapshot:
    """The default lab, everything up: sys1/sys2, vios1/vios2 MSPs, lpar1 on sys1 with a LUN.

    Cached: the snapshot is frozen and every mutation below builds a new one.
    """
    return V.snapshot_from_topology(topology.load())


def req(**kw: Any) -> MigrationRequestView:
    kw = {"partition": "lpar1", "source": "sys1", "dest": "sys2", **kw}
    return MigrationRequestView(**kw)


Mutate = Callable[[LabSnapshot], LabSnapshot]


def frame(name: str, **kw: Any) -> Mutate:
    def m(s: LabSnapshot) -> LabSnapshot:
        return dataclasses.replace(
            s, frames={**s.frames, name: dataclasses.replace(s.frames[name], **kw)})
    return m


def vios(name: str, **kw: Any) -> Mutate:
    def m(s: LabSnapshot) -> LabSnapshot:
        return dataclasses.replace(
            s, vios={**s.vios, name: dataclasses.replace(s.vios[name], **kw)})
    return m


def part(**kw: Any) -> Mutate:
    def m(s: LabSnapshot) -> LabSnapshot:
        p = s.partitions["lpar1"]
        return dataclasses.replace(s, partitions={**s.partitions,
                                                  "lpar1": dataclasses.replace(p, **kw)})
    return m


def snap(**kw: Any) -> Mutate:
    return lambda s: dataclasses.replace(s, **kw)


def add_vios(name: str, frame_name: str, lpar_id: int, **kw: Any) -> Mutate:
    def m(s: LabSnapshot) -> LabSnapshot:
        v = ViosState(name=name, frame=frame_name, lpar_id=lpar_id, running=True,
                      rmc_active=True, msp=True, mover_address=f"198.18.1.{20 + lpar_id}",
                      mover_link_up=True, time_ref=False, serves_luns=frozenset({LUN}))
        return dataclasses.replace(s, vios={**s.vios, name: dataclasses.replace(v, **kw)})
    return m


def chain(*fns: Mutate) -> Mutate:
    def m(s: LabSnapshot) -> LabSnapshot:
        for fn in fns:
            s = fn(s)
        return s
    return m


def same(s: LabSnapshot) -> LabSnapshot:
    return s


SHUTOFF = part(state="shutoff", rmc_active=False)
INACTIVE = {"migration_type": "inactive"}


# -- one case per check: break exactly one condition ------------------------------------------
class Case(NamedTuple):
    id: str
    mutate: Mutate
    request: dict[str, Any]
    errors: list[str]
    warnings: list[str]
    obj: str  # the object the first expected finding names


CASES = [
    Case("dest_frame_missing", same, {"dest": "sys9"}, ["HSCL8011"], [], "sys9"),
    Case("source_frame_missing", same, {"source": "sys9"}, ["HSCL8011", "HSCL8012"], [],
         "sys9"),
    Case("source_is_dest", same, {"dest": "sys1"}, ["HSCLL501"], [], "sys1"),
    Case("frame_unreachable", frame("sys2", reachable=False), {}, ["HSCLL502"], [], "sys2"),
    Case("partition_missing", same, {"partition": "lpar9"}, ["HSCL8012"], [], "lpar9"),
    Case("partition_on_other_frame", part(frame="sys2"), {}, ["HSCL8012"], [], "lpar1"),
    Case("partition_is_vios", same, {"partition": "vios1"}, ["HSCLL504"], [], "vios1"),
    Case("remote_hmc_no_keys", snap(remote_hmc_keys={"198.18.0.2": False}),
         {"remote_hmc": "198.18.0.2"}, ["HSCL3653"], [], "198.18.0.2"),
    Case("remote_hmc_untested", same, {"remote_hmc": "198.18.0.2"}, [], ["HSCLL503"],
         "198.18.0.2"),
    Case("not_mobility_capable", frame("sys2", mobility_capable=False), {}, ["HSCLL510"], [],
         "sys2"),
    Case("battery_power", frame("sys1", battery_power=True), {}, ["HSCLL511"], [], "sys1"),
    Case("lmb_size_differs", frame("sys2", lmb_size_mb=128), {}, ["HSCLL512"], [], "sys2"),
    Case("dest_memory_short", frame("sys2", memory_free_mb=256), {}, ["HSCLL513"], [], "sys2"),
    Case("dest_memory_short_inactive", chain(SHUTOFF, part(desired_memory_mb=16384)), INACTIVE,
         ["HSCLL513"], [], "sys2"),
    Case("dest_processors_short", frame("sys2", processors_free=0), {}, ["HSCLL514"], [],
         "sys2"),
    Case("proc_pool_missing", same, {"shared_proc_pool": "pool1"}, ["HSCLL515"], [], "pool1"),
    Case("proc_pool_full", frame("sys2", shared_proc_pools={"DefaultPool": 8.0, "pool1": 0.5}),
         {"shared_proc_pool": "pool1"}, ["HSCLL516"], [], "pool1"),
    Case("proc_compat_mode", chain(part(proc_compat_mode="POWER10"),
                                   frame("sys2", proc_compat_modes=("default", "POWER9"))),
         {}, ["HSCLL517"], [], "sys2"),
    Case("active_migration_limit", frame("sys2", active_migrations=16), {}, ["HSCLL518"], [],
         "sys2"),
    Case("inactive_migration_limit", chain(SHUTOFF, frame("sys1", inactive_migrations=4)),
         INACTIVE, ["HSCLL518"], [], "sys1"),
    Case("same_host_uuid", lambda s: frame("sys2", host_uuid=s.frames["sys1"].host_uuid)(s),
         {}, ["HSCLL519"], [], "sys2"),
    Case("machine_type_differs", frame("sys2", pseries_machine="pseries-9.2"), {},
         ["HSCLL520"], [], "sys2"),
    Case("qemu_version_differs", frame("sys2", qemu_version="10.1.0"), {}, [], ["HSCLL521"],
         "sys2"),
    Case("vcpu_quiesce_bug", chain(part(procs=2), frame("sys2", vcpu_quiesce_bug=True)), {},
         [], ["HSCLL522"], "lpar1"),
    Case("migration_disabled", part(migration_disabled=True), {}, ["HSCLL530"], [], "lpar1"),
    Case("already_migrating", part(migrating=True), {}, ["HSCLL531"], [], "lpar1"),
    Case("not_running", part(state="shutoff"), {}, ["HSCLL532"], [], "lpar1"),
    Case("not_shut_off", same, INACTIVE, ["HSCLL533"], [], "lpar1"),
    Case("partition_rmc", part(rmc_active=False), {}, ["HSCLL534"], [], "lpar1"),
    Case("physical_io", part(physical_io=True), {}, ["HSCLL535"], [], "lpar1"),
    Case("dedicated_io", part(dedicated_io=True), {}, ["HSCLL536"], [], "lpar1"),
    Case("virtual_serial", part(vserial_adapters=2), {}, ["HSCLL537"], [], "lpar1"),
    Case("workload_group", part(workload_group=True), {}, ["HSCLL538"], [], "lpar1"),
    Case("bsr_arrays", part(bsr_arrays=2), {}, ["HSCLL539"], [], "lpar1"),
    Case("huge_pages", part(huge_pages=True), {}, ["HSCLL540"], [], "lpar1"),
    Case("dest_name_used",
         lambda s: frame("sys2", partition_names=s.frames["sys2"].partition_names | {"lpar1"})(s),
         {}, ["HSCLL541"], [], "lpar1"),
    Case("dest_lpar_id_used", same, {"dest_lpar_id": 1}, ["HSCLL542"], [], "1"),
    Case("dest_uuid_used",
         chain(part(uuid="6a1e0d52-0c5e-4f57-9d3b-0a7bd7a1c2f1"),
               frame("sys2", partition_uuids={"6a1e0d52-0c5e-4f57-9d3b-0a7bd7a1c2f1": "lpar9"})),
         {"overrides": {"uuid": 1}}, ["HSCLL567"], [], "lpar1"),
    Case("dest_vios_rmc", vios("vios2", rmc_active=False), {}, ["HSCLL550"], [], "vios2"),
    Case("source_vios_rmc", vios("vios1", rmc_active=False), {}, ["HSCLL550"], [], "vios1"),
    Case("no_msp", vios("vios2", msp=False), {}, ["HSCLL551"], [], "sys2"),
    Case("no_working_msp", vios("vios2", mover_link_up=False), {}, ["HSCLL552"], [], "sys2"),
    Case("no_working_msp_no_address", vios("vios1", mover_address=None), {}, ["HSCLL552"], [],
         "sys1"),
    Case("named_msp_missing", same, {"dest_msp": "vios9"}, ["HSCLL553"], [], "vios9"),
    Case("named_msp_not_msp", add_vios("vios3", "sys2", 3, msp=False), {"dest_msp": "vios3"},
         ["HSCLL554"], [], "vios3"),
    Case("named_msp_wrong_frame", same, {"dest_msp": "vios1"}, ["HSCLL555"], [], "vios1"),
    Case("named_msp_not_working", vios("vios2", mover_link_up=False), {"dest_msp": "vios2"},
         ["HSCLL556"], [], "vios2"),
    Case("mover_unreachable", snap(mover_reachable={("vios1", "vios2"): False}), {},
         ["HSCLL557"], [], "vios1 -> vios2"),
    Case("mover_not_measured", snap(mover_reachable={}), {}, ["HSCLL557"], [],
         "vios1 -> vios2"),
    Case("msp_limit", vios("vios2", active_migrations=4), {}, ["HSCLL558"], [], "vios2"),
    Case("time_reference_missing", vios("vios2", time_ref=False), {}, [], ["HSCLL559"], "sys2"),
    Case("storage_not_served", vios("vios2", serves_luns=frozenset()), {}, ["HSCLA319"], [],
         LUN),
    Case("vscsi_adapter_no_vios", chain(part(luns=()), vios("vios2", running=False)), {},
         ["HSCLL552", "HSCLA319"], [], "sys2"),
    Case("vscsi_mapping_wrong_vios", same, {"vscsi_vios": ("vios1",)},
         ["HSCLL563", "HSCLA319"], [], "vios1"),
    Case("redundant_vios_required", same, {"overrides": {"redundantvios": 1}}, ["HSCLL560"],
         [], LUN),
    Case("redundant_vios_if_possible", same, {"overrides": {"redundantvios": 2}}, [],
         ["HSCLL560"], LUN),
    Case("storage_not_shared", snap(storage_shared={LUN: False}), {}, ["HSCLL561"], [], LUN),
    Case("storage_not_verified", snap(storage_shared={}), {}, ["HSCLL561"], [], LUN),
    Case("redundant_msps_required", same, {"overrides": {"redundantmsps": 1}}, ["HSCLL562"],
         [], "vios1 -> vios2"),
    Case("redundant_msps_if_possible", same, {"overrides": {"redundantmsps": 2}}, [],
         ["HSCLL562"], "vios1 -> vios2"),
    Case("vlan_not_bridged_required", frame("sys2", bridged_vlans=frozenset()),
         {"overrides": {"vlanbridge": 1}}, ["HSCLL564"], [], "1"),
    Case("vlan_not_bridged_if_possible", frame("sys2", bridged_vlans=frozenset()),
         {"overrides": {"vlanbridge": 2}}, [], ["HSCLL564"], "1"),
    Case("mpio_required", same, {"overrides": {"mpio": 1}}, ["HSCLL565"], [], LUN),
    Case("mpio_if_possible", same, {"overrides": {"mpio": 2}}, [], ["HSCLL565"], LUN),
    Case("storage_unprotected", snap(storage_shared={}), {"overrides": {"protectstorage": 2}},
         [], ["HSCLL566"], LUN),
]


def run(case: Case) -> V.ValidationReport:
    return validate(case.mutate(healthy()), req(**case.request))


# -- the healthy lab ---------------------------------------------------------------------------
def test_healthy_default_lab_passes_active():
    report = validate(healthy(), req())
    assert report.ok
    assert report.findings == ()
    assert report.render() == ""


def test_healthy_default_lab_passes_inactive():
    report = validate(SHUTOFF(healthy()), req(**INACTIVE))
    assert report.findings == ()


def test_snapshot_follows_the_default_topology():
    s = healthy()
    assert set(s.frames) == {"sys1", "sys2"}
    assert s.frames["sys2"].partition_names == {"vios2"}
    assert s.frames["sys1"].memory_free_mb == 8192 - 512
    assert s.frames["sys1"].host_uuid != s.frames["sys2"].host_uuid
    assert s.partitions["lpar1"].luns == (LUN,)
    assert s.vios["vios2"].serves_luns == {LUN}
    assert s.mover_reachable == {("vios1", "vios2"): True, ("vios2", "vios1"): True}


def test_snapshot_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        healthy().frames["sys1"].reachable = False  # type: ignore[misc]


# -- every check, broken alone -----------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_check_reports_its_code_alone(case: Case):
    report = run(case)
    assert [f.code for f in report.errors] == case.errors
    assert [f.code for f in report.warnings] == case.warnings
    assert report.ok == (not case.errors)
    first = (case.errors + case.warnings)[0]
    named = [f for f in report.findings if f.code == first]
    assert case.obj in [f.obj for f in named], named
    for f in report.findings:
        assert f.obj in f.message, f"{f.code} does not name {f.obj!r}: {f.message}"
        assert f.fix.strip(), f"{f.code} has no fix"
        assert f.check in dict(CHECKS)
        assert "{" not in f.message + f.fix, f"unfilled template in {f.code}"


def test_every_code_is_provoked_by_a_case():
    provoked = {c for case in CASES for c in case.errors + case.warnings}
    assert set(CODES) - provoked == {"HSCLL599"}  # the crash code: see the tests below
    assert provoked <= set(CODES)


def test_every_check_is_exercised_by_a_case():
    used = {f.check for case in CASES for f in run(case).findings}
    assert used == {name for name, _fn in CHECKS}


def test_check_names_are_unique_and_codes_well_formed():
    names = [n for n, _ in CHECKS]
    assert len(names) == len(set(names))
    for code, spec in CODES.items():
        assert code.startswith("HSCL")
        assert not code.startswith("HSCLL4"), "HSCLL4xx are the migration family's (lpmlab/codes)"
        assert spec.severity in ("error", "warning")
        assert spec.title and spec.message and spec.fix


# -- messages ----------------------------------------------------------------------------------
def test_memory_message_names_system_partition_and_sizes():
    (f,) = validate(frame("sys2", memory_free_mb=256)(healthy()), req()).errors
    assert f.message == ("The destination managed system sys2 has 256 MB free; partition "
                         "lpar1 needs 512 MB (in use now).")
    assert "memory_mb of sys2" in f.fix


def test_inactive_sizes_by_profile_desired_values():
    s = chain(SHUTOFF, part(desired_memory_mb=1024, desired_procs=4),
              frame("sys2", memory_free_mb=768, processors_free=2))(healthy())
    errs = validate(s, req(**INACTIVE)).errors
    assert [f.code for f in errs] == ["HSCLL513", "HSCLL514"]
    assert "needs 1024 MB (desired in profile default_profile)" in errs[0].message
    # The same frame is roomy enough for what the partition uses now (512 MB, 1 proc).
    assert validate(dataclasses.replace(s, partitions=healthy().partitions), req()).ok


def test_partition_elsewhere_says_where():
    (f,) = run(CASES[[c.id for c in CASES].index("partition_on_other_frame")]).errors
    assert f.message.endswith("It is on sys2.")


def test_mover_detail_says_why_each_pair_fails():
    (f,) = validate(snap(mover_reachable={("vios1", "vios2"): False})(healthy()), req()).errors
    assert "vios1 -> vios2 unreachable" in f.message
    (f,) = validate(snap(mover_reachable={})(healthy()), req()).errors
    assert "vios1 -> vios2 not measured" in f.message


def test_storage_detail_names_each_destination_vios():
    s = chain(add_vios("vios3", "sys2", 3, msp=False), vios("vios3", running=False),
              vios("vios2", serves_luns=frozenset()))(healthy())
    (f,) = validate(s, req()).errors
    assert f.code == "HSCLA319"
    assert "vios2 does not serve it; vios3 is not running" in f.message


# -- active vs inactive ------------------------------------------------------------------------
def test_inactive_ignores_what_only_a_running_partition_needs():
    broken = chain(SHUTOFF, part(bsr_arrays=2, huge_pages=True, procs=4),
                   frame("sys2", qemu_version="9.2.0", vcpu_quiesce_bug=True,
                         active_migrations=16),
                   vios("vios2", msp=False, time_ref=False),
                   snap(mover_reachable={}))(healthy())
    assert validate(broken, req(**INACTIVE)).findings == ()
    active = validate(part(state="running", rmc_active=True)(broken), req())
    assert set(active.codes()) == {"HSCLL518", "HSCLL521", "HSCLL522", "HSCLL539", "HSCLL540",
                                   "HSCLL551", "HSCLL559"}


def test_inactive_still_checks_the_systems_and_storage():
    broken = chain(SHUTOFF, frame("sys2", lmb_size_mb=128, pseries_machine="pseries-9.2"),
                   snap(storage_shared={}))(healthy())
    codes = validate(broken, req(**INACTIVE)).codes()
    assert codes == ["HSCLL512", "HSCLL520", "HSCLL561"]


def test_shut_off_partition_is_not_blamed_for_missing_rmc():
    codes = validate(part(state="shutoff", rmc_active=False)(healthy()), req()).codes()
    assert codes == ["HSCLL532"]


# -- conditions that look alike but pass -------------------------------------------------------
def test_a_free_dest_lpar_id_passes():
    assert validate(healthy(), req(dest_lpar_id=7)).ok


def test_trusted_remote_hmc_passes():
    s = snap(remote_hmc_keys={"198.18.0.2": True})(healthy())
    assert validate(s, req(remote_hmc="198.18.0.2")).findings == ()


def test_one_processor_partition_is_not_affected_by_the_quiesce_bug():
    assert validate(frame("sys2", vcpu_quiesce_bug=True)(healthy()), req()).findings == ()


def test_named_pool_with_room_passes():
    assert validate(healthy(), req(shared_proc_pool="DefaultPool")).ok


def test_one_broken_msp_of_two_is_fine_when_another_works():
    s = chain(add_vios("vios3", "sys2", 3, mover_link_up=False))(healthy())
    assert validate(s, req()).ok


def test_named_msp_pair_must_itself_be_reachable():
    s = chain(add_vios("vios3", "sys2", 3),
              snap(mover_reachable={("vios1", "vios2"): True, ("vios1", "vios3"): False}))(
        healthy())
    assert validate(s, req()).ok  # auto choice: vios1 -> vios2 works
    (f,) = validate(s, req(dest_msp="vios3")).errors
    assert f.code == "HSCLL557"
    assert f.obj == "vios1 -> vios3"


def test_msp_limit_is_fine_when_another_msp_has_room():
    s = chain(add_vios("vios3", "sys2", 3), vios("vios2", active_migrations=4),
              snap(mover_reachable={("vios1", "vios2"): True, ("vios1", "vios3"): True}))(
        healthy())
    assert validate(s, req()).ok
    assert validate(s, req(dest_msp="vios2")).codes() == ["HSCLL558"]


def test_redundancy_passes_with_two_vios_and_two_msp_pairs():
    s = chain(add_vios("vios3", "sys1", 3), add_vios("vios4", "sys2", 4),
              snap(mover_reachable={(a, b): True for a in ("vios1", "vios3")
                                    for b in ("vios2", "vios4")}))(healthy())
    report = validate(s, req(overrides={"redundantvios": 1, "redundantmsps": 1}))
    assert report.findings == ()


def test_redundant_msps_need_pairs_that_share_no_msp():
    # vios1 -> vios2 and vios1 -> vios4 both work, but both depend on vios1.
    s = chain(add_vios("vios4", "sys2", 4),
              snap(mover_reachable={("vios1", "vios2"): True, ("vios1", "vios4"): True}))(
        healthy())
    (f,) = validate(s, req(overrides={"redundantmsps": 1})).errors
    assert f.code == "HSCLL562"


def test_vscsi_mapping_to_a_dest_vios_passes():
    assert validate(healthy(), req(vscsi_vios=("vios2",))).ok


# -- all together ------------------------------------------------------------------------------
def test_all_failures_are_reported_together_in_check_order():
    s = chain(frame("sys1", battery_power=True), frame("sys2", memory_free_mb=0),
              part(migration_disabled=True, huge_pages=True), vios("vios2", time_ref=False),
              snap(storage_shared={}))(healthy())
    report = validate(s, req(dest_lpar_id=1))
    assert [f.code for f in report.errors] == ["HSCLL511", "HSCLL513", "HSCLL530", "HSCLL540",
                                               "HSCLL542", "HSCLL561"]
    assert [f.code for f in report.warnings] == ["HSCLL559"]
    assert not report.ok


def test_an_empty_lab_is_reported_not_crashed():
    empty = LabSnapshot(frames={}, vios={}, partitions={})
    report = validate(empty, req())
    assert report.codes() == ["HSCL8011", "HSCL8011", "HSCL8012"]


def test_every_case_runs_without_a_check_crashing():
    for case in CASES:
        assert "HSCLL599" not in run(case).codes(), case.id


# -- a check that fails ------------------------------------------------------------------------
def _boom(_s: LabSnapshot, _r: MigrationRequestView) -> list[Finding]:
    raise KeyError("vios7")


def test_a_raising_check_is_reported_and_the_others_still_run(monkeypatch):
    checks = list(CHECKS)
    checks.insert(3, ("boom", _boom))
    monkeypatch.setattr(V, "CHECKS", checks)
    report = validate(frame("sys1", battery_power=True)(healthy()), req())
    assert report.codes() == ["HSCLL599", "HSCLL511"]
    f = report.errors[0]
    assert (f.obj, f.check) == ("boom", "boom")
    assert "KeyError" in f.message and "vios7" in f.message
    assert f.fix


def test_a_check_returning_garbage_is_reported():
    report = validate(healthy(), req(), checks=[("bad", lambda s, r: ["not a finding"])])
    assert report.codes() == ["HSCLL599"]
    report = validate(healthy(), req(), checks=[("none", lambda s, r: None)])
    assert report.codes() == ["HSCLL599"]


# -- the report --------------------------------------------------------------------------------
def test_render_is_hmc_style_errors_then_warnings():
    s = chain(vios("vios2", time_ref=False), part(migration_disabled=True))(healthy())
    text = validate(s, req()).render()
    assert text.startswith("Errors:\nHSCLL530 Partition lpar1 has migration disabled.\nFix: ")
    assert "\n\nWarnings:\nHSCLL559 No time reference partition is set on managed system " \
           "sys2" in text
    assert "Warnings:" not in validate(s, req()).render(warnings=False)


def test_raise_for_errors_carries_the_first_error_and_the_whole_report():
    validate(healthy(), req()).raise_for_errors()  # nothing to raise
    s = chain(part(migration_disabled=True, migrating=True))(healthy())
    with pytest.raises(MigrationError) as ei:
        validate(s, req()).raise_for_errors()
    err = ei.value
    assert err.code == "HSCLL530"
    assert err.message.endswith("(and 1 more, see below)")
    assert err.evidence and "HSCLL531" in err.evidence
    assert err.fix


def test_warnings_alone_do_not_raise():
    validate(vios("vios2", time_ref=False)(healthy()), req()).raise_for_errors()


def test_records_for_json():
    (rec,) = validate(part(workload_group=True)(healthy()), req()).records()
    assert rec["code"] == "HSCLL538"
    assert rec["object"] == "lpar1"
    assert rec["severity"] == "error"
    assert rec["check"] == "workload_group"


# -- the docs ----------------------------------------------------------------------------------
def test_docs_list_every_code_and_check():
    text = DOCS.read_text()
    for code in CODES:
        assert f"`{code}`" in text, code
    for name, _fn in CHECKS:
        assert f"`{name}`" in text, name
