"""PNG plots of pre-copy migration reports (standard library only, see :mod:`.png`).

Two panels share the time axis (seconds from transfer start): the top one shows the bytes
still to send in MiB (``data_remaining``, else ``memory_remaining``), the bottom one the dirty
rate and the bandwidth in MiB/s. Iterations are thin dashed markers in the top panel, the
downtime window a translucent band across both panels. Several runs are overlaid, one palette
colour each (``lpmlab report --compare``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lpmlab.report.png import GLYPH_H, Canvas, Color, text_width

MIB = 1024 * 1024
WIDTH = 900
HEIGHT = 560
MIN_WIDTH = 320
MIN_HEIGHT = 240

# Distinct on white and for the common colour-vision deficiencies (the tab10 order).
PALETTE: tuple[Color, ...] = (
    (31, 119, 180),   # blue
    (255, 127, 14),   # orange
    (44, 160, 44),    # green
    (214, 39, 40),    # red
    (148, 103, 189),  # purple
    (140, 86, 75),    # brown
    (227, 119, 194),  # pink
    (23, 190, 207),   # cyan
)
INK: Color = (30, 30, 30)
AXIS: Color = (90, 90, 90)
GRID: Color = (232, 232, 232)
MUTED: Color = (120, 120, 120)
ITERATION: Color = (165, 165, 165)
# One run: fixed roles, so the legend reads the same in every report.
REMAINING: Color = PALETTE[0]
DIRTY: Color = PALETTE[3]
BANDWIDTH: Color = PALETTE[2]
DOWNTIME: Color = PALETTE[1]
BAND_ALPHA = 0.25
BAND_ALPHA_MULTI = 0.16
LINE_WIDTH = 2
DASH = 5

_MARGIN_LEFT = 74
_MARGIN_RIGHT = 16
_PANEL_GAP = 14
_LEGEND_ROW = 14
_SWATCH = 22


# -- report documents -> series ---------------------------------------------------------------

def _num(v: Any) -> float | None:
    """A finite number, or None (null, text, bool, NaN and infinities are all 'no value')."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def ascii_text(s: object) -> str:
    """``s`` with everything outside printable ASCII replaced by ``?`` (the font's coverage)."""
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(s))


def fmt_num(v: float) -> str:
    """A compact human figure: 87, 5.3, 0.25."""
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


@dataclass
class RunSeries:
    """The plottable part of one report document, nulls already dropped; times in seconds."""

    label: str
    result: str
    remaining: list[tuple[float, float]] = field(default_factory=list)   # MiB
    dirty: list[tuple[float, float]] = field(default_factory=list)       # MiB/s
    bandwidth: list[tuple[float, float]] = field(default_factory=list)   # MiB/s
    iterations: list[tuple[float, int | None]] = field(default_factory=list)
    downtime: tuple[float, float] | None = None
    times: list[float] = field(default_factory=list)  # every sample with a time

    @property
    def has_samples(self) -> bool:
        return bool(self.times)


def label_of(run: Mapping[str, Any]) -> str:
    """The legend label: the run's own ``label``, else its id and partition."""
    if run.get("label"):
        return ascii_text(run["label"])
    text = " ".join(str(p) for p in (str(run.get("id") or "")[:12], run.get("partition")) if p)
    return ascii_text(text) or "run"


def series_of(run: Mapping[str, Any]) -> RunSeries:
    """Pull the plotted series out of a report document.

    Remaining bytes come from ``data_remaining`` when any sample has it, else from
    ``memory_remaining``: one field per run, so the line never jumps between the two.
    """
    samples = [s for s in (run.get("samples") or []) if isinstance(s, Mapping)]
    timed = sorted(((t, s) for s in samples if (t := _num(s.get("t"))) is not None),
                   key=lambda ts: ts[0])
    key = ("data_remaining" if any(_num(s.get("data_remaining")) is not None for _, s in timed)
           else "memory_remaining")
    out = RunSeries(label=label_of(run), result=ascii_text(run.get("result") or "?"))
    for t, s in timed:
        out.times.append(t)
        if (v := _num(s.get(key))) is not None:
            out.remaining.append((t, v / MIB))
        if (v := _num(s.get("dirty_rate_bps"))) is not None:
            out.dirty.append((t, v / MIB))
        if (v := _num(s.get("bandwidth_bps"))) is not None:
            out.bandwidth.append((t, v / MIB))
        if s.get("kind") == "iteration":
            n = _num(s.get("iteration"))
            out.iterations.append((t, int(n) if n is not None else None))
    window = run.get("downtime_window")
    if isinstance(window, Sequence) and not isinstance(window, str) and len(window) == 2:
        a, b = _num(window[0]), _num(window[1])
        if a is not None and b is not None:
            out.downtime = (min(a, b), max(a, b))
    return out


