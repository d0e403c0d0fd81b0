#!/usr/bin/env python3
"""Pre-copy convergence on the default lab: dirty rate x mover-link bandwidth x convergence
controls, migrlpar against a plain libvirt-python migrate (figures printed, nothing asserted).

1. Sweep. For every (dirty rate, link, controls) cell: set lpar1's lpm-dirty to the rate over a
   200 MiB working set, run ``migrlpar -o m ... --noprogress`` (lpar1 moves from wherever it is
   to the other frame) as a fresh process; stop it with ``migrlpar -o s`` after --stall-s and
   call the cell "no convergence". From the migration record and its samples: total and job
   time, downtime, iterations, bytes, max throttle, whether every iteration raised an event.
   Then, unless the cell used post-copy or a schedule or did not converge, a plain libvirt
   migrate of the same guest back (a fresh process, as lab_bench.py) over the same MSP path
   (the two nftables hops migrlpar installs, a spare port of the destination frame's range),
   the same tc cap on the source MSP's mover link and the libvirt equivalents of the controls:
   VIR_MIGRATE_AUTO_CONVERGE, VIR_MIGRATE_PARAM_BANDWIDTH (maxspeed-N), and the allowed
   downtime set by a thread as soon as the job exists (as migrlpar does; QEMU's limit is only
   meant to hold for that job, so nothing is set before it starts).
   The plain migrate passes the destination XML with the disk retargeted to the destination
   frame's VIOS, as migrlpar does (lab_bench.py passes none, which leaves the disk served from
   the source frame's VIOS); the disk is the same shared SAN file either way.
2. Telemetry overhead: in-process plain migrations of the idle lpar1 over the MSP path, half
   with a JobWatcher feeding migrlpar's progress printer and Telemetry recorder, alternating.
3. Iteration burst: full-speed dirtying of 8 MiB with --max-downtime 1 (cannot converge),
   stopped after 8 s of transfer: are iteration events 1..N without gaps, and how fast do
   they come.

Results: stdout (markdown), <out>/precopy-results.md and .json, and per dirty rate a plot of
that rate's migrlpar runs, <out>/img/precopy-rate-<rate>.png. Needs the default lab up and
idle (lpar1 running in one place, no migration in progress); lpar1 is left running in exactly
one place, no mover link capped, its workload stopped.

Controls: plain, auto-converge, downtime-MS, stepped (--schedule stepped-downtime), postcopy,
maxspeed-N (MiB/s); join with + (auto-converge+downtime-2000). Links: none or MiB/s.

Run: .venv/bin/python benchmarks/precopy_bench.py [--quick] [--rates 0,64,150]
     [--links none,115] [--controls plain,auto-converge,downtime-2000,postcopy] [--stall-s 40]
     [--overhead-rounds 6] [--out docs]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import libvirt

from lpmlab.adapter import domain_xml as dx
from lpmlab.adapter.connection import FrameConnection
from lpmlab.adapter.migration import LIVE_FLAGS, completed_stats
from lpmlab.adapter.telemetry import JobWatcher
from lpmlab.cli.progress import MigrationProgress
from lpmlab.errors import LpmlabError
from lpmlab.fabric import plan as P
from lpmlab.fabric.msp import LAB_IFACE, MOVER_IFACE, Hop, MoverService
from lpmlab.hmc.destination import LocalDestination
from lpmlab.hmc.migration import pick_msps, settle_after_failure
from lpmlab.hmc.precopy import MIB, Controls, Telemetry, summarize
from lpmlab.hmc.store import MigrationRecord, MigrationStore
from lpmlab.hmc.system import Hmc
from lpmlab.hmc.workload import FULL_SPEED, Workload, WorkloadState, parse_rate
from lpmlab.report.document import build
from lpmlab.report.plot import render_png

BIN = Path(sys.executable).parent
PART = "lpar1"
WSS_MIB = 200
BURST_WSS_MIB = 8
BURST_STOP_S = 8.0
FID = "precopybench"        # nftables table suffix of the benchmark's own MSP hops
STOP_WAIT_S = 300.0         # for migrlpar -o m to settle and run post hooks after -o s
QUICK = {"rates": "0,150", "links": "none,115", "controls": "plain,auto-converge",
         "overhead_rounds": 4}

# A plain libvirt migrate in a fresh process (both kinds pay interpreter start-up). Reads
# {src, dest_uri, params, flags, max_downtime_ms} as JSON on stdin, prints JSON.
PLAIN_MIGRATE = r"""
import json, sys, threading, time, libvirt
a = json.load(sys.stdin)
libvirt.registerErrorHandler(lambda *x: None, None)
conn = libvirt.open(a["src"])
dom = conn.lookupByName(a["partition"])
out, done = {}, threading.Event()
def downtime():
    # as migrlpar's JobWatcher: look every 50 ms until the job exists, then set the limit
    while not done.is_set():
        try:
            if dom.jobStats(0).get("type", libvirt.VIR_DOMAIN_JOB_NONE) \
                    != libvirt.VIR_DOMAIN_JOB_NONE:
                dom.migrateSetMaxDowntime(a["max_downtime_ms"], 0)
                out["downtime_set_s"] = round(time.monotonic() - t0, 3)
                return
        except libvirt.libvirtError as exc:
            out["downtime_error"] = str(exc)
        done.wait(0.05)
t0 = time.monotonic()
if a["max_downtime_ms"]:
    threading.Thread(target=downtime, daemon=True).start()
try:
    dom.migrateToURI3(a["dest_uri"], a["params"], a["flags"])
    out["call_s"] = time.monotonic() - t0
