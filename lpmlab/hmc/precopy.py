"""Pre-copy convergence: the controls a migration runs with, named schedules, the
non-convergence warning, and the telemetry recorder that stores samples with the record.

LPM itself has no post-copy and no knobs for any of this: these are lpmlab's, so a lab can
show why a busy partition does not converge and what each lever changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from lpmlab.errors import UsageError

Sample = dict[str, Any]
MIB = 1024 * 1024
# the largest --mover-bandwidth/--max-speed (MiB/s) and --max-downtime (ms): far above what
# any lab link or guest needs, far below what libvirt's and tc's integers hold
CONTROL_MAX = 1_000_000
DEFAULT_DOWNTIME_MS = 300   # QEMU's downtime-limit, which libvirt leaves alone
PROGRESS = 0.9              # a pass progresses when it leaves < 90 % of the best so far
DEFAULT_STALL_S = 30.0      # a stream that moves nothing this long is given up (0 = never)


@dataclass(frozen=True)
class Schedule:
    """What to do, iteration by iteration, while pre-copy makes no progress."""

    name: str
    description: str
    grow_downtime: bool = False   # double the allowed downtime per stalled iteration
    cap_ms: int = 5000            # ... up to this
    then: str | None = None       # "abort" | "postcopy" once patience runs out
    patience: int = 3             # stalled iterations (after the cap, when growing)


SCHEDULES: dict[str, Schedule] = {s.name: s for s in (
    Schedule("none", "pre-copy with the set limits until it converges or is stopped"),
    Schedule("stepped-downtime", "double the allowed downtime at each iteration without "
             "progress, up to 5000 ms, and keep going", grow_downtime=True),
    Schedule("stepped-downtime-abort", "as stepped-downtime, then stop the migration after 3 "
             "more iterations without progress (the partition stays on the source)",
             grow_downtime=True, then="abort"),
    Schedule("stepped-downtime-postcopy", "as stepped-downtime, then switch to post-copy "
             "after 3 more iterations without progress (needs --postcopy)",
             grow_downtime=True, then="postcopy"),
    Schedule("abort-on-stall", "stop the migration after 5 iterations without progress",
             then="abort", patience=5),
    Schedule("postcopy-on-stall", "switch to post-copy after 3 iterations without progress "
             "(needs --postcopy; the default schedule with --postcopy)", then="postcopy"),
)}


@dataclass(frozen=True)
class Controls:
    """The convergence levers of one migration (all off = plain pre-copy, as LPM does)."""

    mover_bandwidth_mib: float | None = None  # tc tbf on the source MSP's mover link
    max_speed_mib: int | None = None          # libvirt's migration bandwidth (QEMU max-bandwidth)
    max_downtime_ms: int | None = None        # QEMU downtime-limit
    auto_converge: bool = False               # QEMU throttles the vCPUs while it falls behind
    postcopy: bool = False                    # opt-in: LPM has no post-copy
    schedule: str = "none"
    stall_timeout_s: float = DEFAULT_STALL_S  # no byte sent this long ends it (0 = never)

    def __post_init__(self) -> None:
        """Controls that cannot work never exist: UsageError before anything starts."""
        if self.schedule == "none" and self.postcopy:
            object.__setattr__(self, "schedule", "postcopy-on-stall")
        if self.schedule not in SCHEDULES:
            raise UsageError(f"unknown convergence schedule {self.schedule!r}",
                             fix=f"choose one of: {', '.join(SCHEDULES)}")
        if self.plan.then == "postcopy" and not self.postcopy:
            raise UsageError(f"schedule {self.schedule} switches to post-copy, which is "
                             "opt-in (PowerVM LPM has no post-copy)",
                             fix="add --postcopy, or choose stepped-downtime-abort")
        for name, value, lo in (("--mover-bandwidth", self.mover_bandwidth_mib, 1),
                                ("--max-speed", self.max_speed_mib, 1),
                                ("--max-downtime", self.max_downtime_ms, 1)):
            # NaN compares false both ways, and libvirt and tc take bounded integers: a
            # value out of range must fail here, not halfway through a migration
            if value is not None and not lo <= value <= CONTROL_MAX:
                raise UsageError(f"{name} {value}: must be a number from {lo} to {CONTROL_MAX}",
                                 fix=f"give a number from {lo} to {CONTROL_MAX}, or leave "
                                     f"{name} out")
        if not 0 <= self.stall_timeout_s <= 86400:
            raise UsageError(f"--stall-timeout {self.stall_timeout_s:g}: must be 0 (never) to "
                             "86400 seconds", fix="give the seconds without progress after "
                             f"which the migration ends (default {DEFAULT_STALL_S:g})")

    @property
    def plan(self) -> Schedule:
        return SCHEDULES[self.schedule]

    @property
    def mover_mbit(self) -> int | None:
        if self.mover_bandwidth_mib is None:
            return None
        return max(1, round(self.mover_bandwidth_mib * MIB * 8 / 1_000_000))

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "schedule_description": self.plan.description}


@dataclass
class Action:
    kind: str          # "downtime" | "postcopy" | "abort"
    value: int | None = None
    reason: str = ""


@dataclass
class PassProgress:
    """Whether each pre-copy pass made progress: left less than 90 % of the smallest
    remaining seen at a pass so far. The first pass sends all memory and is not judged."""

    best: int | None = None

    def judge(self, s: Sample) -> bool | None:
        """True: progress; False: a stall; None: not a pass that can be judged."""
        remaining = s.get("data_remaining", s.get("memory_remaining"))
        if s.get("kind") != "iteration" or remaining is None or (s.get("iteration") or 0) < 2:
            return None
        made = self.best is None or remaining < self.best * PROGRESS
        self.best = remaining if self.best is None else min(self.best, remaining)
        return made


@dataclass
class ScheduleRunner:
    """Turns iteration samples into the schedule's actions; pure, so it is unit-tested."""

    controls: Controls
    downtime_ms: int = 0
    progress: PassProgress = field(default_factory=PassProgress)
    stalls: int = 0
    done: bool = False
    log: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.downtime_ms = self.controls.max_downtime_ms or DEFAULT_DOWNTIME_MS

    def initial(self) -> list[Action]:
        if self.controls.max_downtime_ms:
            return [Action("downtime", self.downtime_ms, "--max-downtime")]
        return []

    def on_sample(self, s: Sample) -> list[Action]:
        if self.done:
            return []
        made = self.progress.judge(s)
        if made is None:
            return []
        if made:
            self.stalls = 0
            return []
        plan = self.controls.plan
        it = s.get("iteration")
        if plan.grow_downtime and self.downtime_ms < plan.cap_ms:
            self.downtime_ms = min(self.downtime_ms * 2, plan.cap_ms)
            return [self._did(Action("downtime", self.downtime_ms,
                                     f"iteration {it} made no progress"), s)]
        self.stalls += 1
        if plan.then and self.stalls >= plan.patience:
            self.done = True
            why = (f"{self.stalls} iterations without progress"
                   + (f" at the {plan.cap_ms} ms cap" if plan.grow_downtime else ""))
            return [self._did(Action(plan.then, None, why), s)]
        return []

    def _did(self, a: Action, s: Sample) -> Action:
        self.log.append({"t": s.get("t"), "iteration": s.get("iteration"), "action": a.kind,
                         "value": a.value, "reason": a.reason})
        return a