def _has_samples(run: Mapping[str, Any]) -> bool:
    return any(isinstance(s, Mapping) and _num(s.get("t")) is not None
               for s in run.get("samples") or [])


def summary_text(run: Mapping[str, Any]) -> str:
    """'success, 5.3 s, downtime 87 ms, 4 iterations' from whatever the summary holds."""
    summary = run.get("summary") or {}
    parts = [ascii_text(run.get("result") or "?")]
    if (total := _num(summary.get("total_time_s"))) is not None:
        parts.append(f"{total:.1f} s")
    if (down := _num(summary.get("downtime_ms"))) is not None:
        parts.append(f"downtime {fmt_num(down)} ms")
    if (iters := _num(summary.get("iterations"))) is not None:
        parts.append(f"{int(iters)} iteration{'' if int(iters) == 1 else 's'}")
    return ", ".join(parts)


def title_of(runs: Sequence[Mapping[str, Any]]) -> str:
    """The title line: the one migration's route and outcome, or the comparison count."""
    if not runs:
        return "no migrations"
    if len(runs) > 1:
        return f"comparison of {len(runs)} migrations"
    run = runs[0]
    route = str(run.get("partition") or label_of(run))
    if run.get("source_sys") or run.get("dest_sys"):
        route += f": {run.get('source_sys') or '?'} -> {run.get('dest_sys') or '?'}"
    return ascii_text(f"{route}  {summary_text(run)}")


def as_runs(runs: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Accept one report document as well as a list of them."""
    if isinstance(runs, Mapping):
        return [runs]
    return list(runs)


# -- axes -------------------------------------------------------------------------------------

def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` intervals of 1, 2 or 5 x 10^k covering [lo, hi]: the first tick is <= lo,
    the last >= hi. An empty range is widened (0..0 gives 0..1)."""
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"tick range must be finite, got {lo}..{hi}")
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, int(n))
    exp = math.floor(math.log10(raw))
    mult = next((m for m in (1, 2, 5) if m * 10.0 ** exp >= raw * (1 - 1e-9)), 10)
    if mult == 10:
        mult, exp = 1, exp + 1
    step = mult * 10.0 ** exp
    decimals = max(0, -exp)
    # The epsilons keep 0.30000000000000004-style noise from adding a tick at either end.
    k0 = math.floor(lo / step + 1e-9)
    k1 = math.ceil(hi / step - 1e-9)
    return [round(k * step, decimals) for k in range(k0, k1 + 1)]


def tick_label(v: float, ticks: Sequence[float]) -> str:
    """``v`` with as many decimals as the tick step needs (0.5 -> '0.5', 20 -> '20')."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    return f"{0.0 if v == 0 else v:.{decimals}f}"


@dataclass(frozen=True)
class Box:
    """An inclusive pixel rectangle."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    def inner(self) -> tuple[int, int, int, int]:
        """The box without its frame, for clipping plotted data."""
        return (self.x0 + 1, self.y0 + 1, self.x1 - 1, self.y1 - 1)


@dataclass(frozen=True)
class _Axes:
    box: Box
    xlo: float
    xhi: float
    ylo: float
    yhi: float

    def px(self, t: float) -> float:
        return self.box.x0 + (t - self.xlo) / (self.xhi - self.xlo) * self.box.w

    def py(self, v: float) -> float:
        return self.box.y1 - (v - self.ylo) / (self.yhi - self.ylo) * self.box.h