except libvirt.libvirtError as exc:
    out["error"] = str(exc)
done.set()
print(json.dumps(out))
"""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, **kw)


# -- sweep axes -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Control:
    """One sweep control: migrlpar's options and what a plain libvirt migrate does instead."""

    name: str
    options: tuple[str, ...] = ()
    auto_converge: bool = False
    max_downtime_ms: int | None = None
    max_speed_mib: int | None = None
    plain: bool = True   # post-copy and schedules act on iteration samples: no plain twin


def parse_control(text: str) -> Control:
    c = Control(text)
    for part in text.split("+"):
        if part == "plain":
            continue
        if part == "auto-converge":
            c = Control(text, (*c.options, "--auto-converge"), True, c.max_downtime_ms,
                        c.max_speed_mib, c.plain)
        elif part == "stepped":
            c = Control(text, (*c.options, "--schedule", "stepped-downtime"), c.auto_converge,
                        c.max_downtime_ms, c.max_speed_mib, False)
        elif part == "postcopy":
            c = Control(text, (*c.options, "--postcopy"), c.auto_converge, c.max_downtime_ms,
                        c.max_speed_mib, False)
        elif part.startswith("downtime-") and part[9:].isdigit() and int(part[9:]) > 0:
            ms = int(part[9:])
            c = Control(text, (*c.options, "--max-downtime", str(ms)), c.auto_converge, ms,
                        c.max_speed_mib, c.plain)
        elif part.startswith("maxspeed-") and part[9:].isdigit() and int(part[9:]) > 0:
            mib = int(part[9:])
            c = Control(text, (*c.options, "--max-speed", str(mib)), c.auto_converge,
                        c.max_downtime_ms, mib, c.plain)
        else:
            raise argparse.ArgumentTypeError(
                f"unknown control {part!r}: plain, auto-converge, downtime-MS, stepped, "
                "postcopy, maxspeed-MIB_S (join with +)")
    return c


def parse_link(text: str) -> float | None:
    if text == "none":
        return None
    try:
        mib = float(text)
    except ValueError:
        mib = 0.0
    if mib <= 0:
        raise argparse.ArgumentTypeError(f"link {text!r}: 'none' or MiB/s above 0")
    return mib


def csv(parse: Any) -> Any:
    def inner(text: str) -> list[Any]:
        try:
            return [parse(x.strip()) for x in text.split(",") if x.strip()]
        except LpmlabError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None
    return inner


def mbit(link_mib: float | None) -> int | None:
    """The tc rate migrlpar applies for --mover-bandwidth (MiB/s -> Mbit/s)."""
    return Controls(mover_bandwidth_mib=link_mib).mover_mbit


def rate_name(rate: int) -> str:
    return "max" if rate == FULL_SPEED else str(rate)


def link_name(link: float | None) -> str:
    return "none" if link is None else f"{link:g}"


# -- the lab ----------------------------------------------------------------------------------

def where(hmc: Hmc, wait_s: float = 20.0) -> str:
    """The frame lpar1 runs on, once it is defined in exactly one place and running."""
    deadline = time.monotonic() + wait_s
    while True:
        ps = hmc.placements(PART)
        if len(ps) == 1 and ps[0].info.state == "running":
            return ps[0].frame
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{PART} is not running in exactly one place: "
                               f"{[(p.frame, p.info.state) for p in ps]}")
        time.sleep(0.5)


def other(hmc: Hmc, frame: str) -> str:
    return next(f.name for f in hmc.topology.frames if f.name != frame)


def set_workload(hmc: Hmc, rate: int, wss: int) -> WorkloadState | None:
    ch = hmc.rmc(PART)
    try:
        return Workload(ch).set(rate, wss)
    except LpmlabError as exc:
        log(f"  warning: workload {rate_name(rate)} MiB/s over {wss} MiB not confirmed: "
            f"{exc.message}")
        return None
    finally:
        ch.close()


def stop_workload(hmc: Hmc) -> None:
    ch = hmc.rmc(PART)
    try:
        Workload(ch).stop()
    except LpmlabError as exc:
        log(f"warning: cannot stop the workload of {PART}: {exc.message}")
    finally:
        ch.close()


def versions(hmc: Hmc) -> dict[str, str]:
    def dotted(v: int) -> str:
        return f"{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}"

    out = {"kernel": os.uname().release, "nproc": str(len(os.sched_getaffinity(0))),
           "libvirt_python": dotted(libvirt.getVersion())}
    for f in hmc.topology.frames:
        try:
            conn = hmc.conn(f.name).conn
            out[f"{f.name}_qemu"] = dotted(conn.getVersion())
            out[f"{f.name}_libvirt"] = dotted(conn.getLibVersion())
        except (LpmlabError, libvirt.libvirtError) as exc:
            out[f"{f.name}_error"] = str(exc)
    return out


# -- the plain libvirt migrate over the MSP path ----------------------------------------------

@dataclass
class Route:
    """A plain migrate src -> dst as migrlpar would carry it: hops, port, libvirt call."""

    src: str
    dst: str
    src_uri: str
    dest_uri: str
    src_msp: MoverService
    dst_msp: MoverService
    hops: tuple[Hop, Hop]   # (source MSP, destination MSP)
    params: dict[str, Any]
    flags: int


def spare_port(hmc: Hmc, dst: str) -> int:
    """The highest port of the destination frame's range no live migration holds (migrlpar
    hands them out from the bottom)."""
    lo, hi = hmc.plan.frame(dst).frame.migration_ports
    used = {r.port for r in hmc.store.active() if r.dest_sys == dst}
    return next(p for p in range(hi, lo - 1, -1) if p not in used)