@dataclass
class StallWatch:
    """Ends a transfer whose stream stopped moving, as a real HMC fails a migration by
    itself: no byte sent for ``timeout_s`` (a cut mover link, a dead relay)."""

    timeout_s: float
    sent: int = -1
    since: float | None = None      # sample time of the last progress
    stalled_s: float = 0.0
    fired: bool = False

    def on_sample(self, s: Sample) -> Action | None:
        t = s.get("t")
        if self.fired or t is None or s.get("kind") == "completed":
            return None
        sent = s.get("data_processed")
        if sent is not None and sent > self.sent:
            self.sent, self.since = sent, t
        if self.since is None:
            self.since = t
        return self.check(t)

    def check(self, now: float) -> Action | None:
        """The same judgement from a clock alone: a stream that blocks can block the
        hypervisor's job statistics too, and then no sample comes at all."""
        if self.fired:
            return None
        if self.since is None:
            self.since = now
        self.stalled_s = max(0.0, now - self.since)
        if self.timeout_s and self.stalled_s >= self.timeout_s:
            self.fired = True
            return Action("stall", None, f"no data moved for {self.stalled_s:.0f} s "
                                         f"(--stall-timeout {self.timeout_s:g})")
        return None


def fmt_rate(bps: float | None) -> str:
    return "-" if bps is None else f"{bps / MIB:.1f} MiB/s"


