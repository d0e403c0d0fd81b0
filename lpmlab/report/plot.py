"""Report plots with matplotlib (Agg): PNG (HiDPI) and SVG, the way the field draws them.

One migration: two panels sharing the time axis (seconds from the transfer's start). The top
one has the bytes still to send (MiB) with a marker and number at each pre-copy pass; the
bottom one the dirty rate each pass found (a step per pass, derived: see
``lpmlab.hmc.precopy.pass_dirty``), QEMU's own dirty-rate figure dotted beside it, and the
stream's bandwidth; the downtime window is shaded in both.

Several migrations (``lpmlab report --compare``): small multiples, one row per migration
(remaining | rates), with shared axes per column so the rows compare at a glance, instead of
overlaid lines and bands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lpmlab.report.series import RunSeries, as_runs, series_of, summary_text, title_of

FORMATS = ("png", "svg")
DPI = 200
# Distinct on white and for the common colour-vision deficiencies (matplotlib's tab10).
REMAINING, DIRTY, QEMU_DIRTY, BANDWIDTH, DOWNTIME, PASS = (
    "#1f77b4", "#d62728", "#9467bd", "#2ca02c", "#ff7f0e", "#7f7f7f")
MAX_PASS_LABELS = 24  # more pass numbers than this would collide: every k-th is labelled


def _figure(width_in: float, height_in: float) -> Any:
    # no pyplot: no global state, nothing shown, any thread can draw
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _panels(ax_top: Any, ax_bottom: Any, s: RunSeries, *, legend: bool,
            pass_numbers: bool = True) -> list[Any]:
    """Draw one migration on its two axes; the artists to put in a legend."""
    handles = []
    if s.downtime is not None:
        for ax in (ax_top, ax_bottom):
            band = ax.axvspan(*s.downtime, color=DOWNTIME, alpha=0.25, lw=0,
                              label="downtime")
        handles.append(band)
    passes = [t for t, _ in s.iterations]
    step = max(1, -(-len(passes) // MAX_PASS_LABELS))
    for i, (t, n) in enumerate(s.iterations):
        ax_top.axvline(t, color=PASS, lw=0.6, ls=(0, (2, 3)), alpha=0.7, zorder=1)
        if pass_numbers and n is not None and i % step == 0:
            ax_top.annotate(str(n), (t, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(2, -2), textcoords="offset points", fontsize=6.5,
                            color=PASS, va="top")
    if s.remaining:
        (line,) = ax_top.plot(*zip(*s.remaining, strict=True), color=REMAINING, lw=1.6,
                              label="remaining", zorder=3)
        handles.append(line)
    if s.pass_dirty:
        xs, ys = [], []
        for a, b, v in s.pass_dirty:
            xs += [a, b, float("nan")]
            ys += [v, v, float("nan")]
        (line,) = ax_bottom.plot(xs, ys, color=DIRTY, lw=1.8, label="dirty rate (per pass)",
                                 zorder=3)
        handles.append(line)
    if s.dirty:
        (line,) = ax_bottom.plot(*zip(*s.dirty, strict=True), color=QEMU_DIRTY, lw=1.0,
                                 ls=":", label="QEMU's dirty-pages-rate", zorder=2)
        handles.append(line)
    if s.bandwidth:
        (line,) = ax_bottom.plot(*zip(*s.bandwidth, strict=True), color=BANDWIDTH, lw=1.2,
                                 ls="--", label="bandwidth", zorder=2)
        handles.append(line)
    for ax in (ax_top, ax_bottom):
        ax.grid(True, color="#e6e6e6", lw=0.6)
        ax.set_axisbelow(True)
    if not s.times:
        ax_top.text(0.5, 0.5, "no samples", transform=ax_top.transAxes, ha="center",
                    va="center", color="#888888")
    if legend and handles:
        ax_bottom.legend(handles=[*handles, _pass_handle()], loc="upper right", fontsize=7,
                         frameon=False, ncols=2)
    return handles


def _from_zero(axes: list[Any]) -> None:
    """Rates and bytes start at 0 (once every panel is drawn: shared axes scale together)."""
    for ax in axes:
        ax.relim()
        ax.autoscale_view(scalex=False)
    for ax in axes:
        ax.set_ylim(bottom=0)


def _pass_handle() -> Any:
    from matplotlib.lines import Line2D

    return Line2D([], [], color=PASS, lw=0.6, ls=(0, (2, 3)), label="pre-copy pass (sync)")


def figure(runs: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> Any:
    """The report figure of one migration, or small multiples of several."""
    runs = as_runs(runs)
    series = [series_of(r) for r in runs]
    if len(series) <= 1:
        fig = _figure(9.0, 5.6)
        ax_top, ax_bottom = fig.subplots(2, 1, sharex=True)
        s = series[0] if series else RunSeries(label="", result="")
        _panels(ax_top, ax_bottom, s, legend=True)
        _from_zero([ax_top, ax_bottom])
        ax_top.set_ylabel("remaining (MiB)")
        ax_bottom.set_ylabel("rate (MiB/s)")
        ax_bottom.set_xlabel("time since the transfer began (s)")
        fig.suptitle(title_of(runs), fontsize=10)
        return fig
    fig = _figure(10.0, 0.8 + 1.9 * len(series))
    axes = fig.subplots(len(series), 2, sharex=True, sharey="col", squeeze=False)
    handles: dict[str, Any] = {}
    for row, (run, s) in enumerate(zip(runs, series, strict=True)):
        ax_top, ax_bottom = axes[row]
        for h in _panels(ax_top, ax_bottom, s, legend=False, pass_numbers=False):
            handles.setdefault(h.get_label(), h)
        ax_top.set_ylabel(f"{s.label}\n{summary_text(run)}", fontsize=7.5, rotation=0,
                          ha="right", va="center")
    _from_zero([ax for row in axes for ax in row])
    axes[0][0].set_title("remaining (MiB)", fontsize=9)
    axes[0][1].set_title("dirty rate / bandwidth (MiB/s)", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("time since the transfer began (s)")
    fig.suptitle(title_of(runs), fontsize=10)
    fig.legend(handles=[*handles.values(), _pass_handle()], loc="outside lower center",
               ncols=6, fontsize=7.5, frameon=False)
    return fig


def render(runs: Sequence[Mapping[str, Any]] | Mapping[str, Any], stem: Path | str,
           formats: Sequence[str] = FORMATS, dpi: int = DPI) -> list[Path]:
    """Write the report figure as ``stem.png`` (``dpi``) and ``stem.svg``; the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig = figure(runs)
    out = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, format=fmt, dpi=dpi,
                    metadata={"Software": "lpmlab"} if fmt == "png" else {"Creator": "lpmlab"})
        out.append(path)
    return out


def render_png(runs: Sequence[Mapping[str, Any]] | Mapping[str, Any], path: Path | str) \
        -> Path:
    """Only the PNG (the benchmarks' plots)."""
    return render(runs, Path(path).with_suffix(""), formats=("png",))[0]
