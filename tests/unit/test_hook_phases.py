"""The controller's side of the hook phases, against a fake RMC channel (the guest runner
and real guests are covered by tests/unit/test_drmgr_hooks.py and the lab tests)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from lpmlab.errors import RmcError
from lpmlab.hmc.hooks import PartitionOS, parse_runner_output
from lpmlab.rmc.channel import CommandResult


def line(hook: str, rc: int, out: str = "", timed_out: bool = False) -> str:
    return json.dumps({"hook": hook, "path": f"/etc/drmgr.d/pmig/{hook}", "rc": rc,
                       "seconds": 0.01, "stdout": out, "stderr": "", "timed_out": timed_out})


@dataclass
class FakeChannel:
    replies: dict[str, CommandResult]
    commands: list[tuple[str, float]] = field(default_factory=list)
    down: bool = False

    def run(self, command: str, timeout: float = 30.0, check: bool = False) -> CommandResult:
        self.commands.append((command, timeout))
        if self.down:
            raise RmcError("RMC connection to partition lpar1 is down")
        return self.replies[command.split()[1]]

    def close(self) -> None:
        pass


def test_runner_lines_become_hook_runs_and_the_summary_is_skipped():
    text = "\n".join([line("10-a", 0, "ok\n"), line("20-b", 3),
                      json.dumps({"phase": "check", "hooks": 2, "failed": 1})])
    runs = parse_runner_output("check", text)
    assert [(r.hook, r.rc, r.stdout) for r in runs] == [("10-a", 0, "ok\n"), ("20-b", 3, "")]


def test_a_failing_check_hook_is_reported_with_its_output():
    ch = FakeChannel({"check": CommandResult(1, line("10-app", 2, "db not flushed\n"), "")})
    res = PartitionOS(ch, 180).run("check")
    assert [h.hook for h in res.failed] == ["10-app"] and res.error is None
    assert "10-app: exit 2" in res.render() and "db not flushed" in res.render()


def test_the_wait_budget_bounds_each_phase_and_its_hooks():
    ch = FakeChannel({"pre": CommandResult(0, "", "")})
    PartitionOS(ch, 120).run("pre")
    cmd, timeout = ch.commands[0]
    assert cmd.startswith("lpm-drmgr-hooks pre --timeout ")
    assert int(cmd.split()[-1]) <= 120 and timeout <= 125


def test_no_limit_passes_no_timeout():
    ch = FakeChannel({"post": CommandResult(0, "", "")})
    PartitionOS(ch, None).run("post")
    assert ch.commands[0][0] == "lpm-drmgr-hooks post"


def test_a_used_up_budget_runs_nothing_but_post_still_gets_its_share():
    ch = FakeChannel({"pre": CommandResult(0, "", ""), "post": CommandResult(0, "", "")})
    os_ = PartitionOS(ch, 0.001)
    time.sleep(0.01)
    res = os_.run("pre")
    assert res.error and "used up" in res.error and ch.commands == []
    assert os_.expired()
    post = os_.run("post", at_least=PartitionOS.POST_MIN_S)
    assert post.error is None and int(ch.commands[0][0].split()[-1]) >= 29


def test_an_rmc_failure_is_an_error_of_the_phase_not_an_exception():
    ch = FakeChannel({}, down=True)
    res = PartitionOS(ch, 180).run("check")
    assert res.hooks == [] and "down" in (res.error or "")


def test_a_runner_that_breaks_is_an_error():
    ch = FakeChannel({"check": CommandResult(127, "", "sh: lpm-drmgr-hooks: not found")})
    res = PartitionOS(ch, 180).run("check")
    assert res.error and "not found" in res.error


def test_a_hook_killed_at_the_deadline_marks_the_phase():
    ch = FakeChannel({"pre": CommandResult(0, line("50-slow", -1, timed_out=True), "")})
    res = PartitionOS(ch, 60).run("pre")
    assert res.hooks[0].timed_out and "-w" in (res.error or "")
