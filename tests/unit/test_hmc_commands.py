"""The HMC commands clients send besides migration: reference codes, lshmc, lshwres, key
trust, and the wire form remote migration carries validation state in."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from lpmlab import topology
from lpmlab.adapter.connection import DomainInfo
from lpmlab.errors import UsageError
from lpmlab.fabric.plan import LabPlan
from lpmlab.hmc import authkeys, hwres, refcodes, remote, remote_hmc
from lpmlab.hmc import validation as V

CONSOLE = """
SLOF\x1b[0m **********************************************************************
QEMU Starting
 Build Date = Sep  5 2025 14:03:13
C0000\rC0100\rPopulating /vdevice methods
  Welcome to Open Firmware
Booting from memory...
Preparing to boot Linux version 6.1.0-50-powerpc64le
Booting Linux via __start() @ 0x0000000000400000 ...
Linux ppc64le
#1 SMP Debian 6.LPMLAB-READY lpar1
lpar1:~#
"""


def info(state: str) -> DomainInfo:
    return DomainInfo("lpar1", "u", state, True, {"lpar_id": "2"}, False)


@pytest.mark.parametrize("upto,code", [
    ("", refcodes.POWERING_ON),
    ("QEMU Starting", "CA00E1F1"),
    ("Booting from memory...", "CA00E879"),
    ("Booting Linux via __start()", "CA000093"),
    ("LPMLAB-READY lpar1", "Linux ppc64le"),
])
def test_the_code_follows_the_boot_on_the_console(tmp_path, upto, code):
    log = tmp_path / "console.log"
    log.write_text(CONSOLE[:CONSOLE.index(upto) + len(upto)] if upto else "")
    assert refcodes.current(info("running"), log).refcode == code


def test_only_the_current_boot_counts(tmp_path):
    log = tmp_path / "console.log"
    log.write_text(CONSOLE + "reboot: Power down\n" + CONSOLE[:CONSOLE.index("Booting from")])
    assert refcodes.current(info("running"), log).refcode == "CA00E1F1"


def test_state_and_rmc_decide_first(tmp_path):
    log = tmp_path / "none.log"
    assert refcodes.current(info("shutoff"), log).refcode == "00000000"
    assert refcodes.current(info("crashed"), log).refcode.startswith("B2")
    assert refcodes.current(info("running"), log, rmc_active=True).refcode == "Linux ppc64le"
    assert refcodes.current(info("running"), log).refcode == refcodes.POWERING_ON


def test_the_history_keeps_each_change_once(tmp_path):
    from lpmlab.hmc.store import MigrationStore

    store = MigrationStore(tmp_path / "h.sqlite")
    assert store.note_refcode("lpar1", "sys1", "CA00E1F1", 10.0) == 10.0
    assert store.note_refcode("lpar1", "sys1", "CA00E1F1", 11.0) == 10.0  # still the same
    store.note_refcode("lpar1", "sys1", "Linux ppc64le", 12.0)
    assert store.refcodes("lpar1", 5) == [("Linux ppc64le", 12.0), ("CA00E1F1", 10.0)]
    assert store.refcodes("lpar1", 1) == [("Linux ppc64le", 12.0)]


# -- lshmc -V, parsed the way IBM's Ansible collection parses it (hmc_resource.py) -----------
def test_lshmc_version_reads_as_the_collection_reads_it():
    from lpmlab.cli.lshmc import version_text

    found: dict[str, str] = {}
    fixes = []
    for each in version_text("202612021827").splitlines():
        if "Version" in each:
            found["VERSION"] = each.split(":")[1].strip()
        elif "Release:" in each:
            found["RELEASE"] = each.split(":")[1].strip()
        elif "Service Pack:" in each:
            found["SERVICEPACK"] = each.split(":")[1].strip()
        elif "HMC Build level" in each:
            found["HMCBUILDLEVEL"] = each.split("l ")[1].strip()
        elif "-" in each:
            fixes.append(each)
        elif "base_version" in each:
            found["BASEVERSION"] = each.split("=")[1].strip()
    assert found == {"VERSION": "10", "RELEASE": "3", "SERVICEPACK": "1060",
                     "HMCBUILDLEVEL": "202612021827", "BASEVERSION": "V10R3"}
    assert int(found["SERVICEPACK"]) >= 951 and len(fixes) == 1


# -- lshwres from a snapshot -----------------------------------------------------------------
def test_hwres_records_come_from_the_validation_snapshot():
    snap = V.snapshot_from_topology(topology.load())
    (mem,) = hwres.mem_sys(snap, "sys1")
    assert mem["mem_region_size"] == 256 and mem["installed_sys_mem"] == 8192
    lpars = {r["lpar_name"]: r for r in hwres.mem_lpar(snap, "sys1")}
    assert lpars["lpar1"]["curr_mem"] == 512
    (proc,) = hwres.proc_lpar(snap, "sys1")
    assert proc["curr_procs"] == 1 and proc["curr_proc_mode"] == "shared"
    scsi = hwres.virtualio(snap, "sys1", "scsi", {})
    assert [(r["lpar_name"], r["adapter_type"]) for r in scsi] == [("vios1", "server"),
                                                                    ("lpar1", "client")]
    assert hwres.virtualio(snap, "sys1", "fc", {}) == []


# -- authorized keys ---------------------------------------------------------------------------
def keypair(tmp_path: Path, name: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@host", "-f",
                    str(tmp_path / name)], check=True)
    return (tmp_path / f"{name}.pub").read_text().strip()


@pytest.fixture
def console(tmp_path):
    return LabPlan.for_topology(topology.load(), tmp_path / "lab").console()


def test_keys_are_added_once_and_removed_by_key_or_comment(tmp_path, console):
    a, b = keypair(tmp_path, "a"), keypair(tmp_path, "b")
    assert authkeys.add(console, a) is True
    assert authkeys.add(console, a) is False
    authkeys.add(console, b)
    assert [k.comment for k in authkeys.read(console)] == ["a@host", "b@host"]
    assert authkeys.remove(console, "a@host") == 1
    assert authkeys.remove(console, b) == 1
    assert authkeys.read(console) == []
    with pytest.raises(UsageError) as err:
        authkeys.remove(console, "nobody@nowhere")
    assert err.value.code == "HSCLL476"


@pytest.mark.parametrize("text", ["", "hello", "ssh-ed25519 not-base64!",
                                  "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIB1ZV0J8Js3oDgCKvBVk4BrD"
                                  "jcKCzQx9yZqhpZQ2sUp9"])
def test_a_bad_key_is_refused(text):
    with pytest.raises(UsageError) as err:
        authkeys.parse_key(text)
    assert err.value.code == "HSCLL475"


# -- the remote side's wire form and addressing ----------------------------------------------
def test_frame_and_vios_state_cross_the_wire_unchanged():
    snap = V.snapshot_from_topology(topology.load())
    f = dataclasses.replace(snap.frames["sys2"], partition_uuids={"u1": "lpar9"})
    import json

    back = remote.frame_from_wire(json.loads(json.dumps(remote.to_wire(f))))
    assert back == f
    v = snap.vios["vios2"]
    assert remote.vios_from_wire(json.loads(json.dumps(remote.to_wire(v)))) == v


def test_ip_names_a_lab_hmc_or_an_address_in_the_lab_range():
    t = topology.load("two-hmcs")
    assert remote_hmc.resolve(t, "hmc2") == "198.18.0.3"
    assert remote_hmc.resolve(t, "198.18.0.3") == "198.18.0.3"
    for bad in ("10.0.0.1", "hmc9"):
        with pytest.raises(UsageError):
            remote_hmc.resolve(t, bad)


def test_a_remote_error_keeps_its_code_and_fix():
    res = remote_hmc.RemoteResult(4, "", "HSCL8011 The managed system sys9 was not found.\n"
                                         "Fix: list the managed systems\n")
    err = remote_hmc.remote_error("198.18.0.3", res)
    assert err.code == "HSCL8011" and err.exit_code == 4
    assert "198.18.0.3" in err.message and err.fix == "list the managed systems"


def test_two_hmcs_each_manage_their_own_frames(tmp_path):
    from tests.unit.fakes import FakeFrames

    plan = LabPlan.for_topology(topology.load("two-hmcs"), tmp_path)
    hmc1 = FakeFrames(plan)
    assert [fp.frame.name for fp in hmc1.frames()] == ["sys1"]
    assert hmc1.frame_name("9009-42A*LPM0001") == "sys1"
    from lpmlab.errors import NotFoundError

    with pytest.raises(NotFoundError) as err:
        hmc1.frame_name("sys2")
    assert err.value.code == "HSCL8011" and "hmc2" in err.value.fix
    # the other HMC keeps its own records
    assert plan.console("hmc2").db_path != plan.console("hmc1").db_path


def test_a_password_may_start_with_a_dash_and_generated_ones_do_not(tmp_path):
    from lpmlab.cli.mkauthkeys import _joined, parser
    from lpmlab.fabric.keys import ensure_password

    args = parser().parse_args(_joined(["--ip", "hmc2", "-u", "hscroot", "--passwd", "-x1"]))
    assert args.password == "-x1" and args.ip == "hmc2"
    made = {ensure_password(tmp_path / f"p{i}", None) for i in range(50)}
    assert all(p.isalnum() and len(p) == 12 for p in made)
