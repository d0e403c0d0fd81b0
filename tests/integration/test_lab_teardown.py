"""`lpmlab lab down` on a half-built lab: `up` killed in the middle of provisioning."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from lpmlab import paths
from lpmlab.fabric import netns

from .conftest import BIN, cli

pytestmark = pytest.mark.integration


def test_down_cleans_a_lab_whose_up_was_killed_midway(root_required):
    cli("lpmlab", "lab", "down")
    up = subprocess.Popen([str(BIN / "lpmlab"), "lab", "up"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, start_new_session=True)
    # wait until provisioning has created part of the fabric, then kill the whole command
    deadline = time.monotonic() + 120
    while len(netns.list_lab_namespaces()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert netns.list_lab_namespaces(), "lab up created no namespace within 120 s"
    os.killpg(up.pid, signal.SIGKILL)
    up.wait()
    time.sleep(1)
    cp = cli("lpmlab", "lab", "down", check=True)
    assert "namespace lpm-" in cp.stderr
    assert netns.list_lab_namespaces() == []
    assert not paths.lab_dir().exists()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(paths.lab_dir()) not in ps
    # a second down on nothing is fine
    cli("lpmlab", "lab", "down", check=True)
