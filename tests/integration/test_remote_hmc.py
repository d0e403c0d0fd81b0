"""Two HMCs (the seed's chapter 5.4): hmc1 manages sys1, hmc2 manages sys2, each with its own
records; key trust by mkauthkeys; remote migration there and back, stopped, and recovered
after its controller was killed — all over the HMCs' real sshd, as clients do it."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from .conftest import cli
from .hmcssh import SSH_OPTS, hmcs, ssh

pytestmark = pytest.mark.integration
TOPOLOGY = "two-hmcs"
MIGRATE = "migrlpar -o {op} -m {src} -t {dst} --ip {ip} -u hscroot -p lpar1"


@pytest.fixture(scope="module")
def two(lab):
    h = hmcs()
    assert set(h) == {"hmc1", "hmc2"}, h
    return h["hmc1"], h["hmc2"]


def out_lines(hmc: dict, command: str) -> list[str]:
    cp = ssh(hmc, command)
    assert cp.returncode == 0, (command, cp.stderr)
    return cp.stdout.splitlines()


def records(hmc_name: str, mid: str):
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open(console=hmc_name)
    try:
        return hmc.store.get(mid)
    finally:
        hmc.close()


def latest(hmc_name: str):
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open(console=hmc_name)
    try:
        return hmc.store.latest("lpar1", 1)[0]
    finally:
        hmc.close()


def where(hmc1: dict, hmc2: dict) -> list[str]:
    """The frames lpar1 is listed on, each asked through its own HMC."""
    return [f for h, f in ((hmc1, "sys1"), (hmc2, "sys2"))
            if "lpar1" in out_lines(h, f"lssyscfg -r lpar -m {f} -F name")]


def test_each_hmc_sees_only_its_own_frames(two):
    hmc1, hmc2 = two
    assert out_lines(hmc1, "lssyscfg -r sys -F name") == ["sys1"]
    assert out_lines(hmc2, "lssyscfg -r sys -F name") == ["sys2"]
    other = ssh(hmc1, "lssyscfg -r lpar -m sys2")
    assert other.returncode == 4 and "HSCL8011" in other.stderr and "hmc2" in other.stderr
    local = ssh(hmc1, "migrlpar -o v -m sys1 -t sys2 -p lpar1")
    assert local.returncode == 4 and "HSCL8011" in local.stderr


def test_without_trust_the_remote_hmc_is_refused(two):
    hmc1, hmc2 = two
    test = ssh(hmc1, f"mkauthkeys -u hscroot --ip {hmc2['address']} --test")
    assert test.returncode != 0 and "HSCL3653" in test.stderr
    val = ssh(hmc1, MIGRATE.format(op="v", src="sys1", dst="sys2", ip=hmc2["address"]))
    assert val.returncode != 0 and "HSCL3653" in val.stderr
    assert "The Secure Shell (SSH) communication configuration" in val.stderr
    wrong = ssh(hmc1, f"mkauthkeys -u hscroot --ip {hmc2['address']} --passwd not-it")
    assert wrong.returncode != 0 and "HSCLL470" in wrong.stderr
    assert where(hmc1, hmc2) == ["sys1"]


def test_mkauthkeys_sets_up_trust_both_ways(two):
    hmc1, hmc2 = two
    made = ssh(hmc1, f"mkauthkeys --ip {hmc2['address']} -g -u hscroot "
                     f"--passwd {hmc2['password']}")
    assert made.returncode == 0, made.stderr
    assert ssh(hmc1, f"mkauthkeys -u hscroot --ip {hmc2['address']} --test").returncode == 0
    assert ssh(hmc2, "mkauthkeys --ip hmc1 --test").returncode == 0  # -g: the other way


def test_remote_validation_and_migration_there_and_back(two, lab):
    hmc1, hmc2 = two
    assert ssh(hmc1, MIGRATE.format(op="v", src="sys1", dst="sys2",
                                    ip=hmc2["address"])).returncode == 0
    # the destination's own checks come back through hmc2
    bad = ssh(hmc1, MIGRATE.format(op="v", src="sys1", dst="sys2", ip=hmc2["address"])
              + ' -i "dest_lpar_id=1"')
    assert bad.returncode != 0 and "HSCLL542" in bad.stderr
    lab.rmc("lpar1").run("lpm-disk write /dev/sda --daemon", check=True)
    time.sleep(2)
    before = disk_records(lab)
    go = ssh(hmc1, MIGRATE.format(op="m", src="sys1", dst="sys2", ip=hmc2["address"]))
    assert (go.returncode, go.stdout, go.stderr) == (0, "", "")
    assert where(hmc1, hmc2) == ["sys2"]
    assert out_lines(hmc2, "lssyscfg -r lpar -m sys2 --filter lpar_names=lpar1 -F state") \
        == ["Running"]
    rec1, rec2 = latest("hmc1"), latest("hmc2")
    assert rec1.id == rec2.id and rec1.state == rec2.state == "Migration Complete"
    assert rec1.stats["remote_hmc"]["hmc"] == "hmc2" and rec2.stats["source_hmc"] == "hmc1"
    assert rec1.stats["job"]["data_processed"] > 0 and rec1.dest_msp == "vios2"
    assert all(b and b > 0 for b in rec1.stats["msp_bytes"].values())
    assert rec2.stats["msp_bytes"]["vios2"] > 0
    back = ssh(hmc2, MIGRATE.format(op="m", src="sys2", dst="sys1", ip=hmc1["address"]))
    assert back.returncode == 0, back.stderr
    assert where(hmc1, hmc2) == ["sys1"]
    after = disk_records(lab)
    assert after > before


def disk_records(lab) -> int:
    """lpm-disk's records on the partition's disk, verified: none lost, none out of order."""
    res = lab.rmc("lpar1").run("lpm-disk verify /dev/sda", timeout=60)
    assert res.rc == 0, res.stdout + res.stderr
    return int(res.stdout.split("records=")[1].split()[0])


def slow_migration(hmc1: dict, hmc2: dict) -> subprocess.Popen:
    """A remote migration held back (the partition dirties faster than the capped mover
    link carries), running in the background over hmc1's sshd."""
    cli("lpmlab", "workload", "lpar1", "--rate", "150", "--wss", "200", check=True)
    cmd = (MIGRATE.format(op="m", src="sys1", dst="sys2", ip=hmc2["address"])
           + " --mover-bandwidth 40")
    return subprocess.Popen(["sshpass", "-p", hmc1["password"], "ssh", *SSH_OPTS,
                             f"hscroot@{hmc1['address']}", cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_migrating(hmc: dict, frame: str, deadline_s: float = 60) -> list[str]:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        rows = out_lines(hmc, f"lslparmigr -r lpar -m {frame} -F name,migration_state")
        if "lpar1,Migration In Progress" in rows:
            return rows
        time.sleep(0.5)
    raise AssertionError(f"lpar1 never showed as migrating on {frame}")


def test_both_hmcs_show_it_and_the_source_hmc_stops_it(two):
    hmc1, hmc2 = two
    mig = slow_migration(hmc1, hmc2)
    try:
        wait_migrating(hmc1, "sys1")
        wait_migrating(hmc2, "sys2")
        assert "lpar1,Migrating - Running" in out_lines(
            hmc2, "lssyscfg -r lpar -m sys2 -F name,state")
        stop = ssh(hmc1, "migrlpar -o s -m sys1 -p lpar1")
        assert stop.returncode == 0, stop.stderr
        _out, err = mig.communicate(timeout=120)
    finally:
        mig.kill()
        cli("lpmlab", "workload", "lpar1", "--rate", "0")
    assert mig.returncode != 0 and "HSCLL408" in err
    assert where(hmc1, hmc2) == ["sys1"]
    assert latest("hmc2").state == "Migration Stopped"


def test_source_hmc_recovers_after_its_controller_was_killed(two):
    hmc1, hmc2 = two
    mig = slow_migration(hmc1, hmc2)
    try:
        wait_migrating(hmc1, "sys1")
        # the migrlpar process on hmc1 (a child of its command server) dies mid-transfer
        in_hmc1 = set(subprocess.run(["ip", "netns", "pids", "lpm-hmc1"], capture_output=True,
                                     text=True).stdout.split())
        pids = [p for p in subprocess.run(["pgrep", "-x", "migrlpar"], capture_output=True,
                                          text=True).stdout.split() if p in in_hmc1]
        assert len(pids) == 1, pids
        for pid in pids:
            subprocess.run(["kill", f"-{signal.SIGKILL}", pid])
        mig.wait(60)
    finally:
        mig.kill()
        cli("lpmlab", "workload", "lpar1", "--rate", "0")
    wrong = ssh(hmc2, "migrlpar -o r -m sys2 -p lpar1 --force")  # not the source's HMC
    assert wrong.returncode != 0 and "HSCLL478" in wrong.stderr and "hmc1" in wrong.stderr
    rec = ssh(hmc1, "migrlpar -o r -m sys1 -p lpar1 --force")
    assert rec.returncode == 0, rec.stderr
    here = where(hmc1, hmc2)
    assert len(here) == 1, here  # defined and running in exactly one place
    frame = here[0]
    hmc = hmc1 if frame == "sys1" else hmc2
    assert out_lines(hmc, f"lssyscfg -r lpar -m {frame} --filter lpar_names=lpar1 -F "
                          "state") == ["Running"]
    assert latest("hmc1").state == "Migration Recovered"
    assert latest("hmc2").state in ("Migration Recovered", "Migration Complete")
    if frame == "sys2":  # bring it home for the rest of the module
        assert ssh(hmc2, MIGRATE.format(op="m", src="sys2", dst="sys1",
                                        ip=hmc1["address"])).returncode == 0


def test_removed_trust_is_refused_again(two):
    hmc1, hmc2 = two
    assert ssh(hmc2, "mkauthkeys -r hscroot@hmc1").returncode == 0
    test = ssh(hmc1, f"mkauthkeys --ip {hmc2['address']} --test")
    assert test.returncode != 0 and "HSCL3653" in test.stderr
