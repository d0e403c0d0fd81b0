"""migrlpar -o set, -w/-d/--steps/--nodetails and the tri-state overrides."""

from __future__ import annotations

import dataclasses
import json
import time
from types import SimpleNamespace
from typing import Any

import pytest

from lpmlab import topology
from lpmlab.cli import common, migrlpar
from lpmlab.errors import MigrationError, NotFoundError, UsageError
from lpmlab.fabric.lab import read_settings
from lpmlab.fabric.plan import LabPlan
from lpmlab.hmc import migration, msp_settings, operations, resources, steps
from lpmlab.hmc import validation as V
from lpmlab.hmc.store import LimitReached, MigrationRecord, MigrationStore, MspLimitReached
from tests.unit.fakes import FakeFrames

LUN = "lpar1.img"
MIG = ["-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1"]
VAL = ["-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar1"]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = common.run(migrlpar.main, argv)
    out, err = capsys.readouterr()
    return rc, out, err


# -- syntax, before any lab --------------------------------------------------------------------
@pytest.fixture
def nolab(tmp_path, monkeypatch):
    monkeypatch.setenv("LPMLAB_HOME", str(tmp_path / "nolab"))


@pytest.mark.parametrize("argv, words", [
    (["-o", "s", "-m", "sys1", "-p", "lpar1", "-w", "5"], ["-w", "-o m or -o v"]),
    (["-o", "r", "-m", "sys1", "-p", "lpar1", "-d", "2"], ["-d"]),
    (["-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar1", "--steps", "1"], ["--steps"]),
    (["-o", "s", "-m", "sys1", "-p", "lpar1", "--redundantvios", "1"], ["--redundantvios"]),
    (["-o", "r", "-m", "sys1", "-p", "lpar1", "--mpio", "1"], ["--mpio"]),
    (["-o", "s", "-m", "sys1", "-p", "lpar1", "--vlanbridge", "2"], ["--vlanbridge"]),
    (["-o", "s", "-m", "sys1", "-p", "lpar1", "--protectstorage", "2"], ["--protectstorage"]),
    (["-o", "s", "-m", "sys1", "-p", "lpar1", "--redundantmsps", "0"], ["--redundantmsps"]),
    (["-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1", "-r", "sys"], ["-r", "-o set"]),
    ([*MIG, "-w", "-1"], ["-w -1", "0"]),
    ([*MIG, "-d", "0"], ["-d 0", "1 to 5"]),
    ([*MIG, "-d", "6"], ["-d 6"]),
    ([*MIG, "-v", "--nodetails"], ["-v", "--nodetails"]),
    ([*MIG, "--steps", "3"], ["--steps"]),
    ([*MIG, "--redundantvios", "3"], ["--redundantvios"]),
    ([*MIG, "--mpio", "0"], ["--mpio"]),
    ([*MIG, "--protectstorage", "0"], ["--protectstorage"]),
    ([*MIG, "-w", "x"], ["-w"]),
    (["-o", "set", "-m", "sys1", "-i", "inactive_prof_policy=prof"], ["-r sys or -r lpar"]),
    (["-o", "set", "-r", "sys", "-m", "sys1"], ["-i or -f"]),
    (["-o", "set", "-r", "sys", "-p", "lpar1", "-i", "inactive_prof_policy=prof"],
     ["takes no partition"]),
    (["-o", "set", "-r", "lpar", "-p", "vios1", "-i", "concurr_migration_perf_level=2"],
     ["-m"]),
    (["-o", "set", "-r", "lpar", "-m", "sys1", "-i", "concurr_migration_perf_level=2"],
     ["-p", "--id"]),
    (["-o", "set", "-r", "lpar", "-m", "sys1", "-p", "vios1,vios2", "-i",
      "concurr_migration_perf_level=2"], ["one mover service partition"]),
    (["-o", "set", "-r", "lpar", "-m", "sys1", "--id", "x", "-i",
      "concurr_migration_perf_level=2"], ["--id x"]),
    (["-o", "set", "-r", "sys", "-t", "sys2", "-i", "inactive_prof_policy=prof"], ["-t"]),
    (["-o", "set", "-r", "sys", "--steps", "1", "-i", "inactive_prof_policy=prof"],
     ["--steps"]),
    (["-o", "set", "-r", "sys", "-i", "inactive_prof_policy=sometimes"],
     ["inactive_prof_policy"]),
    (["-o", "set", "-r", "sys", "-i", "num_active_migrations_configured=2"],
     ["not valid for this operation"]),
    (["-o", "set", "-r", "lpar", "-m", "sys1", "-p", "vios1", "-i",
      "inactive_prof_policy=prof"], ["not valid for this operation"]),
    (["-o", "set", "-r", "lpar", "-m", "sys1", "-p", "vios1", "-i",
      "concurr_migration_perf_level=6"], ["concurr_migration_perf_level"]),
])
def test_usage_errors_before_the_lab(nolab, capsys, argv, words):
    rc, out, err = run(argv, capsys)
    assert rc == 2 and out == "", err
    assert err.split()[0] in ("HSCL8001", "HSCLL421", "HSCLL422")
    for w in words:
        assert w in err, (w, err)
    assert "LPM1002" not in err, "syntax is checked before the lab"


