#!/usr/bin/env python3
"""Issue #9's figure: what reaching the HMC over SSH adds to a command (target <= 0.3 s).

Each command runs locally (the console script, a fresh process) and over hmc1's real sshd
(``sshpass -p PW ssh hscroot@HMC 'CMD'``, a fresh SSH connection each time, as IBM's Ansible
collection and op-test do), alternating, in the same run; medians and the difference are
printed, with one SSH connection's login alone (``ssh ... ''``) for scale. The login shell
and the command server's fork are the HMC's part; the rest is OpenSSH's handshake.

Run: .venv/bin/python benchmarks/hmc_ssh_bench.py [--rounds N]   (the default lab must be up)
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS = ["migrlpar -o v -m sys1 -t sys2 -p lpar1", "lssyscfg -r lpar -m sys1",
            "lssyscfg -r sys -F name,state"]
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR"]


def hmc1() -> dict:
    out = subprocess.run([str(BIN / "lpmlab"), "lab", "status", "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["hmcs"]["hmc1"]


def timed(argv: list[str]) -> float:
    t0 = time.monotonic()
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    dt = time.monotonic() - t0
    if cp.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} failed ({cp.returncode}): {cp.stderr}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    h = hmc1()
    ssh = ["sshpass", "-p", h["password"], "ssh", *SSH_OPTS, f"{h['user']}@{h['address']}"]
    timed([*ssh, ""])  # warm-up: first connection, caches
    login = [timed([*ssh, ""]) for _ in range(args.rounds)]
    print(f"SSH login alone (ssh hscroot@{h['address']} ''): median "
          f"{statistics.median(login):.3f} s over {args.rounds}")
    print(f"{'command':<44} {'local s':>9} {'ssh s':>9} {'ssh adds':>9}")
    worst = 0.0
    for command in COMMANDS:
        here, there = [], []
        timed([str(BIN / shlex.split(command)[0]), *shlex.split(command)[1:]])
        for _ in range(args.rounds):
            here.append(timed([str(BIN / shlex.split(command)[0]),
                               *shlex.split(command)[1:]]))
            there.append(timed([*ssh, command]))
        lm, sm = statistics.median(here), statistics.median(there)
        worst = max(worst, sm - lm)
        print(f"{command:<44} {lm:9.3f} {sm:9.3f} {sm - lm:+9.3f}")
    print(f"largest difference: {worst:+.3f} s (target <= 0.3 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
