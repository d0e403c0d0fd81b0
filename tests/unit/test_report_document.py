"""The report document and its tables, from a record and samples (no lab needed)."""

from __future__ import annotations

import pytest

from lpmlab.errors import UsageError
from lpmlab.hmc.store import MigrationRecord
from lpmlab.hmc.workload import FULL_SPEED, WorkloadState, parse_rate, parse_stat
from lpmlab.report import document

MIB = 1024 * 1024


def record(**stats):
    rec = MigrationRecord("lpar1", "sys1", "sys2", state="Migration Complete", result="success")
    rec.stats = {"wall_s": 4.2, **stats}
    return rec


SAMPLES = [
    {"t": 0.1, "kind": "iteration", "iteration": 1, "data_remaining": 512 * MIB,
     "data_processed": 0, "dirty_rate_bps": 0.0, "expected_downtime_ms": 300},
    {"t": 0.6, "kind": "poll", "iteration": 1, "data_remaining": 300 * MIB,
     "data_processed": 212 * MIB, "bandwidth_bps": 400 * MIB},
    {"t": 1.4, "kind": "iteration", "iteration": 2, "data_remaining": 60 * MIB,
     "data_processed": 520 * MIB, "dirty_rate_bps": 64 * MIB, "bandwidth_bps": 390 * MIB,
     "expected_downtime_ms": 150},
    {"t": 1.7, "kind": "completed", "iteration": 2, "data_remaining": 0,
     "data_processed": 590 * MIB, "downtime_ms": 90, "elapsed_ms": 1650, "t_event": 3.9},
]


def test_the_document_carries_controls_summary_window_and_every_sample():
    controls = {"mover_bandwidth_mib": 115, "auto_converge": True,
                "schedule": "stepped-downtime"}
    tele = {"schedule_actions": [{"t": 1.4, "iteration": 2, "action": "downtime",
                                  "value": 600, "reason": "iteration 2 made no progress"}],
            "convergence_warning": "warning: lpar1 dirties memory ..."}
    doc = document.build(record(telemetry=tele, controls=controls), SAMPLES)
    assert doc["samples"] == SAMPLES
    assert doc["summary"]["iterations"] == 2 and doc["summary"]["downtime_ms"] == 90
    assert doc["summary"]["total_time_s"] == 4.2 and doc["summary"]["transfer_s"] == 1.65
    assert doc["downtime_window"] == [1.61, 1.7]
    assert doc["label"].endswith("link 115MiB/s auto-converge stepped-downtime")
    text = document.table(doc)
    assert "controls: link 115MiB/s auto-converge stepped-downtime" in text
    assert "schedule at iteration 2: downtime 600 (iteration 2 made no progress)" in text
    assert "warning: lpar1 dirties memory" in text
    rows = [ln.split() for ln in text.splitlines() if ln.strip()[:1].isdigit()
            or ln.strip().startswith("done")]
    assert [r[0] for r in rows] == ["1", "2", "done"]  # polls are not table rows
    assert "90 ms (real)" in text and "64.0 MiB/s" in text


def test_plain_precopy_says_so_and_compare_lists_each_run():
    a = document.build(record(), SAMPLES)
    b = document.build(record(controls={"max_speed_mib": 40}), SAMPLES)
    assert "controls: none (plain pre-copy)" in document.table(a)
    lines = document.compare_table([a, b]).splitlines()
    assert len(lines) == 3 and lines[1].startswith(a["id"]) and "speed 40MiB/s" in lines[2]


def test_workload_rates_and_readings():
    assert parse_rate("64") == 64 and parse_rate("0") == 0 and parse_rate("max") == FULL_SPEED
    for bad in ("-5", "fast", "1.5"):
        with pytest.raises(UsageError, match="not a rate") as err:
            parse_rate(bad)
        assert "max" in err.value.fix
    kv = parse_stat("rate_target=150 wss=200 achieved_mibps=149.8 pages=76835\n")
    assert kv == {"rate_target": "150", "wss": "200", "achieved_mibps": "149.8",
                  "pages": "76835"}
    st = WorkloadState(True, FULL_SPEED, 8, 1.0, 1)
    assert "full speed over 8 MiB" in st.render("lpar1")
    assert "not running" in WorkloadState(False).render("lpar1")