@dataclass(frozen=True)
class LegendEntry:
    kind: str  # "line", "dash", "band" or "mark"
    color: Color
    label: str
    alpha: float = BAND_ALPHA

    @property
    def width(self) -> int:
        return _SWATCH + 6 + text_width(self.label) + 18


@dataclass(frozen=True)
class Layout:
    """Where everything goes on a canvas of ``width`` x ``height``."""

    width: int
    height: int
    title: str
    title_scale: int
    top: Box
    bottom: Box
    legend: tuple[tuple[LegendEntry, int, int], ...]  # entry, x, y (text top)


def _legend_entries(runs: Sequence[Mapping[str, Any]]) -> list[LegendEntry]:
    if len(runs) <= 1:
        return [LegendEntry("line", REMAINING, "remaining"),
                LegendEntry("line", DIRTY, "dirty rate"),
                LegendEntry("dash", BANDWIDTH, "bandwidth"),
                LegendEntry("band", DOWNTIME, "downtime"),
                LegendEntry("mark", ITERATION, "iteration")]
    entries = [LegendEntry("line", run_color(i), f"{label_of(r)}: {summary_text(r)}"
                           + ("" if _has_samples(r) else " (no samples)"))
               for i, r in enumerate(runs)]
    # The per-run colour says which run; line style says which quantity.
    return entries + [LegendEntry("line", MUTED, "dirty rate"),
                      LegendEntry("dash", shade(MUTED), "bandwidth"),
                      LegendEntry("band", MUTED, "downtime", BAND_ALPHA_MULTI),
                      LegendEntry("mark", ITERATION, "iteration")]


def plot_layout(runs: Sequence[Mapping[str, Any]] | Mapping[str, Any], width: int = WIDTH,
                height: int = HEIGHT) -> Layout:
    """The title, the two panel boxes and the legend positions for these runs."""
    runs = as_runs(runs)
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValueError(f"plot must be at least {MIN_WIDTH}x{MIN_HEIGHT}, got {width}x{height}")
    title = title_of(runs)
    scale = 2 if text_width(title, 2) <= width - 20 else 1
    right = width - 1 - _MARGIN_RIGHT
    rows: list[list[tuple[LegendEntry, int]]] = [[]]
    x = _MARGIN_LEFT
    for entry in _legend_entries(runs):
        if rows[-1] and x + entry.width > right:
            rows.append([])
            x = _MARGIN_LEFT
        rows[-1].append((entry, x))
        x += entry.width
    top_y0 = 10 + GLYPH_H * scale + 14
    below = 4 + 12 + 14 + 6 + len(rows) * _LEGEND_ROW + 4  # ticks, labels, x title, legend
    avail = height - top_y0 - below - _PANEL_GAP
    if avail < 100:
        raise ValueError(f"{width}x{height} leaves no room for the panels and "
                         f"{len(rows)} legend rows")
    top_h = round(avail * 0.56)
    top = Box(_MARGIN_LEFT, top_y0, right, top_y0 + top_h)
    bottom = Box(_MARGIN_LEFT, top.y1 + _PANEL_GAP, right, top_y0 + avail + _PANEL_GAP)
    legend_y = bottom.y1 + 4 + 12 + 14 + 6
    legend = tuple((entry, ex, legend_y + i * _LEGEND_ROW)
                   for i, row in enumerate(rows) for entry, ex in row)
    return Layout(width, height, title, scale, top, bottom, legend)


# -- drawing ----------------------------------------------------------------------------------

def run_color(i: int) -> Color:
    """The palette colour of the i-th run (wraps after len(PALETTE) runs)."""
    return PALETTE[i % len(PALETTE)]


def shade(color: Color, towards_white: float = 0.45) -> Color:
    """A lighter shade of ``color``: the bandwidth line and iteration markers of a run."""
    r, g, b = color
    f = towards_white
    return (round(r + (255 - r) * f), round(g + (255 - g) * f), round(b + (255 - b) * f))