def fmt_mib(n: float | None) -> str:
    return "-" if n is None else f"{n / MIB:.1f} MiB"


@dataclass
class ConvergenceWatch:
    """Says, once, when the partition dirties memory faster than the stream carries it."""

    partition: str
    controls: Controls
    behind: int = 0
    progress: PassProgress = field(default_factory=PassProgress)
    warning: str | None = None

    def on_sample(self, s: Sample, downtime_ms: int | None = None) -> str | None:
        if self.warning is not None or s.get("kind") != "iteration":
            return None
        dirty = s.get("pass_dirty_rate_bps", s.get("dirty_rate_bps"))
        bw = s.get("bandwidth_bps")
        if dirty is None or not bw:
            return None
        progressed = self.progress.judge(s)
        if progressed is None:
            return None
        self.behind = self.behind + 1 if dirty >= bw * 0.95 and not progressed else 0
        if self.behind < 2:
            return None
        c = self.controls
        it, remaining = s["iteration"], s.get("data_remaining", s.get("memory_remaining"))
        link = (f"the mover link, capped at {c.mover_bandwidth_mib:g} MiB/s "
                "(--mover-bandwidth)," if c.mover_bandwidth_mib else "the mover link")
        fixes = [f"lower the partition's dirty rate (lpmlab workload {self.partition} "
                 f"--rate {max(1, int(bw / MIB * 0.5))})"]
        if c.mover_bandwidth_mib or c.max_speed_mib:
            fixes.append("raise or remove --mover-bandwidth / --max-speed")
        fixes.append("allow more downtime (--max-downtime MS or --schedule stepped-downtime)")
        if not c.auto_converge:
            fixes.append("let QEMU throttle the partition (--auto-converge)")
        if not c.postcopy:
            fixes.append("or, outside what LPM can do, --postcopy")
        self.warning = (
            f"warning: {self.partition} dirties memory at {fmt_rate(dirty)} but {link} "
            f"carries {fmt_rate(bw)}: pre-copy is not converging (iteration {it}, "
            f"{fmt_mib(remaining)} left; allowed downtime "
            f"{downtime_ms or c.max_downtime_ms or DEFAULT_DOWNTIME_MS} ms"
            + (f", throttle {s['throttle_pct']} %" if s.get("throttle_pct") else "")
            + "). Fix: " + "; ".join(fixes) + ".")
        return self.warning


class TelemetryObserver(Protocol):
    """Who wants the samples as they come (the live progress of migrlpar)."""

    def sample(self, partition: str, sample: Sample) -> None: ...

    def warning(self, partition: str, text: str) -> None: ...


class SampleSink(Protocol):
    def add_samples(self, mid: str, samples: list[Sample]) -> None: ...


