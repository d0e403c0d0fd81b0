"""docs/exercises/basic-migration-over-ssh.md, typed over hmc1's sshd as the reader would:
every ``hscroot@hmc1:~>`` line in order, each expected to succeed unless the line after it
names the code it must fail with; ``(second session)`` lines run while the command before
them is under way."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from .hmcssh import SSH_OPTS, hmcs, ssh

pytestmark = pytest.mark.integration
EXERCISE = Path(__file__).resolve().parents[2] / "docs" / "exercises" / \
    "basic-migration-over-ssh.md"
PROMPT = "hscroot@hmc1:~> "
SECOND = "(second session) " + PROMPT


def steps() -> list[tuple[str, str | None, list[str]]]:
    """(command, expected code or None, second-session commands) in the order written."""
    out: list[tuple[str, str | None, list[str]]] = []
    for line in EXERCISE.read_text().splitlines():
        if line.startswith(PROMPT):
            out.append((line[len(PROMPT):], None, []))
        elif line.startswith(SECOND):
            out[-1][2].append(line[len(SECOND):])
        elif re.fullmatch(r"HSCL\w+", line.strip()) and out:
            cmd, _, second = out[-1]
            out[-1] = (cmd, line.strip(), second)
    return out


def test_the_exercise_runs_as_written(lab):
    h = hmcs()["hmc1"]
    done = []
    for command, code, second in steps():
        if second:
            bg = subprocess.Popen(["sshpass", "-p", h["password"], "ssh", *SSH_OPTS,
                                   f"hscroot@{h['address']}", command], text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            src = re.search(r"-m (\S+)", command).group(1)  # type: ignore[union-attr]
            deadline = time.monotonic() + 60
            while "Migration In Progress" not in ssh(h, f"lslparmigr -r lpar -m {src}").stdout:
                assert time.monotonic() < deadline, f"{command}: never in progress"
                time.sleep(0.3)
            for other in second:
                cp = ssh(h, other)
                assert cp.returncode == 0, (other, cp.stderr)
            _out, err = bg.communicate(timeout=300)
            rc = bg.returncode
        else:
            cp = ssh(h, command)
            rc, err = cp.returncode, cp.stderr
        if code is None:
            assert rc == 0, (command, err, done)
        else:
            assert rc != 0 and code in err, (command, code, err)
        done.append(command)
    assert len(done) > 30
