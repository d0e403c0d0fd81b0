"""Live pre-copy progress of ``migrlpar -o m`` on stderr.

On a terminal: one redrawn line per partition (iteration, remaining, dirty rate vs bandwidth,
a bar that never runs backwards). Off a terminal: plain lines, at most a few per second per
partition, plus every iteration's end. Warnings always get their own line.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

from lpmlab.hmc.precopy import fmt_mib, fmt_rate

BAR = 24
LINE_EVERY_S = 0.5     # plain lines: at most two per second per partition
REDRAW_EVERY_S = 0.1


@dataclass
class _State:
    iteration: int | None = None
    remaining: int | None = None
    processed: int | None = None
    dirty: float | None = None
    bandwidth: float | None = None
    throttle: int | None = None
    fraction: float = 0.0
    done: bool = False
    downtime_ms: int | None = None
    last_line: float = 0.0
    pass_rate: bool = False  # dirty is a finished pass's figure


def bar(fraction: float, width: int = BAR) -> str:
    full = int(round(max(0.0, min(1.0, fraction)) * width))
    return "[" + "#" * full + "." * (width - full) + "]"


class MigrationProgress:
    """A TelemetryObserver that draws on stderr (or any text stream)."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None,
                 columns: int | None = None) -> None:
        self.stream = stream or sys.stderr
        # a dumb terminal cannot move its cursor: plain lines there, as off a terminal
        self.tty = (self.stream.isatty() and os.environ.get("TERM") != "dumb") if tty is None \
            else tty
        self.columns = columns  # None: the terminal's width at each redraw
        self.states: dict[str, _State] = {}
        self._lock = threading.Lock()
        self._drawn = 0          # lines of the live block on screen
        self._last_draw = 0.0

    def sample(self, partition: str, s: dict[str, Any]) -> None:
        with self._lock:
            st = self.states.setdefault(partition, _State())
            if s.get("iteration") is not None:
                st.iteration = s["iteration"]
            for attr, key in (("remaining", "data_remaining"), ("processed", "data_processed"),
                              ("bandwidth", "bandwidth_bps"), ("throttle", "throttle_pct")):
                if s.get(key) is not None:
                    setattr(st, attr, s[key])
            # the dirty rate the last pass found; QEMU's own figure (0 for passes shorter than
            # its one-second window) only until a pass has ended
            if s.get("pass_dirty_rate_bps") is not None:
                st.dirty, st.pass_rate = s["pass_dirty_rate_bps"], True
            elif s.get("dirty_rate_bps") and not st.pass_rate:  # its 0 means "no window yet"
                st.dirty = s["dirty_rate_bps"]
            if st.processed is not None and st.remaining is not None:
                total = st.processed + st.remaining
                if total:
                    # what is left can grow again (the guest dirties): the bar must not
                    st.fraction = max(st.fraction, st.processed / total)
            if s.get("kind") == "completed":
                st.done, st.fraction, st.downtime_ms = True, 1.0, s.get("downtime_ms")
            now = time.monotonic()
            if self.tty:
                if st.done or now - self._last_draw >= REDRAW_EVERY_S:
                    self._redraw()
                    self._last_draw = now
            elif st.done or (s.get("kind") == "iteration" and st.remaining is not None
                             and now - st.last_line >= LINE_EVERY_S):
                st.last_line = now
                self.stream.write(self.line(partition, st) + "\n")
                self.stream.flush()

    def warning(self, partition: str, text: str) -> None:
        with self._lock:
            if self.tty:
                self._clear()
            self.stream.write(text + "\n")
            if self.tty:
                self._redraw()
            self.stream.flush()

    def finish(self) -> None:
        """Leave the last drawn state on screen, the cursor below it."""
        with self._lock:
            self._drawn = 0

    @staticmethod
    def line(partition: str, st: _State) -> str:
        if st.done:
            return (f"{partition}: transfer complete after {st.iteration or '?'} iterations, "
                    f"{fmt_mib(st.processed)} sent, downtime "
                    f"{'?' if st.downtime_ms is None else st.downtime_ms} ms "
                    f"{bar(1.0)} 100 %")
        return (f"{partition}: iteration {st.iteration or '?'}, {fmt_mib(st.remaining)} "
                f"remaining, dirty {fmt_rate(st.dirty)} vs bandwidth {fmt_rate(st.bandwidth)}"
                + (f", throttle {st.throttle} %" if st.throttle else "")
                + f" {bar(st.fraction)} {int(st.fraction * 100):3d} %")

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _redraw(self) -> None:
        self._clear()
        # a wrapped line would break the cursor-up redraw: cut to the terminal's width
        width = (self.columns or shutil.get_terminal_size().columns) - 1
        for name, st in self.states.items():
            self.stream.write("\x1b[K" + self.line(name, st)[:width] + "\n")
        self._drawn = len(self.states)
        self.stream.flush()
