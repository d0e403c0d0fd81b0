"""lpmlab fault on the real lab: each fault once (mover-link-cut and dest-qemu-killed run in
docs/examples/journal_app), during a loaded migration (dirtier and disk writer running);
after each, the documented path brings the lab back and no acknowledged write is lost."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from lpmlab.hmc.system import Hmc

from .conftest import BIN, cli, placements

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def home(loaded):
    """Every test starts with lpar1 running on sys1 and no fault in force."""
    cli("lpmlab", "fault", "clear")
    if placements() == [("sys2", "running")]:
        cli("migrlpar", "-o", "m", "-m", "sys2", "-t", "sys1", "-p", "lpar1", "--noprogress",
            check=True)
    assert placements() == [("sys1", "running")]
    yield
    cli("lpmlab", "fault", "clear")


def arm(name: str, *args: str, when: str) -> dict:
    cp = cli("lpmlab", "fault", name, *args, "--when", when, "-p", "lpar1", "--json",
             check=True)
    return json.loads(cp.stdout)[0]


def entry(fid: str) -> dict:
    cp = cli("lpmlab", "fault", "list", "--json", check=True)
    active = {e["id"]: e for e in json.loads(cp.stdout)["active"]}
    if fid in active:
        return active[fid]
    from lpmlab.fabric.faults import Ledger
    from lpmlab.paths import lab_dir

    e = next(e for e in Ledger(lab_dir()).entries() if e.id == fid)
    return e.__dict__


def migrate(*extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return cli("migrlpar", "-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1",
               "--noprogress", *extra, timeout=timeout)


def assert_intact(loaded, acked: int | None, frame: str = "sys1") -> None:
    """Running in exactly one place; every record acknowledged before the fault is on disk,
    with no gap."""
    assert placements() == [(frame, "running")]
    assert acked is not None and acked > 0, "the disk writer's acknowledged record was read"
    ch = loaded.rmc("lpar1")
    res = ch.run("lpm-disk verify /dev/sda", timeout=60)
    ch.close()
    m = re.search(r"records=(\d+) first=(\d+) last=(\d+) gaps=(\d+) bad=(\d+)", res.stdout)
    assert m, res.stdout + res.stderr
    _records, first, last, gaps, bad = (int(x) for x in m.groups())
    assert (first, gaps, bad) == (0, 0, 0) and last >= acked, m.group(0)


def timed(*argv: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    cp = cli(*argv)
    return cp, time.monotonic() - t0


def test_a_slow_mover_link_keeps_moving_and_is_not_a_stall(loaded):
    f = arm("mover-link-slow", "30", when="transferring")
    cp = migrate("--schedule", "abort-on-stall", "--stall-timeout", "20")
    # 64 MiB/s of dirtying cannot converge over 30 MiB/s: the schedule gives up, not the
    # stall watch, since bytes keep moving
    assert cp.returncode != 0 and cp.stderr.startswith("HSCLL452"), cp.stderr
    rec = Hmc.open().store.latest("lpar1", 1)[0]
    assert rec.stats["telemetry"]["stalled"] is False
    assert rec.stats["precopy"]["mean_bandwidth_bps"] < 34 * 1024 * 1024
    e = entry(f["id"])
    assert e["state"] == "in force" and "limited to 30 MiB/s" in e["detail"]
    assert "fault " + f["id"] in cli("lpmlab", "lab", "status").stdout
    cli("lpmlab", "fault", "clear", f["id"], check=True)
    tc = subprocess.run(["ip", "netns", "exec", loaded.plan.vios("vios1").ns, "tc", "qdisc",
                         "show", "dev", "mover0"], capture_output=True, text=True).stdout
    assert "tbf" not in tc
    assert_intact(loaded, e["acked_before"])


def test_a_broken_destination_msp_stalls_the_stream_and_the_hmc_ends_it(loaded):
    f = arm("msp-path-broken", "--side", "dest", when="transferring")
    proc = subprocess.Popen([str(BIN / "migrlpar"), "-o", "m", "-m", "sys1", "-t", "sys2",
                             "-p", "lpar1", "--noprogress", "--stall-timeout", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stalled_seen = 0.0
    while proc.poll() is None:
        out = cli("lslparmigr", "-r", "lpar", "-m", "sys1", "--filter", "lpar_names=lpar1",
                  "-F", "migration_state,stalled_seconds").stdout.strip()
        if out.startswith("Migration In Progress,"):
            stalled_seen = max(stalled_seen, float(out.split(",")[1] or 0))
        time.sleep(0.5)
    _out, err = proc.communicate()
    assert proc.returncode != 0 and err.startswith("HSCLL455"), err
    assert "no data moved for 8 s" in err and "keeps running on sys1" in err
    assert stalled_seen >= 2, "lslparmigr showed the stall while it lasted"
    e = entry(f["id"])
    assert e["target"]["vios"] == "vios2" and e["detail"].endswith("at transferring")
    rec = Hmc.open().store.latest("lpar1", 1)[0]
    assert rec.state == "Migration Failed" and "stalled" in (rec.error or "")
    cp = cli("migrlpar", "-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar1")
    assert cp.returncode != 0 and "vios2" in cp.stderr, "validation sees the broken MSP"
    cli("lpmlab", "fault", "clear", check=True)
    assert cli("migrlpar", "-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar1").returncode == 0
    assert_intact(loaded, e["acked_before"])


def test_a_storage_outage_mid_transfer_delays_the_migration_and_loses_nothing(loaded):
    # pass:1: the outage surely begins before the switchover, whose flush must wait for it
    f = arm("vios-storage-down", "--for", "5", when="pass:1")
    cp = migrate()
    e = entry(f["id"])
    assert "tgtd" in e["detail"] and e["state"] == "done"
    assert "restarted after 5 s" in e["cleared"]
    # the partition's I/O waited for its target; the migration then completed
    assert cp.returncode == 0, cp.stderr
    assert_intact(loaded, e["acked_before"], frame="sys2")


def test_a_killed_controller_is_recovered_by_migrlpar_r(loaded):
    f = arm("controller-killed", when="pass:2")
    cp = migrate()
    assert cp.returncode == -9
    e = entry(f["id"])
    assert e["state"] == "done" and "killed at pass:2" in e["detail"]
    cp, seconds = timed("migrlpar", "-o", "r", "-m", "sys1", "-p", "lpar1", "-v")
    assert cp.returncode == 0, cp.stderr
    print(f"recovery took {seconds:.1f} s")  # figures: benchmarks/faults_bench.py
    frame = placements()[0][0]
    assert_intact(loaded, e["acked_before"], frame=frame)


@pytest.mark.parametrize("fault", ["dest-frame-down", "source-frame-down"])
def test_a_dead_hypervisor_is_brought_back_by_recovery_with_force(loaded, fault):
    f = arm(fault, when="transferring")
    cp = migrate(timeout=180)
    assert cp.returncode != 0
    e = entry(f["id"])
    assert e["state"] == "in force" and "libvirtd" in e["detail"]
    cp = cli("migrlpar", "-o", "r", "-m", "sys1", "-p", "lpar1")
    assert cp.returncode != 0 and "HSCLL412" in cp.stderr, "a dead frame needs --force"
    cp, seconds = timed("migrlpar", "-o", "r", "-m", "sys1", "-p", "lpar1", "--force", "-v")
    assert cp.returncode == 0, cp.stderr
    assert "restarted the hypervisor" in cp.stderr
    print(f"recovery took {seconds:.1f} s")  # figures: benchmarks/faults_bench.py
    assert_intact(loaded, e["acked_before"], frame=placements()[0][0])


def test_a_hanging_hook_is_cut_off_by_the_wait_time(loaded):
    f = arm("hook-hang", when="phase:pre")
    cp = migrate("-w", "1")
    assert cp.returncode != 0 and cp.stderr.startswith("HSCLL451"), cp.stderr
    e = entry(f["id"])
    assert "00-lpmlab-fault-hang" in e["detail"]
    cli("lpmlab", "fault", "clear", check=True)
    ch = loaded.rmc("lpar1")
    assert ch.run("ls /etc/drmgr.d/pmig/").stdout.strip() == ""
    ch.close()
    assert_intact(loaded, e["acked_before"])


def test_a_partition_os_that_stops_answering_is_refused_then_migrates_once_back(loaded):
    cp = cli("lpmlab", "fault", "partition-os-hang", "-p", "lpar1", "--json", check=True)
    f = json.loads(cp.stdout)[0]
    cp = cli("migrlpar", "-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar1")
    assert cp.returncode != 0 and "lpar1" in cp.stderr
    rmc = cli("lssyscfg", "-r", "lpar", "-m", "sys1", "--filter", "lpar_names=lpar1", "-F",
              "rmc_state").stdout.strip()
    assert rmc == "inactive"
    cli("lpmlab", "fault", "clear", check=True)
    assert migrate().returncode == 0
    assert_intact(loaded, f["acked_before"], frame="sys2")
