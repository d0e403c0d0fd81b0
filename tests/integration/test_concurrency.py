"""Concurrent migrations on a four-partition lab: two in one migrlpar, four as two commands at
once in both directions; every partition lands in exactly one place with its disk intact,
and the transfers really overlapped."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lpmlab.hmc.store import MigrationRecord

from .conftest import BIN, cli

pytestmark = pytest.mark.integration

TOPOLOGY = Path(__file__).parent / "topologies" / "quad.yaml"
NAMES = ["lpar1", "lpar2", "lpar3", "lpar4"]


def where() -> dict[str, list[str]]:
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        return {n: [p.frame for p in hmc.placements(n)] for n in NAMES}
    finally:
        hmc.close()


def latest(name: str) -> MigrationRecord:
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        return hmc.store.latest(name, 1)[0]
    finally:
        hmc.close()


def window(rec: MigrationRecord) -> tuple[float, float]:
    at = {p["phase"]: p["at"] for p in rec.phases}
    return at["transfer"], at["complete"]


def overlap(recs: list[MigrationRecord]) -> float:
    """Seconds during which every one of ``recs`` was transferring."""
    starts, ends = zip(*(window(r) for r in recs), strict=True)
    return min(ends) - max(starts)


def disk_ok(lab, name: str) -> int:
    res = lab.rmc(name).run("lpm-disk verify /dev/sda", timeout=60)
    assert res.rc == 0 and "gaps=0 bad=0" in res.stdout, f"{name}: {res.stdout}{res.stderr}"
    return int(res.stdout.split("records=")[1].split()[0])


@pytest.fixture(scope="module")
def loaded(lab):
    for n in NAMES:
        ch = lab.rmc(n)
        ch.wait_ready(180, evidence=lambda n=n: lab.console_tail(n))
        ch.run("lpm-disk write /dev/sda --daemon", check=True)
        ch.run("lpm-dirty --rate 16 --wss 48 --daemon", check=True)
        ch.close()
    return lab


def test_two_partitions_in_one_command_move_together(loaded):
    before = {n: disk_ok(loaded, n) for n in ("lpar1", "lpar2")}
    cp = cli("migrlpar", "-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1,lpar2", "-i",
             '"multiple_dest_lpar_ids=lpar1//11,/3/12"')  # lpar2 named by its ID, 3
    assert cp.returncode == 0, cp.stderr
    ids = cli("lssyscfg", "-r", "lpar", "-m", "sys2", "-F", "name,lpar_id",
              check=True).stdout.split()
    assert "lpar1,11" in ids and "lpar2,12" in ids
    assert where() == {"lpar1": ["sys2"], "lpar2": ["sys2"], "lpar3": ["sys1"],
                       "lpar4": ["sys1"]}
    recs = [latest(n) for n in ("lpar1", "lpar2")]
    assert all(r.result == "success" for r in recs)
    assert overlap(recs) > 0, "the two transfers ran one after the other"
    assert recs[0].port != recs[1].port  # each stream has its own port through the MSPs
    for n in ("lpar1", "lpar2"):
        assert disk_ok(loaded, n) > before[n]


def test_four_at_once_as_two_commands_in_both_directions(loaded):
    back = subprocess.Popen([str(BIN / "migrlpar"), "-o", "m", "-m", "sys2", "-t", "sys1",
                             "-p", "lpar1,lpar2"], stderr=subprocess.PIPE, text=True)
    there = subprocess.Popen([str(BIN / "migrlpar"), "-o", "m", "-m", "sys1", "-t", "sys2",
                              "-p", "lpar3,lpar4"], stderr=subprocess.PIPE, text=True)
    for proc in (back, there):
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    assert where() == {"lpar1": ["sys1"], "lpar2": ["sys1"], "lpar3": ["sys2"],
                       "lpar4": ["sys2"]}
    recs = [latest(n) for n in NAMES]
    assert all(r.result == "success" for r in recs)
    assert overlap(recs) > 0, "the four transfers never all ran at the same time"
    for n in NAMES:
        disk_ok(loaded, n)
    states = cli("lslparmigr", "-r", "lpar", "-m", "sys2", "-F", "name,migration_state",
                 check=True).stdout.splitlines()
    assert states == ["lpar3,Not Migrating", "lpar4,Not Migrating"]


def test_three_at_once_through_an_msp_limited_to_two_refuses_one(loaded):
    # lpar3 and lpar4 are on sys2 after the previous test: three partitions home first
    for n in ("lpar1", "lpar2", "lpar3"):
        if where()[n] != ["sys1"]:
            cli("migrlpar", "-o", "m", "-m", "sys2", "-t", "sys1", "-p", n, check=True)
    cli("migrlpar", "-o", "set", "-r", "lpar", "-m", "sys1", "-p", "vios1", "-i",
        "num_active_migrations_configured=2", check=True)
    try:
        cp = cli("migrlpar", "-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1,lpar2,lpar3")
    finally:
        cli("migrlpar", "-o", "set", "-r", "lpar", "-m", "sys1", "-p", "vios1", "-i",
            "num_active_migrations_configured=4", check=True)
    assert cp.returncode == 100, cp.stderr
    assert "HSCLL415" in cp.stderr or "HSCLL558" in cp.stderr, cp.stderr
    placed = where()
    moved = [n for n in ("lpar1", "lpar2", "lpar3") if placed[n] == ["sys2"]]
    stayed = [n for n in ("lpar1", "lpar2", "lpar3") if placed[n] == ["sys1"]]
    assert len(moved) == 2 and len(stayed) == 1, placed
    for n in ("lpar1", "lpar2", "lpar3"):
        disk_ok(loaded, n)
