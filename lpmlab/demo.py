"""The demo ``make demo`` runs: lab up, a loaded partition migrated there and back, a table."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from lpmlab import log, topology
from lpmlab.fabric import plan as P
from lpmlab.fabric.lab import Lab
from lpmlab.hmc.migration import LiveMigration
from lpmlab.hmc.precopy import TelemetryObserver
from lpmlab.hmc.system import Hmc

VERIFY_RE = re.compile(r"records=(\d+)\s+first=(-?\d+)\s+last=(-?\d+)\s+gaps=(\d+)\s+bad=(\d+)")


@dataclass
class DiskCheck:
    records: int
    gaps: int
    bad: int
    ok: bool
    raw: str


@dataclass
class Hop:
    source: str
    dest: str
    wall_s: float
    job_ms: int | None
    downtime_ms: int | None
    iterations: int | None
    bytes_sent: int | None
    msp_bytes: dict[str, int | None]
    ssh_before_s: float
    ssh_after_s: float
    disk_before: DiskCheck
    disk_after: DiskCheck
    defined_on: list[str] = field(default_factory=list)
    migration_id: str = ""


def verify_disk(lab: Lab, name: str) -> DiskCheck:
    """Run the guest's record checker on its disk (the writer keeps appending meanwhile)."""
    ch = lab.rmc(name)
    res = ch.run("lpm-disk verify /dev/sda", timeout=60)
    ch.close()
    m = VERIFY_RE.search(res.stdout)
    if not m:
        return DiskCheck(0, -1, -1, False, (res.stdout + res.stderr).strip())
    recs, _first, _last, gaps, bad = (int(x) for x in m.groups())
    return DiskCheck(recs, gaps, bad, res.rc == 0 and gaps == 0 and bad == 0, m.group(0))


def _running(pidfile: str) -> str:
    return f"[ -f {pidfile} ] && kill -0 $(cat {pidfile}) 2>/dev/null"


def start_disk_writer(ch: Any) -> None:
    """Start the guest's disk record writer unless it already runs (two would collide)."""
    ch.run(f"{_running('/run/lpm-disk.pid')} || lpm-disk write /dev/sda --daemon",
           timeout=15, check=True)


def set_dirty_workload(ch: Any, rate: int, wss: int) -> None:
    """Set the guest's memory dirtier to ``rate`` MiB/s over ``wss`` MiB (start it if needed)."""
    from lpmlab.hmc.workload import Workload

    Workload(ch).set(rate, wss, settle=False)


def ssh_rtt(lab: Lab, name: str) -> float:
    """Seconds for a fresh SSH connection and one command (raises when SSH is down)."""
    t0 = time.monotonic()
    ch = lab.rmc(name)
    ch.run("true", timeout=15, check=True)
    ch.close()
    return time.monotonic() - t0


class Demo:
    """``observer`` makes what is told each migration's progress, a new one per hop (the
    command passes its printer's class)."""

    def __init__(self, partition: str = "lpar1", dirty_rate: int = 64, wss: int = 128,
                 observer: Callable[[], TelemetryObserver] | None = None) -> None:
        self.partition = partition
        self.dirty_rate = dirty_rate
        self.wss = wss
        self.observer = observer

    def start_workload(self, lab: Lab) -> None:
        ch = lab.rmc(self.partition)
        start_disk_writer(ch)
        set_dirty_workload(ch, self.dirty_rate, self.wss)
        ch.close()

    def hop(self, lab: Lab, hmc: Hmc, source: str, dest: str) -> Hop:
        before = ssh_rtt(lab, self.partition)
        disk_before = verify_disk(lab, self.partition)
        log.progress(f"demo: migrlpar -o m -m {source} -t {dest} -p {self.partition}")
        result = LiveMigration(hmc, self.partition, source, dest,
                               observer=self.observer() if self.observer else None).run()
        after = ssh_rtt(lab, self.partition)
        disk_after = verify_disk(lab, self.partition)
        j = result.stats
        return Hop(source, dest, result.wall_s, j.get("time_elapsed"), j.get("downtime"),
                   j.get("memory_iteration"), j.get("data_processed"),
                   result.record.stats.get("msp_bytes", {}), before, after, disk_before,
                   disk_after, [p.frame for p in hmc.placements(self.partition)],
                   result.record.id)

    def run(self, as_json: bool = False) -> int:
        plan = P.LabPlan.for_topology(topology.load())
        lab = Lab(plan)
        t0 = time.monotonic()
        up = lab.up()
        hmc = Hmc.open(plan.dir)
        home = [p.frame for p in hmc.placements(self.partition)]
        if len(home) != 1:
            log.progress(f"demo: {self.partition} is defined on {home or 'no frame'}")
            return 1
        src = home[0]
        other = next(f.name for f in plan.topology.frames if f.name != src)
        self.start_workload(lab)
        time.sleep(2)  # let the writer and the dirtier get going
        hops = [self.hop(lab, hmc, src, other), self.hop(lab, hmc, other, src)]
        total = time.monotonic() - t0
        ok = all(h.disk_after.ok and len(h.defined_on) == 1 for h in hops)
        if as_json:
            json.dump({"lab_up": [asdict(s) for s in up.stages], "hops": [asdict(h) for h in hops],
                       "total_s": total, "ok": ok}, sys.stdout, indent=2)
            print()
        else:
            print(self.table(up.total, hops, total))
        return 0 if ok else 1

    def table(self, up_s: float, hops: list[Hop], total: float) -> str:
        def mb(v: Any) -> str:
            return f"{v / 2**20:.1f} MiB" if isinstance(v, int) else "n/a"

        lines = [f"lpmlab demo: {self.partition} (dirtying {self.dirty_rate} MiB/s over "
                 f"{self.wss} MiB, disk writer running); lab up {up_s:.1f}s", ""]
        for h in hops:
            msp = ", ".join(f"{k} {mb(v)}" for k, v in h.msp_bytes.items())
            lines += [
                f"migration {h.source} -> {h.dest}",
                f"  wall time            {h.wall_s:.2f} s",
                f"  libvirt job time     {h.job_ms} ms",
                f"  downtime             {h.downtime_ms} ms",
                f"  pre-copy iterations  {h.iterations}",
                f"  bytes sent           {mb(h.bytes_sent)} ({h.bytes_sent})",
                f"  bytes through MSPs   {msp}",
                f"  SSH before / after   answered in {h.ssh_before_s:.2f} s / "
                f"{h.ssh_after_s:.2f} s",
                f"  disk records         {h.disk_before.records} before, "
                f"{h.disk_after.records} after; gaps {h.disk_after.gaps}, bad "
                f"{h.disk_after.bad} -> {'no gap' if h.disk_after.ok else 'PROBLEM'}",
                f"  defined on           {', '.join(h.defined_on)}",
                f"  pre-copy report      lpmlab report {h.migration_id}",
                "",
            ]
        lines.append(f"demo finished in {total:.1f} s")
        return "\n".join(lines)