def route(hmc: Hmc, src: str, dst: str, control: Control) -> Route:
    msps = pick_msps(hmc, src, LocalDestination(hmc, dst))
    sv, dv = msps.source.vios, hmc.plan.vios(msps.dest).vios
    assert sv.mover_address and dv.mover_address
    dest_frame = hmc.plan.frame(dst)
    port = spare_port(hmc, dst)
    dom = hmc.conn(src).lookup(PART)
    if dom is None:
        raise RuntimeError(f"{PART} is not on {src}")
    # migrlpar's destination definition: the LUN through the destination frame's VIOS
    storage = hmc.storage_vios(dst, PART)
    xml = dx.retarget_disk(hmc.conn(src).migratable_xml(dom), dx.IscsiDisk(
        str(storage.vios.address), hmc.plan.partition(PART).iqn(storage.vios.name),
        vios=storage.vios.name, port=P.ISCSI_PORT))
    params: dict[str, Any] = {
        libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{sv.address}:{port}",
        libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: str(dest_frame.frame.address),
        libvirt.VIR_MIGRATE_PARAM_DEST_XML: xml,
        libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: xml,
    }
    if control.max_speed_mib:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = control.max_speed_mib
    flags = LIVE_FLAGS | (libvirt.VIR_MIGRATE_AUTO_CONVERGE if control.auto_converge else 0)
    hops = (Hop(FID, LAB_IFACE, (str(sv.address), port), MOVER_IFACE, str(sv.mover_address),
                (str(dv.mover_address), port)),
            Hop(FID, MOVER_IFACE, (str(dv.mover_address), port), LAB_IFACE, str(dv.address),
                (str(dest_frame.frame.address), port)))
    return Route(src, dst, hmc.plan.frame(src).uri, dest_frame.peer_uri,
                 msps.source.mover_service(), hmc.plan.vios(msps.dest).mover_service(), hops,
                 params, flags)


@contextlib.contextmanager
def msp_path(rt: Route, link_mib: float | None) -> Iterator[None]:
    """The route's two hops (destination first, as migrlpar) and the mover-link cap."""
    rt.dst_msp.forward(rt.hops[1])
    try:
        rt.src_msp.forward(rt.hops[0])
        try:
            if link_mib is not None:
                rt.src_msp.limit_bandwidth(mbit(link_mib))
            yield
        finally:
            if link_mib is not None:
                rt.src_msp.limit_bandwidth(None)
            rt.src_msp.close(FID)
    finally:
        rt.dst_msp.close(FID)


def dest_job(hmc: Hmc, frame: str) -> dict[str, Any]:
    dom = hmc.conn(frame).lookup(PART)
    stats = completed_stats(dom) if dom is not None else {}
    return {k: v for k, v in stats.items() if isinstance(v, int | float | str)}


