#!/usr/bin/env python3
"""Aggregate throughput of 1, 2, 4 (and 8) concurrent migrations (figures printed, nothing
asserted); targets: 4 concurrent >= 0.7 x one (issue #3), 8 concurrent >= 3 x one (issue #14).

Brings up a lab of several small partitions on sys1 (tests/integration/topologies/quad.yaml,
or benchmarks/topologies/oct.yaml with --topology), starts the same dirtying workload in every
partition, then, alternating directions, migrates batches of 1, 2, 4 ... partitions with one
``migrlpar -o m -p a,b,...`` each. Aggregate throughput of a batch = bytes libvirt sent for all
its partitions / the batch's transfer window (first transfer start to last completion, from
the migration records). Each batch size runs ``--rounds`` times; the median is compared.

With more partitions than an MSP's ``num_active_migrations_configured`` (4 by default), the
first batch that is too big runs with the default: it shows the limit refusing the extra
migrations (HSCLL415); then the limit is raised the HMC way
(``migrlpar -o set -r lpar -m sys1 -p vios1 -i num_active_migrations_configured=N``).

Run: .venv/bin/python benchmarks/concurrency_bench.py [--rounds 3] [--skip-up]
     [--topology benchmarks/topologies/oct.yaml]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
TOPOLOGY = Path(__file__).resolve().parent.parent / "tests/integration/topologies/quad.yaml"
DEFAULT_MSP_LIMIT = 4


def run(*argv: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    cp = subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                        timeout=timeout)
    if check and cp.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({cp.returncode}):\n{cp.stderr}")
    return cp


def limit_enforced(hmc: object, names: list[str]) -> None:
    """Migrate more partitions at once than the MSPs accept: the extra ones are refused
    (HSCLL415) and stay where they are; the others move. Then bring everyone home."""
    src = frame_of(hmc, names[0])
    dst = "sys2" if src == "sys1" else "sys1"
    cp = run("migrlpar", "-o", "m", "-m", src, "-t", dst, "-p", ",".join(names), check=False)
    moved = [n for n in names if frame_of(hmc, n) == dst]
    refused = cp.stderr.count("HSCLL415")
    print(f"{len(names)} at once with the MSPs' default limit ({DEFAULT_MSP_LIMIT}): "
          f"{len(moved)} moved, {refused} refused with HSCLL415, exit {cp.returncode}")
    for n in moved:
        run("migrlpar", "-o", "m", "-m", dst, "-t", src, "-p", n)


def frame_of(hmc: object, name: str) -> str:
    return [p.frame for p in hmc.placements(name)][0]  # type: ignore[attr-defined]


def batch(hmc: object, names: list[str]) -> tuple[float, int, float]:
    """Migrate ``names`` (all on one frame) to the other frame at once; return (aggregate
    MiB/s, bytes, window seconds)."""
    src = frame_of(hmc, names[0])
    dst = "sys2" if src == "sys1" else "sys1"
    t0 = time.time()
    run("migrlpar", "-o", "m", "-m", src, "-t", dst, "-p", ",".join(names))
    recs = [r for n in names for r in hmc.store.latest(n, 1)]  # type: ignore[attr-defined]
    assert all(r.started >= t0 and r.result == "success" for r in recs), recs
    start = min(next(p["at"] for p in r.phases if p["phase"] == "transfer") for r in recs)
    end = max(next(p["at"] for p in r.phases if p["phase"] == "complete") for r in recs)
    sent = sum(int(r.stats.get("job", {}).get("data_processed", 0)) for r in recs)
    window = end - start
    return sent / window / 2**20, sent, window


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-up", action="store_true", help="reuse the running quad lab")
    ap.add_argument("--rate", type=int, default=32, help="dirty rate per partition, MiB/s")
    ap.add_argument("--wss", type=int, default=64, help="working set per partition, MiB")
    ap.add_argument("--topology", type=Path, default=TOPOLOGY,
                    help="a lab whose partitions all start on sys1")
    args = ap.parse_args()
    if not args.skip_up:
        run("lpmlab", "lab", "down")
        run("lpmlab", "lab", "up", "-t", str(args.topology))
    from lpmlab.fabric.lab import Lab, load_state
    from lpmlab.hmc.system import Hmc

    plan, _ = load_state()
    lab = Lab(plan)
    partitions = [p.name for p in plan.topology.partitions]
    sizes = [n for n in (1, 2, 4, 8, 16) if n <= len(partitions)]
    from lpmlab.demo import set_dirty_workload

    for name in partitions:
        ch = lab.rmc(name)
        # sets the running dirtier (a reused lab has one): a second one would double the
        # rate and, in 256 MiB, run the partition out of memory
        set_dirty_workload(ch, args.rate, args.wss)
        ch.close()
    hmc = Hmc.open()
    # everyone home on sys1 first
    for name in partitions:
        if frame_of(hmc, name) != "sys1":
            run("migrlpar", "-o", "m", "-m", "sys2", "-t", "sys1", "-p", name)
    def msp_limit(n: int) -> None:
        for frame, vios in (("sys1", "vios1"), ("sys2", "vios2")):
            run("migrlpar", "-o", "set", "-r", "lpar", "-m", frame, "-p", vios, "-i",
                f"num_active_migrations_configured={n}")

    if len(partitions) > DEFAULT_MSP_LIMIT:
        msp_limit(DEFAULT_MSP_LIMIT)  # a reused lab (--skip-up) keeps the last run's limit
        limit_enforced(hmc, partitions)
        msp_limit(len(partitions))
    results: dict[int, list[tuple[float, int, float]]] = {n: [] for n in sizes}
    for r in range(args.rounds):
        for n in sizes:
            for leg in range(2):  # there and back, so every batch starts where it should
                res = batch(hmc, partitions[:n])
                results[n].append(res)
                print(f"round {r + 1} n={n} leg {leg + 1}: {res[0]:7.1f} MiB/s aggregate, "
                      f"{res[1] / 2**20:7.1f} MiB in {res[2]:.2f} s", file=sys.stderr)
    hmc.close()
    one = statistics.median(x[0] for x in results[1])
    print(f"\nconcurrent migrations, {args.rate} MiB/s dirtied over {args.wss} MiB in each "
          f"256 MiB partition, {args.rounds} rounds x 2 legs (medians)")
    print(f"{'n':>2} {'aggregate MiB/s':>16} {'vs one':>7} {'MiB per batch':>14} "
          f"{'window s':>9}")
    for n in sizes:
        agg = statistics.median(x[0] for x in results[n])
        mib = statistics.median(x[1] for x in results[n]) / 2**20
        win = statistics.median(x[2] for x in results[n])
        print(f"{n:>2} {agg:>16.1f} {agg / one:>7.2f} {mib:>14.1f} {win:>9.2f}")


if __name__ == "__main__":
    main()
