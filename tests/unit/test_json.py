"""--json on every HMC command that prints something: one JSON document on stdout, nothing
else there; an error also as JSON on stdout (its text stays on stderr), same exit status."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import pytest

from lpmlab.cli import (
    chsyscfg,
    chsysstate,
    common,
    diagrmc,
    lshmc,
    lssyscfg,
    lssysconn,
    mkauthkeys,
    registry,
)
from lpmlab.errors import NotFoundError, RmcError, UsageError
from lpmlab.fabric.lab import read_settings
from lpmlab.fabric.plan import LabPlan
from lpmlab.hmc import lifecycle, system
from lpmlab.topology import load
from tests.unit.fakes import LabHmc

# commands with nothing to say in JSON: a terminal session, the HMC-to-HMC wire (JSON already)
NO_JSON = {"mkvterm", "rmvterm", "migrpeer"}


@pytest.fixture
def lab(tmp_path, monkeypatch):
    hmc = LabHmc(LabPlan.for_topology(load(), tmp_path))
    monkeypatch.setattr(system.Hmc, "open",
                        classmethod(lambda cls, lab_dir=None, console=None: hmc))
    return hmc


def run(main, argv, capsys):
    rc = common.run(main, argv)
    out, err = capsys.readouterr()
    return rc, out, err


def parsers() -> dict[str, argparse.ArgumentParser]:
    import importlib

    out = {}
    for name, target in registry.HMC_COMMANDS.items():
        module = importlib.import_module(target.split(":")[0])
        out[name] = module.parser(name) if name.endswith("vterm") else module.parser()
    return out


def test_every_hmc_command_that_prints_takes_json():
    have = {name for name, p in parsers().items()
            if any("--json" in a.option_strings for a in p._actions)}
    assert have == set(registry.HMC_COMMANDS) - NO_JSON


def test_a_listing_as_json(lab, capsys):
    rc, out, err = run(lssyscfg.main, ["-r", "lpar", "-m", "sys1", "--json"], capsys)
    assert (rc, err) == (0, "")
    assert [r["name"] for r in json.loads(out)] == ["vios1", "lpar1"]
    assert "\x1b" not in out


def test_a_listing_error_as_json(lab, capsys):
    rc, out, err = run(lssyscfg.main, ["-r", "lpar", "-m", "sys1", "--filter",
                                       "lpar_names=nosuch", "--json"], capsys)
    assert rc == NotFoundError.exit_code
    assert err.startswith("HSCL8012 The partition nosuch was not found")  # text stays
    got = json.loads(out)
    assert list(got) == ["error"]
    assert got["error"] == {
        "code": "HSCL8012", "exit_code": 4,
        "message": "The partition nosuch was not found on managed system sys1.",
        "fix": "list the partitions with 'lssyscfg -r lpar -m sys1 -F name,lpar_id'; name the "
               "managed system it is on with -m"}


def test_a_syntax_error_as_json(lab, capsys):
    rc, out, err = run(lssyscfg.main, ["-r", "bogus", "--json"], capsys)
    assert rc == UsageError.exit_code
    assert json.loads(out)["error"]["code"] == "HSCL8001" and "HSCL8001" in err


def test_lshmc_as_json(lab, capsys):
    rc, out, _ = run(lshmc.main, ["-V", "--json"], capsys)
    v = json.loads(out)
    assert rc == 0 and (v["version"], v["release"], v["base_version"]) == (10, 3, "V10R3")
    rc, out, _ = run(lshmc.main, ["-v", "--json"], capsys)
    assert json.loads(out)["TM"] == lshmc.HMC_MACHINE_TYPE
    rc, out, _ = run(lshmc.main, ["-n", "--json"], capsys)
    (net,) = json.loads(out)
    assert net["hostname"] == "hmc1" and net["ssh"] == "enable"


def test_lssysconn_as_json(lab, capsys, monkeypatch):
    monkeypatch.setattr(LabHmc, "sys_record", lambda self, fp: {"state": "Operating"},
                        raising=False)
    rc, out, _ = run(lssysconn.main, ["-r", "all", "--json"], capsys)
    assert rc == 0
    assert [r["state"] for r in json.loads(out)] == ["Connected", "Connected"]


def test_chsyscfg_says_what_it_changed(lab, capsys):
    rc, out, err = run(chsyscfg.main, ["-r", "lpar", "-m", "sys1", "-i",
                                       "name=vios1,time_ref=0", "--json"], capsys)
    assert (rc, err) == (0, "")
    assert json.loads(out) == {"managed_system": "sys1", "resource": "lpar", "name": "vios1",
                               "time_ref": 0}
    assert read_settings(lab.plan.dir)["vios"]["vios1"] == {"time_ref": False}
    rc, out, _ = run(chsyscfg.main, ["-r", "lpar", "-m", "sys1", "-i",
                                     "name=vios1,time_ref=0"], capsys)
    assert (rc, out) == (0, "")  # silent without --json, as the HMC


def test_chsysstate_says_what_it_did(lab, capsys, monkeypatch):
    monkeypatch.setattr(lifecycle, "activate", lambda hmc, frame, name, profile: "prof2")
    rc, out, _ = run(chsysstate.main, ["-m", "sys1", "-r", "lpar", "--id", "2", "-o", "on",
                                       "--json"], capsys)
    assert rc == 0
    assert json.loads(out) == {"managed_system": "sys1", "partition": "lpar1",
                               "operation": "on", "profile": "prof2"}


def test_mkauthkeys_says_what_it_did(lab, capsys, tmp_path):
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@there", "-f",
                    str(key)], check=True)
    line = Path(f"{key}.pub").read_text().strip()
    rc, out, _ = run(mkauthkeys.main, ["-a", line, "--json"], capsys)
    assert rc == 0 and json.loads(out) == {"hmc": "hmc1", "added": True}
    rc, out, _ = run(mkauthkeys.main, ["-a", line, "--json"], capsys)
    assert json.loads(out)["added"] is False  # accepted already
    rc, out, _ = run(mkauthkeys.main, ["-r", "me@there", "--json"], capsys)
    assert rc == 0 and json.loads(out) == {"hmc": "hmc1", "removed": 1}


def test_diagrmc_as_json_and_its_failure_carries_every_partition(lab, capsys, monkeypatch):
    monkeypatch.setattr(diagrmc, "check", lambda hmc, name, ip, deadline_s: (
        True, f"its OS answered at {ip}"))
    rc, out, _ = run(diagrmc.main, ["-m", "sys1", "-p", "lpar1", "--json"], capsys)
    (got,) = json.loads(out)
    assert rc == 0 and got["lpar_name"] == "lpar1" and got["rmc_connection"] is True
    monkeypatch.setattr(diagrmc, "check", lambda hmc, name, ip, deadline_s: (False, "no SSH"))
    rc, out, err = run(diagrmc.main, ["-m", "sys1", "-p", "lpar1", "--json"], capsys)
    assert rc == RmcError.exit_code and "No RMC connection to partition lpar1" in err
    failed = json.loads(out)["error"]
    assert failed["code"] == "HSCL2976"
    assert [(f["lpar_name"], f["rmc_connection"]) for f in failed["findings"]] == [
        ("lpar1", False)]
