#!/usr/bin/env python3
"""Issue #4 targets: the latency the partition-OS hook phases add to a migration (figures
printed, nothing asserted). Targets: <= 0.5 s with an empty hook set, <= 1.5 s with ten
trivial hooks.

On the default lab, lpar1 migrates back and forth ``--rounds`` times with an empty
/etc/drmgr.d/pmig and as many times with ten trivial hooks, alternating. The added latency of
a migration is the time its check, pre and post phases took (they run one after the other
in the migration's path), as the controller measured them; the wall time of the whole
``migrlpar`` is printed next to it.

Run: .venv/bin/python benchmarks/hooks_bench.py [--rounds 5] [--skip-up]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
TRIVIAL = "#!/bin/sh\nexit 0\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip-up", action="store_true", help="use the running default lab")
    args = ap.parse_args()
    if not args.skip_up:
        subprocess.run([str(BIN / "lpmlab"), "lab", "up"], check=True, capture_output=True)
    from lpmlab.fabric.lab import Lab, load_state
    from lpmlab.pytest_plugin import Hmc, push_files

    plan, _ = load_state()
    lab = Lab(plan)
    hmc = Hmc()
    ch = lab.rmc("lpar1")
    ch.wait_ready(180)
    ch.close()
    sets = {"empty": {}, "ten": {f"/etc/drmgr.d/pmig/{i:02d}-noop": (TRIVIAL, 0o755)
                                 for i in range(10)}}
    results: dict[str, list[tuple[float, float, dict[str, float]]]] = {k: [] for k in sets}
    for r in range(args.rounds):
        for name, files in sets.items():
            ch = lab.rmc("lpar1")
            ch.run("rm -rf /etc/drmgr.d/pmig; mkdir -p /etc/drmgr.d/pmig", check=True)
            ch.close()
            if files:
                push_files(lab, "lpar1", files)
            out = hmc.migrate("lpar1")
            if not out.ok:
                sys.exit(f"migration failed: {out.stderr}")
            phases = out.hook_phase_seconds()
            assert len(out.hooks.get("pre", [])) == len(files)
            results[name].append((sum(phases.values()), out.wall_s, phases))
            print(f"round {r + 1} {name:5}: hook phases {sum(phases.values()):.3f} s "
                  f"({', '.join(f'{k} {v:.3f}' for k, v in phases.items())}), migrlpar "
                  f"{out.wall_s:.2f} s", file=sys.stderr)
    print(f"\nhook phase latency per migration, {args.rounds} migrations each (medians)")
    print(f"{'hook set':>9} {'check+pre+post s':>17} {'check':>6} {'pre':>6} {'post':>6} "
          f"{'migrlpar wall s':>16}")
    for name in sets:
        rows = results[name]
        med = {p: statistics.median(x[2].get(p, 0.0) for x in rows)
               for p in ("check", "pre", "post")}
        print(f"{name:>9} {statistics.median(x[0] for x in rows):>17.3f} "
              f"{med['check']:>6.3f} {med['pre']:>6.3f} {med['post']:>6.3f} "
              f"{statistics.median(x[1] for x in rows):>16.2f}")


if __name__ == "__main__":
    main()