def test_options_are_accepted_with_their_operations(nolab, capsys):
    # valid syntax reaches the lab check (and there is no lab here)
    for argv in ([*MIG, "-w", "0", "-d", "5", "--steps", "2", "--nodetails",
                  "--redundantvios", "0", "--redundantmsps", "2", "--protectstorage", "1",
                  "--mpio", "2", "--vlanbridge", "1"],
                 ["-o", "s", "-m", "sys1", "-p", "lpar1", "--steps", "1"],
                 ["-o", "r", "-m", "sys1", "-p", "lpar1", "--steps", "2", "--force"],
                 ["-o", "set", "-r", "sys", "-i", "inactive_prof_policy=prof"]):
        rc, _out, err = run(argv, capsys)
        assert "LPM1002" in err, (argv, err)


# -- a lab of fakes ----------------------------------------------------------------------------
class FakeHmc(FakeFrames):
    def __init__(self, plan: LabPlan) -> None:
        super().__init__(plan)
        self.store = MigrationStore(self.console.db_path)

    def lpar_records(self, frame: str, *, rmc: bool = True) -> list[dict[str, Any]]:
        recs = [{"name": v.name, "lpar_id": v.lpar_id, "lpar_env": "vioserver"}
                for v in self.topology.vios_on(frame)]
        return recs + [{"name": p.name, "lpar_id": p.lpar_id, "lpar_env": "aixlinux"}
                       for p in self.topology.partitions_on(frame)]

    def locate(self, name: str, frame: str) -> Any:
        """Every partition of the fake lab runs (an active migration)."""
        self.require_frame(frame)
        return SimpleNamespace(name=name, state="running", metadata={})

    def close(self) -> None:
        pass


