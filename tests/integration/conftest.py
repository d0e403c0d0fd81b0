"""Integration fixtures: the real single-box lab (root, QEMU, libvirt, tgtd)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def cli(*argv: str, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess:
    """Run an lpmlab console script the way a user would; return its result."""
    cp = subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                        timeout=timeout)
    if check and cp.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {cp.returncode}\n{cp.stderr}")
    return cp


def placements(name: str = "lpar1") -> list[tuple[str, str]]:
    """(frame, state) of every copy of a partition (exactly one, when all is well)."""
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        return [(p.frame, p.info.state) for p in hmc.placements(name)]
    finally:
        hmc.close()


@pytest.fixture(scope="session")
def root_required() -> None:
    if os.geteuid() != 0:
        pytest.skip("integration tests need root (namespaces, libvirtd, tgtd)")


@pytest.fixture(scope="module")
def lab(root_required, request):
    """A freshly built lab (the module's TOPOLOGY, else the default), taken down after it."""
    cli("lpmlab", "lab", "down")
    topo = getattr(request.module, "TOPOLOGY", None)
    cp = cli("lpmlab", "lab", "up", *(["-t", str(topo)] if topo else []), timeout=900)
    assert cp.returncode == 0, f"lab up failed:\n{cp.stderr[-4000:]}"
    from lpmlab.fabric.lab import Lab, load_state

    plan, _ = load_state()
    yield Lab(plan)
    cli("lpmlab", "lab", "down")


@pytest.fixture(scope="module")
def loaded(lab):
    """The lab with lpar1 under load: its disk writer running and its memory dirtied (64 MiB/s
    over 128 MiB); the mover link uncapped afterwards."""
    from lpmlab.demo import set_dirty_workload, start_disk_writer

    ch = lab.rmc("lpar1")
    start_disk_writer(ch)
    set_dirty_workload(ch, 64, 128)
    ch.close()
    yield lab
    lab.plan.vios("vios1").mover_service().limit_bandwidth(None)
