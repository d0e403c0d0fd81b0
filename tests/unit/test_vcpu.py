"""Choosing the multi-processor workaround from the destination's QEMU version."""

from __future__ import annotations

import pytest

from lpmlab.hmc import vcpu


@pytest.mark.parametrize("version, affected", [
    ((7, 2, 0), False), ((10, 0, 2), True), ((10, 0, 13), True), ((10, 2, 0), True),
    ((11, 0, 0), False), ((11, 1, 0), False),
])
def test_quiesce_bug_by_version(version, affected):
    assert vcpu.has_quiesce_bug(version) is affected


def test_plan_uses_the_workaround_only_for_several_processors_on_an_affected_qemu():
    assert vcpu.plan_for(1, (10, 0, 2)).method == "none"
    p = vcpu.plan_for(4, (10, 0, 2))
    assert p.method == vcpu.WORKAROUND and "10.0.2" in p.reason
    assert p.record()["procs"] == 4
    assert vcpu.plan_for(4, (11, 0, 0)).method == "none"


class FakeRmc:
    def __init__(self, out):
        self.out = out
        self.commands = []

    def run(self, cmd, timeout=30, check=False):
        self.commands.append(cmd)

        class R:
            stdout = self.out
        return R()


def test_offline_and_online_check_what_the_guest_reports():
    plan = vcpu.plan_for(4, (10, 0, 2))
    vcpu.take_secondaries_offline(FakeRmc("0\n"), plan, "lpar4")
    vcpu.bring_secondaries_online(FakeRmc("0-3\n"), plan, "lpar4")
    from lpmlab.errors import RmcError

    with pytest.raises(RmcError, match="lpar4"):
        vcpu.bring_secondaries_online(FakeRmc("0-2\n"), plan, "lpar4")
    with pytest.raises(RmcError):
        vcpu.take_secondaries_offline(FakeRmc("0-1\n"), plan, "lpar4")