def two_vios_topology() -> topology.Topology:
    """The default lab plus vios3 (an MSP) on sys1 and vios4 (an MSP) on sys2."""
    t = topology.load()
    extra = (dataclasses.replace(t.vios[0], name="vios3", index=2, lpar_id=3,
                                 address=t.vios[0].address + 2,
                                 mover_address=t.vios[0].mover_address + 2),
             dataclasses.replace(t.vios[1], name="vios4", index=3, lpar_id=4,
                                 address=t.vios[1].address + 2,
                                 mover_address=t.vios[1].mover_address + 2))
    return dataclasses.replace(t, vios=t.vios + extra)


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """migrlpar over fakes: the default topology in tmp_path; validation runs the real checks
    over the snapshot in ``lab.snap`` (healthy unless a test changes it)."""
    state: dict[str, Any] = {"topology": topology.load(), "jobs": []}

    class Lab:
        @property
        def plan(self) -> LabPlan:
            return LabPlan.for_topology(state["topology"], tmp_path)

        snap = V.snapshot_from_topology(state["topology"])
        jobs: list[Any] = state["jobs"]

        def use(self, topo: topology.Topology) -> None:
            state["topology"] = topo
            self.snap = V.snapshot_from_topology(topo)

    the_lab = Lab()

    class FakeJob:
        def __init__(self, hmc: Any, name: str, source: str, dest: str, attrs: Any,
                     profile: str | None = None, overrides: Any = None,
                     wait_minutes: int | None = None, controls: Any = None,
                     observer: Any = None) -> None:
            self.hmc, self.name, self.source, self.dest = hmc, name, source, dest
            self.controls, self.observer = controls, observer
            self.overrides = dict(overrides or {})
            the_lab.jobs.append(self)

        def request(self) -> V.MigrationRequestView:
            return V.MigrationRequestView(self.name, self.source, self.dest,
                                          overrides=self.overrides)

        def close(self) -> None:
            pass

        def validate_os(self) -> Any:
            from lpmlab.hmc.hooks import PhaseResult

            return PhaseResult("check")  # no partition OS in this fake lab: no hooks

        def validate(self) -> tuple[V.ValidationReport, None]:
            report = V.validate(the_lab.snap, self.request())
            report.raise_for_errors()
            return report, None

        def run(self) -> Any:
            self.validate()
            rec = MigrationRecord(self.name, self.source, self.dest, source_msp="vios1",
                                  dest_msp="vios2")
            rec.phase("validate", seconds=0.1)
            rec.phase("transfer")
            rec.phase("complete")
            rec.state, rec.result, rec.ended = "Migration Complete", "success", time.time()
            self.hmc.store.save(rec)
            return migration.MigrationResult(rec, 0.5, {"downtime": 80})

    from lpmlab.hmc import system

    monkeypatch.setattr(system.Hmc, "open",
                        classmethod(lambda cls, lab_dir=None, console=None: FakeHmc(the_lab.plan)))
    monkeypatch.setattr(migration, "LiveMigration", FakeJob)
    return the_lab


# -- -w, -d, --nodetails -----------------------------------------------------------------------
def test_wait_and_detail_defaults_reach_the_operation(lab, capsys, monkeypatch):
    seen = []
    monkeypatch.setattr(operations.PartitionOperation, "one",
                        lambda self, name: seen.append(self.request)
                        or operations.PartitionOutcome(name))
    assert run(MIG, capsys)[0] == 0
    assert seen[0].wait_minutes == 3 and seen[0].detail_level == 1
    assert seen[0].overrides == {}
    assert run([*MIG, "-w", "0", "-d", "4", "--redundantvios", "0"], capsys)[0] == 0
    assert seen[1].wait_minutes == 0 and seen[1].detail_level == 4
    assert seen[1].overrides == {"redundantvios": 0}


def test_detail_level_two_prints_details_on_success(lab, capsys):
    rc, out, err = run(MIG, capsys)
    assert (rc, out, err) == (0, "", "")
    rc, out, err = run([*MIG, "-d", "2"], capsys)
    assert rc == 0 and out == "" and "lpar1: sys1 -> sys2" in err


def test_nodetails_keeps_code_message_and_fix_only(lab, capsys):
    lab.snap = dataclasses.replace(lab.snap, storage_shared={})
    rc, _out, err = run([*VAL, "--redundantvios", "1"], capsys)
    assert rc == MigrationError.exit_code
    assert "Evidence:" in err and "HSCLL561" in err
    rc, _out, err = run([*VAL, "--redundantvios", "1", "--nodetails"], capsys)
    assert rc == MigrationError.exit_code
    lines = err.strip().splitlines()
    assert lines[0].startswith("HSCLL560 ") and lines[1].startswith("Fix: ")
    assert len(lines) == 2


@pytest.mark.parametrize("argv, code, cls", [
    (["-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar9"], "HSCL8012", NotFoundError),
    (["-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar9"], "HSCL8012", NotFoundError),
    (["-o", "v", "-m", "sys1", "-t", "sys1", "-p", "lpar1"], "HSCLL501", UsageError),
    (["-o", "v", "-m", "sys1", "-t", "sys2", "-p", "vios1"], "HSCLL504", UsageError),
])
def test_validation_errors_exit_as_their_code_says(lab, capsys, argv, code, cls):
    rc, out, err = run(argv, capsys)
    assert rc == cls.exit_code and out == "" and err.startswith(f"{code} ")
    assert MigrationStore(lab.plan.console().db_path).latest(None, 1) == []  # nothing began


