"""Multi-processor partitions survive ten consecutive live migrations each.

On QEMUs that do not migrate the vCPU "quiesced" flag (10.0.x here) the controller takes the
secondary processors offline before the switchover and back online on the destination; the
migration record says which way was used.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lpmlab.hmc import vcpu
from lpmlab.hmc.system import Hmc

from .conftest import cli

pytestmark = pytest.mark.integration
TOPOLOGY = Path(__file__).parent / "topologies" / "smp.yaml"


def where(hmc: Hmc, name: str) -> list[str]:
    return [p.frame for p in hmc.placements(name)]


def assert_every_processor_runs(hmc: Hmc, name: str, procs: int) -> None:
    ch = hmc.rmc(name)
    try:
        online = ch.run("cat /sys/devices/system/cpu/online", timeout=20, check=True)
        assert online.stdout.strip() == f"0-{procs - 1}"
        for cpu in range(procs):
            # a dead secondary never schedules the pinned command: the call times out
            res = ch.run(f"taskset -c {cpu} cut -d' ' -f39 /proc/self/stat", timeout=20,
                         check=True)
            assert res.stdout.strip() == str(cpu), f"{name}: CPU {cpu} did not run"
    finally:
        ch.close()


@pytest.mark.parametrize("name, procs", [("lpar2", 2), ("lpar4", 4)])
def test_ten_consecutive_migrations(lab, name, procs):
    hmc = Hmc.open()
    try:
        assert_every_processor_runs(hmc, name, procs)
        bug = vcpu.has_quiesce_bug(hmc.qemu_version("sys2"))
        # validation tells the administrator which way the processors will be carried
        v = cli("migrlpar", "-o", "v", "-m", "sys1", "-t", "sys2", "-p", name, "-v")
        assert v.returncode == 0, v.stderr
        assert ("HSCLL522" in v.stderr) == bug, v.stderr
        for i in range(10):
            [src] = where(hmc, name)
            dst = "sys2" if src == "sys1" else "sys1"
            cp = cli("migrlpar", "-o", "m", "-m", src, "-t", dst, "-p", name)
            assert cp.returncode == 0, f"hop {i + 1}: {cp.stderr}"
            assert where(hmc, name) == [dst]
            assert_every_processor_runs(hmc, name, procs)
            rec = hmc.store.latest(name, 1)[0]
            assert rec.state == "Migration Complete"
            assert rec.stats["vcpu"]["method"] == (vcpu.WORKAROUND if bug else "none")
            assert "vcpu_error" not in rec.stats
    finally:
        hmc.close()
