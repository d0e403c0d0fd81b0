"""After a failed transfer the partition is left in exactly one place (fake frames)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from lpmlab.adapter.connection import DomainInfo
from lpmlab.hmc import migration as M
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