def test_too_many_partitions_for_one_command(lab, capsys):
    names = ",".join(f"lp{i}" for i in range(resources.MAX_LPARS_PER_MIGRLPAR_CMD + 1))
    rc, out, err = run(["-o", "v", "-m", "sys1", "-t", "sys2", "-p", names], capsys)
    assert rc == 2 and out == "" and err.startswith("HSCLL418 ")
    assert lab.jobs == [], "refused before any partition is touched"


# -- the overrides reach validation --------------------------------------------------------------
@pytest.mark.parametrize("flag, code", [
    ("--redundantvios", "HSCLL560"), ("--redundantmsps", "HSCLL562"), ("--mpio", "HSCLL565")])
def test_redundancy_required_fails_on_the_default_lab(lab, capsys, flag, code):
    rc, out, err = run([*VAL, flag, "1"], capsys)
    assert rc == MigrationError.exit_code and out == ""
    assert err.startswith(f"{code} ")
    rc, out, err = run([*VAL, flag, "2"], capsys)
    assert rc == 0 and code in err and "Warnings:" in err


@pytest.mark.parametrize("flag", ["--redundantvios", "--redundantmsps", "--mpio"])
def test_redundancy_required_passes_with_two_vios_and_msps(lab, capsys, flag):
    lab.use(two_vios_topology())
    rc, _out, err = run([*VAL, flag, "1"], capsys)
    assert (rc, err) == (0, "")


def test_vlanbridge_needs_the_destination_sea(lab, capsys):
    assert run([*VAL, "--vlanbridge", "1"], capsys)[:3] == (0, "", "")
    sys2 = dataclasses.replace(lab.snap.frames["sys2"], bridged_vlans=frozenset())
    lab.snap = dataclasses.replace(lab.snap, frames={**lab.snap.frames, "sys2": sys2})
    assert run(VAL, capsys)[0] == 0, "not asked: not checked"
    rc, _out, err = run([*VAL, "--vlanbridge", "1"], capsys)
    assert rc == MigrationError.exit_code and err.startswith("HSCLL564 VLAN 1 ")
    rc, _out, err = run([*VAL, "--vlanbridge", "2"], capsys)
    assert rc == 0 and "HSCLL564" in err


def test_protectstorage(lab, capsys):
    lab.snap = dataclasses.replace(lab.snap, storage_shared={})
    for extra in ([], ["--protectstorage", "1"]):
        rc, _out, err = run([*VAL, *extra], capsys)
        assert rc == MigrationError.exit_code and err.startswith("HSCLL561 "), extra
    rc, _out, err = run([*VAL, "--protectstorage", "2"], capsys)
    assert rc == 0 and "HSCLL566" in err and "HSCLL561" not in err


def test_migrate_passes_overrides_too(lab, capsys):
    rc, _out, err = run([*MIG, "--redundantmsps", "1"], capsys)
    assert rc == MigrationError.exit_code and "HSCLL562" in err


# -- the checks themselves ---------------------------------------------------------------------
def req(**over: int) -> V.MigrationRequestView:
    return V.MigrationRequestView("lpar1", "sys1", "sys2", overrides=over)


def test_protectstorage_two_never_hides_storage_backed_differently():
    s = dataclasses.replace(V.snapshot_from_topology(topology.load()),
                            storage_shared={LUN: False})
    assert V.validate(s, req(protectstorage=2)).codes() == ["HSCLL561"]


def test_defaults_of_the_overrides():
    assert V._level(req(), "protectstorage") == 1
    assert all(V._level(req(), n) == 0 for n in ("redundantvios", "redundantmsps", "mpio",
                                                 "vlanbridge"))
    assert set(migrlpar.OVERRIDES) == set(V.OVERRIDE_CHOICES)
    assert migrlpar.OVERRIDES == V.OVERRIDE_CHOICES


def test_mpio_counts_only_running_serving_destination_vios():
    s = V.snapshot_from_topology(two_vios_topology())
    assert V.validate(s, req(mpio=1)).ok
    down = dataclasses.replace(s.vios["vios4"], running=False)
    s2 = dataclasses.replace(s, vios={**s.vios, "vios4": down})
    assert V.validate(s2, req(mpio=1)).codes() == ["HSCLL565"]