def _decimate(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Keep first, lowest, highest and last point of each pixel column, in order: thousands
    of samples draw as a few hundred segments and look the same."""
    out: list[tuple[float, float]] = []
    group: list[tuple[float, float]] = []
    column: int | None = None

    def flush() -> None:
        if len(group) <= 4:
            out.extend(group)
            return
        idx = range(len(group))
        lo = min(idx, key=lambda i: group[i][1])
        hi = max(idx, key=lambda i: group[i][1])
        out.extend(group[i] for i in sorted({0, lo, hi, len(group) - 1}))

    for p in points:
        c = round(p[0])
        if c != column and group:
            flush()
            group = []
        column = c
        group.append(p)
    if group:
        flush()
    return out


def _plot_series(cv: Canvas, ax: _Axes, pts: list[tuple[float, float]], color: Color,
                 dash: int | None = None) -> None:
    cv.polyline(_decimate([(ax.px(t), ax.py(v)) for t, v in pts]), color, LINE_WIDTH, dash)


def _draw_axes(cv: Canvas, ax: _Axes, xticks: list[float], yticks: list[float],
               x_labels: bool) -> None:
    b = ax.box
    for t in xticks[1:-1]:
        cv.line(ax.px(t), b.y0 + 1, ax.px(t), b.y1 - 1, GRID)
    for v in yticks[1:-1]:
        cv.line(b.x0 + 1, ax.py(v), b.x1 - 1, ax.py(v), GRID)
    for v in yticks:
        y = ax.py(v)
        cv.line(b.x0 - 4, y, b.x0 - 1, y, AXIS)
        cv.text(b.x0 - 7, y - GLYPH_H // 2, tick_label(v, yticks), INK, anchor="right")
    for t in xticks:
        x = ax.px(t)
        cv.line(x, b.y1 + 1, x, b.y1 + 4, AXIS)
        if x_labels:
            cv.text(x, b.y1 + 7, tick_label(t, xticks), INK, anchor="center")


def _draw_frame(cv: Canvas, b: Box) -> None:
    cv.line(b.x0, b.y0, b.x1, b.y0, AXIS)
    cv.line(b.x0, b.y1, b.x1, b.y1, AXIS)
    cv.line(b.x0, b.y0, b.x0, b.y1, AXIS)
    cv.line(b.x1, b.y0, b.x1, b.y1, AXIS)


def _draw_legend(cv: Canvas, layout: Layout) -> None:
    for e, x, y in layout.legend:
        mid = y + GLYPH_H // 2
        if e.kind == "band":
            cv.blend_rect(x, y - 2, x + _SWATCH, y + GLYPH_H + 1, e.color, e.alpha)
        elif e.kind == "mark":
            cv.vline_dashed(x + _SWATCH // 2, y - 2, y + GLYPH_H + 1, e.color, dash=2)
        else:
            cv.line(x, mid, x + _SWATCH, mid, e.color, LINE_WIDTH,
                    DASH if e.kind == "dash" else None)
        cv.text(x + _SWATCH + 6, y, e.label, INK)


def _value_range(values: list[float]) -> list[float]:
    if not values:
        return nice_ticks(0.0, 1.0)
    return nice_ticks(min(0.0, min(values)), max(values))


def render_canvas(runs: Sequence[Mapping[str, Any]] | Mapping[str, Any], width: int = WIDTH,
                  height: int = HEIGHT) -> Canvas:
    """Draw the report plot of ``runs`` (one, or several to compare) on a new canvas."""
    runs = as_runs(runs)
    layout = plot_layout(runs, width, height)
    series = [series_of(r) for r in runs]
    multi = len(series) > 1
    cv = Canvas(width, height)
    top, bottom = layout.top, layout.bottom

    times = [t for s in series for t in s.times]
    times += [t for s in series if s.downtime for t in s.downtime]
    xticks = (nice_ticks(min(0.0, min(times)), max(times), max(2, top.w // 100)) if times
              else nice_ticks(0.0, 1.0))
    top_ticks = _value_range([v for s in series for _, v in s.remaining])
    rates = [v for s in series for _, v in s.dirty + s.bandwidth]
    bottom_ticks = _value_range(rates)
    ax_top = _Axes(top, xticks[0], xticks[-1], top_ticks[0], top_ticks[-1])
    ax_bottom = _Axes(bottom, xticks[0], xticks[-1], bottom_ticks[0], bottom_ticks[-1])

    _draw_axes(cv, ax_top, xticks, top_ticks, x_labels=False)
    _draw_axes(cv, ax_bottom, xticks, bottom_ticks, x_labels=True)

    # Bands first, markers next, data lines last so nothing hides a line.
    for i, s in enumerate(series):
        if s.downtime is None:
            continue
        color, alpha = (run_color(i), BAND_ALPHA_MULTI) if multi else (DOWNTIME, BAND_ALPHA)
        for ax in (ax_top, ax_bottom):
            x0, x1 = ax.px(s.downtime[0]), ax.px(s.downtime[1])
            cv.set_clip(ax.box.inner())
            cv.blend_rect(x0, ax.box.y0, max(x1, x0 + 2), ax.box.y1, color, alpha)
    for i, s in enumerate(series):
        mark = shade(run_color(i), 0.55) if multi else ITERATION
        label_color = run_color(i) if multi else MUTED
        label_y = top.y0 + 3 + i * (GLYPH_H + 2)
        room = label_y + GLYPH_H < top.y0 + top.h // 3  # no labels for the 4th run and on
        last_right = -1.0
        cv.set_clip(top.inner())
        for t, n in s.iterations:
            x = ax_top.px(t)
            cv.vline_dashed(x, top.y0 + 1, top.y1 - 1, mark, dash=3)
            if room and n is not None and x > last_right:  # label only if clear of the last
                cv.text(x + 3, label_y, str(n), label_color)
                last_right = x + 3 + text_width(str(n))
    for i, s in enumerate(series):
        own = run_color(i) if multi else None
        cv.set_clip(bottom.inner())
        _plot_series(cv, ax_bottom, s.bandwidth, shade(own) if own else BANDWIDTH, DASH)
        _plot_series(cv, ax_bottom, s.dirty, own or DIRTY)
        cv.set_clip(top.inner())
        _plot_series(cv, ax_top, s.remaining, own or REMAINING)
    cv.set_clip(None)

    _draw_frame(cv, top)
    _draw_frame(cv, bottom)
    if not times:
        cv.text((top.x0 + top.x1) / 2, (top.y0 + top.y1) / 2 - GLYPH_H, "no samples", MUTED,
                scale=2, anchor="center")
    else:
        if not any(s.remaining for s in series):
            cv.text((top.x0 + top.x1) / 2, (top.y0 + top.y1) / 2, "no remaining-bytes data",
                    MUTED, anchor="center")
        if not rates:
            cv.text((bottom.x0 + bottom.x1) / 2, (bottom.y0 + bottom.y1) / 2,
                    "no dirty-rate or bandwidth data", MUTED, anchor="center")
    for box, ticks, title in ((top, top_ticks, "remaining (MiB)"),
                              (bottom, bottom_ticks, "rate (MiB/s)")):
        # Just left of the widest tick label, so the title reads as that axis's.
        label_w = max(text_width(tick_label(v, ticks)) for v in ticks)
        cv.text_vertical(max(2, box.x0 - 7 - label_w - 6 - GLYPH_H), (box.y0 + box.y1) / 2,
                         title, INK)
    cv.text((bottom.x0 + bottom.x1) / 2, bottom.y1 + 4 + 12 + 4, "time (s)", INK,
            anchor="center")
    cv.text(width / 2, 10, layout.title, INK, scale=layout.title_scale, anchor="center")
    _draw_legend(cv, layout)
    return cv


def render_png(runs: Sequence[Mapping[str, Any]] | Mapping[str, Any], path: Path | str, *,
               width: int = WIDTH, height: int = HEIGHT) -> Path:
    """Write the report plot of ``runs`` to ``path`` as a PNG; returns the path.

    One run gives its own title and a remaining / dirty rate / bandwidth / downtime legend;
    several runs give a comparison, one palette colour per run. Parent directories are made.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return render_canvas(runs, width, height).save(path)
