"""After a failed transfer the partition is left in exactly one place (fake frames)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from lpmlab.adapter.connection import DomainInfo
from lpmlab.hmc import migration as M
from lpmlab.hmc import transfer as T
from lpmlab.hmc.system import Placement


@dataclass
class FakeDom:
    frames: dict[str, DomainInfo]
    frame: str

    def isActive(self) -> bool:  # noqa: N802 - libvirt's name
        return self.frame in self.frames and self.frames[self.frame].state != "shutoff"

    def isPersistent(self) -> bool:  # noqa: N802
        return self.frame in self.frames and self.frames[self.frame].persistent

    def destroy(self) -> None:
        # like libvirt: a transient domain is gone once destroyed
        self.frames.pop(self.frame)

    def undefine(self) -> None:
        self.frames.pop(self.frame, None)

    def name(self) -> str:
        return "lpar1"


@dataclass
class FakeConn:
    frames: dict[str, DomainInfo]
    frame: str

    def lookup(self, name: str) -> FakeDom | None:
        return FakeDom(self.frames, self.frame) if self.frame in self.frames else None


@dataclass
class FakeHmc:
    frames: dict[str, DomainInfo]
    vanish_after: int | None = None   # the destination copy goes away by itself after N looks
    looks: int = field(default=0)

    def placements(self, name: str) -> list[Placement]:
        self.looks += 1
        if self.vanish_after is not None and self.looks > self.vanish_after:
            self.frames.pop("sys2", None)
        return [Placement(f, info) for f, info in sorted(self.frames.items())]

    def conn(self, frame: str) -> FakeConn:
        return FakeConn(self.frames, frame)


def info(state: str, persistent: bool = True) -> DomainInfo:
    return DomainInfo("lpar1", "u", state, persistent, {}, job_active=state == "paused")


@pytest.fixture(autouse=True)
def short_deadline(monkeypatch):
    monkeypatch.setattr(M, "SETTLE_SECONDS", 0.5)


def test_waits_for_libvirt_to_remove_the_destination_copy():
    hmc = FakeHmc({"sys1": info("running"), "sys2": info("paused", False)}, vanish_after=2)
    assert M.settle_after_failure(hmc, "lpar1", "sys1", "sys2") == "sys1"
    assert hmc.looks >= 3 and set(hmc.frames) == {"sys1"}


def test_removes_a_destination_copy_that_stays_past_the_deadline():
    hmc = FakeHmc({"sys1": info("running"), "sys2": info("paused", False)})
    assert M.settle_after_failure(hmc, "lpar1", "sys1", "sys2") == "sys1"
    assert set(hmc.frames) == {"sys1"}


def test_leaves_a_partition_that_did_move_for_recovery():
    hmc = FakeHmc({"sys1": info("paused"), "sys2": info("running")})
    assert M.settle_after_failure(hmc, "lpar1", "sys1", "sys2") is None
    assert set(hmc.frames) == {"sys1", "sys2"}  # nothing removed without the history


def test_names_the_destination_when_only_it_is_left():
    hmc = FakeHmc({"sys2": info("running")})
    assert M.settle_after_failure(hmc, "lpar1", "sys1", "sys2") == "sys2"


def postcopy(state: str, phase: str | None) -> DomainInfo:
    return DomainInfo("lpar1", "u", state, True, {}, job_active=True, postcopy=phase)


def test_an_interrupted_postcopy_is_told_from_one_under_way():
    hmc = FakeHmc({"sys1": postcopy("paused", "active"), "sys2": postcopy("running", "active")})
    assert T.postcopy_halves(hmc.placements("lpar1")) == {}
    hmc = FakeHmc({"sys1": postcopy("paused", "failed"), "sys2": postcopy("running", "failed")})
    assert T.postcopy_halves(hmc.placements("lpar1")) == {"sys1": "failed", "sys2": "failed"}


def test_recovering_an_interrupted_postcopy_needs_force_and_keeps_the_destination():
    from lpmlab.errors import MigrationError
    from lpmlab.hmc import recovery as R
    from lpmlab.hmc.store import MigrationRecord

    frames = {"sys1": postcopy("paused", "failed"), "sys2": postcopy("running", "failed")}
    hmc = FakeHmc(dict(frames))
    rec = MigrationRecord.__new__(MigrationRecord)
    rec.source_sys, rec.dest_sys = "sys1", "sys2"
    halves = T.postcopy_halves(hmc.placements("lpar1"))
    with pytest.raises(MigrationError) as err:
        R._postcopy_keeper("lpar1", hmc.placements("lpar1"), halves, [rec], force=False)
    assert err.value.code == "HSCLL453" and "--force" in (err.value.fix or "")
    assert "sys2" in str(err.value) and hmc.frames == frames  # nothing changed
    keep = R._postcopy_keeper("lpar1", hmc.placements("lpar1"), halves, [rec], force=True)
    assert keep.frame == "sys2"  # it ran and wrote to the disk after the switch


class PhaseDom:
    """A source copy whose post-copy phase follows a script, one step per look."""

    def __init__(self, phases: list[int]) -> None:
        import libvirt

        self.states = [[libvirt.VIR_DOMAIN_PAUSED, reason] for reason in phases]

    def state(self) -> list[int]:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


def test_the_guard_resets_the_destination_end_only_after_a_failed_postcopy_lasts():
    import libvirt

    resets = []
    live = PhaseDom([libvirt.VIR_DOMAIN_PAUSED_POSTCOPY])
    guard = T.PostcopyGuard(live, lambda: resets.append(1) or 2, grace_s=0.05, poll_s=0.01)
    guard.start()
    time.sleep(0.3)
    guard.stop()
    assert resets == [] and guard.resets == []  # a post-copy under way is left alone
    broken = PhaseDom([libvirt.VIR_DOMAIN_PAUSED_POSTCOPY] * 3
                      + [libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED])
    guard = T.PostcopyGuard(broken, lambda: resets.append(1) or 2, grace_s=0.05, poll_s=0.01)
    guard.start()
    deadline = time.monotonic() + 5
    while not guard.resets and time.monotonic() < deadline:
        time.sleep(0.01)
    guard.stop()
    assert guard.resets[0] == 2  # two connections (stream and return path) closed


def test_without_a_record_the_paused_half_is_taken_for_the_source():
    from lpmlab.errors import MigrationError
    from lpmlab.hmc import recovery as R

    # the destination's QEMU stopped when its end was reset: only the source is a "half"
    hmc = FakeHmc({"sys1": info("shutoff"), "sys2": postcopy("paused", "failed")})
    halves = T.postcopy_halves(hmc.placements("lpar1"))
    assert halves == {"sys2": "failed"}
    keep = R._postcopy_keeper("lpar1", hmc.placements("lpar1"), halves, [], force=True)
    assert keep.frame == "sys1"
    alone = FakeHmc({"sys2": postcopy("paused", "failed")})
    with pytest.raises(MigrationError) as err:
        R._postcopy_keeper("lpar1", alone.placements("lpar1"),
                           T.postcopy_halves(alone.placements("lpar1")), [], force=True)
    assert err.value.code == "HSCLL414"


class RecordSpy:
    def __init__(self) -> None:
        self.phases: list[tuple[str, dict]] = []
        self.error = self.state = self.result = None

    def phase(self, name: str, **kw: object) -> None:
        self.phases.append((name, kw))


def switched(frames: dict[str, DomainInfo]) -> M.LiveMigration:
    job = M.LiveMigration.__new__(M.LiveMigration)
    job.partition, job.dest = "lpar1", "sys2"
    job.destination = FakeHmc(frames)  # answers placements() as a destination does
    return job


def test_a_partition_dead_on_the_destination_after_the_switch_fails_the_migration():
    # a killed destination QEMU right after the switch: migrlpar ended 0 after 179 s of
    # post hooks that could not reach the partition
    from lpmlab.errors import MigrationError

    rec = RecordSpy()
    with pytest.raises(MigrationError) as err:
        switched({"sys2": info("shutoff")})._require_running_on_dest(rec)
    assert err.value.code == "HSCLL456" and "chsysstate -m sys2" in (err.value.fix or "")
    assert (rec.state, rec.result) == ("Migration Failed", "failed")
    assert "shutoff" in rec.error and rec.phases[-1][0] == "failed"


def test_a_partition_running_on_the_destination_goes_on_to_its_post_hooks():
    rec = RecordSpy()
    switched({"sys2": info("running")})._require_running_on_dest(rec)
    assert rec.phases == [] and rec.state is None
