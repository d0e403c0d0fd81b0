"""lslparmigr resource listings, migrlpar -o set and the migrlpar options on the default lab."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import cli

pytestmark = pytest.mark.integration

ONE = ["-m", "sys1", "-t", "sys2", "--filter", "lpar_names=lpar1"]


def fields(*argv: str) -> str:
    return cli("lslparmigr", *argv, check=True).stdout.strip()


def validate(*extra: str) -> subprocess.CompletedProcess:
    return cli("migrlpar", "-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar1", *extra)


# -- lslparmigr -r procpool|mem|virtualio|mc --------------------------------------------------
def test_procpool_lists_the_default_pool_with_room(lab):
    out = fields("-r", "procpool", *ONE, "-F",
                 "lpar_name,shared_proc_pool_ids,shared_proc_pool_names,required_proc_units")
    assert out == "lpar1,0,DefaultPool,1.0"
    avail = fields("-r", "procpool", *ONE, "-F", "shared_proc_pool_avail_proc_units")
    assert float(avail) == 8.0  # sys2 runs no partition


def test_mem_needed_against_available(lab):
    out = fields("-r", "mem", "-m", "sys1", "-t", "sys2", "--filter", "lpar_ids=2", "-F",
                 "lpar_name:curr_mem:required_mem:dest_avail_mem:dest_mem_sufficient",
                 "--header")
    assert out.splitlines() == ["lpar_name:curr_mem:required_mem:dest_avail_mem:"
                                "dest_mem_sufficient", "lpar1:512:512:8192:1"]


def test_virtualio_suggestion_validates(lab):
    out = fields("-r", "virtualio", *ONE, "-F", "suggested_virtual_scsi_mappings")
    assert out == "2/vios2/1"
    cp = validate("-i", f'"virtual_scsi_mappings={out}"')
    assert cp.returncode == 0 and cp.stderr == "", cp.stderr


def test_partition_listings_need_one_partition_and_a_target(lab):
    for argv in (["-r", "mem", "-m", "sys1", "-t", "sys2"],
                 ["-r", "procpool", "-m", "sys1", "--filter", "lpar_names=lpar1"],
                 ["-r", "virtualio", *ONE[:4], "--filter", "lpar_names=lpar1,vios1"]):
        cp = cli("lslparmigr", *argv)
        assert cp.returncode == 2 and "HSCL8001" in cp.stderr and cp.stdout == "", argv
    cp = cli("lslparmigr", "-r", "mem", "-m", "sys1", "-t", "sys2", "--filter",
             "lpar_names=nosuch")
    assert cp.returncode != 0 and "HSCL8012" in cp.stderr


def test_mc_limits_and_json(lab):
    assert fields("-r", "mc", "-F", "max_lpars_per_migrlpar_cmd") == "10"
    import json

    (rec,) = json.loads(fields("-r", "mc", "--json"))
    assert rec["default_msp_concurr_migrations"] == 4


# -- migrlpar -o set ---------------------------------------------------------------------------
def test_inactive_prof_policy_setting(lab):
    assert fields("-r", "sys", "-m", "sys1", "-F", "inactive_prof_policy") == "config"
    cli("migrlpar", "-o", "set", "-r", "sys", "-m", "sys1", "-i", "inactive_prof_policy=prof",
        check=True)
    try:
        assert fields("-r", "sys", "-m", "sys1", "-F", "inactive_prof_policy") == "prof"
        assert fields("-r", "sys", "-m", "sys2", "-F", "inactive_prof_policy") == "config"
        cp = cli("migrlpar", "-o", "set", "-r", "sys", "-i", "inactive_prof_policy=maybe")
        assert cp.returncode == 2 and "HSCLL422" in cp.stderr
        assert fields("-r", "sys", "-m", "sys1", "-F", "inactive_prof_policy") == "prof"
    finally:
        cli("migrlpar", "-o", "set", "-r", "sys", "-i", "inactive_prof_policy=config",
            check=True)


def test_msp_settings(lab):
    spec = "msp_name,num_active_migrations_configured,concurr_migration_perf_level"
    assert fields("-r", "msp", "-m", "sys2", "-F", spec) == "vios2,4,3"
    cli("migrlpar", "-o", "set", "-r", "lpar", "-m", "sys2", "-p", "vios2", "-i",
        "num_active_migrations_configured=2,concurr_migration_perf_level=5", check=True)
    try:
        assert fields("-r", "msp", "-m", "sys2", "-F", spec) == "vios2,2,5"
        assert fields("-r", "msp", "-m", "sys2", "-t", "sys1", "-F",
                      "source_msp_name,num_active_migrations_configured") == "vios2,2"
        for bad in ("num_active_migrations_configured=0", "num_active_migrations_configured=9",
                    "concurr_migration_perf_level=6"):
            cp = cli("migrlpar", "-o", "set", "-r", "lpar", "-m", "sys2", "-p", "vios2", "-i",
                     bad)
            assert cp.returncode == 2 and "HSCLL422" in cp.stderr, bad
        cp = cli("migrlpar", "-o", "set", "-r", "lpar", "-m", "sys1", "-p", "lpar1", "-i",
                 "concurr_migration_perf_level=2")
        assert cp.returncode == 2 and "HSCLL416" in cp.stderr
        assert fields("-r", "msp", "-m", "sys2", "-F", spec) == "vios2,2,5", "unchanged"
        # one MSP per frame with room for two: the healthy lab still validates
        assert validate().returncode == 0
    finally:
        cli("migrlpar", "-o", "set", "-r", "lpar", "-m", "sys2", "-p", "vios2", "-i",
            "num_active_migrations_configured=4,concurr_migration_perf_level=3", check=True)


# -- migrlpar options --------------------------------------------------------------------------
@pytest.mark.parametrize("flag, code", [
    ("--redundantvios", "HSCLL560"), ("--redundantmsps", "HSCLL562"), ("--mpio", "HSCLL565")])
def test_redundancy_the_default_lab_cannot_give(lab, flag, code):
    cp = validate(flag, "1")
    assert cp.returncode != 0 and code in cp.stderr
    cp = validate(flag, "2")
    assert cp.returncode == 0 and code in cp.stderr, "if possible: a warning"


def test_vlanbridge_and_protectstorage_pass_on_the_default_lab(lab):
    cp = validate("--vlanbridge", "1", "--protectstorage", "1")
    assert cp.returncode == 0 and cp.stderr == "", cp.stderr


def test_options_with_the_wrong_operation(lab):
    cp = cli("migrlpar", "-o", "s", "-m", "sys1", "-p", "lpar1", "--redundantvios", "1")
    assert cp.returncode == 2 and "HSCL8001" in cp.stderr
    cp = validate("-w", "-2")
    assert cp.returncode == 2 and "HSCL8001" in cp.stderr


def test_steps_after_a_migration(lab):
    cp = cli("migrlpar", "-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1", "-w", "1",
             "--steps", "1")
    assert cp.returncode == 0, cp.stderr
    lines = cp.stdout.strip().splitlines()
    steps = [dict(kv.split("=", 1) for kv in ln.split(",")[:4]) for ln in lines]
    assert [s["step"] for s in steps][0] == "validate"
    assert steps[-1]["step"] == "complete"
    assert all(s["status"] == "completed" and s["lpar_name"] == "lpar1" for s in steps)
    cp = cli("migrlpar", "-o", "m", "-m", "sys2", "-t", "sys1", "-p", "lpar1", "--steps", "2")
    assert cp.returncode == 0 and cp.stdout == "", "no failed steps"
