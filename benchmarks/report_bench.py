#!/usr/bin/env python3
"""How long the report plots take on a large comparison (figures printed, nothing asserted).

Builds a synthetic ``--compare`` of three runs with 2000 samples each (no lab needed) and
times the matplotlib figures (``render``: PNG at 200 dpi and SVG, written to a temporary
directory; small multiples for the comparison), a cold first call apart (matplotlib's
import and font cache), and ``render_terminal``.

Run: .venv/bin/python benchmarks/report_bench.py [--samples 2000] [--runs 3] [--repeat 5]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lpmlab.report.plot import render
from lpmlab.report.termplot import render_terminal

MIB = 1024 * 1024


def synthetic_run(index: int, samples: int) -> dict[str, Any]:
    """A pre-copy run: remaining memory decaying by iteration, noisy rates, a downtime window."""
    rnd = random.Random(index)
    total = 4.0 + 2.0 * index
    memory = (512 + 256 * index) * MIB
    per_iteration = max(1, samples // 6)
    rows: list[dict[str, Any]] = []
    remaining = float(memory)
    for i in range(samples):
        t = total * i / (samples - 1)
        iteration = i // per_iteration + 1
        remaining = max(0.0, remaining * (1 - 3.0 / samples) - rnd.random() * 2048)
        rows.append({
            "t": round(t, 4),
            "kind": "iteration" if i % per_iteration == 0 else "poll",
            "iteration": iteration,
            "memory_remaining": int(remaining),
            "data_remaining": int(remaining) if i % 11 else None,
            "data_processed": memory - int(remaining),
            "dirty_rate_bps": (64 + 20 * math.sin(i / 50)) * MIB if i % 5 else None,
            "bandwidth_bps": (300 + rnd.random() * 40) * MIB,
            "expected_downtime_ms": 300,
            "throttle_pct": 0,
        })
    rows[-1]["kind"] = "completed"
    down = total * 0.9
    return {
        "id": f"{index:012x}", "partition": f"lpar{index + 1}", "source_sys": "sys1",
        "dest_sys": "sys2", "result": "success", "controls": {},
        "summary": {"total_time_s": total, "downtime_ms": 87, "iterations": 6,
                    "bytes_sent": memory},
        "downtime_window": [down, down + 0.087],
        "samples": rows,
    }


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    runs = [synthetic_run(i, args.samples) for i in range(args.runs)]
    with tempfile.TemporaryDirectory() as tmp:
        stem = Path(tmp) / "compare"
        cold = timed(lambda: render(runs[:1], stem), 1)
        png = timed(lambda: render(runs, stem), args.repeat)
        size = stem.with_suffix(".png").stat().st_size
        svg_size = stem.with_suffix(".svg").stat().st_size
        png_one = timed(lambda: render(runs[:1], stem), args.repeat)
    term = timed(lambda: render_terminal(runs), args.repeat)
    term_one = timed(lambda: render_terminal(runs[:1]), args.repeat)
    print(f"{args.runs} runs x {args.samples} samples, best / median of {args.repeat}:")
    print(f"  first figure of the process (imports, fonts): {cold[0]:.3f} s")
    for name, times in (("render (compare)", png), ("render (1 run)", png_one),
                        ("render_terminal (compare)", term),
                        ("render_terminal (1 run)", term_one)):
        print(f"  {name:<26} {min(times):.3f} s / {statistics.median(times):.3f} s")
    print(f"  comparison: PNG {size} bytes, SVG {svg_size} bytes")


if __name__ == "__main__":
    main()
