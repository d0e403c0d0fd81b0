"""Plain-ASCII terminal plots of migration reports: no colour, no escape sequences, so the
output survives pipes, logs and ``NO_COLOR`` alike.

The main block plots remaining MiB against seconds, one marker character per run. For a
single run a line under the time axis shows iterations as ``|`` and the downtime window as
``=``, and a second, smaller block plots dirty rate (``d``) against bandwidth (``b``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from lpmlab.report.series import (
    RunSeries,
    as_runs,
    nice_ticks,
    series_of,
    summary_text,
    tick_label,
    title_of,
)

MARKERS = "*o+x#@"
DIRTY_MARK = "d"
BANDWIDTH_MARK = "b"
BOTH_MARK = "%"  # dirty rate and bandwidth on the same cell
MIN_WIDTH = 40
MIN_HEIGHT = 3

Curve = tuple[str, list[tuple[float, float]]]


def _fmt_axis(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def _wrap(items: list[str], width: int) -> list[str]:
    """Join items with two spaces, starting a new line before one would overflow."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 2 + len(item) <= width:
            lines[-1] += "  " + item
        else:
            lines.append(item[:width])
    return lines


class _Block:
    """One text plot: value rows over a shared time axis."""

    def __init__(self, curves: list[Curve], tlo: float, thi: float, width: int, height: int,
                 overlap: str | None = None) -> None:
        values = [v for _, pts in curves for _, v in pts]
        self.ymax = max(values)
        self.ymin = min(0.0, min(values))
        if self.ymax == self.ymin:
            self.ymax = self.ymin + 1.0
        self.height = height
        self.tlo, self.thi = tlo, thi
        rows = sorted({0, height // 2, height - 1})
        self.labels = {r: _fmt_axis(self.value_at(r)) for r in rows}
        self.lw = max(4, *(len(s) for s in self.labels.values()))
        self.pw = max(10, width - self.lw - 2)
        self.grid = [[" "] * self.pw for _ in range(height)]
        for mark, pts in curves:
            self._draw(mark, pts, overlap)

    def value_at(self, row: int) -> float:
        return self.ymax - row / (self.height - 1) * (self.ymax - self.ymin)

    def col(self, t: float) -> int:
        c = round((t - self.tlo) / (self.thi - self.tlo) * (self.pw - 1))
        return max(0, min(self.pw - 1, c))

    def row(self, v: float) -> int:
        r = round((self.ymax - v) / (self.ymax - self.ymin) * (self.height - 1))
        return max(0, min(self.height - 1, r))

    def _put(self, r: int, c: int, mark: str, overlap: str | None) -> None:
        cell = self.grid[r][c]
        self.grid[r][c] = overlap if overlap and cell not in (" ", mark) else mark

    def _draw(self, mark: str, pts: list[tuple[float, float]], overlap: str | None) -> None:
        for t, v in pts:
            self._put(self.row(v), self.col(t), mark, overlap)
        # Fill the columns between sparse samples so a few iterations still read as a curve.
        for (t0, v0), (t1, v1) in pairwise(pts):
            c0, c1 = self.col(t0), self.col(t1)
            for c in range(c0 + 1, c1):
                v = v0 + (v1 - v0) * (c - c0) / (c1 - c0)
                self._put(self.row(v), c, mark, overlap)

    def lines(self, under: str | None = None, under_label: str = "") -> list[str]:
        """The value rows, the time axis, the optional marker line and the time labels."""
        out = [f"{self.labels.get(r, ''):>{self.lw}} |{''.join(row)}".rstrip()
               for r, row in enumerate(self.grid)]
        ticks = nice_ticks(self.tlo, self.thi, max(2, self.pw // 10))
        eps = (self.thi - self.tlo) * 1e-9
        shown = [t for t in ticks if self.tlo - eps <= t <= self.thi + eps]
        axis = ["-"] * self.pw
        for t in shown:
            if self.col(t) > 0:  # the corner already marks the first column
                axis[self.col(t)] = "+"
        out.append(f"{'':>{self.lw}} +{''.join(axis)}")
        if under is not None:
            out.append(f"{under_label:>{self.lw}}  {under}".rstrip())
        labels = [" "] * self.pw
        end = -1
        for t in shown:
            text = tick_label(t, ticks)
            start = min(max(0, self.col(t) - len(text) // 2), self.pw - len(text))
            if start > end:
                labels[start:start + len(text)] = text
                end = start + len(text)
        if 0 <= end < len(labels) - 1:
            labels[end + 1] = "s"  # the unit after the last label
        out.append(f"{'':>{self.lw}}  {''.join(labels)}".rstrip())
        return out


def _marker_line(block: _Block, s: RunSeries) -> str | None:
    """Iterations as ``|`` and the downtime window as ``=`` (drawn last: it matters more)."""
    if not s.iterations and s.downtime is None:
        return None
    cells = [" "] * block.pw
    for t, _ in s.iterations:
        cells[block.col(t)] = "|"
    if s.downtime is not None:
        for c in range(block.col(s.downtime[0]), block.col(s.downtime[1]) + 1):
            cells[c] = "="
    return "".join(cells)


def render_terminal(runs: Sequence[Mapping[str, Any]] | Mapping[str, Any], width: int = 72,
                    height: int = 14) -> str:
    """A text plot of remaining MiB against time for one or several runs.

    ``height`` is the number of value rows of the main block and ``width`` the line length
    (at least 40 and 3). Around the rows come a title, the axis, the time labels and the
    legend; a single run also gets its iteration/downtime line and a dirty-rate/bandwidth
    block of ``height // 2`` rows. Plain ASCII, no trailing newline.
    """
    runs = as_runs(runs)
    width = max(MIN_WIDTH, int(width))
    height = max(MIN_HEIGHT, int(height))
    series = [series_of(r) for r in runs]
    out = [title_of(runs)[:width]]
    if not any(s.has_samples for s in series):
        out.append("no samples")
        return "\n".join(out)
    times = [t for s in series for t in s.times]
    times += [t for s in series if s.downtime for t in s.downtime]
    tlo, thi = min(0.0, min(times)), max(times)
    if thi <= tlo:
        thi = tlo + 1.0
    single = len(series) == 1

    curves = [(MARKERS[i % len(MARKERS)], s.remaining) for i, s in enumerate(series)]
    out.append("remaining (MiB)")
    if any(pts for _, pts in curves):
        block = _Block(curves, tlo, thi, width, height)
        under = _marker_line(block, series[0]) if single else None
        out += block.lines(under, "iter")
    else:
        out.append("  (no remaining-bytes data)")
    legend = [f"{MARKERS[i % len(MARKERS)]} {s.label}" + ("" if single else f": {summary_text(r)}")
              for i, (s, r) in enumerate(zip(series, runs, strict=True))]
    if single:
        legend += ["| iteration", "= downtime"]
        out += _wrap(legend, width)
    else:
        out += [item[:width] for item in legend]  # one run a line: they are long

    s = series[0]
    # the dirty rate each pass found (QEMU's own figure is 0 for short passes)
    dirty = ([pt for a, b, v in s.pass_dirty for pt in ((a, v), (b, v))] if s.pass_dirty
             else s.dirty)
    if single and (dirty or s.bandwidth):
        rate_curves = [(BANDWIDTH_MARK, s.bandwidth), (DIRTY_MARK, dirty)]
        rates = _Block(rate_curves, tlo, thi, width, max(MIN_HEIGHT, height // 2),
                       overlap=BOTH_MARK)
        out += ["", "dirty rate and bandwidth (MiB/s)", *rates.lines()]
        out += _wrap([f"{DIRTY_MARK} dirty rate", f"{BANDWIDTH_MARK} bandwidth",
                      f"{BOTH_MARK} both"], width)
    return "\n".join(out)
