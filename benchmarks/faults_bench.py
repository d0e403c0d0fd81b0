#!/usr/bin/env python3
"""Issue #11: every fault of 'lpmlab fault' during loaded migrations, recovered as a user
would, and checked (figures printed, nothing asserted).

Targets (reported, not asserted): 100 % survived, 0 acknowledged writes lost, 0 partitions
lost or doubled, recovery <= 10 s median per fault.

Sections:
1. matrix: every fault case x --runs during a migration of lpar1 on the default lab, with its
   memory dirtier (--rate MiB/s over --wss MiB) and its disk writer (lpm-disk) running. The
   fault is armed for a point of the migration (``lpmlab fault NAME --when POINT -p lpar1``;
   the points are in CASES), then ``migrlpar -o m -m SRC -t DST -p lpar1 --noprogress
   --stall-timeout 10`` runs (lpar1 goes from wherever it is to the other frame).
2. concurrent: the same faults while 4 partitions move in one ``migrlpar -p lpar1,...,lpar4``
   on the four-partition lab (tests/integration/topologies/quad.yaml, brought up for the
   section and the lab found at the start brought back at the end); the fault is injected
   now (``lpmlab fault NAME -p LPAR``, no --when) once every transfer has started, aimed at
   the partition whose transfer started last (the likeliest to be still transferring);
   hook-hang is injected into lpar1 just before the command (a hook hangs in a hook phase).
3. soak: --soak back-to-back migrations of lpar1 under load, a random fault case (armed as in
   the matrix) in one random migration of every five (--seed).

After each migration command ends, recovery as a user does it, timed from the command's end
to every partition running in exactly one place and answering RMC:
  - ``lpmlab fault clear ID`` when the fault is still armed or in force;
  - ``migrlpar -o r -m FRAME -p NAME`` for a partition not running in exactly one place or
    with a migration record left unfinished (in progress, its controller dead); again with
    ``--force`` only when that error says HSCLL411, HSCLL412 or HSCLL453 (counted);
  - ``chsysstate -o on`` for a partition left defined once but shut off;
  - ``lpmlab lab up`` only for what those cannot bring back (counted; such a run is not
    survived).
A mover-link-slow migration does not end by itself: --slow-grace seconds after the fault
fired the bench repairs the link (``lpmlab fault clear ID``) and lets it finish. Any migration
still running after --migration-timeout is stopped (``migrlpar -o s``), then killed.

Checks per partition (all must pass for the run to be "survived"): defined exactly once and
running (Hmc.placements), RMC answers, not booted again (boot_id unchanged: a reboot loses
its memory), ``lpm-disk verify /dev/sda`` says gaps=0 bad=0, and its last record is at least
the last record the disk writer had acknowledged before the fault (the fault's ledger entry
``acked_before``; for partitions the fault did not name, and faults that fired too early
for a reading, the bench's own reading just before the migration command): acknowledged
writes lost = max(0, acked_before - last). Lost = not running anywhere after recovery with
HMC commands, or booted again; doubled = running on two frames at once, or defined on two
after recovery. A migration record still in progress after recovery, a traceback on any
command's stderr, a migration command that had to be killed, a fault that could not be
armed, or a 'lab up' needed for recovery also fail the run.
The disk writer is started again when it stopped (noted; not expected).

Output: progress on stderr, one table per section on stdout, every run as JSON in --json
(default docs/faults-results.json, rewritten after every run; sections not run keep their
runs from the file). Needs the lab up (``lpmlab lab up``; brought up when down) and idle.
On a shared machine run it under the lab lock: flock /work/lab.lock <this command>.

Run: .venv/bin/python benchmarks/faults_bench.py [--runs 10] [--faults a,b] [--sections
     matrix,concurrent,soak] [--concurrent-runs N] [--soak 100] [--seed 11] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lpmlab import log as lpmlab_log
from lpmlab.demo import VERIFY_RE, set_dirty_workload, start_disk_writer
from lpmlab.errors import LpmlabError
from lpmlab.fabric import faults as F
from lpmlab.hmc.faults import read_acked
from lpmlab.hmc.store import IN_PROGRESS_STATES, controller_alive
from lpmlab.hmc.system import Hmc

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
QUAD = ROOT / "tests/integration/topologies/quad.yaml"
PART = "lpar1"
QUAD_PARTS = ["lpar1", "lpar2", "lpar3", "lpar4"]
SECTIONS = ("matrix", "concurrent", "soak")
FORCE_CODES = ("HSCLL411", "HSCLL412", "HSCLL453")
CODE_RE = re.compile(r"\b(HSCL[0-9A-Z]{4,5}|LPM\d{4})\b")
TRACEBACK = "Traceback (most recent call last)"
STALL_TIMEOUT_S = "10"
READY_DEADLINE_S = 150.0     # a partition to run in one place and answer RMC after recovery
TRANSFER_DEADLINE_S = 120.0  # the concurrent migration's transfer to start
TARGET_RECOVERY_S = 10.0


def log(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


# -- the fault cases ------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One row of the tables: a fault, the point it is armed for, the migration's options."""

    label: str
    fault: str
    when: str
    arg: str | None = None
    options: tuple[str, ...] = ()
    slow: bool = False  # does not end by itself: the link is repaired after --slow-grace

    def fault_argv(self, when: str | None, partition: str) -> list[str]:
        argv = ["lpmlab", "fault", self.fault, *([self.arg] if self.arg else []),
                "-p", partition, "--json"]
        return argv + (["--when", when] if when else [])


