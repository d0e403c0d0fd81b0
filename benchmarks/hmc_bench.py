#!/usr/bin/env python3
"""Issue #3 targets on the default lab (figures printed, nothing asserted).

- `migrlpar -o v` for one partition, as a command (target <= 1 s; a real HMC takes tens).
- Recovery after each interruption: controller killed mid-transfer, destination libvirtd
  killed, mover link cut (target <= 10 s each), timed around `migrlpar -o r`.

Run: .venv/bin/python benchmarks/hmc_bench.py [--rounds N]   (the lab must be up)
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def cmd(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True)


def timed(*argv: str) -> float:
    t0 = time.monotonic()
    cp = cmd(*argv)
    if cp.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {cp.stderr}")
    return time.monotonic() - t0


def validate_times(rounds: int) -> list[float]:
    return [timed("migrlpar", "-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar1")
            for _ in range(rounds)]


def stuck_migration(lab: object) -> subprocess.Popen:
    from lpmlab.demo import set_dirty_workload

    lab.plan.vios("vios1").mover_service().limit_bandwidth(40)  # type: ignore[attr-defined]
    ch = lab.rmc("lpar1")  # type: ignore[attr-defined]
    set_dirty_workload(ch, 64, 128)
    ch.close()
    proc = subprocess.Popen([str(BIN / "migrlpar"), "-o", "m", "-m", "sys1", "-t", "sys2",
                             "-p", "lpar1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = cmd("lslparmigr", "-r", "lpar", "-m", "sys1", "--filter", "lpar_names=lpar1",
                  "-F", "migration_state").stdout.strip()
        if out == "Migration In Progress":
            break
        time.sleep(0.2)
    time.sleep(2)
    return proc


def recovery_times(lab: object) -> dict[str, float]:
    out = {}
    vios1 = lab.plan.vios("vios1")  # type: ignore[attr-defined]
    # controller killed
    proc = stuck_migration(lab)
    proc.kill()
    proc.wait()
    out["controller killed"] = timed("migrlpar", "-o", "r", "-m", "sys1", "-p", "lpar1")
    # mover link cut
    proc = stuck_migration(lab)
    subprocess.run(["ip", "-n", vios1.ns, "link", "set", "mover0", "down"], check=True)
    out["mover link cut"] = timed("migrlpar", "-o", "r", "-m", "sys1", "-p", "lpar1",
                                  "--force")
    proc.wait(60)
    subprocess.run(["ip", "-n", vios1.ns, "link", "set", "mover0", "up"], check=True)
    # destination hypervisor killed
    proc = stuck_migration(lab)
    pid = int((lab.plan.frame("sys2").dir / "daemon.pid").read_text())  # type: ignore
    os.kill(pid, signal.SIGKILL)
    proc.wait(120)
    out["destination libvirtd killed"] = timed("migrlpar", "-o", "r", "-m", "sys1", "-p",
                                               "lpar1", "--force")
    vios1.mover_service().limit_bandwidth(None)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from lpmlab.fabric.lab import Lab, load_state

    lab = Lab(load_state()[0])
    v = validate_times(args.rounds)
    print(f"migrlpar -o v (one partition, whole command): median {statistics.median(v):.2f} s,"
          f" min {min(v):.2f}, max {max(v):.2f} over {len(v)} (target <= 1 s)")
    for what, secs in recovery_times(lab).items():
        print(f"recovery after {what}: {secs:.1f} s (target <= 10 s)")


if __name__ == "__main__":
    main()