# -- --steps -----------------------------------------------------------------------------------
def test_steps_print_every_step_on_stdout(lab, capsys):
    rc, out, err = run([*MIG, "--steps", "1"], capsys)
    assert rc == 0 and err == ""
    lines = out.strip().splitlines()
    assert [ln.split(",")[2] for ln in lines] == ["step=validate", "step=transfer",
                                                  "step=complete"]
    assert lines[0].startswith("lpar_name=lpar1,step_num=1,")
    assert all(",status=completed," in ln for ln in lines)
    rc, out, _err = run([*MIG, "--steps", "2"], capsys)
    assert rc == 0 and out == "", "no failed steps"


def test_steps_without_a_new_record_print_nothing(lab, capsys):
    rc, out, _err = run([*MIG, "--steps", "1", "--redundantmsps", "1"], capsys)
    assert rc != 0 and out == "", "validation refused: no migration record was made"


def failed_record() -> MigrationRecord:
    rec = MigrationRecord("lpar1", "sys1", "sys2", started=1000.0)
    rec.phases = [{"phase": "validate", "at": 1000.2, "seconds": 0.2},
                  {"phase": "transfer", "at": 1000.5},
                  {"phase": "settled", "at": 1003.0, "frame": "sys1"},
                  {"phase": "failed", "at": 1003.1, "error": "mover link down"}]
    rec.result, rec.error, rec.ended = "failed", "mover link down", 1003.2
    return rec


def test_step_records_mark_the_failed_step():
    recs = steps.step_records(failed_record())
    assert [(r["step"], r["status"]) for r in recs] == [
        ("validate", "completed"), ("transfer", "failed"), ("settled", "completed"),
        ("failed", "failed")]
    assert recs[1]["detail"] == "mover link down"
    assert recs[0]["detail"] == "seconds=0.2" and recs[0]["elapsed_s"] == 0.2
    only = steps.step_records(failed_record(), failed_only=True)
    assert [r["step"] for r in only] == ["transfer", "failed"]


def test_step_records_of_a_running_migration():
    rec = MigrationRecord("lpar1", "sys1", "sys2", started=1000.0)
    rec.phase("validate")
    rec.phase("transfer")
    assert [r["status"] for r in steps.step_records(rec)] == ["completed", "running"]


# -- migrlpar -o set ---------------------------------------------------------------------------
SET_MSP = ["-o", "set", "-r", "lpar", "-m", "sys2", "-p", "vios2", "-i"]


def test_set_msp_settings_persist_and_show(lab, capsys):
    rc, out, err = run([*SET_MSP, "num_active_migrations_configured=2,"
                        "concurr_migration_perf_level=5"], capsys)
    assert (rc, out, err) == (0, "", "")
    assert read_settings(lab.plan.dir)["msp"]["vios2"] == {
        "num_active_migrations_configured": 2, "concurr_migration_perf_level": 5}
    assert msp_settings.msp(lab.plan.dir, "vios2").num_active_migrations_configured == 2
    assert msp_settings.msp(lab.plan.dir, "vios1") == msp_settings.MspSettings()
    # by ID, one attribute at a time: the other keeps its value
    assert run(["-o", "set", "-r", "lpar", "-m", "sys2", "--id", "1", "-i",
                "concurr_migration_perf_level=1"], capsys)[0] == 0
    assert msp_settings.msp(lab.plan.dir, "vios2") == msp_settings.MspSettings(2, 1)


@pytest.mark.parametrize("attrs, code", [
    ("num_active_migrations_configured=0", "HSCLL422"),
    ("num_active_migrations_configured=9", "HSCLL422"),
    ("num_active_migrations_configured=3,concurr_migration_perf_level=0", "HSCLL422"),
    ("num_active_migrations_configured=x", "HSCLL422"),
    ("concurr_migration_perf_level=9", "HSCLL422"),
])
def test_set_bad_values_change_nothing(lab, capsys, attrs, code):
    rc, out, err = run([*SET_MSP, attrs], capsys)
    assert rc == 2 and out == "" and err.startswith(f"{code} ")
    assert "msp" not in read_settings(lab.plan.dir)


