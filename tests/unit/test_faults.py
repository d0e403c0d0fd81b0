"""lpmlab fault without a lab: the catalogue's checks, the ledger, when an armed fault is
due, and the stall watch that ends a transfer whose stream stopped."""

from __future__ import annotations

import pytest

from lpmlab.errors import UsageError
from lpmlab.fabric import faults as F
from lpmlab.hmc import fault_trigger, faults
from lpmlab.hmc.precopy import Controls, StallWatch, Telemetry


@pytest.mark.parametrize("when", ["now", "transferring", "switchover", "pass:1", "pass:12",
                                  "phase:check", "phase:pre", "phase:post"])
def test_points_of_a_migration_are_accepted(when):
    assert faults.check_when(when) == when


@pytest.mark.parametrize("when", ["pass:0", "pass:", "pass:x", "phase:undo", "later", ""])
def test_other_points_are_refused_with_the_points_there_are(when):
    with pytest.raises(UsageError) as e:
        faults.check_when(when)
    assert e.value.code == "LPM1021" and "pass:N" in (e.value.fix or "")


@pytest.mark.parametrize("req,detail", [
    (faults.FaultRequest("mover-link-slow"), "needs RATE"),
    (faults.FaultRequest("mover-link-slow", "fast"), "not a number"),
    (faults.FaultRequest("mover-link-slow", "0"), "not a number"),
    (faults.FaultRequest("mover-link-cut", "5"), "takes no argument"),
    (faults.FaultRequest("hook-hang", when="pass:2"), "phase:check|pre|post"),
    (faults.FaultRequest("vios-storage-down", outage_s=-1), "--for"),
])
def test_a_fault_used_the_wrong_way_says_how(req, detail):
    with pytest.raises(UsageError) as e:
        faults.check_request(req)
    assert e.value.code == "LPM1022" and detail in e.value.message


def test_unknown_fault_lists_the_catalogue():
    with pytest.raises(UsageError) as e:
        faults.check_request(faults.FaultRequest("link-cut"))
    assert e.value.code == "LPM1020"
    assert all(name in (e.value.fix or "") for name in faults.KINDS)


def test_catalogue_has_the_faults_of_the_issue():
    assert set(faults.KINDS) >= {
        "mover-link-cut", "mover-link-slow", "msp-path-broken", "dest-qemu-killed",
        "dest-frame-down", "source-frame-down", "vios-storage-down", "controller-killed",
        "hook-hang", "partition-os-hang"}
    assert not faults.KINDS["dest-qemu-killed"].lasting
    assert faults.KINDS["mover-link-cut"].lasting


@pytest.mark.parametrize("when,point,due", [
    ("pass:2", "pass:1", False), ("pass:2", "pass:2", True),
    ("pass:2", "pass:5", True),  # a burst skipped pass 2: the first pass after fires it
    ("switchover", "pass:9", False), ("phase:pre", "phase:pre", True),
    ("phase:pre", "phase:post", False), ("transferring", "transferring", True),
])
def test_an_armed_fault_is_due_at_its_point(when, point, due):
    assert fault_trigger._due(when, point) is due


def test_ledger_keeps_entries_and_undo_all_runs_their_steps(tmp_path, monkeypatch):
    done: list[dict[str, str]] = []
    monkeypatch.setattr(F, "undo", lambda plan, a: done.append(a) or f"did {a['action']}")
    ledger = F.Ledger(tmp_path)
    with ledger.edit() as entries:
        entries.append(F.FaultEntry("F1", "hook-hang", {"partition": "lpar1"}, state=F.IN_FORCE,
                                    undo=[{"action": "remove_hang_hook", "partition": "lpar1"}]))
        entries.append(F.FaultEntry(ledger.next_id(entries), "partition-os-hang",
                                    {"partition": "lpar1"}, state=F.IN_FORCE,
                                    undo=[{"action": "unblock_rmc", "partition": "lpar1"}]))
        entries.append(F.FaultEntry("F3", "dest-frame-down", {"frame": "sys2"},
                                    state=F.IN_FORCE,
                                    undo=[{"action": "start_frame", "frame": "sys2"}]))
        entries.append(F.FaultEntry("F4", "mover-link-cut", {}, when="pass:2"))

    class Plan:
        dir = tmp_path

    lines = F.undo_all(Plan(), why="lab up", skip=frozenset({"start_frame"}))  # type: ignore
    # the RMC path comes back before a hook is removed through it; the playbook restarted
    # the frame; the armed one is disarmed
    assert [a["action"] for a in done] == ["unblock_rmc", "remove_hang_hook"]
    assert len(lines) == 4 and not ledger.active()
    by_id = {e.id: e for e in ledger.entries()}
    assert by_id["F2"].id == "F2" and "start_frame by lab up" in by_id["F3"].cleared
    assert by_id["F4"].cleared == "lab up: disarmed"


