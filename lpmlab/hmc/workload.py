"""A partition's memory-dirtying workload (lpm-dirty in the guest), set and read over RMC.

lpm-dirty re-reads /run/lpm-dirty.ctl when it changes and writes what it achieved over the
last second to /run/lpm-dirty.stat, so a change shows in the reading a second or two later.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from lpmlab.errors import DeadlineError, RmcError, UsageError

CTL, STAT, PID = "/run/lpm-dirty.ctl", "/run/lpm-dirty.stat", "/run/lpm-dirty.pid"
FULL_SPEED = -1  # lpm-dirty's "as fast as possible"
SETTLE_S = 6.0   # two stat periods and the control check, with room for a slow TCG guest


class Channel(Protocol):
    partition: str

    def run(self, command: str, timeout: float = 30.0, check: bool = False) -> Any: ...


@dataclass
class WorkloadState:
    running: bool
    rate_target: int | None = None     # MiB/s; -1 = as fast as possible; 0 = idle
    wss_mib: int | None = None
    achieved_mibps: float | None = None
    pages: int | None = None

    def render(self, partition: str) -> str:
        if not self.running:
            return f"{partition}: no workload (lpm-dirty is not running)"
        target = "full speed" if self.rate_target == FULL_SPEED else f"{self.rate_target} MiB/s"
        return (f"{partition}: dirtying {target} over {self.wss_mib} MiB, achieved "
                f"{self.achieved_mibps} MiB/s")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_rate(text: str) -> int:
    """``64``, ``0`` (idle) or ``max`` (as fast as the guest can) -> lpm-dirty's rate."""
    if text.lower() in ("max", "full", "-1"):
        return FULL_SPEED
    try:
        rate = int(text)
    except ValueError:
        rate = -2
    if rate < 0:
        raise UsageError(f"--rate {text}: not a rate", fix="give MiB/s (e.g. 64), 0 to idle, "
                         "or max for as fast as the partition can")
    return rate


def parse_stat(text: str) -> dict[str, str]:
    return dict(tok.split("=", 1) for tok in text.split() if "=" in tok)


class Workload:
    """Set and read one partition's lpm-dirty."""

    def __init__(self, channel: Channel) -> None:
        self.ch = channel

    def read(self) -> WorkloadState:
        res = self.ch.run(f"[ -f {PID} ] && kill -0 $(cat {PID}) 2>/dev/null && cat {STAT}",
                          timeout=15)
        if res.rc != 0:
            return WorkloadState(running=False)
        kv = parse_stat(res.stdout)
        try:
            return WorkloadState(True, int(kv["rate_target"]), int(kv["wss"]),
                                 float(kv["achieved_mibps"]), int(kv["pages"]))
        except (KeyError, ValueError):
            return WorkloadState(True)  # started a moment ago: no reading yet

    def set(self, rate: int | None, wss_mib: int | None, *, settle: bool = True) -> WorkloadState:
        """Change (or start) the dirtier; with ``settle``, wait for a reading taken after
        the change and return it."""
        if wss_mib is not None and wss_mib < 0:
            raise UsageError(f"--wss {wss_mib}: the working set must be 0 or more MiB",
                             fix="e.g. --wss 128")
        before = self.read()
        if before.running:
            kv = " ".join(f"{k}={v}" for k, v in (("rate", rate), ("wss", wss_mib))
                          if v is not None)
            if kv:
                # renamed into place whole: lpm-dirty looks at the file's mtime, and one that
                # read the file between the shell's truncate and write (same 10 ms tick) saw it
                # empty and never looked again
                self.ch.run(f"echo {shlex.quote(kv)} > {CTL}.new && mv {CTL}.new {CTL}",
                            timeout=15, check=True)
        else:
            self.ch.run(f"rm -f {STAT}; lpm-dirty --rate {100 if rate is None else rate} "
                        f"--wss {64 if wss_mib is None else wss_mib} --daemon",
                        timeout=15, check=True)
        if not settle:
            return self.read()
        return self._settled(rate, wss_mib)

    def _settled(self, rate: int | None, wss: int | None) -> WorkloadState:
        deadline = time.monotonic() + SETTLE_S
        seen: list[WorkloadState] = []
        matching = 0
        while time.monotonic() < deadline:
            st = self.read()
            seen.append(st)
            ok = (st.running and st.achieved_mibps is not None
                  and rate in (None, st.rate_target) and wss in (None, st.wss_mib))
            matching = matching + 1 if ok else 0
            # the stat is rewritten every second: the first matching reading may cover time
            # before the change, the one a second later does not
            if matching >= 2:
                return st
            time.sleep(1.0)
        raise DeadlineError(
            f"the workload of partition {self.ch.partition} did not take the new setting "
            f"within {SETTLE_S:.0f} s",
            fix="check lpm-dirty in the partition (lpmlab lab console)",
            evidence="\n".join(f"{s}" for s in seen[-3:]) or "no reading")

    def stop(self) -> WorkloadState:
        res = self.ch.run(f"[ -f {PID} ] && kill $(cat {PID}); rm -f {PID} {STAT}", timeout=15)
        if res.rc not in (0, 1):
            raise RmcError(f"cannot stop the workload of {self.ch.partition}: {res.stderr}")
        return WorkloadState(running=False)


PASSES = "/run/lpm-dirty.passes"


@dataclass
class GuestPass:
    end_s: float   # on the controller's monotonic clock
    pass_ms: float
    stall_ms: float


def guest_passes(ch: Channel) -> list[GuestPass]:
    """lpm-dirty's last passes over its working set, placed on this host's monotonic clock
    (the partition's uptime read in the same command anchors its clock to ours). Empty when
    the dirtier does not run."""
    t0 = time.monotonic()
    res = ch.run(f"cat {PASSES} 2>/dev/null; echo up; cat /proc/uptime", timeout=10)
    t1 = time.monotonic()
    if res.rc != 0 or "\nup\n" not in "\n" + res.stdout:
        return []
    head, _, tail = ("\n" + res.stdout).partition("\nup\n")
    try:
        guest_now = float(tail.split()[0])
    except (IndexError, ValueError):
        return []
    offset = (t0 + t1) / 2 - guest_now
    out = []
    for line in head.strip().splitlines():
        parts = line.split()
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            end_ms, pass_ms, stall_ms = (int(p) for p in parts)
            out.append(GuestPass(end_ms / 1000.0 + offset, float(pass_ms), float(stall_ms)))
    return out


def slowdown(rows: list[GuestPass], start: float, end: float) -> dict[str, Any]:
    """How much the partition slowed while its memory moved (guestperf's measure): its
    dirtier's pass time before the transfer against during it, and the longest stall it
    saw (the switchover's pause from inside, a throttle's). Times on the controller's
    monotonic clock."""
    import statistics

    before = [r.pass_ms for r in rows if r.end_s < start]
    typical = statistics.median(before[-20:]) if before else None
    # the pass that holds the pause ends up to a pass after the transfer
    reach = end + 2 * (typical or 0) / 1000.0
    during = [r for r in rows if start <= r.end_s <= reach]
    if not during:
        return {"passes": 0}
    during_ms = statistics.median(r.pass_ms for r in during)
    return {"passes": len(during), "pass_ms_before": typical, "pass_ms_during": during_ms,
            "slowdown": round(during_ms / typical, 3) if typical else None,
            "max_stall_ms": max(r.stall_ms for r in during),
            "source": "lpm-dirty in the partition (/run/lpm-dirty.passes)"}
