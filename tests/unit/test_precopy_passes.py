"""The dirty rate each pre-copy pass found, derived from QEMU's counters, pinned against
samples recorded on the real lab (lpmlab demo: 64 MiB/s over 128 MiB), where QEMU's own
dirty-pages-rate said 0 in every pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lpmlab.hmc.precopy import pass_dirty, passes, summarize

MIB = 1024 * 1024
RECORDED = json.loads((Path(__file__).parent / "data" / "precopy-demo-64mibs.json")
                      .read_text())["samples"]


def test_the_recorded_passes_find_the_rate_that_was_set():
    rows = passes(RECORDED)
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4]
    first, second = rows[0], rows[1]
    # pass 1 ran 0.596 s and found 38.6 MiB dirty: 64.7 MiB/s against 64 set
    assert first["dirty_bytes"] / MIB == pytest.approx(38.6, abs=0.1)
    assert first["dirty_rate_bps"] / MIB == pytest.approx(64.7, abs=0.1)
    assert abs(first["dirty_rate_bps"] / MIB - 64) / 64 < 0.25
    assert abs(second["dirty_rate_bps"] / MIB - 64) / 64 < 0.25  # 57 ms: ~6 dirtier steps
    assert all(r["qemu_dirty_rate_bps"] == 0 for r in rows)  # QEMU's window is 1 s
    assert rows[-1]["dirty_rate_bps"] is None  # the last pass ends in the switchover
    assert "next sync" in first["dirty_rate_source"]


def test_the_remaining_bytes_alone_would_overstate_it():
    """Right after a sync, what remains is also what the last pass had not sent yet."""
    syncs = [s for s in RECORDED if s["kind"] == "iteration"]
    naive = syncs[1]["memory_remaining"] / (syncs[1]["t"] - syncs[0]["t"]) / MIB
    assert naive > 150  # what the first derivation said; the set rate is 64
    assert summarize(RECORDED)["pass_dirty_rate_bps"] / MIB < 80


def test_what_is_sent_between_a_sync_and_its_read_cancels_out():
    page = 4096
    at_sync = [{"t": 0.0, "memory_remaining": 1000 * page, "normal_pages": 0, "zero_pages": 0},
               {"t": 1.0, "memory_remaining": 300 * page, "normal_pages": 800,
                "zero_pages": 100}]
    # before the second sync 1000 - 900 sent = 100 pages were left: 300 after it means
    # 200 found dirty
    exact = pass_dirty({**at_sync[0], "kind": "iteration"}, {**at_sync[1], "kind": "iteration"})
    assert exact["pass_dirty_bytes"] == 200 * page
    lagged = [{**s, "kind": "iteration", "memory_remaining": s["memory_remaining"] - 7 * page,
               "normal_pages": s["normal_pages"] + 7} for s in at_sync]
    assert pass_dirty(*lagged)["pass_dirty_bytes"] == 200 * page


def test_a_sync_without_numbers_gives_no_figure():
    a = {"t": 0.0, "kind": "iteration", "memory_remaining": 10, "normal_pages": 0,
         "zero_pages": 0}
    assert pass_dirty(a, {"t": 0.1, "kind": "iteration", "iteration": 2}) == {}
    assert pass_dirty(None, a) == {}
