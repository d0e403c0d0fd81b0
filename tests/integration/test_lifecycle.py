"""Stop and recover on the real lab: a transfer that cannot converge, then interruptions."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from lpmlab.hmc.system import Hmc

from .conftest import BIN, cli, placements

pytestmark = pytest.mark.integration


def migration_state(frame: str) -> str:
    out = cli("lslparmigr", "-r", "lpar", "-m", frame, "--filter", "lpar_names=lpar1",
              "-F", "migration_state").stdout.strip()
    return out


def start_stuck_migration(lab) -> subprocess.Popen:
    """A migration that cannot converge: the mover link is capped far below the dirty rate."""
    lab.plan.vios("vios1").mover_service().limit_bandwidth(40)
    proc = subprocess.Popen([str(BIN / "migrlpar"), "-o", "m", "-m", "sys1", "-t", "sys2",
                             "-p", "lpar1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while migration_state("sys1") != "Migration In Progress":
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the migration never showed as in progress"
        time.sleep(0.2)
    time.sleep(2)  # well into pre-copy
    return proc


def assert_intact_on_sys1(lab) -> None:
    assert placements() == [("sys1", "running")]
    assert migration_state("sys1") == "Not Migrating"
    ch = lab.rmc("lpar1")
    res = ch.run("lpm-disk verify /dev/sda", timeout=60)
    assert res.rc == 0 and "gaps=0 bad=0" in res.stdout, res.stdout + res.stderr
    ch.close()
    names = cli("lssyscfg", "-r", "lpar", "-m", "sys2", "-F", "name", check=True).stdout
    assert "lpar1" not in names.split()


@pytest.fixture(autouse=True)
def uncap(loaded):
    yield
    msp = loaded.plan.vios("vios1")
    msp.mover_service().limit_bandwidth(None)
    subprocess.run(["ip", "-n", msp.ns, "link", "set", "mover0", "up"], check=False)


def test_stop_during_a_transfer_that_cannot_converge(loaded):
    proc = start_stuck_migration(loaded)
    cp = cli("migrlpar", "-o", "s", "-m", "sys1", "-p", "lpar1")
    assert cp.returncode == 0 and cp.stdout == "", cp.stderr
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "HSCLL408" in err and "stopped" in err
    assert_intact_on_sys1(loaded)
    hmc = Hmc.open()
    assert hmc.store.latest("lpar1", 1)[0].state == "Migration Stopped"
    hmc.close()
    # stopping when nothing migrates is refused
    cp = cli("migrlpar", "-o", "s", "-m", "sys1", "-p", "lpar1")
    assert cp.returncode != 0 and "HSCLL409" in cp.stderr


def test_recover_after_the_controller_is_killed(loaded):
    proc = start_stuck_migration(loaded)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # libvirt still drives the peer-to-peer job: the partition is migrating, the HMC is gone
    cp = cli("migrlpar", "-o", "r", "-m", "sys1", "-p", "lpar1", "-v")
    assert cp.returncode == 0, cp.stderr
    assert "aborted the migration job" in cp.stderr
    assert_intact_on_sys1(loaded)


def test_recover_after_the_mover_link_is_cut(loaded):
    proc = start_stuck_migration(loaded)
    msp = loaded.plan.vios("vios1")
    subprocess.run(["ip", "-n", msp.ns, "link", "set", "mover0", "down"], check=True)
    cp = cli("migrlpar", "-o", "r", "-m", "sys1", "-p", "lpar1")
    assert cp.returncode != 0 and "HSCLL411" in cp.stderr, "a live migration needs --force"
    cp = cli("migrlpar", "-o", "r", "-m", "sys1", "-p", "lpar1", "--force")
    assert cp.returncode == 0, cp.stderr
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    subprocess.run(["ip", "-n", msp.ns, "link", "set", "mover0", "up"], check=True)
    assert_intact_on_sys1(loaded)


def test_recover_after_the_destination_hypervisor_is_killed(loaded):
    proc = start_stuck_migration(loaded)
    pid = int((loaded.plan.frame("sys2").dir / "daemon.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, "the migration cannot finish without its destination"
    cp = cli("migrlpar", "-o", "r", "-m", "sys1", "-p", "lpar1")
    assert cp.returncode != 0 and "HSCLL412" in cp.stderr
    cp = cli("migrlpar", "-o", "r", "-m", "sys1", "-p", "lpar1", "--force", "-v")
    assert cp.returncode == 0, cp.stderr
    assert "restarted the hypervisor" in cp.stderr
    assert_intact_on_sys1(loaded)
    # and the frame works again: a normal migration there and back
    loaded.plan.vios("vios1").mover_service().limit_bandwidth(None)
    for src, dst in (("sys1", "sys2"), ("sys2", "sys1")):
        cli("migrlpar", "-o", "m", "-m", src, "-t", dst, "-p", "lpar1", check=True)
    assert placements() == [("sys1", "running")]
