"""A destination frame that cannot take the partition in five ways: all reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import cli

pytestmark = pytest.mark.integration
TOPOLOGY = Path(__file__).parent / "topologies" / "mismatch.yaml"


def test_every_frame_level_failure_is_reported(lab):
    cp = cli("migrlpar", "-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar1")
    assert cp.returncode != 0 and cp.stdout == ""
    for code in ("HSCLL510",  # sys2 not mobility capable
                 "HSCLL511",  # on battery power
                 "HSCLL512",  # LMB 128 MiB vs 256 MiB
                 "HSCLL513",  # 256 MiB of memory for a 512 MiB partition
                 "HSCLL517"):  # POWER9 partition, sys2 supports default and POWER8 only
        assert code in cp.stderr, (code, cp.stderr)
    cp = cli("migrlpar", "-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1")
    assert cp.returncode != 0 and "HSCLL510" in cp.stderr
    names = cli("lssyscfg", "-r", "lpar", "-m", "sys1", "-F", "name", check=True).stdout
    assert "lpar1" in names.split()