def cases(slow_rate: str) -> dict[str, Case]:
    """The default points: in the middle of pre-copy (pass 2) for what breaks the stream or a
    side, the switchover for a second look at the destination's QEMU, a hook phase for the
    hanging hook, the transfer for the OS that stops answering (its post hooks then cannot
    run; -w 1 bounds the wait)."""
    wait = ("-w", "1")
    return {c.label: c for c in (
        Case("mover-link-cut", "mover-link-cut", "pass:2"),
        Case("mover-link-cut@switchover", "mover-link-cut", "switchover"),
        Case("mover-link-slow", "mover-link-slow", "pass:2", slow_rate, slow=True),
        Case("msp-path-broken", "msp-path-broken", "pass:2"),
        Case("dest-qemu-killed", "dest-qemu-killed", "pass:2"),
        Case("dest-qemu-killed@switchover", "dest-qemu-killed", "switchover"),
        Case("dest-frame-down", "dest-frame-down", "pass:2"),
        Case("source-frame-down", "source-frame-down", "pass:2"),
        Case("vios-storage-down", "vios-storage-down", "pass:2"),
        Case("controller-killed", "controller-killed", "pass:2"),
        Case("hook-hang", "hook-hang", "phase:pre", options=wait),
        Case("partition-os-hang", "partition-os-hang", "transferring", options=wait),
    )}


# -- commands -------------------------------------------------------------------------------

@dataclass
class Cmd:
    """One command the bench ran, as a user would have typed it."""

    argv: list[str]
    rc: int | None
    seconds: float
    code: str | None = None
    stdout: str = ""
    stderr: str = ""

    def brief(self) -> dict[str, Any]:
        return {"cmd": " ".join(self.argv), "rc": self.rc, "code": self.code,
                "seconds": round(self.seconds, 2), "stderr": self.stderr.strip()[-1500:],
                "stdout": self.stdout.strip()[-600:]}


def first_code(text: str) -> str | None:
    m = CODE_RE.search(text)
    return m.group(1) if m else None


def cli(*argv: str, timeout: float = 600) -> Cmd:
    """Run an lpmlab/HMC command; a command still running after ``timeout`` is killed."""
    t0 = time.monotonic()
    try:
        cp = subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                            timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        err = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) \
            else (exc.stderr or "")
        return Cmd(list(argv), None, time.monotonic() - t0, None, "",
                   f"{err}\n(bench: killed after {timeout:.0f} s)")
    return Cmd(list(argv), cp.returncode, time.monotonic() - t0,
               first_code(cp.stderr) if cp.returncode else None, cp.stdout, cp.stderr)


@contextlib.contextmanager
def hmc_open() -> Iterator[Hmc]:
    hmc = Hmc.open()
    try:
        yield hmc
    finally:
        hmc.close()


def wait_for(what: str, test: Callable[[], bool], deadline_s: float,
             evidence: Callable[[], str] = lambda: "", every_s: float = 0.5) -> None:
    """Until ``test()``; RuntimeError naming ``what`` (and the evidence) at the deadline."""
    end = time.monotonic() + deadline_s
    while not test():
        if time.monotonic() > end:
            raise RuntimeError(f"gave up after {deadline_s:.0f} s waiting for {what}: "
                               f"{evidence()}")
        time.sleep(every_s)


# -- the partitions -------------------------------------------------------------------------

def copies(hmc: Hmc, name: str) -> list[tuple[str, str]]:
    return [(p.frame, p.info.state) for p in hmc.placements(name)]


def fmt_copies(c: list[tuple[str, str]]) -> list[str]:
    return [f"{f}:{s}" for f, s in c]


def unfinished(hmc: Hmc, name: str) -> list[Any]:
    """Records the migration left open: in progress with no controller alive."""
    return [r for r in hmc.store.latest(name, 10)
            if r.state in IN_PROGRESS_STATES and not controller_alive(r)]


def one_place(hmc: Hmc, name: str) -> bool:
    c = copies(hmc, name)
    return len(c) == 1 and c[0][1] == "running"


def settled(hmc: Hmc, name: str) -> bool:
    return one_place(hmc, name) and not unfinished(hmc, name)


def rmc_run(hmc: Hmc, name: str, command: str, timeout: float = 15) -> tuple[int, str]:
    ch = hmc.rmc(name)
    try:
        res = ch.run(command, timeout=timeout)
        return res.rc, res.stdout + res.stderr
    finally:
        ch.close()


