"""Logging and progress on stderr only; machine-readable output stays on stdout, uncoloured."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog


def colour_wanted(stream: Any = None) -> bool:
    """Colour only on a terminal and only when NO_COLOR is unset (structlog would always colour)."""
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def configure(verbose: bool = False) -> None:
    """Send structlog output to stderr at INFO (DEBUG with ``verbose``)."""
    level = logging.DEBUG if verbose or os.environ.get("LPMLAB_DEBUG") else logging.INFO
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S"),
            structlog.dev.ConsoleRenderer(colors=colour_wanted()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(name: str) -> Any:
    return structlog.get_logger(name)


def progress(message: str) -> None:
    """A plain progress line on stderr (never on stdout)."""
    print(message, file=sys.stderr, flush=True)
