"""The pytest plugin starts each test from a good lab: the documented example
(docs/examples/journal_app) is run as a user runs it — ``pytest`` as a subprocess on the
running lab — after the lab was broken each way a test suite breaks it; and what cannot be
healed fails fast with what was found, tried, and the fix."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .conftest import BIN, cli, placements

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "journal_app"


def pytest_run(*args: str, timeout: float = 900) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    cp = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rP", "--lpmlab-reuse",
                         "-p", "no:cacheprovider", *args], capture_output=True, text=True,
                        timeout=timeout, cwd=EXAMPLE)
    return cp, time.monotonic() - t0


def healed_in(out: str) -> float:
    m = re.search(r"healed lpar1 in ([0-9.]+) s: (.*)", out)
    assert m, out[-3000:]
    return float(m.group(1))


def example_passes() -> float:
    cp, _ = pytest_run(str(EXAMPLE))
    assert cp.returncode == 0, cp.stdout[-4000:] + cp.stderr[-2000:]
    assert placements() == [("sys1", "running")]  # home, in one place
    return healed_in(cp.stdout)


def test_from_a_shut_off_partition(lab):
    cli("chsysstate", "-m", "sys1", "-r", "lpar", "-n", "lpar1", "-o", "shutdown", "--immed",
        check=True)
    assert placements() == [("sys1", "shutoff")]
    seconds = example_passes()
    print(f"healed from shut off in {seconds:.1f} s")


def test_from_the_other_frame(lab):
    cli("migrlpar", "-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1", check=True)
    assert placements() == [("sys2", "running")]
    seconds = example_passes()
    print(f"healed from the other frame in {seconds:.1f} s")


def test_from_an_interrupted_migration(lab):
    # a migration held back by a slow mover link, its controller killed mid-transfer
    lab.rmc("lpar1").run("lpm-disk write /dev/sda --daemon", check=True)
    cli("lpmlab", "workload", "lpar1", "--rate", "64", "--wss", "128", check=True)
    begun = time.time()
    proc = subprocess.Popen([str(BIN / "migrlpar"), "-o", "m", "-m", "sys1", "-t", "sys2",
                             "-p", "lpar1", "--mover-bandwidth", "20"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while "Migration In Progress" not in cli("lslparmigr", "-r", "lpar", "-m", "sys1").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    seconds = example_passes()
    print(f"healed from an interrupted migration in {seconds:.1f} s")
    res = lab.rmc("lpar1").run("lpm-disk verify /dev/sda", timeout=60)
    assert res.rc == 0 and "gaps=0" in res.stdout, res.stdout  # nothing lost
    # the plugin started the writer again (the partition had been booted or moved)
    assert lab.rmc("lpar1").run("kill -0 $(cat /run/lpm-disk.pid)").rc == 0
    # the killed controller wrote no record in its folder; the recovery did
    from lpmlab.hmc import artifacts

    kept = [json.loads((d / "record.json").read_text()) for d in artifacts.root().iterdir()
            if (d / "record.json").exists()]
    killed = [r for r in kept if r["started"] >= begun and "--mover-bandwidth" in r["command"]]
    assert killed and killed[0]["state"] == "Migration Recovered", kept
    assert list(artifacts.folder(killed[0]["id"]).glob("recover-*.json"))


def test_what_cannot_be_healed_fails_fast_and_says_why(lab, tmp_path):
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:  # lpar1 defined nowhere: the lab must be rebuilt
        dom = hmc.conn("sys1").lookup("lpar1")
        dom.destroy()
        dom.undefine()
    finally:
        hmc.close()
    (tmp_path / "test_one.py").write_text(textwrap.dedent("""
        def test_uses_the_partition(lpmlab_partition):
            assert lpmlab_partition.run("true").rc == 0
    """))
    try:
        cp, seconds = pytest_run(str(tmp_path / "test_one.py"))
        assert cp.returncode != 0
        out = cp.stdout
        assert "lpmlab could not bring lpar1 to a good state" in out, out[-3000:]
        assert "defined on no managed system" in out and "fix: re-create it with" in out
        assert "found: defined on no frame" in out
        assert seconds < 60  # pytest's own start-up included; the plugin itself fails at once
    finally:
        cli("lpmlab", "lab", "up", check=True, timeout=900)