def rmc_answers(hmc: Hmc, name: str) -> bool:
    try:
        return rmc_run(hmc, name, "true", timeout=5)[0] == 0
    except LpmlabError:
        return False


def boot_id(hmc: Hmc, name: str) -> str | None:
    try:
        rc, out = rmc_run(hmc, name, "cat /proc/sys/kernel/random/boot_id")
    except LpmlabError:
        return None
    return out.strip() if rc == 0 else None


def load(hmc: Hmc, name: str, rate: int, wss: int) -> None:
    """The dirtier at the set rate and the disk writer running (started when they are not)."""
    ch = hmc.rmc(name)
    try:
        start_disk_writer(ch)
        set_dirty_workload(ch, rate, wss)
    finally:
        ch.close()


@dataclass
class PartCheck:
    """What one partition looked like after a run."""

    name: str
    migration: str = ""         # its migration record: id, state, downtime
    migration_state: str = ""
    downtime_ms: int | None = None
    after_migration: list[str] = field(default_factory=list)  # frame:state at its end
    after_recovery: list[str] = field(default_factory=list)
    rmc: bool = False
    boot_id_before: str | None = None
    boot_id_after: str | None = None
    acked_before: int | None = None
    acked_source: str = ""     # "ledger" (the fault's entry) or "bench" (before migrating)
    verify: str = ""
    last: int | None = None
    gaps: int | None = None
    bad: int | None = None
    writes_lost: int = 0
    writer_restarted: bool = False
    lost: bool = False
    doubled: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_partition(hmc: Hmc, pc: PartCheck) -> None:
    c = copies(hmc, pc.name)
    pc.after_recovery = fmt_copies(c)
    running = [f for f, s in c if s == "running"]
    if len(running) > 1 or len(c) > 1:
        pc.doubled = True
        pc.problems.append(f"defined on {len(c)} frames, running on {len(running)}: "
                           f"{pc.after_recovery}")
    if not running:
        pc.lost = True
        pc.problems.append(f"not running anywhere: {pc.after_recovery or 'not defined'}")
        return
    pc.rmc = rmc_answers(hmc, pc.name)
    if not pc.rmc:
        pc.problems.append("its OS does not answer RMC")
        return
    pc.boot_id_after = boot_id(hmc, pc.name)
    if pc.boot_id_before and pc.boot_id_after and pc.boot_id_before != pc.boot_id_after:
        pc.lost = True
        pc.problems.append(f"booted again (boot_id {pc.boot_id_before} -> "
                           f"{pc.boot_id_after}): its memory was lost")
    check_disk(hmc, pc)


def check_disk(hmc: Hmc, pc: PartCheck) -> None:
    rc, out = rmc_run(hmc, pc.name, "lpm-disk verify /dev/sda", timeout=90)
    m = VERIFY_RE.search(out)
    pc.verify = m.group(0) if m else out.strip()[-300:]
    if not m:
        pc.problems.append(f"lpm-disk verify gave no summary (rc {rc}): {pc.verify}")
        return
    _records, _first, last, gaps, bad = (int(x) for x in m.groups())
    pc.last, pc.gaps, pc.bad = last, gaps, bad
    if gaps or bad:
        pc.problems.append(f"disk records: {pc.verify}")
    if pc.acked_before is not None:
        pc.writes_lost = max(0, pc.acked_before - last)
        if pc.writes_lost:
            pc.problems.append(f"{pc.writes_lost} acknowledged write(s) lost: acknowledged "
                               f"{pc.acked_before} before the fault, last on disk {last}")
    rc, _ = rmc_run(hmc, pc.name, "kill -0 $(cat /run/lpm-disk.pid 2>/dev/null) 2>/dev/null")
    if rc != 0:
        ch = hmc.rmc(pc.name)
        try:
            start_disk_writer(ch)
        finally:
            ch.close()
        pc.writer_restarted = True


# -- one run --------------------------------------------------------------------------------