class Telemetry:
    """Collects one migration's samples, stores them (flushed about twice a second, so
    ``lslparmigr`` in another process sees live bytes), runs the schedule and the
    non-convergence watch, and tells an observer."""

    FLUSH_S = 0.5

    def __init__(self, partition: str, mid: str, store: SampleSink, controls: Controls,
                 observer: TelemetryObserver | None = None) -> None:
        self.partition = partition
        self.mid = mid
        self.store = store
        self.controls = controls
        self.observer = observer
        self.samples: list[Sample] = []
        self.runner = ScheduleRunner(controls)
        self.watch = ConvergenceWatch(partition, controls)
        self.stall = StallWatch(controls.stall_timeout_s)
        self.taps: list[Callable[[Sample], None]] = []  # e.g. the armed faults' points
        self.act: Callable[[Action], None] = lambda a: None
        self._flushed = 0
        self._last_flush = 0.0
        self._lock = threading.Lock()
        self.errors: list[str] = []
        self._last_sync: Sample | None = None

    def on_sample(self, s: Sample) -> None:
        if s.get("kind") == "iteration":
            # the pass that just ended at this sync, for the live progress and the warning
            s.update(pass_dirty(self._last_sync, s))
            self._last_sync = s
        with self._lock:
            self.samples.append(s)
        if self.observer is not None:
            self.observer.sample(self.partition, s)
        text = self.watch.on_sample(s, self.runner.downtime_ms)
        if text and self.observer is not None:
            self.observer.warning(self.partition, text)
        stall = self.stall.on_sample(s)
        if self.stall.stalled_s >= 1.0 and s.get("kind") != "completed":
            s["stalled_s"] = round(self.stall.stalled_s, 1)  # lslparmigr shows it
        for action in [*self.runner.on_sample(s), *([stall] if stall else [])]:
            try:
                self.act(action)
            except Exception as exc:  # noqa: BLE001 - recorded; the migration goes on
                self.errors.append(f"{action.kind}: {exc}")
        for tap in self.taps:
            tap(s)
        if time.monotonic() - self._last_flush >= self.FLUSH_S or s.get("kind") == "completed":
            self.flush()

    def note_stall(self, t: float) -> None:
        """A stall seen by the clock while no sample comes (the job statistics are blocked):
        stored as a sample so ``lslparmigr`` in another process shows it."""
        with self._lock:
            last = next((x for x in reversed(self.samples) if "data_processed" in x), {})
            if self.samples and t - float(self.samples[-1].get("t") or 0) < 1.0:
                return
            self.samples.append({"t": round(t, 4), "kind": "stall",
                                 "data_processed": last.get("data_processed", 0),
                                 "data_remaining": last.get("data_remaining", 0),
                                 "stalled_s": round(self.stall.stalled_s, 1)})
        self.flush()

    def flush(self) -> None:
        with self._lock:
            new = self.samples[self._flushed:]
            self._flushed = len(self.samples)
        self._last_flush = time.monotonic()
        if new:
            self.store.add_samples(self.mid, new)

    def summary(self, wall_s: float | None = None) -> dict[str, Any]:
        return summarize(self.samples, wall_s)

    def record(self) -> dict[str, Any]:
        """What goes into the migration record's stats (the samples have their own table;
        the controls are the record's ``stats.controls``)."""
        return {"schedule_actions": self.runner.log,
                "convergence_warning": self.watch.warning, "control_errors": self.errors,
                "stalled": self.stall.fired,
                "samples": len(self.samples)}


PASS_SOURCE = ("pages found dirty at the next sync: remaining after it, less remaining "
               "after the previous sync minus the pages sent since")


def pass_dirty(prev: Sample | None, cur: Sample) -> dict[str, Any]:
    """What the pre-copy pass that began at sync ``prev`` and ended at sync ``cur`` (two
    iteration samples) found the partition had dirtied, and the rate it dirtied at.

    QEMU syncs its dirty bitmap when what is left to send falls below what it can send within
    the allowed downtime, not when a pass has sent everything: right after a sync, the bytes
    remaining are the pages the pass had not sent yet plus the pages found dirty. So the dirty
    ones are the remaining bytes after the sync, less those before it: the remaining after
    the previous sync minus the pages sent since (normal and zero pages, both counted by
    QEMU). Both samples are read a moment after their syncs; what was sent in that moment
    leaves the remaining bytes and joins the sent pages alike, so it cancels out.
    QEMU's own dirty-pages-rate is averaged over about a second and stays 0 for shorter
    passes; this holds for any pass (one shorter than the dirtier's 10 ms step may find 0).
    """
    if prev is None or cur.get("kind") != "iteration" or prev.get("t") is None:
        return {}
    keys = ("memory_remaining", "normal_pages", "zero_pages")
    if any(s.get(k) is None for s in (prev, cur) for k in keys):
        return {}  # a burst of syncs shared one read: this pass has no numbers
    seconds = float(cur["t"]) - float(prev["t"])
    if seconds <= 0:
        return {}
    page = float(cur.get("page_size") or 4096)
    sent_pages = (cur["normal_pages"] + cur["zero_pages"]) - (prev["normal_pages"]
                                                             + prev["zero_pages"])
    found = max(0.0, float(cur["memory_remaining"]) + sent_pages * page
                - float(prev["memory_remaining"]))
    return {"pass_dirty_bytes": int(found), "pass_s": round(seconds, 4),
            "pass_dirty_rate_bps": found / seconds}


