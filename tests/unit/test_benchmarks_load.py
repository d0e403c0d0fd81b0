"""Every benchmark still loads against the package and answers --help: a benchmark that
imports a name the code no longer has breaks only when someone needs its figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[2] / "benchmarks").glob("*_bench.py"))


def test_there_are_benchmarks_to_check() -> None:
    assert len(BENCHMARKS) >= 5


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_the_benchmark_loads_and_prints_its_usage(script: Path) -> None:
    cp = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                        text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert cp.stdout.startswith("usage:"), cp.stdout[:200]
