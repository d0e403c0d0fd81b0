"""Pre-copy telemetry at the libvirt boundary (events and job stats faked: the test driver
has no migration jobs), the schedules, the non-convergence warning and the progress lines."""

from __future__ import annotations

import io
import threading
import time

import libvirt
import pytest

from lpmlab.adapter import migration as M
from lpmlab.adapter import telemetry as T
from lpmlab.cli.progress import MigrationProgress, bar
from lpmlab.errors import UsageError
from lpmlab.hmc import precopy as P
from lpmlab.hmc.store import MigrationRecord, MigrationStore

MIB = 1024 * 1024
RUNNING = libvirt.VIR_DOMAIN_JOB_UNBOUNDED


def stats(it, remaining, processed=0, dirty_pages=0, bps=100 * MIB, elapsed=100, **kw):
    return {"type": RUNNING, "memory_iteration": it, "data_remaining": remaining,
            "data_processed": processed, "data_total": 512 * MIB, "memory_total": 512 * MIB,
            "memory_dirty_rate": dirty_pages, "memory_page_size": 4096, "memory_bps": bps,
            "downtime": 300, "time_elapsed": elapsed, **kw}


class FakeConn:
    def __init__(self):
        self.callbacks = {}
        self.deregistered = []

    def domainEventRegisterAny(self, dom, event, cb, opaque):
        self.callbacks[event] = cb
        return event

    def domainEventDeregisterAny(self, cid):
        self.deregistered.append(cid)


class WatchedDomain:
    """A domain whose job stats follow the iteration the test fires."""

    def __init__(self):
        self.conn = FakeConn()
        self.current = {"type": libvirt.VIR_DOMAIN_JOB_NONE}
        self.calls = []
        self.lock = threading.Lock()

    def connect(self):
        return self.conn

    def UUIDString(self):
        return "u-1"

    def name(self):
        return "lpar1"

    def jobStats(self, flags=0):
        with self.lock:
            self.calls.append("jobStats")
            return dict(self.current)

    def migrateSetMaxDowntime(self, ms, flags):
        self.calls.append(("downtime", ms))

    def migrateStartPostCopy(self, flags):
        self.calls.append("postcopy")

    def abortJob(self):
        self.calls.append("abort")

    def fire_iteration(self, it):
        self.conn.callbacks[libvirt.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION](
            self.conn, self, it, None)

    def fire_completed(self, params):
        self.conn.callbacks[libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED](
            self.conn, self, params, None)


def test_sample_converts_pages_per_second_and_separates_the_two_downtimes():
    s = T.sample_from_stats(stats(3, 10 * MIB, dirty_pages=1000), t=1.0, kind="poll",
                            iteration=None)
    assert s["dirty_rate_bps"] == 1000 * 4096
    assert s["expected_downtime_ms"] == 300 and "downtime_ms" not in s
    assert s["iteration"] == 3 and s["bandwidth_bps"] == 100 * MIB
    done = T.sample_from_stats({"downtime": 87, "data_processed": 5}, t=2.0, kind="completed",
                               iteration=4)
    assert done["downtime_ms"] == 87 and "expected_downtime_ms" not in done


def test_every_iteration_is_a_sample_even_in_a_burst():
    dom = WatchedDomain()
    got = []
    w = T.JobWatcher(dom, got.append, poll_s=60, first_poll_s=60)
    w.start()
    dom.current = stats(1, 400 * MIB)
    for it in range(1, 41):  # 40 events in a burst: far more than one stats read each
        dom.fire_iteration(it)
    dom.fire_completed({"downtime": 120, "time_elapsed": 900, "data_processed": 600 * MIB})
    w.stop(wait_completed_s=2.0)
    its = [s["iteration"] for s in got if s["kind"] == "iteration"]
    assert its == list(range(1, 41))
    assert dom.calls.count("jobStats") < 40  # one read stands for a burst
    assert got[-1]["kind"] == "completed" and got[-1]["downtime_ms"] == 120
    assert sorted(dom.conn.deregistered) == [libvirt.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION,
                                             libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED]


def test_polls_between_events_and_sets_controls_when_the_job_appears():
    dom = WatchedDomain()
    got, seen = [], []
    w = T.JobWatcher(dom, got.append, on_job=lambda: seen.append(w.now()), poll_s=0.05,
                     first_poll_s=0.01)
    w.start()
    time.sleep(0.1)
    assert not seen and not got  # no job yet: nothing to report
    dom.current = stats(1, 300 * MIB, elapsed=50)
    time.sleep(0.3)
    w.stop(wait_completed_s=0)
    assert len(seen) == 1
    polls = [s for s in got if s["kind"] == "poll"]
    assert len(polls) >= 3 and all(s["data_remaining"] == 300 * MIB for s in polls)