def passes(samples: list[Sample]) -> list[dict[str, Any]]:
    """One row per pre-copy pass: when it began, how long it ran, what it sent, what it
    found dirty (the derived dirty rate, with its source) and QEMU's own figure beside it."""
    syncs = sorted((s for s in samples if s.get("kind") == "iteration" and s.get("t") is not None),
                   key=lambda s: s["t"])
    done = next((s for s in reversed(samples) if s.get("kind") == "completed"), None)
    out = []
    for i, start in enumerate(syncs):
        end = syncs[i + 1] if i + 1 < len(syncs) else None
        derived = pass_dirty(start, end) if end is not None else {}
        stop = end or done
        qemu = [s.get("dirty_rate_bps") for s in samples
                if s.get("t") is not None and start["t"] <= s["t"] <= (stop or start)["t"]
                and s.get("dirty_rate_bps") is not None and s.get("kind") != "completed"]
        sent = None
        if stop is not None and stop.get("data_processed") is not None \
                and start.get("data_processed") is not None:
            sent = int(stop["data_processed"]) - int(start["data_processed"])
        out.append({
            "iteration": start.get("iteration"), "t": start["t"],
            "seconds": derived.get("pass_s", round(stop["t"] - start["t"], 4) if stop else None),
            "sent_bytes": sent, "dirty_bytes": derived.get("pass_dirty_bytes"),
            "dirty_rate_bps": derived.get("pass_dirty_rate_bps"),
            "dirty_rate_source": PASS_SOURCE if derived else None,
            "qemu_dirty_rate_bps": qemu[-1] if qemu else None,
        })
    return out


def summarize(samples: list[Sample], wall_s: float | None = None) -> dict[str, Any]:
    """The numbers a report leads with, from the samples alone."""
    done = next((s for s in reversed(samples) if s.get("kind") == "completed"), None)
    its = [s["iteration"] for s in samples if s.get("iteration") is not None]
    last = done or (samples[-1] if samples else {})
    pass_rates = [p["dirty_rate_bps"] for p in passes(samples)]
    out: dict[str, Any] = {
        "iterations": max(its) if its else None,
        "iteration_events": sum(1 for s in samples if s.get("kind") == "iteration"),
        "downtime_ms": done.get("downtime_ms") if done else None,
        "bytes_sent": last.get("data_processed"),
        "memory_total": last.get("memory_total"),
        "setup_time_ms": last.get("setup_time_ms"),
        "transfer_s": (round(done["elapsed_ms"] / 1000.0, 3)
                       if done and done.get("elapsed_ms") is not None else None),
        "total_time_s": wall_s,
        "max_throttle_pct": max((s.get("throttle_pct") or 0 for s in samples), default=0),
        "max_dirty_rate_bps": max((s.get("dirty_rate_bps") or 0 for s in samples), default=0),
        # a pass that found nothing dirty counts: an idle partition's mean is 0
        "pass_dirty_rate_bps": _mean_of_all(pass_rates),
        "max_pass_dirty_rate_bps": max((r or 0 for r in pass_rates),
                                       default=0),
        "zero_pages": last.get("zero_pages"), "normal_pages": last.get("normal_pages"),
        "normal_bytes": last.get("normal_bytes"),
        "mean_bandwidth_bps": _mean([s.get("bandwidth_bps") for s in samples
                                     if s.get("kind") != "completed"]),
        "samples": len(samples),
    }
    return out


def _mean_of_all(xs: list[Any]) -> float | None:
    vals = [float(x) for x in xs if x is not None]
    return round(sum(vals) / len(vals), 1) if vals else None


def _mean(xs: list[Any]) -> float | None:
    vals = [float(x) for x in xs if x]
    return round(sum(vals) / len(vals), 1) if vals else None


def downtime_window(samples: list[Sample]) -> list[float] | None:
    """[start, end] seconds of the final pause: it ends when the job completes."""
    done = next((s for s in reversed(samples) if s.get("kind") == "completed"), None)
    if not done or done.get("downtime_ms") is None:
        return None
    end = float(done["t"])
    return [round(max(0.0, end - done["downtime_ms"] / 1000.0), 4), end]
