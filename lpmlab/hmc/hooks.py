"""The partition OS's part in a migration: drmgr hook phases run in the guest over RMC.

PowerVM asks the partition's OS (drmgr) to run the executables in /etc/drmgr.d/pmig/ at each
phase: ``check`` while the migration is validated (a failing hook refuses it, and the
``undocheck`` hooks run), ``pre`` before the transfer, ``post`` on the destination after the
partition resumes (also after a failed or stopped migration, wherever it then runs). The
guest's ``lpm-drmgr-hooks`` runner applies the contract (docs/hooks.md); this module drives
it over one SSH channel reused across the phases, within the ``-w`` time budget.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from lpmlab.errors import DeadlineError, RmcError

RUNNER = "lpm-drmgr-hooks"
PHASES = ("check", "undocheck", "pre", "post")
# -w: minutes the partition OS may take for its hooks (check and pre); the HMC default
DEFAULT_WAIT_MINUTES = 3


@dataclass
class HookRun:
    """One hook's run: what it printed and how it ended."""

    hook: str
    rc: int
    seconds: float
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    path: str = ""


@dataclass
class PhaseResult:
    phase: str
    hooks: list[HookRun] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # the phase could not run (RMC down, deadline)

    @property
    def failed(self) -> list[HookRun]:
        return [h for h in self.hooks if h.rc != 0]

    def record(self) -> dict[str, Any]:
        return {"phase": self.phase, "seconds": round(self.seconds, 3), "error": self.error,
                "hooks": [asdict(h) for h in self.hooks]}

    def render(self) -> str:
        """What the HMC user is shown: each hook's exit and output."""
        lines = []
        for h in self.hooks:
            state = "timed out" if h.timed_out else f"exit {h.rc}"
            lines.append(f"{self.phase} hook {h.hook}: {state} ({h.seconds:.2f} s)")
            for stream in (h.stdout, h.stderr):
                lines.extend("  " + line for line in stream.rstrip().splitlines())
        if self.error:
            lines.append(f"{self.phase}: {self.error}")
        return "\n".join(lines)


def parse_runner_output(phase: str, text: str) -> list[HookRun]:
    """The runner prints one JSON object per hook, then a summary line (skipped here)."""
    runs = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        obj = json.loads(line)
        if "hook" not in obj:
            continue
        runs.append(HookRun(hook=str(obj["hook"]), rc=int(obj.get("rc", -1)),
                            seconds=float(obj.get("seconds", 0.0)),
                            stdout=str(obj.get("stdout", "")), stderr=str(obj.get("stderr", "")),
                            timed_out=bool(obj.get("timed_out", False)),
                            path=str(obj.get("path", ""))))
    return runs


class PartitionOS:
    """The migrating partition's OS over one RMC channel, with the ``-w`` budget.

    ``wait_s`` None means no limit (``-w 0``). The budget covers the phases that gate the
    migration (check, pre); post runs after the fact and gets what is left, at least its own
    share, since a post hook that does not run is worse than a late one.
    """

    POST_MIN_S = 30.0

    def __init__(self, channel: Any, wait_s: float | None) -> None:
        self.channel = channel
        self.deadline = None if wait_s is None else time.monotonic() + wait_s
        self.wait_s = wait_s
        self.results: list[PhaseResult] = []

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    def run(self, phase: str, *, at_least: float = 0.0) -> PhaseResult:
        assert phase in PHASES
        left = self.remaining()
        if left is not None:
            left = max(left, at_least)
        res = PhaseResult(phase)
        t0 = time.monotonic()
        try:
            if left is not None and left <= 0:
                raise DeadlineError(f"the {self.wait_s:.0f} s (-w) for the partition OS are "
                                    f"used up before the {phase} phase")
            cmd = f"{RUNNER} {phase}" + (f" --timeout {max(1, int(left))}" if left else "")
            out = self.channel.run(cmd, timeout=(left + 5) if left else 3600)
            res.hooks = parse_runner_output(phase, out.stdout)
            if out.rc not in (0, 1) or (out.rc == 1 and not res.failed):
                res.error = f"{RUNNER} exited {out.rc}: {out.stderr.strip()[-400:]}"
        except (RmcError, DeadlineError) as exc:
            res.error = exc.message
        except ValueError as exc:
            res.error = f"unreadable output of {RUNNER}: {exc}"
        res.seconds = time.monotonic() - t0
        if any(h.timed_out for h in res.hooks) and left is not None:
            res.error = res.error or (f"a {phase} hook ran past the partition OS wait time "
                                      f"(-w, {self.wait_s:.0f} s)")
        self.results.append(res)
        return res

    def expired(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0

    def record(self) -> list[dict[str, Any]]:
        return [r.record() for r in self.results]