def test_set_refuses_partitions_that_are_no_msp(lab, capsys):
    rc, _out, err = run(["-o", "set", "-r", "lpar", "-m", "sys1", "-p", "lpar1", "-i",
                         "concurr_migration_perf_level=2"], capsys)
    assert rc == 2 and err.startswith("HSCLL416 lpar1 ")
    rc, _out, err = run(["-o", "set", "-r", "lpar", "-m", "sys1", "-p", "vios9", "-i",
                         "concurr_migration_perf_level=2"], capsys)
    assert rc == NotFoundError.exit_code and err.startswith("HSCL8012 ")
    topo = topology.load()
    lab.use(dataclasses.replace(topo, vios=(dataclasses.replace(topo.vios[0], msp=False),
                                            topo.vios[1])))
    rc, _out, err = run(["-o", "set", "-r", "lpar", "-m", "sys1", "-p", "vios1", "-i",
                         "concurr_migration_perf_level=2"], capsys)
    assert rc == 2 and err.startswith("HSCLL417 ")
    assert read_settings(lab.plan.dir) == {}


def test_set_sys_inactive_prof_policy(lab, capsys):
    assert msp_settings.inactive_prof_policy(lab.plan.dir, "sys1") == "config"
    rc, out, err = run(["-o", "set", "-r", "sys", "-m", "sys1", "-i",
                        "inactive_prof_policy=prof"], capsys)
    assert (rc, out, err) == (0, "", "")
    assert msp_settings.inactive_prof_policy(lab.plan.dir, "sys1") == "prof"
    assert msp_settings.inactive_prof_policy(lab.plan.dir, "sys2") == "config"
    # without -m: every managed system
    assert run(["-o", "set", "-r", "sys", "-i", "inactive_prof_policy=prof"], capsys)[0] == 0
    assert msp_settings.inactive_prof_policy(lab.plan.dir, "sys2") == "prof"
    rc, _out, err = run(["-o", "set", "-r", "sys", "-m", "sys9", "-i",
                         "inactive_prof_policy=prof"], capsys)
    assert rc == NotFoundError.exit_code and "HSCL8011" in err


def test_settings_leave_chsyscfg_vios_overrides_alone(lab, capsys):
    (lab.plan.dir / "settings.json").write_text(json.dumps({"vios": {"vios2": {"msp": True}}}))
    assert run([*SET_MSP, "concurr_migration_perf_level=4"], capsys)[0] == 0
    s = read_settings(lab.plan.dir)
    assert s["vios"] == {"vios2": {"msp": True}}
    from lpmlab.fabric.lab import apply_settings

    apply_settings(topology.load(), lab.plan.dir)  # still applies: no foreign keys under vios


# -- the MSP limit when a migration claims its port --------------------------------------------
def test_claim_port_honours_the_msp_limit(tmp_path):
    store = MigrationStore(tmp_path / "db.sqlite")
    ports = range(49152, 49160)
    frames = {"sys1": 16, "sys2": 16}
    first = MigrationRecord("lpar1", "sys1", "sys2", source_msp="vios1", dest_msp="vios2")
    assert store.claim_port(first, ports, limits=frames, msp_limits={"vios2": 1}) == 49152
    second = MigrationRecord("lpar2", "sys1", "sys2", source_msp="vios1", dest_msp="vios2")
    with pytest.raises(MspLimitReached) as e:
        store.claim_port(second, ports, limits=frames, msp_limits={"vios1": 4, "vios2": 1})
    assert e.value.args == ("vios2", 1)
    assert isinstance(e.value, LimitReached), "callers catching LimitReached still stop"
    assert store.get(second.id) is None
    assert store.claim_port(second, ports, limits=frames, msp_limits={"vios2": 2}) == 49153


def test_msp_limits_read_the_settings(tmp_path):
    plan = LabPlan.for_topology(topology.load(), tmp_path)
    from lpmlab.hmc.attributes import MigrationAttributes

    msp_settings.set_msp(plan, "sys2", MigrationAttributes(num_active_migrations_configured=1),
                         name="vios2")
    assert msp_settings.msp_limits(plan.dir, ["vios1", "vios2", None]) == {"vios1": 4,
                                                                           "vios2": 1}


