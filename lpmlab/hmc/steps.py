"""``migrlpar --steps``: a migration record's phases as HMC records, one step a line.

``--steps 1`` lists every step, ``--steps 2`` only the failed ones. A step's status is
``completed``, ``failed`` (the step under way when the migration failed or was stopped, and
the closing ``failed``/``stopped`` step itself) or ``running`` (the last step of a migration
still under way).
"""

from __future__ import annotations

import datetime
from typing import Any

from lpmlab.hmc.store import MigrationRecord

# Phases the controller appends after a failure, not steps that did the work.
_AFTERMATH = ("settled", "failed", "stopped")
_FIXED = ("phase", "at")


def _status(rec: MigrationRecord, i: int, failed_at: int | None) -> str:
    name = rec.phases[i]["phase"]
    if name in ("failed", "stopped") or i == failed_at:
        return "failed"
    if rec.ended is None and i == len(rec.phases) - 1:
        return "running"
    return "completed"


def _failed_at(rec: MigrationRecord) -> int | None:
    """The index of the step that was under way when the migration failed or was stopped."""
    if rec.result not in ("failed", "stopped"):
        return None
    names = [p["phase"] for p in rec.phases]
    first = next((i for i, n in enumerate(names) if n in _AFTERMATH), len(names))
    return first - 1 if first > 0 else None


def _detail(phase: dict[str, Any]) -> str:
    return ";".join(f"{k}={v}" for k, v in phase.items() if k not in _FIXED)


def step_records(rec: MigrationRecord, *, failed_only: bool = False) -> list[dict[str, Any]]:
    """The record's steps with their wall-clock time and seconds since the migration began."""
    failed_at = _failed_at(rec)
    out = []
    for i, phase in enumerate(rec.phases):
        status = _status(rec, i, failed_at)
        if failed_only and status != "failed":
            continue
        at = float(phase.get("at", rec.started))
        out.append({
            "lpar_name": rec.partition, "step_num": i + 1, "step": phase["phase"],
            "status": status,
            "time": datetime.datetime.fromtimestamp(at).isoformat(timespec="milliseconds"),
            "elapsed_s": round(at - rec.started, 3),
            "detail": _detail(phase) or ((rec.error or "") if status == "failed" else ""),
        })
    return out
