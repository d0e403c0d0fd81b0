"""What watches libvirt's migration call while it runs: a stalled stream is aborted (and its
connection reset when the abort cannot get through), a broken post-copy stream is given a
deadline. Both exist because a blocked stream blocks QEMU's monitor and the call with it."""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

from lpmlab import log
from lpmlab.adapter import migration as mig
from lpmlab.adapter import telemetry as tele
from lpmlab.errors import LpmlabError
from lpmlab.hmc import precopy
from lpmlab.hmc.system import Placement

_log = log.get("lpmlab.hmc.transfer")

STALL_RESET_S = 3.0  # after a stall's abort, the stream is reset if the job has not ended
POSTCOPY_GRACE_SECONDS = 10.0


def migrate_unless_stalled(dom: Any, req: mig.MigrationRequest, watcher: tele.JobWatcher,
                           telemetry: precopy.Telemetry,
                           apply: Callable[[precopy.Action], None],
                           reset_stream: Callable[[], int]) -> None:
    """libvirt's migration call, run in a worker while this thread watches the clock: a
    blocked stream can block QEMU's monitor (so the job statistics, the samples and an
    abort too). A stall is aborted (``apply`` the stall action); when the call still has not
    returned ``STALL_RESET_S`` later, ``reset_stream`` resets the stream's connection in the
    source frame, which fails the send QEMU is blocked in and lets the job end."""
    outcome: dict[str, BaseException] = {}

    def call() -> None:
        try:
            mig.migrate(dom, req)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            outcome["error"] = exc

    # the worker logs under this migration (its folder's log.jsonl) too
    worker = threading.Thread(target=contextvars.copy_context().run, args=(call,),
                              name="lpm-migrate", daemon=True)
    worker.start()
    reset_at: float | None = None
    while worker.is_alive():
        worker.join(0.5)
        if not worker.is_alive():
            break
        stall = telemetry.stall
        if not watcher.job_seen.is_set() or watcher.job_gone or watcher.completed:
            continue  # a stream is judged only while its job runs
        action = stall.check(watcher.now())
        if action is not None:
            apply(action)
            reset_at = time.monotonic() + STALL_RESET_S
        elif stall.stalled_s >= 2.0 and not stall.fired:
            telemetry.note_stall(watcher.now())
        if reset_at is not None and time.monotonic() >= reset_at:
            closed = reset_stream()
            _log.info("stalled stream reset", connections=closed)
            reset_at = time.monotonic() + STALL_RESET_S
    if "error" in outcome:
        raise outcome["error"]


class PostcopyGuard(threading.Thread):
    """Puts a deadline on a broken post-copy stream. When the stream breaks after the switch,
    the source fails at once, but a destination that had nothing to send into the reset keeps
    waiting for its pages, and libvirt's migration call with it, for ever. Once the source
    has shown a failed post-copy for ``grace_s``, the destination's end is reset too: both
    sides fail and the call returns (HSCLL453)."""

    def __init__(self, dom: Any, reset: Callable[[], int],
                 grace_s: float = POSTCOPY_GRACE_SECONDS, poll_s: float = 0.5) -> None:
        super().__init__(name="postcopy-guard", daemon=True)
        self.dom, self.reset, self.grace_s, self.poll_s = dom, reset, grace_s, poll_s
        self.resets: list[int] = []   # connections closed, per reset
        self._done = threading.Event()

    def run(self) -> None:
        failed_since: float | None = None
        while not self._done.wait(self.poll_s):
            if mig.postcopy_phase(self.dom) != "failed":
                failed_since = None
                continue
            now = time.monotonic()
            failed_since = failed_since or now
            if now - failed_since >= self.grace_s:
                with contextlib.suppress(LpmlabError):
                    self.resets.append(self.reset())
                failed_since = None   # another grace before trying again

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)


def postcopy_halves(placements: list[Placement]) -> dict[str, str]:
    """Frame -> phase of each copy (``hmc.placements``) that is one side of an interrupted
    post-copy migration; empty when there is none."""
    halves = {p.frame: p.info.postcopy for p in placements if p.info.postcopy is not None}
    return halves if "failed" in halves.values() else {}