def test_steps_after_a_stop_show_the_migration_that_began_before(lab, capsys, monkeypatch):
    store = MigrationStore(lab.plan.console().db_path)
    rec = MigrationRecord("lpar1", "sys1", "sys2", started=time.time() - 60)
    rec.phase("validate")
    rec.phase("transfer")
    store.save(rec)
    monkeypatch.setattr(migration, "stop", lambda hmc, name, source: rec)
    rc, out, _err = run(["-o", "s", "-m", "sys1", "-p", "lpar1", "--steps", "1"], capsys)
    assert rc == 0
    assert [ln.split(",")[3] for ln in out.strip().splitlines()] == ["status=completed",
                                                                     "status=running"]


def test_convergence_controls_reach_the_migration(lab, capsys):
    rc, _, err = run(MIG + ["--mover-bandwidth", "115", "--max-downtime", "600",
                            "--auto-converge", "--schedule", "stepped-downtime-abort"], capsys)
    assert rc == 0, err
    c = lab.jobs[-1].controls
    assert (c.mover_bandwidth_mib, c.max_downtime_ms, c.auto_converge, c.schedule) == \
        (115, 600, True, "stepped-downtime-abort")
    # off a terminal (capsys) migrlpar is silent unless --progress asks for live progress
    assert lab.jobs[-1].observer is None
    rc, _, _ = run(MIG + ["--progress"], capsys)
    assert rc == 0 and lab.jobs[-1].observer is not None
    rc, _, _ = run(MIG + ["--noprogress"], capsys)
    assert rc == 0 and lab.jobs[-1].observer is None


def test_bad_convergence_controls_change_nothing(lab, capsys):
    for extra, words in ((["--schedule", "stepped-downtime-postcopy"], "opt-in"),
                         (["--max-downtime", "0"], "--max-downtime"),
                         (["--schedule", "warp"], "invalid choice")):
        before = len(lab.jobs)
        rc, out, err = run(MIG + extra, capsys)
        assert rc == 2 and words in err and out == "", (extra, err)
        assert len(lab.jobs) == before
    rc, _, err = run(["-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar1",
                      "--max-downtime", "500"], capsys)
    assert rc == 2 and "--max-downtime is only valid with -o m" in err


# -- the operations under the command ----------------------------------------------------------
def test_migrate_reports_each_partition_and_a_partial_result(lab):
    req = operations.MigrlparRequest("m", "sys1", "sys2", names=("lpar9", "lpar1"))
    outcome = operations.for_request(req).execute()
    assert (outcome.system, outcome.target) == ("sys1", "sys2")
    assert [o.name for o in outcome.partitions] == ["lpar9", "lpar1"]  # as named
    bad, good = outcome.partitions
    assert bad.error is not None and bad.error.code == "HSCL8012" and bad.result is None
    assert good.error is None and isinstance(good.result, migration.MigrationResult)
    assert outcome.failed == [bad] and outcome.partial


def test_migrlpar_exits_100_when_only_some_partitions_fail(lab, capsys):
    rc, out, err = run(["-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar9,lpar1"], capsys)
    assert rc == migrlpar.PARTIAL and out == ""
    assert err.startswith("lpar9: HSCL8012 The partition lpar9 was not found")


def test_validate_returns_the_report_and_the_os_check(lab):
    outcome = operations.Validate(operations.MigrlparRequest(
        "v", "9009-42A*LPM0001", "sys2", names=("lpar1",))).execute()
    (one,) = outcome.partitions
    assert outcome.system == "sys1"  # TYPE-MODEL*SERIAL resolved to the name
    assert one.error is None and isinstance(one.result, operations.Validated)
    assert one.result.report.ok and one.result.os_check is not None
    assert lab.jobs[-1].controls is None  # -o v moves nothing: no convergence controls


def test_validate_refusal_carries_every_finding(lab):
    lab.snap = dataclasses.replace(lab.snap, storage_shared={})
    outcome = operations.for_request(operations.MigrlparRequest(
        "v", "sys1", "sys2", names=("lpar1",), overrides={"redundantvios": 1})).execute()
    err = outcome.partitions[0].error
    assert err is not None and err.code == "HSCLL560"
    assert [f["code"] for f in err.findings] == ["HSCLL560", "HSCLL561"]
    assert all(f["severity"] == "error" and f["fix"] for f in err.findings)


