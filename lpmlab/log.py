"""Logging and progress on stderr only; machine-readable output stays on stdout, uncoloured.

The controller logs through structlog: state transitions, libvirt calls with their
durations, hook phases, retries. On stderr only warnings and errors appear, unless
``--debug`` (or ``LPMLAB_DEBUG``) asks for everything; a successful HMC command stays silent,
as the HMC's. Events that carry a ``migration`` (bound with :func:`bind_migration`) are
also appended, at every level, as JSON lines to that migration's artifact folder
(``<state>/migrations/<id>/log.jsonl``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import structlog

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50,
           "exception": 40}
_sinks: dict[str, Path] = {}
_sinks_lock = threading.Lock()
_stderr_level = logging.WARNING


def colour_wanted(stream: Any = None) -> bool:
    """Colour only on a terminal, not when NO_COLOR is set and non-empty (no-color.org), nor
    on a dumb terminal."""
    stream = stream or sys.stderr
    return (bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")
            and os.environ.get("TERM") != "dumb")


def debug_wanted(argv: list[str] | None = None) -> bool:
    return bool(os.environ.get("LPMLAB_DEBUG")) or "--debug" in (argv or [])


def _tee(_logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Append the event to its migration's log.jsonl (every level)."""
    mid = event.get("migration")
    path = _sinks.get(str(mid)) if mid else None
    if path is not None:
        line = {k: v for k, v in event.items() if k != "_record"}
        line.setdefault("level", method)
        try:
            with path.open("a") as f:
                f.write(json.dumps(line, default=str) + "\n")
        except OSError:
            pass  # a log that cannot be written must not stop a migration
    return event


def _stderr_filter(_logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    if _LEVELS.get(method, 20) < _stderr_level:
        raise structlog.DropEvent
    return event


def configure(verbose: bool = False) -> None:
    """structlog to stderr: warnings and errors, everything with ``verbose`` (--debug)."""
    global _stderr_level
    _stderr_level = logging.DEBUG if verbose or debug_wanted() else logging.WARNING
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=False),
            _tee,
            _stderr_filter,
            structlog.dev.ConsoleRenderer(colors=colour_wanted()),
        ],
        wrapper_class=structlog.BoundLogger,
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(name: str) -> Any:
    return structlog.get_logger(name)


def bind_migration(mid: str, folder: Path | None) -> None:
    """Events of this thread carry ``migration=mid`` from now on; with a ``folder`` they
    are also written to ``folder/log.jsonl``."""
    structlog.contextvars.bind_contextvars(migration=mid)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        with _sinks_lock:
            _sinks[mid] = folder / "log.jsonl"


def unbind_migration(mid: str) -> None:
    structlog.contextvars.unbind_contextvars("migration")
    with _sinks_lock:
        _sinks.pop(mid, None)


def progress(message: str) -> None:
    """A plain progress line on stderr (never on stdout)."""
    print(message, file=sys.stderr, flush=True)