def plain_migrate(hmc: Hmc, control: Control, link_mib: float | None,
                  timeout_s: float) -> dict[str, Any]:
    """A plain libvirt migrate of lpar1 to the other frame in a fresh process."""
    src = where(hmc)
    dst = other(hmc, src)
    rt = route(hmc, src, dst, control)
    job = {"src": rt.src_uri, "partition": PART, "dest_uri": rt.dest_uri,
           "params": rt.params, "flags": rt.flags,
           "max_downtime_ms": control.max_downtime_ms or 0}
    out: dict[str, Any] = {"src": src, "dst": dst, "port": rt.hops[1].listen[1]}
    with msp_path(rt, link_mib):
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", PLAIN_MIGRATE], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            stdout, stderr = proc.communicate(json.dumps(job), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            # a safety net: the cell converged under migrlpar, so this is rare
            out["error"] = f"did not finish in {timeout_s:.0f} s (aborted)"
            dom = hmc.conn(src).lookup(PART)
            with contextlib.suppress(libvirt.libvirtError):
                if dom is not None:
                    dom.abortJob()
            stdout, stderr = proc.communicate(timeout=120)
        out["wall_s"] = round(time.monotonic() - t0, 3)
    try:
        out.update(json.loads(stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        out.setdefault("error", f"exit {proc.returncode}: {stderr.strip()[-400:]}")
    if "error" in out:
        out["settled_on"] = settle_after_failure(hmc, PART, src, dst)
    else:
        out["job"] = dest_job(hmc, dst)
    return out


# -- migrlpar ---------------------------------------------------------------------------------

def migrlpar(*args: str) -> list[str]:
    return [str(BIN / "migrlpar"), *args]


def stop_migration(src: str, proc: subprocess.Popen) -> bool:
    """migrlpar -o s, retried while the transfer has not started yet (nothing to abort)."""
    for _ in range(10):
        cp = run(migrlpar("-o", "s", "-m", src, "-p", PART), timeout=120)
        if cp.returncode == 0:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(2.0)
    log(f"  warning: migrlpar -o s failed: {cp.stderr.strip()[-300:]}")
    return False


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        log(f"  warning: migrlpar -o m (pid {proc.pid}) still running {STOP_WAIT_S:.0f} s after "
            "-o s: killed; run migrlpar -o r if lpar1 is not in one place")
        proc.kill()
        return proc.communicate()


def latest_record(hmc: Hmc, since: float) -> MigrationRecord | None:
    recs = hmc.store.latest(PART, 1)
    return recs[0] if recs and recs[0].started >= since - 1.0 else None


def wait_transfer(hmc: Hmc, since: float, proc: subprocess.Popen,
                  timeout_s: float = 180.0) -> float | None:
    """The wall-clock time the transfer phase of the migration begun at ``since`` started."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        rec = latest_record(hmc, since)
        at = next((p["at"] for p in rec.phases if p["phase"] == "transfer"), None) \
            if rec else None
        if at is not None:
            return float(at)
        time.sleep(0.2)
    return None


def transfer_phase_s(rec: MigrationRecord) -> float | None:
    """Seconds from the 'transfer' phase to the start of the next one. Phases that report
    their ``seconds`` (the hook phases) are stamped when they end."""
    for i, p in enumerate(rec.phases[:-1]):
        if p["phase"] == "transfer":
            nxt = rec.phases[i + 1]
            return round(nxt["at"] - float(nxt.get("seconds") or 0.0) - p["at"], 3)
    return None


@dataclass
class Cell:
    rate: int
    link_mib: float | None
    control: str
    src: str = ""
    dst: str = ""
    workload: dict[str, Any] | None = None
    result: str = ""
    converged: bool = False
    migrlpar_wall_s: float | None = None
    migrlpar_rc: int | None = None
    migrlpar_stderr: str = ""
    record_id: str | None = None
    total_s: float | None = None
    job_s: float | None = None
    transfer_phase_s: float | None = None
    downtime_ms: int | None = None
    iterations: int | None = None
    bytes_sent: int | None = None
    max_throttle_pct: int | None = None
    iteration_events: int | None = None
    final_iteration: int | None = None
    final_from: str | None = None   # "job" (the completed job's count) | "events" (stopped)
    schedule_actions: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    plain: dict[str, Any] | None = None
    plain_skipped: str | None = None

    def wall_ratio(self) -> float | None:
        p = self.plain or {}
        if self.migrlpar_wall_s is None or not p.get("wall_s") or "error" in p:
            return None
        return self.migrlpar_wall_s / p["wall_s"]

    def transfer_ratio(self) -> float | None:
        p = self.plain or {}
        if self.transfer_phase_s is None or not p.get("call_s") or "error" in p:
            return None
        return self.transfer_phase_s / p["call_s"]

    def bound_ratio(self) -> float | None:
        """Job time / the time the capped link needs for the bytes sent."""
        rate = mbit(self.link_mib)
        if rate is None or not self.job_s or not self.bytes_sent:
            return None
        return self.job_s / (self.bytes_sent / (rate * 1_000_000 / 8))

    def all_sampled(self) -> bool | None:
        if self.iteration_events is None or not self.final_iteration:
            return None
        return self.iteration_events == self.final_iteration


def read_record(cell: Cell, rec: MigrationRecord, samples: list[dict[str, Any]]) -> None:
    s = summarize(samples, rec.stats.get("wall_s"))
    job = rec.stats.get("job") or {}
    cell.record_id = rec.id
    cell.summary = {k: v for k, v in s.items() if k != "samples"} | {"samples": len(samples)}
    cell.total_s = rec.stats.get("wall_s")
    elapsed = [x["elapsed_ms"] for x in samples if x.get("elapsed_ms") is not None]
    cell.job_s = s["transfer_s"] if s["transfer_s"] is not None else (
        round(max(elapsed) / 1000.0, 3) if elapsed else None)
    cell.downtime_ms = s["downtime_ms"] if cell.converged else None
    cell.iterations = s["iterations"]
    cell.bytes_sent = s["bytes_sent"] if s["bytes_sent"] is not None else \
        job.get("data_processed")
    cell.max_throttle_pct = s["max_throttle_pct"]
    cell.iteration_events = (rec.stats.get("precopy") or {}).get("iteration_events")
    done = next((x for x in reversed(samples) if x.get("kind") == "completed"), None)
    if cell.converged:
        # the completed job's own pass count (QEMU's dirty-sync count)
        cell.final_iteration = job.get("memory_iteration") or (done or {}).get("stats_iteration")
        cell.final_from = "job"
    else:
        # a stopped job has no final count: the highest iteration number an event carried
        nums = [x["iteration"] for x in samples
                if x.get("kind") == "iteration" and x.get("iteration") is not None]
        cell.final_iteration = max(nums) if nums else None
        cell.final_from = "events"
    cell.transfer_phase_s = transfer_phase_s(rec) if cell.converged else None
    cell.schedule_actions = (rec.stats.get("telemetry") or {}).get("schedule_actions", [])


def run_cell(hmc: Hmc, cell: Cell, control: Control, stall_s: float) -> MigrationRecord | None:
    cell.src = where(hmc)
    cell.dst = other(hmc, cell.src)
    opts = list(control.options)
    if cell.link_mib is not None:
        opts += ["--mover-bandwidth", f"{cell.link_mib:g}"]
    since = time.time()
    t0 = time.monotonic()
    proc = subprocess.Popen(migrlpar("-o", "m", "-m", cell.src, "-t", cell.dst, "-p", PART,
                                     "--noprogress", *opts),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stopped_after = None
    try:
        _, err = proc.communicate(timeout=stall_s)
    except subprocess.TimeoutExpired:
        stopped_after = time.monotonic() - t0
        stop_migration(cell.src, proc)
        _, err = finish(proc)
    cell.migrlpar_wall_s = round(time.monotonic() - t0, 3)
    cell.migrlpar_rc = proc.returncode
    cell.migrlpar_stderr = err.strip()[-600:]
    rec = latest_record(hmc, since)
    if rec is None:
        cell.result = f"failed before a record (exit {proc.returncode})"
        return None
    cell.converged = rec.result == "success"
    if cell.converged:
        how = [f"{a['action']} {a['value']}" if a.get("value") is not None else a["action"]
               for a in (rec.stats.get("telemetry") or {}).get("schedule_actions", [])]
        cell.result = "converged" + (f" ({', '.join(how[-1:])})" if how else "")
        if stopped_after is not None:
            cell.result += " (finished as it was stopped)"
    elif stopped_after is not None:
        cell.result = f"no convergence (stopped after {stopped_after:.0f} s)"
    else:
        cell.result = f"{rec.result or rec.state}: {(rec.error or '')[:80]}"
    read_record(cell, rec, hmc.store.samples(rec.id))
    return rec


def sweep(hmc: Hmc, args: argparse.Namespace, results: dict[str, Any],
          records: dict[int, list[tuple[Cell, MigrationRecord]]]) -> None:
    controls = [parse_control(c) for c in args.controls]
    n = len(args.rates) * len(args.links) * len(controls)
    i = 0
    for rate in args.rates:
        for link in args.links:
            for control in controls:
                i += 1
                cell = Cell(rate, link, control.name)
                log(f"[{i}/{n}] dirty {rate_name(rate)} MiB/s, link {link_name(link)}, "
                    f"{control.name}")
                # set (and read back) before every cell: the reading is the cell's own
                state = set_workload(hmc, rate, WSS_MIB)
                cell.workload = state.as_dict() if state else None
                rec = run_cell(hmc, cell, control, args.stall_s)
                log(f"  migrlpar {cell.src}->{cell.dst}: {cell.result}, wall "
                    f"{cell.migrlpar_wall_s:.1f} s, job {fmt(cell.job_s, '{:.1f}')} s, "
                    f"{fmt(cell.iterations)} iterations, events {fmt(cell.iteration_events)}/"
                    f"{fmt(cell.final_iteration)}")
                if rec is not None:
                    records.setdefault(rate, []).append((cell, rec))
                if not control.plain:
                    cell.plain_skipped = "post-copy/schedule"
                elif not cell.converged:
                    cell.plain_skipped = ("did not converge" if cell.result.startswith("no ")
                                          else "migrlpar failed")
                else:
                    try:
                        # a safety net of twice the stall time: migrlpar converged
                        cell.plain = plain_migrate(hmc, control, link, 2 * args.stall_s)
                    except (LpmlabError, libvirt.libvirtError, subprocess.SubprocessError,
                            OSError) as exc:
                        cell.plain = {"src": cell.dst, "dst": cell.src,
                                      "error": f"{type(exc).__name__}: {exc}"}
                    p = cell.plain
                    log(f"  plain {p['src']}->{p['dst']}: "
                        + (p["error"] if "error" in p else
                           f"wall {p['wall_s']:.1f} s, call {p['call_s']:.1f} s, job "
                           f"{(p.get('job') or {}).get('time_elapsed', '?')} ms"))
                results["cells"].append(asdict(cell))
                write_json(args.out, results)


# -- telemetry overhead -----------------------------------------------------------------------

def inproc_migrate(hmc: Hmc, conns: dict[str, FrameConnection], watched: bool,
                   store: MigrationStore, devnull: TextIO, n: int) -> dict[str, Any]:
    src = where(hmc)
    dst = other(hmc, src)
    rt = route(hmc, src, dst, Control("plain"))
    dom = conns[src].lookup(PART)
    assert dom is not None
    out: dict[str, Any] = {"watched": watched, "src": src, "dst": dst}
    watcher = telemetry = None
    if watched:
        telemetry = Telemetry(PART, f"overhead{n}", store, Controls(),
                              MigrationProgress(devnull, tty=False))
        watcher = JobWatcher(dom, telemetry.on_sample)
    ok = False
    with msp_path(rt, None):
        t0 = time.monotonic()
        if watcher is not None:
            watcher.start()
        try:
            t1 = time.monotonic()
            dom.migrateToURI3(rt.dest_uri, rt.params, rt.flags)
            out["call_s"] = time.monotonic() - t1
            ok = True
        except libvirt.libvirtError as exc:
            out["error"] = str(exc)
        finally:
            if watcher is not None and telemetry is not None:
                watcher.stop(wait_completed_s=1.0 if ok else 0.0)
                telemetry.flush()
                out["samples"] = len(telemetry.samples)
                out["iteration_events"] = len(watcher.events)
        out["total_s"] = time.monotonic() - t0
    if ok:
        out["job"] = dest_job(hmc, dst)
    else:
        out["settled_on"] = settle_after_failure(hmc, PART, src, dst)
    return out


def overhead(hmc: Hmc, rounds: int) -> dict[str, Any]:
    set_workload(hmc, 0, WSS_MIB)
    # own connections: FrameConnection starts libvirt's event loop before it opens one,
    # which the watcher's events need
    conns = {f.name: FrameConnection(f.name, hmc.plan.frame(f.name).uri)
             for f in hmc.topology.frames}
    runs: list[dict[str, Any]] = []
    try:
        with open(os.devnull, "w") as devnull, \
                tempfile.TemporaryDirectory(prefix="precopy-bench-") as tmp:
            store = MigrationStore(Path(tmp) / "telemetry.sqlite")
            for i in range(rounds):
                for watched in (True, False) if i % 2 == 0 else (False, True):
                    r = inproc_migrate(hmc, conns, watched, store, devnull, len(runs))
                    runs.append(r)
                    log(f"  overhead round {i + 1} {'with' if watched else 'without'} "
                        f"watcher {r['src']}->{r['dst']}: "
                        + (r["error"] if "error" in r else
                           f"call {r['call_s']:.2f} s, total {r['total_s']:.2f} s"))
    finally:
        for c in conns.values():
            c.close()

    def med(watched: bool, key: str) -> float | None:
        xs = [r[key] for r in runs if r["watched"] == watched and "error" not in r]
        return statistics.median(xs) if xs else None

    for r in runs:
        if "job" in r and r["job"].get("time_elapsed"):
            r["job_s"] = r["job"]["time_elapsed"] / 1000.0
    out: dict[str, Any] = {"rounds": rounds, "runs": runs}
    for key in ("call_s", "total_s", "job_s"):
        w, wo = med(True, key), med(False, key)
        out[f"median_{key}_with"], out[f"median_{key}_without"] = w, wo
        out[f"ratio_{key}"] = w / wo if w and wo else None
    # libvirt's migrate call is bimodal here (~1.9 s or ~2.9 s, either kind, not tied to a
    # port or path): medians across modes measure which mode came up, so compare within one
    calls = [r["call_s"] for r in runs if "call_s" in r]
    if calls:
        cut = (min(calls) + max(calls)) / 2
        out["modes"] = []
        for name, inside in (("fast", lambda c: c < cut), ("slow", lambda c: c >= cut)):
            w = [r["call_s"] for r in runs
                 if "call_s" in r and r["watched"] and inside(r["call_s"])]
            wo = [r["call_s"] for r in runs
                  if "call_s" in r and not r["watched"] and inside(r["call_s"])]
            out["modes"].append({
                "mode": name, "n_with": len(w), "n_without": len(wo),
                "median_with": statistics.median(w) if w else None,
                "median_without": statistics.median(wo) if wo else None,
                "ratio": (statistics.median(w) / statistics.median(wo)) if w and wo else None})
    return out


# -- iteration burst --------------------------------------------------------------------------

def peak_per_second(times: list[float]) -> int:
    """The most timestamps within any 1 s window."""
    ts, best, j = sorted(times), 0, 0
    for i, t in enumerate(ts):
        while t - ts[j] >= 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def burst(hmc: Hmc) -> dict[str, Any]:
    state = set_workload(hmc, FULL_SPEED, BURST_WSS_MIB)
    src = where(hmc)
    dst = other(hmc, src)
    since = time.time()
    proc = subprocess.Popen(migrlpar("-o", "m", "-m", src, "-t", dst, "-p", PART,
                                     "--max-downtime", "1", "--noprogress"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = wait_transfer(hmc, since, proc)
    if started is not None:
        # 8 s of transfer, not of process: validation and hooks come first
        time.sleep(max(0.0, started + BURST_STOP_S - time.time()))
    stopped = proc.poll() is None and stop_migration(src, proc)
    _, err = finish(proc)
    out: dict[str, Any] = {"src": src, "dst": dst, "stopped": stopped, "rc": proc.returncode,
                           "workload": state.as_dict() if state else None}
    rec = latest_record(hmc, since)
    if rec is None:
        out["error"] = f"no record: {err.strip()[-400:]}"
        return out
    samples = hmc.store.samples(rec.id)
    its = [x for x in samples if x.get("kind") == "iteration"]
    nums = [x["iteration"] for x in its if x.get("iteration") is not None]
    top = max(nums) if nums else 0
    missing = sorted(set(range(1, top + 1)) - set(nums))
    out.update(
        record_id=rec.id, result=rec.result, state=rec.state,
        iteration_events=rec.stats.get("iteration_events"), iteration_samples=len(its),
        highest_iteration=top or None, gapless=nums == list(range(1, top + 1)) and top > 0,
        missing=missing[:20], missing_count=len(missing),
        duplicates=len(nums) - len(set(nums)),
        peak_per_s=peak_per_second([float(x["t"]) for x in its]),
        span_s=round(max(x["t"] for x in its) - min(x["t"] for x in its), 3) if its else None,
        job_iteration=(rec.stats.get("job") or {}).get("memory_iteration"))
    return out


# -- output -----------------------------------------------------------------------------------

def fmt(v: Any, spec: str = "{}") -> str:
    return "-" if v is None else spec.format(v)


def yes_no(v: bool | None) -> str:
    return "n/a" if v is None else "yes" if v else "no"


HEAD = ("dirty MiB/s", "link MiB/s", "controls", "result", "total s", "job s", "downtime ms",
        "iterations", "MiB sent", "max throttle %", "all iterations sampled",
        "wall vs plain libvirt", "transfer vs plain", "transfer / bound")


def row(c: dict[str, Any]) -> list[str]:
    cell = Cell(**c)
    achieved = (c.get("workload") or {}).get("achieved_mibps")
    sampled = yes_no(cell.all_sampled())
    if cell.all_sampled() is not None:
        sampled += f" ({cell.iteration_events}/{cell.final_iteration}" \
                   + ("*" if cell.final_from == "events" else "") + ")"
    p = cell.plain or {}
    if cell.plain_skipped:
        wall = trans = f"n/a ({cell.plain_skipped})"
    elif "error" in p:
        wall = trans = f"n/a (plain: {p['error'][:60]})"
    else:
        wall = f"{fmt(cell.wall_ratio(), '{:.2f}')} ({fmt(p.get('wall_s'), '{:.2f}')} s)"
        trans = f"{fmt(cell.transfer_ratio(), '{:.2f}')} ({fmt(p.get('call_s'), '{:.2f}')} s)"
    return [rate_name(cell.rate) + (f" ({achieved:g})" if achieved is not None else ""),
            link_name(cell.link_mib), cell.control, cell.result,
            fmt(cell.total_s, "{:.2f}"), fmt(cell.job_s, "{:.2f}"), fmt(cell.downtime_ms),
            fmt(cell.iterations),
            fmt(None if cell.bytes_sent is None else cell.bytes_sent / MIB, "{:.0f}"),
            fmt(cell.max_throttle_pct), sampled, wall, trans,
            "n/a" if cell.link_mib is None else fmt(cell.bound_ratio(), "{:.2f}")]


def md_table(head: tuple[str, ...] | list[str], rows: list[list[str]]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    m = results["meta"]
    out = [
        "# Pre-copy convergence: dirty rate x mover link x controls", "",
        f"Date {m['date']}; host kernel {m['host'].get('kernel')}, {m['host'].get('nproc')} "
        "CPUs; " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in m["host"].items()
                             if k not in ("kernel", "nproc")) + ".",
        f"Command: `{m['command']}`", "",
        "## Sweep", "",
        md_table(HEAD, [row(c) for c in results["cells"]]) if results["cells"]
        else "(no cells ran)", "",
        f"lpar1 ({m['memory_mb']} MiB) dirtying the given MiB/s (achieved in brackets) over "
        f"{WSS_MIB} MiB; link = tc cap on the source MSP's mover link (--mover-bandwidth). "
        "total s = migrlpar's wall in its record (validation, hooks, transfer); job s = "
        "libvirt's job time; all iterations sampled = iteration events == the completed job's "
        "iteration count (* stopped: vs the highest iteration number an event carried). "
        "wall vs plain libvirt = migrlpar process wall / plain libvirt-python process wall "
        "(both fresh processes; plain's in brackets). transfer vs plain = migrlpar's transfer "
        "phase (from 'transfer' to the start of the next phase) / the plain process's "
        "migrateToURI3 call (in brackets). The plain run migrates back over the same MSP hops, "
        "cap and libvirt controls. transfer / bound = job time / (bytes sent / capped rate): "
        "1 = the link is the only limit (tc counts headers too, so a little above 1).", "",
    ]
    o = results.get("overhead")
    if o:
        out += ["## Telemetry overhead", "",
                f"{o['rounds']} rounds, each one in-process plain libvirt migration of the idle "
                "lpar1 over the MSP path with a JobWatcher (feeding MigrationProgress to "
                "/dev/null and Telemetry to a throwaway store) and one without, order "
                "alternating. call = migrateToURI3; total = watcher start to stop.", "",
                md_table(("", "median call s", "median total s", "median job s"), [
                    ["with watcher", fmt(o["median_call_s_with"], "{:.3f}"),
                     fmt(o["median_total_s_with"], "{:.3f}"),
                     fmt(o.get("median_job_s_with"), "{:.3f}")],
                    ["without", fmt(o["median_call_s_without"], "{:.3f}"),
                     fmt(o["median_total_s_without"], "{:.3f}"),
                     fmt(o.get("median_job_s_without"), "{:.3f}")],
                    ["ratio with / without", fmt(o["ratio_call_s"], "{:.3f}"),
                     fmt(o["ratio_total_s"], "{:.3f}"), fmt(o.get("ratio_job_s"), "{:.3f}")]]),
                "", "The call is bimodal on this machine (either kind): within each mode,",
                "", md_table(("mode", "runs with / without", "median call with", "median call "
                              "without", "ratio"),
                             [[m["mode"], f"{m['n_with']} / {m['n_without']}",
                               fmt(m["median_with"], "{:.3f}"),
                               fmt(m["median_without"], "{:.3f}"), fmt(m["ratio"], "{:.3f}")]
                              for m in o.get("modes", [])]), ""]
    b = results.get("burst")
    if b:
        out += ["## Iteration burst", "",
                f"Full-speed dirtying over {BURST_WSS_MIB} MiB, migrlpar --max-downtime 1, "
                f"stopped with migrlpar -o s {BURST_STOP_S:.0f} s into the transfer.", ""]
        if "error" in b:
            out += [f"- {b['error']}", ""]
        else:
            out += [f"- result: {b['result']} ({b['state']})",
                    f"- iteration events recorded: {fmt(b['iteration_events'])} "
                    f"({b['iteration_samples']} iteration samples stored)",
                    f"- highest iteration number: {fmt(b['highest_iteration'])}",
                    f"- exactly 1..N without gaps: {yes_no(b['gapless'])}"
                    + (f" ({b['missing_count']} missing, e.g. {b['missing'][:10]}; "
                       f"{b['duplicates']} duplicates)" if not b["gapless"] else ""),
                    f"- peak iterations per second (any 1 s window): {b['peak_per_s']}", ""]
    if results.get("plots"):
        out += ["## Plots", ""]
        out += [f"![dirty {r} MiB/s]({p})" for r, p in results["plots"].items()]
        out.append("")
    if results.get("errors"):
        out += ["## Errors", ""] + [f"- {e}" for e in results["errors"]] + [""]
    return "\n".join(out)


def write_json(out_dir: Path, results: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "precopy-results.json").write_text(json.dumps(results, indent=2, default=str))


def plots(out_dir: Path, records: dict[int, list[tuple[Cell, MigrationRecord]]],
          hmc: Hmc) -> dict[str, str]:
    made = {}
    for rate, cells in records.items():
        docs = []
        for cell, rec in cells:
            doc = build(rec, hmc.store.samples(rec.id))
            doc["label"] = f"{cell.control} link {link_name(cell.link_mib)}"
            docs.append(doc)
        rel = f"img/precopy-rate-{rate_name(rate)}.png"
        render_png(docs, out_dir / rel)
        made[rate_name(rate)] = rel
    return made


# -- main -------------------------------------------------------------------------------------

def ensure_one_place(hmc: Hmc) -> str:
    """Where lpar1 ends up; runs migrlpar -o r once when it is not in exactly one place."""
    try:
        return where(hmc)
    except RuntimeError as exc:
        log(f"warning: {exc}; running migrlpar -o r")
    frames = [p.frame for p in hmc.placements(PART)]
    recs = hmc.store.latest(PART, 1)
    frame = recs[0].source_sys if recs else (frames or ["sys1"])[0]
    cp = run(migrlpar("-o", "r", "-m", frame, "-p", PART), timeout=300)
    if cp.returncode != 0:
        log(cp.stderr.strip())
    return where(hmc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="rates 0,150; links none,115; controls plain,auto-converge; "
                         "overhead-rounds 4 (explicit options still win)")
    ap.add_argument("--rates", type=csv(parse_rate), help="dirty MiB/s, 0 = idle, max = full "
                    "speed (default 0,64,150)")
    ap.add_argument("--links", type=csv(parse_link),
                    help="mover link cap in MiB/s, none = uncapped (default none,115)")
    ap.add_argument("--controls", type=csv(parse_control), help="default "
                    "plain,auto-converge,downtime-2000,postcopy")
    ap.add_argument("--stall-s", type=float, default=40.0,
                    help="stop a migrlpar that has not finished after this long (default 40)")
    ap.add_argument("--overhead-rounds", type=int, help="default 6 (0 skips the section)")
    ap.add_argument("--warmup", type=int, default=2, help="unmeasured idle migrlpar "
                    "migrations first: the first after boot are slow (default 2)")
    ap.add_argument("--no-burst", action="store_true", help="skip the iteration burst")
    ap.add_argument("--out", type=Path, default=Path("docs"))
    ap.add_argument("--sections", default="sweep,overhead,burst",
                    help="which sections to run (default all); the others keep their results "
                         "from <out>/precopy-results.json")
    args = ap.parse_args()
    args.sections = set(args.sections.split(","))
    if not args.sections <= {"sweep", "overhead", "burst"}:
        sys.exit("--sections: choose from sweep, overhead, burst")
    defaults = QUICK if args.quick else {"rates": "0,64,150", "links": "none,115",
                                         "controls": "plain,auto-converge,downtime-2000,"
                                                     "postcopy", "overhead_rounds": 6}
    args.rates = args.rates or csv(parse_rate)(defaults["rates"])
    args.links = args.links or csv(parse_link)(defaults["links"])
    args.controls = [c.name for c in (args.controls or csv(parse_control)(defaults["controls"]))]
    if args.overhead_rounds is None:
        args.overhead_rounds = defaults["overhead_rounds"]

    hmc = Hmc.open()
    if hmc.active_migration(PART) is not None:
        sys.exit(f"{PART} has a migration in progress: wait for it (lslparmigr)")
    try:
        where(hmc, wait_s=0.0)
    except RuntimeError as exc:
        sys.exit(f"{exc}: fix it first (migrlpar -o r -m FRAME -p {PART})")
    results: dict[str, Any] = {
        "meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                 "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                 "host": versions(hmc), "memory_mb": hmc.topology.partition(PART).memory_mb,
                 "wss_mib": WSS_MIB, "stall_s": args.stall_s, "rates": args.rates,
                 "links": args.links, "controls": args.controls},
        "cells": [], "errors": []}
    previous = args.out / "precopy-results.json"
    if previous.exists() and args.sections != {"sweep", "overhead", "burst"}:
        kept = json.loads(previous.read_text())
        for section, keys in (("sweep", ("cells", "plots")), ("overhead", ("overhead",)),
                              ("burst", ("burst",))):
            if section not in args.sections:
                results.update({k: kept[k] for k in keys if k in kept})
    records: dict[int, list[tuple[Cell, MigrationRecord]]] = {}
    try:
        if args.warmup:
            set_workload(hmc, 0, WSS_MIB)
        for i in range(args.warmup):
            src = where(hmc)
            log(f"warm-up {i + 1}/{args.warmup}: {src}->{other(hmc, src)}")
            cp = run(migrlpar("-o", "m", "-m", src, "-t", other(hmc, src), "-p", PART,
                              "--noprogress"), timeout=600)
            if cp.returncode != 0:
                log(f"  warm-up failed: {cp.stderr.strip()[-300:]}")
        if "sweep" in args.sections:
            sweep(hmc, args, results, records)
        if args.overhead_rounds > 0 and "overhead" in args.sections:
            log("telemetry overhead")
            results["overhead"] = overhead(hmc, args.overhead_rounds)
            write_json(args.out, results)
        if not args.no_burst and "burst" in args.sections:
            log("iteration burst")
            results["burst"] = burst(hmc)
    except Exception as exc:  # noqa: BLE001 - keep what was measured, and clean up
        results["errors"].append(f"{type(exc).__name__}: {exc}")
        log(f"error: {type(exc).__name__}: {exc}")
    finally:
        for vp in hmc.plan.all_vios():
            if vp.vios.msp:
                with contextlib.suppress(LpmlabError):
                    vp.mover_service().limit_bandwidth(None)
        try:
            results["final_frame"] = ensure_one_place(hmc)
        except RuntimeError as exc:
            results["errors"].append(str(exc))
            log(f"error: {exc}: fix it with migrlpar -o r")
        stop_workload(hmc)
        try:
            if "sweep" in args.sections:
                results["plots"] = plots(args.out, records, hmc)
        except Exception as exc:  # noqa: BLE001 - the figures matter more than the plots
            results["errors"].append(f"plots: {exc}")
        write_json(args.out, results)
        text = markdown(results)
        (args.out / "precopy-results.md").write_text(text + "\n")
        print(text)
        hmc.close()
    if results["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
