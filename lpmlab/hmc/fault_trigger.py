"""Faults armed for a migration (``lpmlab fault NAME --when POINT``), fired by its controller
at their points: hook phases (the controller's thread), pre-copy passes and the switchover
(the telemetry thread)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from lpmlab import log
from lpmlab.errors import LpmlabError
from lpmlab.fabric import faults as F
from lpmlab.hmc.faults import KINDS, PASS_RE, FaultRequest, Undo, inject, read_acked, resolve
from lpmlab.hmc.store import MigrationRecord
from lpmlab.hmc.system import Hmc

_log = log.get("lpmlab.fault")


class FaultTrigger:
    """The armed faults one migration claimed, fired at their points.

    Points come from the controller's thread (hook phases) and the telemetry thread (passes,
    switchover); firing is serialized. While a fault waits, a reader keeps the partition's
    last acknowledged disk record fresh (about every second), so an entry can say what the
    partition had acknowledged before the fault even where a fresh read would be too slow
    (the switchover lasts a few hundred milliseconds).
    """

    ACKED_EVERY_S = 1.0

    def __init__(self, hmc: Hmc, rec: MigrationRecord,
                 save_record: Callable[[], None]) -> None:
        self.hmc = hmc
        self.rec = rec
        self.save_record = save_record
        self.ledger = F.Ledger(hmc.plan.dir)
        self.armed: list[F.FaultEntry] = []
        self._lock = threading.Lock()
        self._acked: int | None = None
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._transferring = False

    @property
    def waiting(self) -> bool:
        return bool(self.armed)

    def claim(self) -> None:
        if not any(e.state == F.ARMED for e in self.ledger.entries()):
            return  # the common case: no lock, no write
        with self.ledger.edit() as entries:
            for e in entries:
                if e.state == F.ARMED and e.migration is None and e.partition in (
                        None, self.rec.partition):
                    e.migration = self.rec.id
                    e.partition = self.rec.partition
                    self.armed.append(F.FaultEntry.from_dict(e.__dict__))
        if self.armed:
            self.rec.stats["faults"] = [{"id": e.id, "name": e.name, "when": e.when,
                                         "state": "armed"} for e in self.armed]
            self._acked = read_acked(self.hmc, self.rec.partition)
            self._reader = threading.Thread(target=self._read_acked, name="fault-acked",
                                            daemon=True)
            self._reader.start()

    def _read_acked(self) -> None:
        # one channel for the whole wait: its TCP session moves with the partition
        ch = self.hmc.rmc(self.rec.partition)
        try:
            while not self._stop.wait(self.ACKED_EVERY_S):
                value = read_acked(self.hmc, self.rec.partition, timeout=2.0, channel=ch)
                if value is not None:
                    self._acked = value
        finally:
            ch.close()

    def on_sample(self, s: dict[str, Any]) -> None:
        """A telemetry sample: ``transferring`` at the first bytes sent, ``pass:N``."""
        if not self.armed:
            return
        if not self._transferring and (s.get("data_processed") or 0) > 0:
            self._transferring = True
            self.at("transferring")
        if s.get("kind") == "iteration" and s.get("iteration"):
            self.at(f"pass:{s['iteration']}")

    def at(self, point: str) -> None:
        with self._lock:
            due = [e for e in self.armed if _due(e.when, point)]
            for e in due:
                self.armed.remove(e)
                try:
                    self._fire(e, point)
                except Exception as exc:  # noqa: BLE001 - the entry must not stay armed
                    self._settle(e, F.DONE, f"injecting at {point} failed: {exc}")

    def _fire(self, e: F.FaultEntry, point: str) -> None:
        req = FaultRequest(e.name, e.arg, e.when, self.rec.partition,
                           **{k: v for k, v in (e.request or {}).items() if v is not None})
        try:
            target = resolve(self.hmc, req, self.rec)
        except LpmlabError as exc:
            self._settle(e, F.DONE, f"not injected at {point}: {exc.message}")
            return
        kill_self = e.name == "controller-killed"
        e.target, e.acked_before = target, self._acked
        state = F.IN_FORCE if KINDS[e.name].lasting else F.DONE
        self.rec.phase("fault injected", fault=e.id, fault_name=e.name, point=point,
                       target=target, acked_before=self._acked)
        if kill_self:
            self._settle(e, state, f"migration controller (pid {os.getpid()}) killed at "
                                   f"{point}", injected=True)
            self.save_record()
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            detail, undo = inject(self.hmc, e, in_controller=True)
        except LpmlabError as exc:
            self._settle(e, F.DONE, f"injecting at {point} failed: {exc.message}")
            return
        self._settle(e, state, f"{detail} at {point}", injected=True, undo=undo)
        _log.info("fault injected", fault=e.id, name=e.name, point=point, detail=detail)

    def _settle(self, e: F.FaultEntry, state: str, detail: str, *, injected: bool = False,
                undo: list[Undo] | None = None) -> None:
        with self.ledger.edit() as entries:
            for x in entries:
                if x.id == e.id:
                    x.state, x.detail, x.target = state, detail, e.target
                    x.acked_before = e.acked_before
                    x.undo = undo or []
                    if injected:
                        x.injected = time.time()
        for f in self.rec.stats.get("faults", []):
            if f["id"] == e.id:
                f.update({"state": state, "detail": detail, "target": e.target,
                          "acked_before": e.acked_before})

    def close(self) -> None:
        """The migration ended: faults whose point never came are not injected."""
        self._stop.set()
        if self._reader is not None:
            self._reader.join(3.0)
        with self._lock:
            left, self.armed = self.armed, []
        for e in left:
            self._settle(e, F.DONE, f"not injected: the migration ended before {e.when}")


def _due(when: str, point: str) -> bool:
    if when == point:
        return True
    m, p = PASS_RE.match(when), PASS_RE.match(point)
    # a burst of passes may skip a number: the first pass at or after N fires it
    return bool(m and p and int(p.group(1)) >= int(m.group(1)))
