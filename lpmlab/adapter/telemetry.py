"""Pre-copy telemetry from libvirt: iteration and job-completed events, plus polled job stats.

Every pass QEMU makes over guest memory raises libvirt's migration-iteration event; each
event becomes a sample, so no iteration is missed however fast they come. Statistics are
read at each event (once for a burst of events that arrived while the last read ran) and
polled every ``poll_s`` between events. The job-completed event carries the final
statistics, including the real downtime.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import libvirt

from lpmlab.errors import HypervisorError

Sample = dict[str, Any]

# libvirt job statistics -> sample fields (bytes unless named otherwise)
_FIELDS = {
    "data_total": "data_total", "data_processed": "data_processed",
    "data_remaining": "data_remaining", "memory_total": "memory_total",
    "memory_processed": "memory_processed", "memory_remaining": "memory_remaining",
    "memory_bps": "bandwidth_bps", "downtime": "downtime_ms", "setup_time": "setup_time_ms",
    "auto_converge_throttle": "throttle_pct", "time_elapsed": "elapsed_ms",
    "memory_iteration": "stats_iteration", "memory_postcopy_requests": "postcopy_requests",
    "memory_constant": "zero_pages", "memory_normal": "normal_pages",
    "memory_normal_bytes": "normal_bytes", "memory_page_size": "page_size",
}


def sample_from_stats(stats: dict[str, Any], *, t: float, kind: str,
                      iteration: int | None) -> Sample:
    """One telemetry sample from a jobStats() dict; the dirty rate in bytes/s (libvirt gives
    pages/s). While the job runs ``downtime`` is QEMU's expected downtime, after it the real
    one: the two go to different fields."""
    s: Sample = {"t": round(t, 4), "kind": kind, "iteration": iteration}
    for key, name in _FIELDS.items():
        if key in stats:
            s[name] = stats[key]
    if "downtime_ms" in s and kind != "completed":
        s["expected_downtime_ms"] = s.pop("downtime_ms")
    pages, size = stats.get("memory_dirty_rate"), stats.get("memory_page_size")
    if pages is not None:
        s["dirty_rate_bps"] = float(pages) * float(size or 4096)
    if kind == "completed":
        s.pop("dirty_rate_bps", None)  # the last pass's rate, not the job's: misleading
    if s.get("iteration") is None and "stats_iteration" in s:
        s["iteration"] = s["stats_iteration"]
    return s


class JobWatcher:
    """Watch one domain's outgoing migration job on its source connection.

    ``on_sample(sample)`` is called from the watcher's own thread (never libvirt's event
    loop, which must not block). ``start()`` before the migration call, ``stop()`` after it.
    """

    def __init__(self, dom: libvirt.virDomain, on_sample: Callable[[Sample], None], *,
                 on_job: Callable[[], None] | None = None, poll_s: float = 0.5,
                 first_poll_s: float = 0.05,
                 on_switchover: Callable[[], None] | None = None) -> None:
        self.dom = dom
        self.on_job = on_job  # once, when the job is first seen (controls set mid-job)
        # when the source pauses for the last pass (libvirt's suspended/migrated event)
        self.on_switchover = on_switchover
        self.first_poll_s = first_poll_s
        self.conn = dom.connect()
        self.on_sample = on_sample
        self.poll_s = poll_s
        self.t0 = time.monotonic()
        self.events: list[tuple[float, int]] = []   # (t, iteration) of every event
        self.completed: Sample | None = None
        self._pending: list[tuple[float, str, Any]] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._callbacks: list[int] = []
        self._thread: threading.Thread | None = None
        self._last_read = -1.0
        self.job_seen = threading.Event()
        self.job_gone = False  # the job was seen and has ended (no stall can follow)
        self.errors: list[str] = []
        self._job_start: float | None = None
        self._last_emitted = 0.0

    def now(self) -> float:
        return time.monotonic() - self.t0

    # libvirt's event loop thread: record and hand over, nothing else
    def _on_iteration(self, _conn: Any, dom: Any, iteration: int, _opaque: Any) -> None:
        if dom.UUIDString() != self._uuid:
            return
        with self._cond:
            t = self.now()
            self.events.append((t, iteration))
            self._pending.append((t, "iteration", iteration))
            self._cond.notify()

    def _on_lifecycle(self, _conn: Any, dom: Any, event: int, detail: int,
                      _opaque: Any) -> None:
        if (dom.UUIDString() != self._uuid or event != libvirt.VIR_DOMAIN_EVENT_SUSPENDED
                or detail != libvirt.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED):
            return
        with self._cond:
            self._pending.append((self.now(), "switchover", None))
            self._cond.notify()

    def _on_completed(self, _conn: Any, dom: Any, params: dict[str, Any], _opaque: Any) -> None:
        if dom.UUIDString() != self._uuid:
            return
        with self._cond:
            self._pending.append((self.now(), "completed", dict(params)))
            self._cond.notify()

    def start(self) -> None:
        self._uuid = self.dom.UUIDString()
        self.t0 = time.monotonic()
        try:
            self._callbacks = [
                self.conn.domainEventRegisterAny(
                    self.dom, libvirt.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION,
                    self._on_iteration, None),
                self.conn.domainEventRegisterAny(
                    self.dom, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                    self._on_completed, None),
            ]
            if self.on_switchover is not None:
                self._callbacks.append(self.conn.domainEventRegisterAny(
                    self.dom, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None))
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"cannot watch the migration of {self.dom.name()}: {exc}") \
                from exc
        self._thread = threading.Thread(target=self._run, name="lpm-telemetry", daemon=True)
        self._thread.start()

    def stop(self, wait_completed_s: float = 1.0) -> None:
        """Stop watching; give the job-completed event a moment to arrive first."""
        deadline = time.monotonic() + wait_completed_s
        with self._cond:
            while self.completed is None and time.monotonic() < deadline:
                if any(kind == "completed" for _, kind, _ in self._pending):
                    break
                self._cond.wait(0.05)
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(5.0)
        for cid in self._callbacks:
            with contextlib.suppress(libvirt.libvirtError):
                self.conn.domainEventDeregisterAny(cid)
        self._callbacks = []

    def _read(self) -> dict[str, Any]:
        self._last_read = self.now()
        try:
            stats = self.dom.jobStats(0)
        except libvirt.libvirtError:
            return {}
        if stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) == libvirt.VIR_DOMAIN_JOB_NONE:
            if self.job_seen.is_set():
                self.job_gone = True  # libvirt's finish and confirm: nothing moves any more
            return {}
        if self._job_start is None and "time_elapsed" in stats:
            self._job_start = self._last_read - stats["time_elapsed"] / 1000.0
        if not self.job_seen.is_set():
            self.job_seen.set()
            if self.on_job is not None:
                try:
                    self.on_job()
                except Exception as exc:  # noqa: BLE001 - recorded; the migration goes on
                    self.errors.append(str(exc))
        return stats

    def _run(self) -> None:
        next_poll = self.now()
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    wait = next_poll - self.now()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                pending, self._pending = self._pending, []
                stopping = self._stopping
            if pending:
                self._handle(pending)
            elif not stopping and self.completed is None:
                # after job-completed the job is over: libvirt still shows it while it
                # finishes and confirms, and a poll then would come after the final sample
                stats = self._read()
                if stats.get("data_total"):  # zero while libvirt still sets the job up
                    self._emit(sample_from_stats(stats, t=self._last_read, kind="poll",
                                                 iteration=None))
            if stopping:
                return
            # until the job shows up, look often: controls are set as soon as it exists
            next_poll = self.now() + (self.poll_s if self.job_seen.is_set()
                                      else self.first_poll_s)

    def _handle(self, pending: list[tuple[float, str, Any]]) -> None:
        iterations = [p for p in pending if p[1] == "iteration"]
        # one read stands for a burst of events: the latest gets the numbers, the others
        # are still samples (time and iteration), so none is missed
        stats: dict[str, Any] = {}
        read_at = 0.0
        if iterations:
            stats = self._read()
            read_at = self._last_read
        for item in pending:
            t, kind, payload = item
            if kind == "switchover":
                if self.on_switchover is not None:
                    try:
                        self.on_switchover()
                    except Exception as exc:  # noqa: BLE001 - recorded; the watch goes on
                        self.errors.append(f"switchover: {exc}")
                continue
            if kind == "iteration":
                if item is iterations[-1] and stats:
                    sample = sample_from_stats(stats, t=t, kind="iteration", iteration=payload)
                    # the numbers were read a moment after the sync: the pass derivation
                    # corrects what the stream sent meanwhile
                    sample["t_read"] = round(read_at, 4)
                else:
                    sample = {"t": round(t, 4), "kind": "iteration", "iteration": payload}
                self._emit(sample)
            else:
                sample = sample_from_stats(payload, t=self.job_end(payload, t), kind="completed",
                                           iteration=None)
                sample["t_event"] = round(t, 4)
                if self.events:
                    sample["iteration"] = self.events[-1][1]
                self.completed = sample
                self._emit(sample)

    def job_end(self, final: dict[str, Any], fallback: float) -> float:
        """When the job ended, on this watcher's clock. The completed event comes only after
        libvirt's finish and confirm phases (seconds later): the job's own elapsed time,
        counted from when the job started, says when the transfer and pause really ended
        (never before a sample already taken: the start is estimated to a read's latency)."""
        if self._job_start is None or final.get("time_elapsed") is None:
            return fallback
        end = self._job_start + final["time_elapsed"] / 1000.0
        return min(fallback, max(end, self._last_emitted))

    def _emit(self, sample: Sample) -> None:
        self._last_emitted = max(self._last_emitted, float(sample.get("t") or 0.0))
        try:
            self.on_sample(sample)
        except Exception:  # noqa: BLE001 - a consumer's bug must not stop the telemetry
            import logging
            logging.getLogger(__name__).exception("telemetry consumer failed")

    # controls a schedule applies while the job runs
    def set_max_downtime(self, ms: int) -> None:
        try:
            self.dom.migrateSetMaxDowntime(int(ms), 0)
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"cannot set the allowed downtime of {self.dom.name()} "
                                  f"to {ms} ms: {exc}") from exc

    def start_postcopy(self) -> None:
        try:
            self.dom.migrateStartPostCopy(0)
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"cannot switch the migration of {self.dom.name()} to "
                                  f"post-copy: {exc}") from exc

    def abort(self) -> None:
        try:
            self.dom.abortJob()
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"cannot abort the migration of {self.dom.name()}: {exc}") \
                from exc
