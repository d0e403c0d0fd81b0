"""What the plots draw, pulled out of report documents: the series of one migration (nulls
dropped, times in seconds from the transfer's start), titles and labels, and axis ticks.
The PNG/SVG plots (:mod:`.plot`) and the terminal plots (:mod:`.termplot`) share it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024


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
    # the dirty rate each pass found (derived), as (start, end, MiB/s) steps
    pass_dirty: list[tuple[float, float, float]] = field(default_factory=list)

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
        if (v := _num(s.get("dirty_rate_bps"))) is not None:  # QEMU's own figure
            out.dirty.append((t, v / MIB))
        if (v := _num(s.get("bandwidth_bps"))) is not None:
            out.bandwidth.append((t, v / MIB))
        if s.get("kind") == "iteration":
            n = _num(s.get("iteration"))
            out.iterations.append((t, int(n) if n is not None else None))
    for p in run.get("passes") or []:
        rate, t0, secs = _num(p.get("dirty_rate_bps")), _num(p.get("t")), _num(p.get("seconds"))
        if rate is not None and t0 is not None and secs:
            out.pass_dirty.append((t0, t0 + secs, rate / MIB))
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
