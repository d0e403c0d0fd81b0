"""lslparmigr -r procpool|mem|virtualio|mc|msp: what one partition's migration would use."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from lpmlab import topology
from lpmlab.cli import common, lslparmigr
from lpmlab.errors import NotFoundError, UsageError
from lpmlab.fabric.plan import LabPlan
from lpmlab.hmc import msp_settings, resources, snapshot
from lpmlab.hmc import validation as V
from lpmlab.hmc.attributes import MigrationAttributes
from lpmlab.hmc.store import MigrationRecord
from tests.unit.fakes import FakeFrames

LUN = "lpar1.img"
BYNAME = {"lpar_names": ["lpar1"]}


def healthy() -> V.LabSnapshot:
    return V.snapshot_from_topology(topology.load())


def with_frame(s: V.LabSnapshot, name: str, **kw: Any) -> V.LabSnapshot:
    return dataclasses.replace(s, frames={**s.frames,
                                          name: dataclasses.replace(s.frames[name], **kw)})


def with_vios(s: V.LabSnapshot, name: str, **kw: Any) -> V.LabSnapshot:
    v = s.vios.get(name) or dataclasses.replace(s.vios["vios2"], name=name)
    return dataclasses.replace(s, vios={**s.vios, name: dataclasses.replace(v, **kw)})


def with_part(s: V.LabSnapshot, **kw: Any) -> V.LabSnapshot:
    p = dataclasses.replace(s.partitions["lpar1"], **kw)
    return dataclasses.replace(s, partitions={**s.partitions, "lpar1": p})


# -- the subject -------------------------------------------------------------------------------
def test_subject_by_name_or_id():
    s = healthy()
    assert resources.subject(s, "sys1", BYNAME).name == "lpar1"
    assert resources.subject(s, "sys1", {"lpar_ids": ["2"]}).name == "lpar1"


@pytest.mark.parametrize("flt", [{}, {"lpar_names": ["lpar1", "lpar2"]},
                                 {"lpar_names": ["lpar1"], "lpar_ids": ["2"]}])
def test_subject_needs_exactly_one_partition(flt):
    with pytest.raises(UsageError) as e:
        resources.subject(healthy(), "sys1", flt)
    assert e.value.code == "HSCL8001" and "lpar_names=" in (e.value.fix or "")


def test_subject_missing_says_where_it_is():
    with pytest.raises(NotFoundError) as e:
        resources.subject(healthy(), "sys2", BYNAME)
    assert e.value.code == "HSCL8012" and "It is on sys1" in e.value.message


def test_subject_vios_is_refused():
    with pytest.raises(UsageError) as e:
        resources.subject(healthy(), "sys1", {"lpar_names": ["vios1"]})
    assert e.value.code == "HSCLL504"


def test_unknown_or_equal_frames():
    with pytest.raises(NotFoundError) as e:
        resources.partition_records("mem", healthy(), "sys1", "sys9", BYNAME)
    assert e.value.code == "HSCL8011" and "sys9" in e.value.message
    with pytest.raises(UsageError) as e2:
        resources.partition_records("mem", healthy(), "sys1", "sys1", BYNAME)
    assert e2.value.code == "HSCLL501"


# -- procpool ----------------------------------------------------------------------------------
def test_procpool_default_pool_with_room():
    (rec,) = resources.partition_records("procpool", healthy(), "sys1", "sys2", BYNAME)
    assert rec == {"lpar_name": "lpar1", "lpar_id": 2, "dest_sys_name": "sys2",
                   "required_proc_units": 1.0, "shared_proc_pool_ids": [0],
                   "shared_proc_pool_names": ["DefaultPool"],
                   "shared_proc_pool_avail_proc_units": [8.0]}


def test_procpool_lists_only_pools_with_room_default_first():
    s = with_frame(healthy(), "sys2", shared_proc_pools={"DefaultPool": 3.0, "big": 4.0,
                                                         "apool": 0.5})
    s = with_part(s, procs=2)
    (rec,) = resources.partition_records("procpool", s, "sys1", "sys2", BYNAME)
    assert rec["shared_proc_pool_ids"] == [0, 2]
    assert rec["shared_proc_pool_names"] == ["DefaultPool", "big"]
    line = lslparmigr.records.format_record(rec)
    assert '"shared_proc_pool_ids=0,2","shared_proc_pool_names=DefaultPool,big"' in line


def test_procpool_none_when_no_pool_has_room():
    s = with_frame(healthy(), "sys2", shared_proc_pools={"DefaultPool": 0.0})
    (rec,) = resources.partition_records("procpool", s, "sys1", "sys2", BYNAME)
    assert rec["shared_proc_pool_ids"] == rec["shared_proc_pool_names"] == "none"


def test_shut_off_partition_is_sized_by_its_profile():
    s = with_part(healthy(), state="shutoff", desired_procs=3, desired_memory_mb=1024)
    (pool,) = resources.partition_records("procpool", s, "sys1", "sys2", BYNAME)
    (mem,) = resources.partition_records("mem", s, "sys1", "sys2", BYNAME)
    assert pool["required_proc_units"] == 3.0
    assert mem["required_mem"] == 1024 and mem["curr_mem"] == 512


# -- mem ---------------------------------------------------------------------------------------
def test_mem_needed_against_available():
    (rec,) = resources.partition_records("mem", healthy(), "sys1", "sys2", BYNAME)
    assert rec == {"lpar_name": "lpar1", "lpar_id": 2, "dest_sys_name": "sys2",
                   "curr_mem": 512, "desired_mem": 512, "required_mem": 512,
                   "dest_avail_mem": 8192, "dest_installed_mem": 8192,
                   "dest_mem_region_size": 256, "dest_mem_sufficient": 1}


def test_mem_insufficient_agrees_with_validation():
    s = with_frame(healthy(), "sys2", memory_free_mb=256)
    (rec,) = resources.partition_records("mem", s, "sys1", "sys2", BYNAME)
    assert rec["dest_mem_sufficient"] == 0
    req = V.MigrationRequestView("lpar1", "sys1", "sys2")
    assert "HSCLL513" in V.validate(s, req).codes()


# -- virtualio ---------------------------------------------------------------------------------
def test_virtualio_suggests_the_destination_vios():
    (rec,) = resources.partition_records("virtualio", healthy(), "sys1", "sys2", BYNAME)
    assert rec["suggested_virtual_scsi_mappings"] == ["2/vios2/1"]
    assert rec["suggested_virtual_fc_mappings"] == "none"


def test_virtualio_every_serving_vios_is_an_alternative():
    s = with_vios(healthy(), "vios4", lpar_id=4)
    s = with_vios(s, "vios5", lpar_id=5, running=False)
    s = with_vios(s, "vios6", lpar_id=6, serves_luns=frozenset())
    (rec,) = resources.partition_records("virtualio", s, "sys1", "sys2", BYNAME)
    assert rec["suggested_virtual_scsi_mappings"] == ["2/vios2/1", "2/vios4/4"]
    line = lslparmigr.records.format_record(rec)
    assert '"suggested_virtual_scsi_mappings=2/vios2/1,2/vios4/4"' in line


def test_virtualio_suggestion_passes_validation_as_mapping():
    (rec,) = resources.partition_records("virtualio", healthy(), "sys1", "sys2", BYNAME)
    vios = tuple(m.split("/")[1] for m in rec["suggested_virtual_scsi_mappings"])
    req = V.MigrationRequestView("lpar1", "sys1", "sys2", vscsi_vios=vios)
    assert V.validate(healthy(), req).ok


def test_virtualio_none_when_no_vios_serves_the_lun():
    s = with_vios(healthy(), "vios2", serves_luns=frozenset())
    (rec,) = resources.partition_records("virtualio", s, "sys1", "sys2", BYNAME)
    assert rec["suggested_virtual_scsi_mappings"] == "none"


# -- mc ----------------------------------------------------------------------------------------
def test_mc_limits():
    rec = resources.mc_record()
    assert rec["max_lpars_per_migrlpar_cmd"] == resources.MAX_LPARS_PER_MIGRLPAR_CMD
    assert rec["max_msp_concurr_migrations"] == msp_settings.MAX_MSP_ACTIVE_MIGRATIONS
    assert rec["default_msp_concurr_migrations"] == V.DEFAULT_MSP_ACTIVE_MIGRATIONS
    resources.check_partition_count(resources.MAX_LPARS_PER_MIGRLPAR_CMD)
    with pytest.raises(UsageError) as e:
        resources.check_partition_count(resources.MAX_LPARS_PER_MIGRLPAR_CMD + 1)
    assert e.value.code == "HSCLL418" and e.value.exit_code == 2


# -- msp ---------------------------------------------------------------------------------------
@pytest.fixture
def plan(tmp_path) -> LabPlan:
    return LabPlan.for_topology(topology.load(), tmp_path)


def test_msp_pairs_carry_the_source_msp_settings(plan):
    (rec,) = resources.msp_pair_records(plan, "sys1", "sys2")
    assert rec["source_msp_name"] == "vios1" and rec["dest_msp_names"] == ["vios2"]
    assert rec["num_active_migrations_configured"] == 4
    assert rec["concurr_migration_perf_level"] == 3


def test_msp_list_shows_settings_and_load(plan):
    msp_settings.set_msp(plan, "sys2", MigrationAttributes(
        num_active_migrations_configured=2, concurr_migration_perf_level=5), name="vios2")
    busy = [MigrationRecord("lpar1", "sys1", "sys2", source_msp="vios1", dest_msp="vios2")]
    (rec,) = resources.msp_records(plan, "sys2", busy)
    assert rec == {"msp_name": "vios2", "msp_id": 1, "ipaddr": "198.18.1.22",
                   "num_active_migrations_supported": 8,
                   "num_active_migrations_configured": 2, "concurr_migration_perf_level": 5,
                   "num_active_migrations_in_progress": 1}


# -- the command -------------------------------------------------------------------------------
class FakeHmc(FakeFrames):
    """What lslparmigr asks of Hmc, over a plan in a temporary directory."""

    def migrations_on(self, frame: str) -> list[MigrationRecord]:
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def lab(plan, monkeypatch):
    from lpmlab.hmc import system

    fake = FakeHmc(plan)
    monkeypatch.setattr(system.Hmc, "open",
                        classmethod(lambda cls, lab_dir=None, console=None: fake))
    monkeypatch.setattr(snapshot, "inventory", lambda hmc: healthy())
    return fake


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = common.run(lslparmigr.main, argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_procpool(lab, capsys):
    rc, out, err = cli(["-r", "procpool", "-m", "sys1", "-t", "sys2", "--filter",
                        "lpar_names=lpar1"], capsys)
    assert rc == 0, err
    assert out == ("lpar_name=lpar1,lpar_id=2,dest_sys_name=sys2,required_proc_units=1.0,"
                   "shared_proc_pool_ids=0,shared_proc_pool_names=DefaultPool,"
                   "shared_proc_pool_avail_proc_units=8.0\n")


def test_cli_fields_header_and_json(lab, capsys):
    rc, out, _ = cli(["-r", "mem", "-m", "sys1", "-t", "sys2", "--filter", "lpar_ids=2",
                      "-F", "lpar_name:required_mem:dest_avail_mem", "--header"], capsys)
    assert rc == 0 and out == "lpar_name:required_mem:dest_avail_mem\nlpar1:512:8192\n"
    rc, out, _ = cli(["-r", "virtualio", "-m", "sys1", "-t", "sys2", "--filter",
                      "lpar_names=lpar1", "--json"], capsys)
    assert rc == 0
    assert json.loads(out)[0]["suggested_virtual_scsi_mappings"] == ["2/vios2/1"]


def test_cli_mc_needs_no_lab(home_without_lab, capsys):
    rc, out, err = cli(["-r", "mc", "-F", "max_lpars_per_migrlpar_cmd"], capsys)
    assert rc == 0, err
    assert out == f"{resources.MAX_LPARS_PER_MIGRLPAR_CMD}\n"


@pytest.fixture
def home_without_lab(tmp_path, monkeypatch):
    monkeypatch.setenv("LPMLAB_HOME", str(tmp_path / "nolab"))


def test_cli_sys_shows_the_inactive_prof_policy(lab, capsys):
    rc, out, _ = cli(["-r", "sys", "-m", "sys1", "-F", "inactive_prof_policy"], capsys)
    assert rc == 0 and out == "config\n"
    msp_settings.set_sys(lab.plan, ["sys1"], MigrationAttributes(inactive_prof_policy="prof"))
    rc, out, _ = cli(["-r", "sys", "-m", "sys1", "-F", "inactive_prof_policy"], capsys)
    assert out == "prof\n"
    rc, out, _ = cli(["-r", "sys", "-m", "sys2", "-F", "inactive_prof_policy"], capsys)
    assert out == "config\n"


def test_cli_msp_with_and_without_target(lab, capsys):
    rc, out, _ = cli(["-r", "msp", "-m", "sys1", "-t", "sys2", "-F",
                      "source_msp_name,dest_msp_names,num_active_migrations_configured"], capsys)
    assert rc == 0 and out == "vios1,vios2,4\n"
    rc, out, _ = cli(["-r", "msp", "-m", "sys2", "-F",
                      "msp_name,num_active_migrations_configured,concurr_migration_perf_level"],
                     capsys)
    assert rc == 0 and out == "vios2,4,3\n"


@pytest.mark.parametrize("argv, words", [
    (["-r", "procpool", "-m", "sys1", "--filter", "lpar_names=lpar1"], ["-t"]),
    (["-r", "mem", "-m", "sys1", "-t", "sys2"], ["one partition", "--filter"]),
    (["-r", "virtualio", "-t", "sys2", "--filter", "lpar_names=lpar1"], ["-m"]),
    (["-r", "mem", "-m", "sys1", "-t", "sys2", "--filter", "lpar_names=lpar1,lpar2"],
     ["one partition"]),
    (["-r", "mem", "-m", "sys1", "-t", "sys2", "--filter", "lpar_names=lpar1,lpar_ids=2"],
     ["mutually exclusive"]),
    (["-r", "sys", "-m", "sys1", "-t", "sys2"], ["-t"]),
    (["-r", "msp", "-m", "sys1", "--filter", "lpar_names=lpar1"], ["--filter"]),
    (["-r", "mc", "--header"], ["--header"]),
])
def test_cli_usage_errors(lab, capsys, argv, words):
    rc, out, err = cli(argv, capsys)
    assert rc == 2 and out == ""
    assert err.startswith("HSCL8001 ")
    for w in words:
        assert w in err


def test_cli_missing_partition_is_not_found(lab, capsys):
    rc, out, err = cli(["-r", "mem", "-m", "sys1", "-t", "sys2", "--filter", "lpar_names=x"],
                       capsys)
    assert rc == NotFoundError.exit_code and out == "" and "HSCL8012" in err