@dataclass
class Run:
    section: str
    case: str            # a Case label, or "(none)" for a soak migration without a fault
    index: int
    partitions: list[str]
    source: str
    dest: str
    target: str = ""     # the partition the fault was aimed at (-p)
    fault_id: str | None = None
    fault_state: str = ""
    fault_detail: str = ""
    injected: bool = False
    injected_after_s: float | None = None  # since the migration command started
    migrate: dict[str, Any] = field(default_factory=dict)
    interventions: list[dict[str, Any]] = field(default_factory=list)
    recovery: list[dict[str, Any]] = field(default_factory=list)
    forced: bool = False
    lab_up: bool = False
    recovery_s: float | None = None  # the bench's own look after the end not counted
    observe_s: float = 0.0             # that look (a dead libvirtd costs ~10 s of retries)
    checks: list[PartCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    survived: bool = False


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.topology: str | None = None  # -t of the lab up (None: the default lab)
        self.t0 = time.monotonic()

    def out_of_time(self) -> bool:
        """--budget: no new run starts after it (the lab is shared)."""
        return bool(self.args.budget) and time.monotonic() - self.t0 > self.args.budget

    # -- ledger --------------------------------------------------------------------------
    def entry(self, fault_id: str | None) -> F.FaultEntry | None:
        if fault_id is None:
            return None
        with hmc_open() as hmc:
            return next((e for e in F.Ledger(hmc.plan.dir).entries() if e.id == fault_id),
                        None)

    def fault_cmd(self, run: Run, argv: list[str], into: list[dict[str, Any]], *,
                  required: bool = True) -> str | None:
        """Run an ``lpmlab fault`` command that makes one entry; its ID. ``required``: its
        failure fails the run (arming must work; a fault injected now may come too late)."""
        log(f"  {' '.join(argv)}")
        c = cli(*argv, timeout=120)
        into.append(c.brief())
        if TRACEBACK in c.stderr:
            run.problems.append(f"traceback from {' '.join(argv)}")
        if c.rc != 0:
            log(f"    exit {c.rc}: {c.stderr.strip()[-300:]}")
            if required:
                run.problems.append(f"{' '.join(argv)} failed: exit {c.rc}: "
                                    f"{c.stderr.strip()[-400:]}")
            return None
        try:
            return str(json.loads(c.stdout)[0]["id"])
        except (ValueError, LookupError, TypeError):
            run.problems.append(f"{' '.join(argv)} printed no entry: {c.stdout[-200:]}")
            return None

    # -- the migration -------------------------------------------------------------------
    def migrate(self, run: Run, case: Case | None, now: bool) -> float:
        """Start the migration, fault it, wait for its end (intervening as a user would
        where it cannot end by itself); the monotonic time it ended."""
        argv = ["migrlpar", "-o", "m", "-m", run.source, "-t", run.dest, "-p",
                ",".join(run.partitions), "--noprogress", "--stall-timeout", STALL_TIMEOUT_S,
                *(case.options if case else ())]
        log(f"  {' '.join(argv)}")
        t0 = time.monotonic()
        proc = subprocess.Popen([str(BIN / argv[0]), *argv[1:]], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        if case is not None and now and case.fault != "hook-hang":
            self.inject_during_transfer(run, case, proc)
        stopped = killed = repaired = False
        while True:
            try:
                out, err = proc.communicate(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                pass
            spent = time.monotonic() - t0
            if case is not None and case.slow and not repaired and run.fault_id:
                e = self.entry(run.fault_id)
                if e and e.injected and time.time() - e.injected >= self.args.slow_grace:
                    log(f"  {self.args.slow_grace:g} s of a slow link: repairing it")
                    c = cli("lpmlab", "fault", "clear", run.fault_id, timeout=120)
                    run.interventions.append({**c.brief(), "why": "slow link repaired after "
                                              f"{self.args.slow_grace:g} s"})
                    repaired = True
            if spent > self.args.migration_timeout and not stopped:
                for n in run.partitions:  # -o s takes one partition
                    log(f"  still migrating after {spent:.0f} s: migrlpar -o s -p {n}")
                    c = cli("migrlpar", "-o", "s", "-m", run.source, "-p", n, timeout=120)
                    run.interventions.append({**c.brief(), "why": f"still running after "
                                              f"{spent:.0f} s"})
                stopped = True
            if spent > self.args.migration_timeout + 120 and not killed:
                proc.kill()
                killed = True
                run.problems.append(f"migrlpar -o m did not end {spent:.0f} s after it "
                                    "started (120 s after migrlpar -o s); the bench killed it")
        end = time.monotonic()
        run.migrate = Cmd(argv, proc.returncode, end - t0,
                          first_code(err) if proc.returncode else None, out, err).brief()
        if TRACEBACK in err:
            run.problems.append("traceback from migrlpar -o m")
        log(f"  migrlpar ended in {end - t0:.1f} s: exit {proc.returncode}"
            f"{' ' + (run.migrate['code'] or '') if proc.returncode else ''}")
        return end

    def inject_during_transfer(self, run: Run, case: Case,
                               proc: subprocess.Popen[str]) -> None:
        """The concurrent section: the fault now, once every partition's transfer has
        started (or one has ended), aimed (-p) at the one whose transfer started last, the
        likeliest to be still transferring when the fault command acts."""
        started: dict[str, float] = {}

        def transferring() -> bool:
            if proc.poll() is not None:
                return True
            with hmc_open() as hmc:
                recs = {n: hmc.active_migration(n) for n in run.partitions}
            started.clear()
            for n, r in recs.items():
                at = next((p["at"] for p in r.phases if p["phase"] == "transfer"), None) \
                    if r else None
                if at is not None:
                    started[n] = at
            return len(started) == len(recs) or (bool(started) and None in recs.values())
        try:
            wait_for("the partitions' transfers to start", transferring, TRANSFER_DEADLINE_S,
                     every_s=0.2)
        except RuntimeError as exc:
            run.problems.append(str(exc))
            return
        if proc.poll() is not None or not started:
            run.fault_detail = "not injected: the migration ended before its transfer began"
            return
        run.target = max(started, key=lambda n: started[n])
        run.fault_id = self.fault_cmd(run, case.fault_argv(None, run.target),
                                      run.interventions, required=False)
        if run.fault_id is None:
            err = run.interventions[-1]["stderr"].splitlines()
            run.fault_detail = f"not injected: {err[0] if err else 'no message'}"

    # -- recovery ------------------------------------------------------------------------
    def recover(self, run: Run, ended: float) -> None:
        """As a user: clear the fault, migrlpar -o r (--force if it says so), activate, and
        lab up only as the last resort; timed until every partition runs in one place and
        answers RMC."""
        e = self.entry(run.fault_id)
        if e is not None and e.state in (F.ARMED, F.IN_FORCE):
            c = self.step(run, "lpmlab", "fault", "clear", e.id)
            if c.rc != 0:
                run.problems.append(f"lpmlab fault clear {e.id} failed: exit {c.rc}: "
                                    f"{c.stderr.strip()[-400:]}")
        with hmc_open() as hmc:
            for pc in run.checks:
                if not settled(hmc, pc.name):
                    self.recover_partition(run, hmc, pc.name)
        try:
            self.wait_ready(run.partitions)
        except RuntimeError as exc:
            log(f"  {exc}")
            run.problems.append(f"HMC commands did not bring the partitions back: {exc}")
            try:
                self.lab_up(run)
                self.wait_ready(run.partitions)
            except RuntimeError as exc2:
                run.problems.append(f"not even after lab up: {exc2}")
                return
        run.recovery_s = time.monotonic() - ended
        with hmc_open() as hmc:
            for n in run.partitions:
                for r in unfinished(hmc, n):
                    run.problems.append(f"{n}: migration record {r.id} ({r.source_sys} -> "
                                        f"{r.dest_sys}) still '{r.state}' after recovery")

    def step(self, run: Run, *argv: str, timeout: float = 600) -> Cmd:
        log(f"  recovery: {' '.join(argv)}")
        c = cli(*argv, timeout=timeout)
        run.recovery.append(c.brief())
        if TRACEBACK in c.stderr:
            run.problems.append(f"traceback from {' '.join(argv)}")
        if c.rc != 0:
            log(f"    exit {c.rc}: {c.stderr.strip().splitlines()[0] if c.stderr.strip() else ''}")
        return c

    def recover_partition(self, run: Run, hmc: Hmc, name: str) -> None:
        recs = unfinished(hmc, name) or hmc.store.latest(name, 1)
        here = copies(hmc, name)
        frame = recs[0].source_sys if recs else (here[0][0] if here else run.source)
        argv = ("migrlpar", "-o", "r", "-m", frame, "-p", name)
        c = self.step(run, *argv)
        if c.rc != 0 and any(code in c.stderr for code in FORCE_CODES):
            run.forced = True
            c = self.step(run, *argv, "--force")
        if c.rc != 0:
            run.problems.append(f"{' '.join(argv)} failed: exit {c.rc}: "
                                f"{c.stderr.strip()[-400:]}")
        here = copies(hmc, name)
        if len(here) == 1 and here[0][1] == "shutoff":
            self.step(run, "chsysstate", "-m", here[0][0], "-r", "lpar", "-n", name, "-o", "on")

    def wait_ready(self, names: list[str]) -> None:
        def ready() -> bool:
            with hmc_open() as hmc:
                return all(one_place(hmc, n) and rmc_answers(hmc, n) for n in names)

        def evidence() -> str:
            with hmc_open() as hmc:
                return "; ".join(f"{n} on {fmt_copies(copies(hmc, n)) or 'no frame'}"
                                 f"{', unfinished record' if unfinished(hmc, n) else ''}"
                                 for n in names)
        wait_for("every partition to run in exactly one place and answer RMC", ready,
                 READY_DEADLINE_S, evidence)

    def lab_up(self, run: Run | None) -> None:
        argv = ["lpmlab", "lab", "up", *(["-t", self.topology] if self.topology else [])]
        log(f"  {' '.join(argv)}")
        c = cli(*argv, timeout=900)
        if run is not None:
            run.lab_up = True
            run.recovery.append(c.brief())
        if c.rc != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({c.rc}): {c.stderr[-800:]}")

    # -- a whole run ---------------------------------------------------------------------
    def run(self, section: str, index: int, case: Case | None, names: list[str],
            rate: int, wss: int) -> Run:
        now = section == "concurrent"
        with hmc_open() as hmc:
            src = copies(hmc, names[0])[0][0]
            dst = next(fp.frame.name for fp in hmc.frames() if fp.frame.name != src)
            run = Run(section, case.label if case else "(none)", index, names, src, dst,
                      names[0])
            for n in names:
                load(hmc, n, rate, wss)
                run.checks.append(PartCheck(n, boot_id_before=boot_id(hmc, n)))
        time.sleep(1.0)  # the writer and the dirtier going
        if case is not None and not now:
            run.fault_id = self.fault_cmd(run, case.fault_argv(case.when, names[0]),
                                          run.interventions)
        elif case is not None and case.fault == "hook-hang":
            run.fault_id = self.fault_cmd(run, case.fault_argv(None, names[0]),
                                          run.interventions)
        with hmc_open() as hmc:
            for pc in run.checks:  # a bound when no fault entry says better
                pc.acked_before, pc.acked_source = read_acked(hmc, pc.name), "bench"
        started = time.time()
        ended = self.migrate(run, case, now)
        t_obs = time.monotonic()
        with hmc_open() as hmc:
            for pc in run.checks:
                for r in hmc.store.latest(pc.name, 1):
                    pc.migration, pc.migration_state = r.id, r.state
                    pc.downtime_ms = (r.stats.get("job") or {}).get("downtime")
                after = copies(hmc, pc.name)
                pc.after_migration = fmt_copies(after)
                if sum(s == "running" for _, s in after) > 1:
                    pc.doubled = True
                    pc.problems.append(f"running on two frames at once: {pc.after_migration}")
        run.observe_s = time.monotonic() - t_obs
        e = self.entry(run.fault_id)
        if e is not None:
            run.fault_state, run.fault_detail = e.state, e.detail
            run.injected = e.injected is not None
            run.injected_after_s = round(e.injected - started, 2) if e.injected else None
            for pc in run.checks:
                if pc.name == run.target and e.acked_before is not None:
                    pc.acked_before, pc.acked_source = e.acked_before, "ledger"
        self.recover(run, ended + run.observe_s)
        with hmc_open() as hmc:
            for pc in run.checks:
                try:
                    check_partition(hmc, pc)
                except LpmlabError as exc:
                    pc.problems.append(f"check failed: {exc.message}")
        run.problems += [f"{pc.name}: {p}" for pc in run.checks for p in pc.problems]
        run.survived = not run.problems and not run.lab_up
        log(f"  {'survived' if run.survived else 'NOT survived'}; recovery "
            f"{'-' if run.recovery_s is None else f'{run.recovery_s:.1f} s'}"
            + "".join(f"\n    {p}" for p in run.problems))
        return run


# -- the lab --------------------------------------------------------------------------------

def running_topology() -> str | None:
    """The name of the lab that is up, or None."""
    from lpmlab import topology
    from lpmlab.fabric.lab import load_state

    try:
        _plan, state = load_state()
    except LpmlabError:
        return None
    return topology.parse(state.topology_text, source=state.topology_source).name


def ensure_lab(bench: Bench, quad: bool) -> None:
    want = "quad" if quad else "default"
    bench.topology = str(QUAD) if quad else None
    have = running_topology()
    if have == want:
        return
    if have is not None:
        log(f"lab {have} is up; the section needs {want}: lpmlab lab down")
        c = cli("lpmlab", "lab", "down", timeout=600)
        if c.rc != 0:
            raise RuntimeError(f"lpmlab lab down failed ({c.rc}): {c.stderr[-800:]}")
    log(f"lpmlab lab up{' -t ' + str(QUAD) if quad else ''}")
    bench.lab_up(None)


def restore_lab(bench: Bench, found: str | None) -> None:
    """The lab as the bench found it: the default one again, or none."""
    if found is None:
        log("no lab was up at the start: lpmlab lab down")
        c = cli("lpmlab", "lab", "down", timeout=600)
        if c.rc != 0:
            raise RuntimeError(f"lpmlab lab down failed ({c.rc}): {c.stderr[-800:]}")
        return
    ensure_lab(bench, quad=False)


def prepare(bench: Bench, names: list[str]) -> None:
    """Before a section: every partition healthy and all on one frame (the one most are on);
    not measured."""
    with hmc_open() as hmc:
        sick = [n for n in names if not settled(hmc, n)]
        active = [e.id for e in F.Ledger(hmc.plan.dir).active()]
    if active:
        raise RuntimeError(f"faults are armed or in force ({', '.join(active)}): clear them "
                           "('lpmlab fault clear') first")
    for n in sick:
        log(f"{n} is not running in exactly one place: recovering it before the section")
        scratch = Run("setup", "", 0, [n], "", "")
        with hmc_open() as hmc:
            bench.recover_partition(scratch, hmc, n)
    bench.wait_ready(names)
    with hmc_open() as hmc:
        frames = Counter(copies(hmc, n)[0][0] for n in names)
        home = frames.most_common(1)[0][0]
        away = [n for n in names if copies(hmc, n)[0][0] != home]
    if away:
        c = cli("migrlpar", "-o", "m", "-m", next(f for f in frames if f != home), "-t", home,
                "-p", ",".join(away), "--noprogress", timeout=600)
        if c.rc != 0:
            raise RuntimeError(f"gathering {away} on {home} failed: {c.stderr[-800:]}")


# -- sections -------------------------------------------------------------------------------

def matrix(bench: Bench, chosen: list[Case], save: Callable[[Run], None]) -> None:
    for case in chosen:
        for i in range(bench.args.runs):
            if bench.out_of_time():
                raise TimeoutError(f"--budget {bench.args.budget:g} s spent: no more runs")
            log(f"matrix: {case.label} run {i + 1}/{bench.args.runs}")
            prepare(bench, [PART])
            save(bench.run("matrix", i, case, [PART], bench.args.rate, bench.args.wss))


def concurrent(bench: Bench, chosen: list[Case], save: Callable[[Run], None]) -> None:
    for case in chosen:
        for i in range(bench.args.concurrent_runs):
            if bench.out_of_time():
                raise TimeoutError(f"--budget {bench.args.budget:g} s spent: no more runs")
            log(f"concurrent: {case.label} run {i + 1}/{bench.args.concurrent_runs}")
            prepare(bench, QUAD_PARTS)
            save(bench.run("concurrent", i, case, QUAD_PARTS, bench.args.concurrent_rate,
                           bench.args.concurrent_wss))


def soak_plan(n: int, chosen: list[Case], seed: int) -> list[Case | None]:
    """One random migration of every five gets a random fault case."""
    rng = random.Random(seed)
    plan: list[Case | None] = [None] * n
    for block in range(0, n, 5):
        size = min(5, n - block)
        plan[block + rng.randrange(size)] = rng.choice(chosen)
    return plan


def soak(bench: Bench, chosen: list[Case], save: Callable[[Run], None]) -> None:
    plan = soak_plan(bench.args.soak, chosen, bench.args.seed)
    for i, case in enumerate(plan):
        if bench.out_of_time():
            raise TimeoutError(f"--budget {bench.args.budget:g} s spent: no more runs")
        log(f"soak: migration {i + 1}/{len(plan)}: {case.label if case else 'no fault'}")
        prepare(bench, [PART])
        save(bench.run("soak", i, case, [PART], bench.args.rate, bench.args.wss))


# -- results --------------------------------------------------------------------------------

def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        rows.setdefault(r["case"], []).append(r)
    out = []
    for label, rs in rows.items():
        rec = [r["recovery_s"] for r in rs if r["recovery_s"] is not None]
        codes = Counter(r["migrate"].get("code") or f"exit {r['migrate'].get('rc')}"
                        for r in rs)
        out.append({
            "case": label, "runs": len(rs), "injected": sum(r["injected"] for r in rs),
            "survived": sum(r["survived"] for r in rs),
            "writes_lost": sum(c["writes_lost"] for r in rs for c in r["checks"]),
            "lost": sum(c["lost"] for r in rs for c in r["checks"]),
            "doubled": sum(c["doubled"] for r in rs for c in r["checks"]),
            "forced": sum(r["forced"] for r in rs), "lab_up": sum(r["lab_up"] for r in rs),
            "recovery_median_s": round(statistics.median(rec), 2) if rec else None,
            "recovery_max_s": round(max(rec), 2) if rec else None,
            "outcomes": dict(codes.most_common()),
        })
    return out


def table(title: str, rows: list[dict[str, Any]]) -> str:
    head = (f"{'fault':<28} {'runs':>4} {'inj':>4} {'survived':>9} {'acked lost':>10} "
            f"{'lost/doubled':>12} {'--force':>7} {'lab up':>6} {'recovery med/max s':>18}  "
            "migrlpar outcome")
    lines = [title, head, "-" * len(head)]

    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"
    for r in rows:
        pct = 100 * r["survived"] / r["runs"] if r["runs"] else 0
        outcome = ", ".join(f"{k} x{v}" for k, v in r["outcomes"].items())
        lines.append(f"{r['case']:<28} {r['runs']:>4} {r['injected']:>4} "
                     f"{r['survived']:>3} {pct:>4.0f}% {r['writes_lost']:>10} "
                     f"{r['lost']:>5}/{r['doubled']:<6} {r['forced']:>7} {r['lab_up']:>6} "
                     f"{s(r['recovery_median_s']):>9}/{s(r['recovery_max_s']):<8}  {outcome}")
    if not rows:
        lines.append("(no runs)")
    else:
        runs = sum(r["runs"] for r in rows)
        ok = sum(r["survived"] for r in rows)
        slow = [r["case"] for r in rows if (r["recovery_median_s"] or 0) > TARGET_RECOVERY_S]
        lines.append(f"targets: survived {ok}/{runs} ({100 * ok / runs:.0f} %, target 100 %); "
                     f"acknowledged writes lost {sum(r['writes_lost'] for r in rows)} "
                     f"(target 0); lost/doubled {sum(r['lost'] + r['doubled'] for r in rows)} "
                     f"(target 0); recovery median > {TARGET_RECOVERY_S:g} s: "
                     f"{', '.join(slow) or 'none'}")
    return "\n".join(lines)


def run_dict(r: Run) -> dict[str, Any]:
    d = asdict(r)
    for c, pc in zip(d["checks"], r.checks, strict=True):
        c["ok"] = pc.ok
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10, help="runs per fault case (matrix)")
    ap.add_argument("--faults", help="fault cases, comma separated (default all: "
                    f"{', '.join(cases('8'))})")
    ap.add_argument("--concurrent-runs", type=int, help="runs per fault case with 4 "
                    "concurrent migrations (default --runs)")
    ap.add_argument("--soak", type=int, default=100, help="back-to-back migrations")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"which to run (default {','.join(SECTIONS)})")
    ap.add_argument("--seed", type=int, default=11, help="the soak's random faults")
    ap.add_argument("--rate", type=int, default=64, help="lpar1's dirty rate, MiB/s")
    ap.add_argument("--wss", type=int, default=128, help="lpar1's working set, MiB")
    ap.add_argument("--concurrent-rate", type=int, default=32,
                    help="dirty rate of each of the 4 partitions (256 MiB each)")
    ap.add_argument("--concurrent-wss", type=int, default=64)
    ap.add_argument("--slow-rate", default="8", help="mover-link-slow's RATE, MiB/s")
    ap.add_argument("--slow-grace", type=float, default=20.0,
                    help="seconds of slow link before the bench repairs it")
    ap.add_argument("--migration-timeout", type=float, default=300.0,
                    help="a migration still running this long is stopped (migrlpar -o s)")
    ap.add_argument("--keep-lab", action="store_true",
                    help="leave the four-partition lab up after the concurrent section")
    ap.add_argument("--budget", type=float, default=0.0,
                    help="seconds after which no new run starts (0 = no limit; a shared lab)")
    ap.add_argument("--json", type=Path, default=ROOT / "docs/faults-results.json")
    args = ap.parse_args()
    lpmlab_log.configure()  # the library's log lines go to stderr, never into the tables
    all_cases = cases(args.slow_rate)
    sections = [s for s in args.sections.split(",") if s]
    if not set(sections) <= set(SECTIONS):
        sys.exit(f"--sections: choose from {', '.join(SECTIONS)}")
    labels = args.faults.split(",") if args.faults else list(all_cases)
    unknown = [x for x in labels if x not in all_cases]
    if unknown:
        sys.exit(f"--faults: unknown {', '.join(unknown)}; choose from {', '.join(all_cases)}")
    chosen = [all_cases[x] for x in labels]
    if args.concurrent_runs is None:
        args.concurrent_runs = args.runs

    results: dict[str, Any] = {
        "meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                 "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                 "cases": {c.label: asdict(c) for c in chosen},
                 "options": {k: str(v) for k, v in vars(args).items()}},
        "runs": {s: [] for s in SECTIONS}, "summary": {}, "errors": []}
    if args.json.exists():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            kept = json.loads(args.json.read_text())
            for s in SECTIONS:
                if s not in sections:
                    results["runs"][s] = kept["runs"].get(s, [])

    def write() -> None:
        results["summary"] = {s: summarize(results["runs"][s]) for s in SECTIONS}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))

    def saver(section: str) -> Callable[[Run], None]:
        def save(r: Run) -> None:
            results["runs"][section].append(run_dict(r))
            write()
        return save

    bench = Bench(args)
    found = running_topology()
    order = [s for s in ("matrix", "soak", "concurrent") if s in sections]
    try:
        for section in order:
            quad = section == "concurrent"
            ensure_lab(bench, quad)
            names = QUAD_PARTS if quad else [PART]
            prepare(bench, names)
            log(f"section {section}")
            {"matrix": matrix, "soak": soak, "concurrent": concurrent}[section](
                bench, chosen, saver(section))
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - keep what was measured
        results["errors"].append(f"{type(exc).__name__}: {exc}")
        log(f"error: {type(exc).__name__}: {exc}")
    finally:
        if "concurrent" in order and not args.keep_lab and found != "quad":
            try:
                restore_lab(bench, found)
            except Exception as exc:  # noqa: BLE001 - said, and the results still written
                results["errors"].append(f"bringing the lab back: {exc}")
                log(f"error: bringing the lab back: {exc}")
        write()
    titles = {"matrix": f"matrix: each fault during a loaded migration of {PART} "
                        f"({args.rate} MiB/s over {args.wss} MiB, disk writer running)",
              "concurrent": "concurrent: each fault injected while 4 partitions migrate "
                            f"({args.concurrent_rate} MiB/s over {args.concurrent_wss} MiB "
                            "each)",
              "soak": f"soak: {args.soak} back-to-back migrations of {PART}, a random fault "
                      f"in one of every five (seed {args.seed})"}
    for s in order:
        print(table(titles[s], results["summary"][s]))
        print()
    for e in results["errors"]:
        print(f"error: {e}")
    print(f"runs as JSON: {args.json}")
    if results["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