def test_completion_time_comes_from_the_job_not_the_late_event():
    dom = WatchedDomain()
    w = T.JobWatcher(dom, lambda s: None, poll_s=60, first_poll_s=0.01)
    w.start()
    dom.current = stats(1, 300 * MIB, elapsed=0)
    time.sleep(0.1)
    assert w.job_seen.is_set()
    time.sleep(0.4)
    dom.fire_completed({"downtime": 50, "time_elapsed": 200})
    w.stop(wait_completed_s=2.0)
    # the job ran 0.2 s from its start, whatever the event's lateness
    assert w.completed["t"] == pytest.approx(w.completed["t_event"] - 0.3, abs=0.12)


def test_controls_reach_libvirt():
    dom = WatchedDomain()
    w = T.JobWatcher(dom, lambda s: None)
    w.set_max_downtime(600)
    w.start_postcopy()
    w.abort()
    assert dom.calls == [("downtime", 600), "postcopy", "abort"]
    req = M.MigrationRequest("u", "tcp://a:1", "a", auto_converge=True, postcopy=True,
                             auto_converge_initial=30, auto_converge_increment=5)
    assert req.all_flags() & libvirt.VIR_MIGRATE_AUTO_CONVERGE
    assert req.all_flags() & libvirt.VIR_MIGRATE_POSTCOPY
    assert not M.MigrationRequest("u", "tcp://a:1", "a").all_flags() & (
        libvirt.VIR_MIGRATE_AUTO_CONVERGE | libvirt.VIR_MIGRATE_POSTCOPY)
    assert req.params()[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL] == 30


def it(n, remaining, dirty=0.0, bw=100 * MIB, t=None):
    return {"kind": "iteration", "iteration": n, "data_remaining": remaining,
            "dirty_rate_bps": dirty, "bandwidth_bps": bw, "t": t if t is not None else n}


def run(controls, remainings):
    r = P.ScheduleRunner(controls)
    acts = []
    for n, rem in enumerate(remainings, start=1):
        acts += [(n, a.kind, a.value) for a in r.on_sample(it(n, rem))]
    return acts


def test_stepped_downtime_doubles_per_stalled_iteration_then_aborts():
    acts = run(P.Controls(schedule="stepped-downtime-abort"),
               [512, 200, 199, 201, 198, 200, 199, 200, 199, 200, 199, 200])
    downtimes = [v for _, k, v in acts if k == "downtime"]
    assert downtimes == [600, 1200, 2400, 4800, 5000]
    assert acts[-1][1] == "abort" and acts[-1][0] == 10  # 3 stalls after the cap (it 8, 9, 10)
    assert [k for _, k, _ in acts].count("abort") == 1


def test_progress_resets_patience_and_plain_precopy_never_acts():
    acts = run(P.Controls(schedule="abort-on-stall"),
               [512, 200, 199, 198, 150, 149, 148, 147, 146, 145])
    assert acts == [(10, "abort", None)]  # 150 was progress: five stalls counted after it
    assert run(P.Controls(), [512, 200] + [199] * 30) == []


def test_postcopy_is_opt_in():
    with pytest.raises(UsageError, match="opt-in"):
        P.Controls(schedule="stepped-downtime-postcopy")
    c = P.Controls(postcopy=True)
    assert c.schedule == "postcopy-on-stall"
    assert run(c, [512, 200, 199, 199, 199]) == [(5, "postcopy", None)]
    with pytest.raises(UsageError, match="schedule"):
        P.Controls(schedule="warp")
    with pytest.raises(UsageError, match="--max-downtime"):
        P.Controls(max_downtime_ms=0)


def test_max_downtime_is_applied_at_job_start_and_steps_from_it():
    r = P.ScheduleRunner(P.Controls(max_downtime_ms=1000, schedule="stepped-downtime"))
    assert [(a.kind, a.value) for a in r.initial()] == [("downtime", 1000)]
    assert P.ScheduleRunner(P.Controls()).initial() == []
    r.on_sample(it(2, 100))
    assert [a.value for a in r.on_sample(it(3, 100))] == [2000]


def test_warning_when_dirtying_outruns_the_link_with_numbers_and_fixes():
    w = P.ConvergenceWatch("lpar1", P.Controls(mover_bandwidth_mib=115))
    out = [w.on_sample(it(n, 200 * MIB, dirty=150 * MIB, bw=110 * MIB)) for n in range(1, 6)]
    text = next(o for o in out if o)
    assert out.index(text) == 3  # iteration 4: two iterations behind without progress
    assert "150.0 MiB/s" in text and "110.0 MiB/s" in text and "115" in text
    assert "lpmlab workload lpar1" in text and "--auto-converge" in text
    assert sum(1 for o in out if o) == 1  # said once


def test_no_warning_while_the_link_keeps_up():
    w = P.ConvergenceWatch("lpar1", P.Controls())
    rem = 200 * MIB
    for n in range(1, 10):
        assert w.on_sample(it(n, rem, dirty=20 * MIB, bw=300 * MIB)) is None
        rem //= 3