def test_an_operation_resolves_partitions_by_id_and_refuses_unknown_ids(lab):
    op = operations.Stop(operations.MigrlparRequest("s", "sys1", ids=("2",)))
    assert op.resolve() == ["lpar1"]
    with pytest.raises(NotFoundError) as e:
        operations.Stop(operations.MigrlparRequest("s", "sys1", ids=("7",))).resolve()
    assert e.value.message == "The partition with ID 7 was not found on managed system sys1."


def test_set_settings_returns_what_it_set(lab):
    from lpmlab.hmc.attributes import MigrationAttributes

    got = operations.SetSettings("lpar", "sys2", MigrationAttributes(
        num_active_migrations_configured=2), lpar_id=1).execute()
    assert got.resource == "lpar" and got.settings == {
        "vios2": {"num_active_migrations_configured": 2, "concurr_migration_perf_level": 3}}
    got = operations.SetSettings("sys", None, MigrationAttributes(
        inactive_prof_policy="prof")).execute()
    assert got.settings == {"sys1": {"inactive_prof_policy": "prof"},
                            "sys2": {"inactive_prof_policy": "prof"}}


# -- --json ------------------------------------------------------------------------------------
def test_validate_json_lists_warnings_with_code_message_fix_and_object(lab, capsys):
    lab.snap = dataclasses.replace(lab.snap, vios={
        n: dataclasses.replace(v, time_ref=False) for n, v in lab.snap.vios.items()})
    rc, out, err = run([*VAL, "--json"], capsys)
    doc = json.loads(out)
    assert rc == 0 and doc["exit_code"] == 0 and "HSCLL559" in err  # -o v prints details
    assert (doc["operation"], doc["managed_system"], doc["target"]) == ("v", "sys1", "sys2")
    (p,) = doc["partitions"]
    assert p["name"] == "lpar1" and p["ok"] is True
    found = {f["code"]: f for f in p["findings"]}
    assert set(found) == {"HSCLL559"}
    assert found["HSCLL559"]["severity"] == "warning"
    assert {"object", "message", "fix", "check"} <= set(found["HSCLL559"])


def test_validate_json_failure_has_the_error_and_every_finding(lab, capsys):
    lab.snap = dataclasses.replace(lab.snap, storage_shared={})
    rc, out, err = run([*VAL, "--redundantvios", "1", "--json"], capsys)
    doc = json.loads(out)
    assert rc == doc["exit_code"] == MigrationError.exit_code
    assert err.startswith("HSCLL560 ")  # the text stays on stderr
    (p,) = doc["partitions"]
    assert p["ok"] is False and p["error"]["code"] == "HSCLL560"
    assert p["error"]["exit_code"] == MigrationError.exit_code and p["error"]["fix"]
    assert [f["code"] for f in p["error"]["findings"]] == ["HSCLL560", "HSCLL561"]


def test_migrate_json_names_the_migration_and_its_steps(lab, capsys):
    rc, out, err = run([*MIG, "--json", "--steps", "1"], capsys)
    doc = json.loads(out)
    assert rc == 0 and err == ""
    (p,) = doc["partitions"]
    rec = MigrationStore(lab.plan.console().db_path).latest("lpar1", 1)[0]
    assert p["migration_id"] == rec.id and p["job"] == {"downtime": 80}
    assert [s["step"] for s in doc["steps"]] == ["validate", "transfer", "complete"]


def test_a_migrlpar_error_before_any_partition_is_json_too(lab, capsys):
    rc, out, err = run(["-o", "v", "-m", "sys9", "-t", "sys2", "-p", "lpar1", "--json"], capsys)
    assert rc == NotFoundError.exit_code and "HSCL8011" in err
    assert json.loads(out)["error"]["code"] == "HSCL8011"


def test_set_json_shows_the_settings(lab, capsys):
    rc, out, err = run([*SET_MSP, "num_active_migrations_configured=2", "--json"], capsys)
    assert (rc, err) == (0, "")
    assert json.loads(out) == {"operation": "set", "resource": "lpar", "settings": {
        "vios2": {"num_active_migrations_configured": 2, "concurr_migration_perf_level": 3}}}
