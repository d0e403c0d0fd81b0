"""What every listing says during a fault and after recovery, on the real lab: a frame's
libvirtd killed (No Connection), a migrlpar process killed mid-migration."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from lpmlab.demo import set_dirty_workload
from lpmlab.hmc.workload import Workload

from .conftest import cli, placements
from .test_lifecycle import start_stuck_migration

pytestmark = pytest.mark.integration

FRAMES = ("sys1", "sys2")


def lpar1_states() -> dict[str, list[str]]:
    """lpar1's state in each frame's partition listing (-F and --json must agree)."""
    out = {}
    for frame in FRAMES:
        text = cli("lssyscfg", "-r", "lpar", "-m", frame, "-F", "name,state", check=True).stdout
        out[frame] = [ln.split(",", 1)[1] for ln in text.splitlines() if ln.startswith("lpar1,")]
        doc = json.loads(cli("lssyscfg", "-r", "lpar", "-m", frame, "--json",
                             check=True).stdout)
        assert [r["state"] for r in doc if r["name"] == "lpar1"] == out[frame]
    return out


def migration_states() -> dict[str, list[str]]:
    return {f: [ln for ln in cli("lslparmigr", "-r", "lpar", "-m", f, "-F",
                                  "name,migration_state", check=True).stdout.splitlines()
                if ln.startswith("lpar1,")] for f in FRAMES}


def in_progress() -> list[str]:
    return cli("lssyscfg", "-r", "sys", "-F", "name,num_active_migrations_in_progress",
               check=True).stdout.splitlines()


def assert_normal() -> None:
    """One copy, running on sys1, nothing migrating, in every listing."""
    assert placements() == [("sys1", "running")]
    assert lpar1_states() == {"sys1": ["Running"], "sys2": []}
    assert migration_states() == {"sys1": ["lpar1,Not Migrating"], "sys2": []}
    assert in_progress() == ["sys1,0", "sys2,0"]
    states = cli("lssyscfg", "-r", "sys", "-F", "state", check=True).stdout.splitlines()
    assert states == ["Operating", "Operating"]


def kill_libvirtd(lab, frame: str) -> None:
    pid = int((lab.plan.frame(frame).dir / "daemon.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and \
            "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text(errors="replace"):
        assert time.monotonic() < deadline, f"libvirtd {pid} of {frame} survived SIGKILL"
        time.sleep(0.1)


def refused_no_connection(*argv: str) -> None:
    cp = cli(*argv)
    assert cp.returncode == 9 and cp.stdout == "", (argv, cp.returncode, cp.stdout, cp.stderr)
    assert cp.stderr.startswith("HSCLL430 Managed system sys1 is in state No Connection"), \
        cp.stderr
    assert "'lpmlab lab up'" in cp.stderr and "--force" in cp.stderr


def test_a_dead_frame_is_no_connection_and_never_an_empty_listing(lab):
    # there and back: lpar1's last migration record names sys1 (HSCL8012's evidence below)
    for src, dst in (("sys1", "sys2"), ("sys2", "sys1")):
        cli("migrlpar", "-o", "m", "-m", src, "-t", dst, "-p", "lpar1", check=True)
    kill_libvirtd(lab, "sys1")
    try:
        t0 = time.monotonic()
        cp = cli("lssyscfg", "-r", "sys", "-F", "name,state", check=True)
        assert time.monotonic() - t0 < 10, "a dead daemon must not hold the listing"
        assert cp.stdout.splitlines() == ["sys1,No Connection", "sys2,Operating"]
        for argv in (("lssyscfg", "-r", "lpar", "-m", "sys1"),
                     ("lssyscfg", "-r", "prof", "-m", "sys1", "-F", "name"),
                     ("lslparmigr", "-r", "lpar", "-m", "sys1"),
                     ("lshwres", "-r", "mem", "-m", "sys1", "--level", "sys"),
                     ("chsysstate", "-m", "sys1", "-r", "lpar", "-n", "lpar1", "-o", "on")):
            refused_no_connection(*argv)
        cp = cli("migrlpar", "-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar1")
        assert cp.returncode == 11 and "HSCLL502" in cp.stderr, cp.stderr
        assert "sys1 is in state No Connection" in cp.stderr
        # lpar1 is not on sys2, and the HMC cannot see sys1: it says where it may be
        cp = cli("lssyscfg", "-r", "lpar", "-m", "sys2", "--filter", "lpar_names=lpar1")
        assert cp.returncode == 4 and cp.stdout == ""
        assert cp.stderr.startswith("HSCL8012 The partition lpar1 was not found on managed "
                                    "system sys2. It may be on sys1, which is in state No "
                                    "Connection"), cp.stderr
        assert "lpar1 sys2 -> sys1" in cp.stderr.split("Evidence:", 1)[1]
    finally:
        cp = cli("migrlpar", "-o", "r", "-m", "sys1", "-p", "lpar1", "--force", "-v")
    assert cp.returncode == 0 and "restarted the hypervisor" in cp.stderr, cp.stderr
    assert_normal()


def test_a_killed_controller_shows_the_partition_migrating_until_recovery(lab):
    ch = lab.rmc("lpar1")
    set_dirty_workload(ch, 64, 128)  # with the mover capped at 40 MiB/s it cannot converge
    ch.close()
    msp = lab.plan.vios("vios1").mover_service()
    try:
        proc = start_stuck_migration(lab)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # libvirt goes on: the source copy runs, the incoming copy on sys2 is paused
        assert sorted(placements()) == [("sys1", "running"), ("sys2", "paused")]
        assert lpar1_states() == {"sys1": ["Migrating - Running"],
                                  "sys2": ["Migrating - Running"]}
        assert migration_states() == {f: ["lpar1,Migration Recovery Required"]
                                      for f in FRAMES}
        assert in_progress() == ["sys1,1", "sys2,1"]
        cp = cli("migrlpar", "-o", "r", "-m", "sys1", "-p", "lpar1")
        assert cp.returncode == 0, cp.stderr
    finally:
        msp.limit_bandwidth(None)
        ch = lab.rmc("lpar1")
        Workload(ch).stop()
        ch.close()
    assert_normal()
