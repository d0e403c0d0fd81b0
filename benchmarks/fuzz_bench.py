#!/usr/bin/env python3
"""Issue #11's figure: thousands of fuzzed bad commands against the running lab (target: 0
tracebacks over >= 2,000 commands), with the suite's strategies (tests/integration/fuzzing.py).

Every command goes through the HMC's command server (as over SSH); after each one the lab's
state (domains and their states on every frame, migration records) is compared with the
state before, and at the end thoroughly (domain definitions, placements, settings, keys).
Prints per command: runs, tracebacks, exit 0, missing code, wrong exit status, hangs, state
changes, mean time; --json writes the figures and the first failures of each command.

Run: .venv/bin/python benchmarks/fuzz_bench.py [--commands 2000] [--seed 11] [--json PATH]
     [--up]   (the lab must be up, or --up brings the default lab up first; take the
     machine's lab lock around it: flock /work/lab.lock ...)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import Phase, given, seed, settings  # noqa: E402

from tests.integration.fuzzing import (  # noqa: E402
    Command,
    Fuzzer,
    commands,
    differences,
    keep_hypothesis_files_in,
    problems,
)

COLUMNS = ("runs", "tracebacks", "exit_0", "missing_code", "wrong_exit", "hung",
           "state_changes")


def run(fuzzer: Fuzzer, n: int, seed_value: int) -> dict[str, object]:
    before = fuzzer.probe.snapshot(full=True)
    cheap = before_cheap = fuzzer.probe.snapshot()
    drifts: list[str] = []

    @seed(seed_value)
    @settings(settings.get_profile("lpmlab-fuzz"), max_examples=n, derandomize=False,
              phases=[Phase.generate])
    @given(cmd=commands(fuzzer.names))
    def one(cmd: Command) -> None:
        nonlocal cheap
        result = fuzzer.server.run(cmd.argv)
        after = fuzzer.probe.snapshot()
        changed = after != cheap
        if changed:
            drifts.append(f"{cmd}: " + "; ".join(differences(cheap, after)))
            cheap = after  # count each change once
        fuzzer.tally(cmd, result, problems(result), changed)

    t0 = time.monotonic()
    one()
    wall = time.monotonic() - t0
    after = fuzzer.probe.snapshot(full=True)
    return {"commands": sum(t["runs"] for t in fuzzer.tallies.values()), "seed": seed_value,
            "wall_s": round(wall, 1), "per_command": fuzzer.tallies,
            "state_unchanged_at_end": after == before and fuzzer.probe.snapshot()
            == before_cheap, "end_differences": differences(before, after), "drifts": drifts}


def table(figures: dict[str, object]) -> str:
    per = figures["per_command"]
    assert isinstance(per, dict)
    head = f"{'command':<12}" + "".join(f"{c:>14}" for c in COLUMNS) + f"{'mean ms':>10}"
    lines = [head, "-" * len(head)]
    total = dict.fromkeys(COLUMNS, 0)
    secs = 0.0
    for name in sorted(per):
        t = per[name]
        lines.append(f"{name:<12}" + "".join(f"{t[c]:>14}" for c in COLUMNS)
                     + f"{1000 * t['seconds'] / t['runs']:>10.0f}")
        for c in COLUMNS:
            total[c] += t[c]
        secs += t["seconds"]
    lines.append("-" * len(head))
    lines.append(f"{'all':<12}" + "".join(f"{total[c]:>14}" for c in COLUMNS)
                 + f"{1000 * secs / max(1, total['runs']):>10.0f}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=int, default=2000, help="how many (default 2000)")
    ap.add_argument("--seed", type=int, default=11, help="hypothesis seed (default 11)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--up", action="store_true", help="bring the default lab up first")
    args = ap.parse_args()
    if args.up:
        lpmlab = str(Path(sys.executable).parent / "lpmlab")
        subprocess.run([lpmlab, "lab", "up"], check=True)
    with tempfile.TemporaryDirectory(prefix="lpmlab-fuzz-") as work:
        keep_hypothesis_files_in(Path(work))
        fuzzer = Fuzzer.start(Path(work))
        try:
            figures = run(fuzzer, args.commands, args.seed)
        finally:
            fuzzer.close()
    print(table(figures))
    print(f"\n{figures['commands']} commands in {figures['wall_s']} s (seed {args.seed}); "
          f"lab state unchanged at the end: {figures['state_unchanged_at_end']}")
    for d in figures["end_differences"] or []:  # type: ignore[union-attr]
        print(f"  changed: {d}")
    per = figures["per_command"]
    assert isinstance(per, dict)
    for name in sorted(per):
        for f in per[name]["failures"][:3]:
            print(f"  {name}: {' '.join(f['problems']) or 'state changed'} (exit {f['rc']}): "
                  f"{f['argv']} -- {f['stderr'].strip().splitlines()[-1:]}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
