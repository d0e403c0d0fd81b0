"""Pre-copy on a real partition: telemetry, live progress, the non-convergence warning, each
convergence control's effect (its direction, never a time), workload control and reports.

The busy case is the one measured by hand: lpar1 (512 MiB) dirtying 150 MiB/s over 200 MiB
behind a mover link capped at 115 MiB/s never converges on its own.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.integration.conftest import BIN, cli, placements

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
BUSY = ("--mover-bandwidth", "115")


def here() -> str:
    (frame, state), = placements()
    assert state == "running"
    return frame


def other(frame: str) -> str:
    return "sys2" if frame == "sys1" else "sys1"


def migrate(*extra: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, str, str]:
    src = here()
    dst = other(src)
    # live progress off a terminal only when asked for (as the HMC: silent when piped)
    shown = () if "--noprogress" in extra else ("--progress",)
    cp = cli("migrlpar", "-o", "m", "-m", src, "-t", dst, "-p", "lpar1", *extra, *shown,
             timeout=timeout)
    return cp, src, dst


def workload(*args: str) -> dict:
    cp = cli("lpmlab", "workload", "lpar1", *args, "--json", check=True, timeout=60)
    return json.loads(cp.stdout)


def latest() -> tuple:
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        rec = hmc.store.latest("lpar1", 1)[0]
        return rec, hmc.store.samples(rec.id)
    finally:
        hmc.close()


def iteration_numbers(samples: list[dict]) -> list[int]:
    return [s["iteration"] for s in samples if s["kind"] == "iteration"]


def test_workload_is_set_and_read_back_over_rmc(lab):
    got = workload("--rate", "150", "--wss", "200")
    assert got["running"] and got["rate_target"] == 150 and got["wss_mib"] == 200
    assert 110 <= got["achieved_mibps"] <= 190, got
    again = workload()
    assert again["rate_target"] == 150 and again["achieved_mibps"] > 100
    cp = cli("lpmlab", "workload", "lpar1", "--rate", "fast")
    assert cp.returncode == 2 and "HSCL8001" in cp.stderr and "max" in cp.stderr
    assert workload()["rate_target"] == 150  # nothing changed
    cp = cli("lpmlab", "workload", "nosuch", "--rate", "5")
    assert cp.returncode == 4 and "LPM1010" in cp.stderr


def whole_pass_done(lab) -> None:
    """Until lpm-dirty has finished a pass under its current setting (the partition's
    slowdown is measured against the passes before the transfer)."""
    deadline = time.monotonic() + 30
    while not lab.rmc("lpar1").run("cat /run/lpm-dirty.passes", timeout=10).stdout.strip():
        assert time.monotonic() < deadline, "lpm-dirty finished no pass in 30 s"
        time.sleep(0.5)


def test_telemetry_follows_every_iteration_and_matches_the_final_stats(lab, tmp_path):
    workload("--rate", "64", "--wss", "128")
    whole_pass_done(lab)
    cp, src, dst = migrate()
    assert cp.returncode == 0, cp.stderr
    assert placements() == [(dst, "running")]
    # off a terminal: plain progress lines, no cursor movement or colour
    assert "\x1b" not in cp.stderr and "\r" not in cp.stderr
    lines = cp.stderr.splitlines()
    assert lines[0].startswith("lpar1: iteration 1,"), cp.stderr
    assert lines[-1].startswith("lpar1: transfer complete after"), cp.stderr
    assert cp.stdout == ""
    rec, samples = latest()
    job = rec.stats["job"]
    its = iteration_numbers(samples)
    assert its == list(range(1, job["memory_iteration"] + 1)), (its, job)
    assert [s["t"] for s in samples] == sorted(s["t"] for s in samples)
    sent = [s["data_processed"] for s in samples if s.get("data_processed") is not None]
    assert sent == sorted(sent) and len(sent) >= 3
    done = samples[-1]
    assert done["kind"] == "completed"
    assert done["data_processed"] == job["data_processed"]
    assert done["downtime_ms"] == job["downtime"]

    # a report of that real migration: table, JSON, PNG and a terminal plot
    cp = cli("lpmlab", "report", rec.id, "-o", str(tmp_path), check=True)
    assert f"migration {rec.id}: lpar1 {src} -> {dst}" in cp.stdout
    rows = [ln for ln in cp.stdout.splitlines() if ln.strip().split(" ")[0].isdigit()]
    assert len(rows) >= len(its)
    assert "remaining (MiB)" in cp.stdout and "\x1b" not in cp.stdout
    doc = json.loads((tmp_path / f"{rec.id}.json").read_text())
    assert len(doc["samples"]) == len(samples)
    assert doc["summary"]["downtime_ms"] == job["downtime"]
    start, end = doc["downtime_window"]
    assert 0 < start < end <= done["t_event"] + 0.001
    png = (tmp_path / f"{rec.id}.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    cp = cli("lpmlab", "report", "nosuch")
    assert cp.returncode == 4 and "LPM1011" in cp.stderr

    # the rate each pass found, where QEMU's own figure (a ~1 s average) reads 0; a pass
    # cannot find more than the working set (128 MiB) dirty, so a long one finds less
    from lpmlab.hmc.precopy import passes

    measured = [p for p in doc["passes"] if p["dirty_rate_bps"] is not None
                and p["seconds"] >= 0.1]
    assert measured, doc["passes"]
    for p in measured:
        expected = min(64.0, 128.0 / p["seconds"])
        rate = p["dirty_rate_bps"] / MIB
        if p["iteration"] == 1:
            # the first pass finds less than was written: a page written before the pass
            # reached it was still marked to send, so it is sent once and not found again
            # (one CI run: 43.8 MiB/s while the guest's own passes said ~63)
            assert 0 < rate < expected * 1.25, doc["passes"]
        else:
            assert abs(rate - expected) / expected < 0.25, doc["passes"]
        assert "next sync" in p["dirty_rate_source"]
    assert doc["passes"] == passes(samples)
    assert doc["summary"]["setup_time_ms"] is not None and doc["summary"]["normal_pages"] > 0
    # the partition's own view: lpm-dirty's pass over 128 MiB at 64 MiB/s takes ~2 s
    guest = rec.stats["guest"]
    assert guest["passes"] >= 1 and 1600 <= guest["pass_ms_before"] <= 2600, guest
    assert guest["slowdown"] is not None and guest["max_stall_ms"] >= 0


def test_a_busy_partition_is_warned_about_and_the_schedule_stops_it(lab):
    busy()
    src = here()
    proc = subprocess.Popen([str(BIN / "migrlpar"), "-o", "m", "-m", src, "-t", other(src),
                             "-p", "lpar1", *BUSY, "--schedule", "abort-on-stall",
                             "--progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    live = []
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        cp = cli("lslparmigr", "-r", "lpar", "-m", src, "--filter", "lpar_names=lpar1",
                 "-F", "migration_state,bytes_transmitted,bytes_remaining")
        if cp.stdout.startswith("Migration In Progress"):
            live.append([int(x) for x in cp.stdout.strip().split(",")[1:]])
        time.sleep(0.5)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "HSCLL452" in err, err
    assert "did not converge" in err and "lpmlab report" in err
    warning = next(ln for ln in err.splitlines() if ln.startswith("warning: lpar1 dirties"))
    assert "MiB/s" in warning and "--mover-bandwidth" in warning and "Fix:" in warning
    assert placements() == [(src, "running")]  # stopped: it stays where it was
    # lslparmigr showed live bytes from the telemetry, going up
    sent = [b for b, _ in live if b]
    assert len(sent) >= 2 and sent == sorted(sent) and sent[-1] > sent[0], live
    assert all(r > 0 for _, r in live if _)
    rec, samples = latest()
    assert rec.state == "Migration Stopped"
    assert rec.stats["telemetry"]["schedule_actions"][-1]["action"] == "abort"
    assert rec.stats["telemetry"]["convergence_warning"] == warning
    # its folder keeps the evidence of the failure
    from lpmlab.hmc import artifacts

    d = artifacts.folder(rec.id)
    assert "HSCLL452" in (d / "error.txt").read_text()
    assert (d / "console.txt").read_text().strip()
    # the mover link cap was for this migration only
    qd = subprocess.run(["ip", "netns", "exec", lab.plan.vios("vios1").ns, "tc", "qdisc",
                         "show"], capture_output=True, text=True, check=True).stdout
    assert "tbf" not in qd, qd


def busy() -> None:
    """The measured case: 150 MiB/s over 200 MiB (run with BUSY's 115 MiB/s link)."""
    workload("--rate", "150", "--wss", "200")


def test_more_allowed_downtime_converges_with_a_longer_pause(lab):
    busy()
    cp, src, dst = migrate(*BUSY, "--max-downtime", "3000")
    assert cp.returncode == 0, cp.stderr
    rec, _ = latest()
    assert placements() == [(dst, "running")]
    assert rec.stats["precopy"]["downtime_ms"] > 300  # more than the default limit allowed
    assert rec.stats["controls"]["max_downtime_ms"] == 3000


def test_auto_converge_throttles_the_partition_until_it_converges(lab):
    busy()
    cp, src, dst = migrate(*BUSY, "--auto-converge", "--max-downtime", "300")
    assert cp.returncode == 0, cp.stderr
    rec, samples = latest()
    assert placements() == [(dst, "running")]
    assert max(s.get("throttle_pct") or 0 for s in samples) > 0, "QEMU throttled it"
    assert "throttle" in cp.stderr


def test_postcopy_is_opt_in_and_finishes_what_precopy_cannot(lab):
    busy()
    cp, src, _ = migrate(*BUSY, "--schedule", "stepped-downtime-postcopy")
    assert cp.returncode == 2 and "opt-in" in cp.stderr
    assert placements() == [(src, "running")]
    cp, src, dst = migrate(*BUSY, "--postcopy")
    assert cp.returncode == 0, cp.stderr
    rec, _ = latest()
    assert placements() == [(dst, "running")]
    actions = rec.stats["telemetry"]["schedule_actions"]
    assert [a["action"] for a in actions] == ["postcopy"]
    assert rec.stats["precopy"]["downtime_ms"] < 1000  # no big final pause: pages follow


def test_max_speed_limits_the_stream(lab, tmp_path):
    workload("--rate", "0")
    cp, _, _ = migrate()
    assert cp.returncode == 0, cp.stderr
    free, _ = latest()
    cp, _, _ = migrate("--max-speed", "40")
    assert cp.returncode == 0, cp.stderr
    capped, _ = latest()
    assert capped.stats["precopy"]["mean_bandwidth_bps"] < 48 * MIB
    assert free.stats["precopy"]["mean_bandwidth_bps"] > 2 * capped.stats["precopy"][
        "mean_bandwidth_bps"]
    # both runs overlaid
    cp = cli("lpmlab", "report", "--compare", free.id, capped.id, "-o", str(tmp_path),
             check=True)
    rows = cp.stdout.splitlines()
    assert rows[1].startswith(free.id) and rows[2].startswith(capped.id)
    assert "speed 40MiB/s" in rows[2]
    stem = f"compare-{free.id[:6]}-{capped.id[:6]}"
    doc = json.loads((tmp_path / f"{stem}.json").read_text())
    assert [d["id"] for d in doc["migrations"]] == [free.id, capped.id]
    assert (tmp_path / f"{stem}.png").read_bytes().startswith(b"\x89PNG")


def burst_run() -> tuple[list[int], int]:
    """One full-speed migration of lpar1 (8 MiB dirtied, 1 ms allowed downtime), stopped after
    30 s if still going. Every pass it made must be in the samples; returns (passes, peak/s)."""
    src = here()
    proc = subprocess.Popen([str(BIN / "migrlpar"), "-o", "m", "-m", src, "-t", other(src),
                             "-p", "lpar1", "--max-downtime", "1", "--noprogress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        cli("migrlpar", "-o", "s", "-m", src, "-p", "lpar1")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 or "HSCLL408" in err, err
    rec, samples = latest()
    its = iteration_numbers(samples)
    assert its == list(range(1, len(its) + 1))
    seen = max(s.get("stats_iteration") or 0 for s in samples)
    assert len(its) >= seen, (len(its), seen)
    if rec.result == "success":
        assert len(its) == rec.stats["job"]["memory_iteration"]
    times = [s["t"] for s in samples if s["kind"] == "iteration"]
    peak = max(sum(1 for t in times if a <= t < a + 1.0) for a in times)
    return its, peak


def test_no_iteration_is_missed_when_they_come_fast(lab):
    # 8 MiB dirtied at full speed, 1 ms allowed downtime: tens of passes a second. On a loaded
    # box the guest's vCPU can stall for a whole pass, and then QEMU rightly converges early
    # (seen: 11 and 21 passes next to a CPU hog); completeness is checked on every run, the
    # speed is only the case's precondition.
    workload("--rate", "max", "--wss", "8")
    runs = []
    try:
        for _ in range(5):
            its, peak = burst_run()
            runs.append((len(its), peak))
            if len(its) >= 40 and peak >= 20:
                break
    finally:
        workload("--rate", "0")
    assert any(n >= 40 and peak >= 20 for n, peak in runs), (
        f"(passes, peak passes/s) per run: {runs}: the case never ran fast enough")


CUT = """table ip lpm_test_cut {
  chain forward { type filter hook forward priority -10; meta l4proto tcp reject with tcp reset; }
}
"""


def disk_records(lab) -> int:
    ch = lab.rmc("lpar1")
    ch.wait_ready(120, evidence=lambda: lab.console_tail("lpar1"))
    res = ch.run("lpm-disk verify /dev/sda", timeout=60)
    ch.close()
    assert res.rc == 0 and "gaps=0 bad=0" in res.stdout, res.stdout + res.stderr
    return int(res.stdout.split("records=")[1].split()[0])


def test_postcopy_interrupted_after_the_switch(lab):
    """The source MSP resets the stream after the switch to post-copy: each frame now holds
    part of the partition's memory. Nothing is removed, stop is refused, and recovery needs
    --force to boot the partition again from its intact disk on the destination."""
    from lpmlab.demo import start_disk_writer
    from lpmlab.hmc.system import Hmc

    ch = lab.rmc("lpar1")
    start_disk_writer(ch)
    ch.close()
    written = disk_records(lab)
    busy()
    src = here()
    dst = other(src)
    proc = subprocess.Popen([str(BIN / "migrlpar"), "-o", "m", "-m", src, "-t", dst, "-p",
                             "lpar1", *BUSY, "--postcopy", "--noprogress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hmc = Hmc.open()
    ns = None
    try:
        deadline = time.monotonic() + 120
        while {p.frame: p.info.postcopy for p in hmc.placements("lpar1")}.get(src) != "active":
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the migration never switched to post-copy"
            time.sleep(0.1)
        # slow the post-copy to a trickle, so it is still under way for the stop and the cut
        msp = lab.plan.vios(hmc.store.latest("lpar1", 1)[0].source_msp)
        msp.mover_service().limit_bandwidth(8)
        ns = msp.ns
        stop = cli("migrlpar", "-o", "s", "-m", src, "-p", "lpar1")
        assert stop.returncode != 0 and "HSCLL454" in stop.stderr, stop.stderr
        # back to full flow before the cut (at a trickle the destination may have nothing to
        # send into the reset; migrlpar's guard then resets its end after 10 s)
        msp.mover_service().limit_bandwidth(115)
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=CUT, text=True,
                       check=True)
        _, err = proc.communicate(timeout=120)
    finally:
        if ns is not None:
            subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "ip",
                            "lpm_test_cut"], check=False)
            msp.mover_service().limit_bandwidth(None)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "HSCLL453" in err and "--force" in err, err

    def halves() -> dict:
        return {p.frame: p.info.postcopy for p in hmc.placements("lpar1")}
    try:
        first = halves()
        # the destination copy waits for its pages, or was stopped when its end was reset
        assert first[src] == "failed" and first.get(dst, "gone") in ("failed", None), first
        refused = cli("migrlpar", "-o", "r", "-m", src, "-p", "lpar1")
        assert refused.returncode != 0 and "HSCLL453" in refused.stderr, refused.stderr
        assert halves() == first, "a refused recovery changed nothing"
        cp = cli("migrlpar", "-o", "r", "-m", src, "-p", "lpar1", "--force", "-v",
                 timeout=180)
        assert cp.returncode == 0, cp.stderr
        assert "lost what was in its memory" in cp.stderr
        assert f"booted again from its intact disk on {dst}" in cp.stderr
        assert placements() == [(dst, "running")]
        assert hmc.store.latest("lpar1", 1)[0].state == "Migration Recovered"
    finally:
        hmc.close()
    # every acknowledged write the partition made, before and after the switch, is on disk
    assert disk_records(lab) > written
    workload("--rate", "0")


# last: it takes the lab down
def test_a_migration_leaves_a_folder_that_outlives_the_lab(lab):
    """Like ansible-runner's artifact folders: record, samples, the migration's own log,
    the report drawn beside them; kept by 'lab down', and 'lpmlab report' still reads it."""
    from lpmlab.hmc import artifacts

    workload("--rate", "64", "--wss", "128")
    cp, src, dst = migrate("--noprogress")
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr == ""  # a successful migration logs nothing on stderr without --debug
    rec, samples = latest()
    d = artifacts.folder(rec.id)
    record = json.loads((d / "record.json").read_text())
    assert record["result"] == "success" and record["dest_sys"] == dst
    assert len(json.loads((d / "samples.json").read_text())) == len(samples)
    events = [json.loads(x) for x in (d / "log.jsonl").read_text().splitlines()]
    phases = [e["phase"] for e in events if e["event"] == "phase"]
    assert phases[0] == "validate" and "transfer" in phases and phases[-1] == "complete"
    calls = [e for e in events if e["event"] == "libvirt call"]
    assert any(c["call"] == "migrateToURI3" and c["seconds"] > 0 for c in calls), calls
    deadline = time.monotonic() + 60  # drawn by a detached process
    while not (d / "report.svg").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (d / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (d / "report.svg").read_text()
    debug = cli("migrlpar", "-o", "m", "-m", dst, "-t", src, "-p", "lpar1", "--noprogress",
                "--debug")
    assert debug.returncode == 0 and "libvirt call" in debug.stderr and "phase" in debug.stderr

    cli("lpmlab", "lab", "down", check=True)
    assert d.is_dir()
    cp = cli("lpmlab", "report", rec.id, "--json")
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["id"] == rec.id
