"""A folder per migration that outlives the lab: ``<state>/migrations/<id>/``.

Like ansible-runner's artifact folders: the record (phases, hooks and their output, libvirt's
job statistics, MSP bytes, result and error), every telemetry sample, the structured log of
the migration (``log.jsonl``), what a stop or a recovery did, and on failure the partition's
console tail and the hypervisor's error. The report (JSON, PNG, SVG) is drawn beside them by
a detached process, so the command that migrated does not wait for matplotlib. The folders
live beside the lab's, not in it: ``lpmlab lab down`` keeps them and ``lpmlab report`` reads
them. The newest ``LPMLAB_KEEP_MIGRATIONS`` (default 50) are kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lpmlab import paths
from lpmlab.atomic import replace_file
from lpmlab.hmc.store import MigrationRecord

DEFAULT_KEEP = 50


def root() -> Path:
    return paths.state_root() / "migrations"


def folder(mid: str) -> Path:
    return root() / mid


def keep() -> int:
    try:
        return max(1, int(os.environ.get("LPMLAB_KEEP_MIGRATIONS", DEFAULT_KEEP)))
    except ValueError:
        return DEFAULT_KEEP


def _write(path: Path, text: str) -> None:
    replace_file(path, text)


def save(rec: MigrationRecord, samples: list[dict[str, Any]], *, hmc: str = "",
         console_tail: str | None = None, render: bool = True) -> Path:
    """Write the migration's folder (again: a later stop or recovery rewrites the record)."""
    d = folder(rec.id)
    d.mkdir(parents=True, exist_ok=True)
    _write(d / "record.json", json.dumps({**asdict(rec), "hmc": hmc}, indent=1, default=str))
    _write(d / "samples.json", json.dumps(samples, default=str))
    if rec.result not in (None, "success"):
        told = [t for t in (rec.stats.get("hmc_error"), rec.error) if t]
        if told:
            _write(d / "error.txt", "\n\n".join(told) + "\n")
        if console_tail:
            _write(d / "console.txt", console_tail + "\n")
    rotate()
    if render:
        draw_later(d)
    return d


def note(mid: str, what: str, data: dict[str, Any]) -> Path:
    """Add what a stop or a recovery did to the migration's folder (``stop-<time>.json``)."""
    d = folder(mid)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{what}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    _write(path, json.dumps(data, indent=1, default=str))
    return path


def draw_later(d: Path) -> None:
    """The report of the folder's migration, drawn by a detached process."""
    with contextlib.suppress(OSError):
        subprocess.Popen([sys.executable, "-m", "lpmlab.report.artifact", str(d)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)


def rotate(limit: int | None = None) -> list[Path]:
    """Remove all but the newest ``limit`` folders; the removed ones."""
    limit = limit or keep()
    try:
        found = [p for p in root().iterdir() if p.is_dir()]
    except OSError:
        return []
    found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    gone = found[limit:]
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return gone


def load(ref: str) -> tuple[MigrationRecord, list[dict[str, Any]]] | None:
    """A kept migration by ID (or a unique prefix), or a partition's latest one."""
    try:
        dirs = [p for p in root().iterdir() if (p / "record.json").is_file()]
    except OSError:
        return None
    by_id = [p for p in dirs if p.name.startswith(ref)] if ref else []
    chosen = by_id[0] if len(by_id) == 1 else None
    if chosen is None:
        recs = []
        for p in dirs:
            with contextlib.suppress(OSError, ValueError):
                data = json.loads((p / "record.json").read_text())
                if not ref or data.get("partition") == ref:
                    recs.append((float(data.get("started") or 0), p))
        chosen = max(recs)[1] if recs else None
    if chosen is None:
        return None
    data = json.loads((chosen / "record.json").read_text())
    data.pop("hmc", None)
    samples = json.loads((chosen / "samples.json").read_text()) \
        if (chosen / "samples.json").exists() else []
    return MigrationRecord(**data), samples