def test_progress_off_a_terminal_is_plain_lines_and_the_bar_never_runs_backwards():
    buf = io.StringIO()
    p = MigrationProgress(buf, tty=False)
    samples = [it(1, 500 * MIB), it(2, 100 * MIB), it(3, 200 * MIB), it(4, 150 * MIB)]
    for n, s in enumerate(samples):
        s["data_processed"] = (n + 1) * 60 * MIB
        p.sample("lpar1", s)
        p.states["lpar1"].last_line = 0.0  # as if half a second passed
    p.warning("lpar1", "warning: lpar1 dirties memory ...")
    p.sample("lpar1", {"kind": "completed", "t": 5, "data_processed": 700 * MIB,
                       "data_remaining": 0, "downtime_ms": 80})
    text = buf.getvalue()
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert [ln.split(",")[0] for ln in lines[:4]] == [f"lpar1: iteration {n}" for n in (1, 2, 3, 4)]
    fills = [ln.count("#") for ln in lines if "[" in ln]
    assert fills == sorted(fills) and fills[-1] == 24
    assert lines[4].startswith("warning:") and "downtime 80 ms" in lines[-1]


def test_progress_on_a_terminal_redraws_in_place():
    buf = io.StringIO()
    p = MigrationProgress(buf, tty=True, columns=200)
    p.sample("lpar1", {**it(1, 500 * MIB), "data_processed": 0})
    p.sample("lpar1", {"kind": "completed", "t": 5, "data_processed": 500 * MIB,
                       "data_remaining": 0, "downtime_ms": 80})
    assert "\x1b[1F" in buf.getvalue() and bar(1.0) in buf.getvalue()
    # a narrow terminal: lines are cut, never wrapped (a wrapped line breaks the redraw)
    narrow = io.StringIO()
    p = MigrationProgress(narrow, tty=True, columns=40)
    p.sample("lpar1", {**it(1, 500 * MIB), "data_processed": 0})
    drawn = [ln.split("\x1b[K")[-1] for ln in narrow.getvalue().splitlines()]
    assert drawn and all(len(ln) <= 39 for ln in drawn)


def test_samples_are_stored_in_order_and_the_latest_gives_live_bytes(tmp_path):
    store = MigrationStore(tmp_path / "hmc.sqlite")
    rec = MigrationRecord("lpar1", "sys1", "sys2")
    store.save(rec)
    tel = P.Telemetry("lpar1", rec.id, store, P.Controls())
    tel.FLUSH_S = 0.0
    for n in range(1, 4):
        tel.on_sample({**it(n, (4 - n) * MIB), "data_processed": n * MIB})
    tel.on_sample({"kind": "iteration", "iteration": 4, "t": 4.5})  # a burst: no numbers
    tel.flush()
    got = store.samples(rec.id)
    assert [s["iteration"] for s in got] == [1, 2, 3, 4]
    assert store.latest_sample(rec.id)["data_processed"] == 3 * MIB
    # a long burst of events whose samples carry no numbers does not hide the last bytes
    store.add_samples(rec.id, [{"kind": "iteration", "iteration": 5 + i, "t": 5 + i / 100}
                               for i in range(40)])
    assert store.latest_sample(rec.id)["data_processed"] == 3 * MIB
    assert store.find(rec.id[:5]).id == rec.id and store.find("lpar1").id == rec.id
    assert store.find("nope") is None


def test_summary_and_downtime_window():
    samples = [it(1, 500), it(2, 50), {"kind": "completed", "t": 3.0, "downtime_ms": 250,
                                       "data_processed": 900, "elapsed_ms": 2900}]
    s = P.summarize(samples, 4.2)
    assert (s["iterations"], s["downtime_ms"], s["bytes_sent"], s["transfer_s"]) == \
        (2, 250, 900, 2.9)
    assert P.downtime_window(samples) == [2.75, 3.0]
    assert P.downtime_window(samples[:2]) is None


def test_a_dumb_terminal_gets_plain_lines(monkeypatch):
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("TERM", "dumb")
    assert MigrationProgress(Tty()).tty is False
    monkeypatch.setenv("TERM", "xterm-256color")
    assert MigrationProgress(Tty()).tty is True


def test_nothing_is_sampled_after_the_job_completed():
    dom = WatchedDomain()
    got = []
    w = T.JobWatcher(dom, got.append, poll_s=0.02, first_poll_s=0.01)
    w.start()
    dom.current = stats(1, 300 * MIB, elapsed=0)
    time.sleep(0.1)
    dom.fire_completed({"downtime": 50, "time_elapsed": 100})
    # libvirt still shows the job while it finishes and confirms the migration
    time.sleep(0.2)
    w.stop(wait_completed_s=1.0)
    assert got[-1]["kind"] == "completed"
    assert [s["t"] for s in got] == sorted(s["t"] for s in got)