def test_stall_watch_ends_a_stream_that_moves_nothing():
    w = StallWatch(10)
    assert w.on_sample({"t": 0.0, "kind": "poll", "data_processed": 100}) is None
    assert w.on_sample({"t": 5.0, "kind": "poll", "data_processed": 200}) is None
    assert w.on_sample({"t": 14.5, "kind": "poll", "data_processed": 200}) is None
    assert w.stalled_s == pytest.approx(9.5)
    a = w.on_sample({"t": 15.2, "kind": "poll", "data_processed": 200})
    assert a is not None and a.kind == "stall" and "no data moved for 10 s" in a.reason
    assert w.on_sample({"t": 30.0, "kind": "poll", "data_processed": 200}) is None  # once


def test_stall_watch_off_and_slow_but_moving_streams_go_on():
    assert StallWatch(0).on_sample({"t": 999.0, "kind": "poll", "data_processed": 1}) is None
    w = StallWatch(10)
    for t in range(0, 100, 3):
        assert w.on_sample({"t": float(t), "kind": "poll", "data_processed": t}) is None


def test_telemetry_marks_stalled_samples_and_acts_once():
    class Sink:
        def add_samples(self, mid, samples):
            pass

    tele = Telemetry("lpar1", "m1", Sink(), Controls(stall_timeout_s=3))
    acts = []
    tele.act = acts.append
    for t in (0.0, 1.0, 2.5, 3.5, 4.0):
        tele.on_sample({"t": t, "kind": "poll", "data_processed": 7})
    assert [a.kind for a in acts] == ["stall"]
    assert tele.samples[2]["stalled_s"] == 2.5 and "stalled_s" not in tele.samples[0]
    assert tele.record()["stalled"] is True


def test_stall_timeout_must_be_sane():
    with pytest.raises(UsageError):
        Controls(stall_timeout_s=-1)
    assert Controls().stall_timeout_s == 30.0


def test_stall_watch_judges_by_the_clock_when_no_sample_comes():
    # a blocked stream can block the job statistics: no sample at all
    w = StallWatch(5)
    w.on_sample({"t": 1.0, "kind": "poll", "data_processed": 10})
    assert w.check(4.0) is None and w.stalled_s == 3.0
    a = w.check(6.5)
    assert a is not None and a.kind == "stall" and w.check(9.0) is None
    w2 = StallWatch(5)
    assert w2.check(100.0) is None and w2.check(104.0) is None and w2.check(105.0) is not None


def test_progress_resets_the_stall_clock():
    w = StallWatch(5)
    w.on_sample({"t": 0.0, "kind": "poll", "data_processed": 1})
    assert w.check(4.0) is None
    w.on_sample({"t": 4.5, "kind": "poll", "data_processed": 2})
    assert w.stalled_s == 0.0 and w.check(9.0) is None


def test_a_stall_seen_by_the_clock_is_stored_for_lslparmigr():
    stored = []

    class Sink:
        def add_samples(self, mid, samples):
            stored.extend(samples)

    tele = Telemetry("lpar1", "m1", Sink(), Controls(stall_timeout_s=30))
    tele.on_sample({"t": 0.0, "kind": "poll", "data_processed": 7, "data_remaining": 9})
    tele.stall.check(3.0)
    tele.note_stall(3.0)
    assert stored[-1] == {"t": 3.0, "kind": "stall", "data_processed": 7,
                          "data_remaining": 9, "stalled_s": 3.0}
