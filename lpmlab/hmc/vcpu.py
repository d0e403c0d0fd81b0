"""Keeping multi-processor partitions alive across a live migration on QEMUs with the
"quiesced" bug (DESIGN.md, "Multi-vCPU guests").

QEMU 10.0 added a per-CPU "quiesced" flag that is not migrated, so secondary vCPUs of a
pseries guest never take another interrupt on the destination (fixed upstream in January
2026, QEMU issue 3079). RTAS start-cpu clears the flag, so the partition OS takes its
secondary processors offline before the switchover and brings them back on the destination.
The way chosen is recorded in the migration record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lpmlab.errors import RmcError

# First QEMU release known to migrate the flag. Releases between 10.0 and this one are
# treated as affected; stable backports are not recognised (conservative: the workaround
# costs under a second, a dead partition costs the test).
QUIESCE_FIXED = (11, 0, 0)
QUIESCE_INTRODUCED = (10, 0, 0)
WORKAROUND = "offline-secondary-cpus"

OFFLINE = ("for c in /sys/devices/system/cpu/cpu[0-9]*; do n=${c##*cpu}; "
           "[ \"$n\" = 0 ] || echo 0 > $c/online; done; cat /sys/devices/system/cpu/online")
ONLINE = ("for c in /sys/devices/system/cpu/cpu[0-9]*; do n=${c##*cpu}; "
          "[ \"$n\" = 0 ] || echo 1 > $c/online; done; cat /sys/devices/system/cpu/online")


def has_quiesce_bug(version: tuple[int, int, int]) -> bool:
    return QUIESCE_INTRODUCED <= version < QUIESCE_FIXED


@dataclass
class VcpuPlan:
    """What a migration does about secondary processors, for the migration record."""

    method: str  # "offline-secondary-cpus" or "none"
    reason: str
    procs: int
    offline_s: float = 0.0
    online_s: float = 0.0

    def record(self) -> dict[str, Any]:
        return dict(self.__dict__)


def plan_for(procs: int, dest_qemu: tuple[int, int, int]) -> VcpuPlan:
    ver = ".".join(map(str, dest_qemu))
    if procs <= 1:
        return VcpuPlan("none", "one virtual processor: not affected", procs)
    if has_quiesce_bug(dest_qemu):
        return VcpuPlan(WORKAROUND, f"QEMU {ver} does not migrate the vCPU quiesced flag", procs)
    return VcpuPlan("none", f"QEMU {ver} migrates the vCPU quiesced flag", procs)


def _expect(out: str, want: str, partition: str, what: str) -> None:
    got = out.strip().splitlines()[-1] if out.strip() else ""
    if got != want:
        raise RmcError(f"partition {partition} did not {what} (online CPUs: {got or '?'}, "
                       f"expected {want})",
                       fix="check the partition console (lpmlab lab console)")


def take_secondaries_offline(rmc: Any, plan: VcpuPlan, partition: str) -> None:
    t0 = time.monotonic()
    res = rmc.run(OFFLINE, timeout=30, check=True)
    _expect(res.stdout, "0", partition, "take its secondary processors offline")
    plan.offline_s = round(time.monotonic() - t0, 3)


def bring_secondaries_online(rmc: Any, plan: VcpuPlan, partition: str) -> None:
    t0 = time.monotonic()
    res = rmc.run(ONLINE, timeout=60, check=True)
    _expect(res.stdout, f"0-{plan.procs - 1}", partition, "bring its processors back online")
    plan.online_s = round(time.monotonic() - t0, 3)
