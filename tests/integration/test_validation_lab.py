"""Validation checks provoked by real lab objects (chsyscfg, links, IDs), asserted by code."""

from __future__ import annotations

import subprocess

import pytest

from lpmlab.hmc.system import Hmc

from .conftest import cli

pytestmark = pytest.mark.integration


def validate(*extra: str) -> subprocess.CompletedProcess:
    return cli("migrlpar", "-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar1", *extra)


def still_home() -> None:
    hmc = Hmc.open()
    try:
        assert [(p.frame, p.info.state) for p in hmc.placements("lpar1")] == \
            [("sys1", "running")]
    finally:
        hmc.close()


def test_healthy_lab_validates_clean(lab):
    cp = validate()
    assert cp.returncode == 0 and cp.stdout == "" and cp.stderr == "", cp.stderr


def test_migration_disabled_partition(lab):
    cli("chsyscfg", "-r", "lpar", "-m", "sys1", "-i", "name=lpar1,migration_disabled=1",
        check=True)
    try:
        line = cli("lssyscfg", "-r", "lpar", "-m", "sys1", "--filter", "lpar_names=lpar1",
                   "-F", "migration_disabled", check=True).stdout.strip()
        assert line == "1"
        for op in ("v", "m"):
            cp = cli("migrlpar", "-o", op, "-m", "sys1", "-t", "sys2", "-p", "lpar1")
            assert cp.returncode != 0 and "HSCLL530" in cp.stderr and "lpar1" in cp.stderr
        still_home()
    finally:
        cli("chsyscfg", "-r", "lpar", "-m", "sys1", "-i", "name=lpar1,migration_disabled=0",
            check=True)


def test_no_msp_and_no_time_reference_on_the_destination(lab):
    cli("chsyscfg", "-r", "lpar", "-m", "sys2", "-i", "name=vios2,time_ref=0", check=True)
    try:
        cp = validate()
        assert cp.returncode == 0 and "HSCLL559" in cp.stderr, "a warning, not an error"
        cli("chsyscfg", "-r", "lpar", "-m", "sys2", "-i", "name=vios2,msp=0", check=True)
        cp = validate()
        assert cp.returncode != 0
        assert "HSCLL551" in cp.stderr and "HSCLL559" in cp.stderr, "all findings reported"
    finally:
        cli("chsyscfg", "-r", "lpar", "-m", "sys2", "-i", "name=vios2,msp=1,time_ref=1",
            check=True)
    assert validate().returncode == 0


def test_mover_link_down(lab):
    ns = lab.plan.vios("vios2").ns
    subprocess.run(["ip", "-n", ns, "link", "set", "mover0", "down"], check=True)
    try:
        cp = validate()
        assert cp.returncode != 0 and "HSCLL552" in cp.stderr and "vios2" in cp.stderr
    finally:
        subprocess.run(["ip", "-n", ns, "link", "set", "mover0", "up"], check=True)


def test_requested_partition_id_in_use_on_destination(lab):
    cp = validate("-i", "dest_lpar_id=1")  # vios2 is partition 1 of sys2
    assert cp.returncode != 0 and "HSCLL542" in cp.stderr
    still_home()
