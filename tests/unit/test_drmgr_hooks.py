"""The guest's drmgr hook runner (images/src/lpm-drmgr-hooks.c), compiled for this host.

The image carries a ppc64le build of the same file; its logic (which entries are hooks, their
order, environment, stdin, output capture, exit status, timeouts) does not depend on the
architecture, so the host build checks it without a guest. docs/hooks.md has the contract.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "images" / "src" / "lpm-drmgr-hooks.c"
SLEEP = shutil.which("sleep") or "/bin/sleep"


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("host gcc is not installed")
    out = tmp_path_factory.mktemp("runner") / "lpm-drmgr-hooks"
    # the image's flags (images/partition.toml [programs]) minus -static, plus -Werror:
    # the runner must stay warning-free
    proc = subprocess.run([gcc, "-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11",
                           "-o", str(out), str(SOURCE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str], seconds: float) -> None:
        self.rc = proc.returncode
        self.stderr = proc.stderr
        self.seconds = seconds
        lines = [json.loads(line) for line in proc.stdout.splitlines()]
        self.hooks = [obj for obj in lines if "hook" in obj]
        summaries = [obj for obj in lines if "phase" in obj]
        self.summary = summaries[-1] if summaries else {}
        assert len(lines) == len(self.hooks) + len(summaries)

    def names(self) -> list[str]:
        return [h["hook"] for h in self.hooks]

    def by_name(self, name: str) -> dict:
        return next(h for h in self.hooks if h["hook"] == name)


def run(runner: Path, phase: str, hook_dir: Path, *args: str,
        env: dict[str, str] | None = None) -> Run:
    t0 = time.monotonic()
    # --lock in the test's own directory: never the host's /var/lock/dr_config_lock
    proc = subprocess.run([str(runner), phase, "--dir", str(hook_dir),
                           "--lock", str(hook_dir.parent / "dr_config_lock"), *args],
                          capture_output=True, text=True, timeout=20,
                          env=env if env is not None else dict(os.environ))
    return Run(proc, time.monotonic() - t0)


def hook(directory: Path, name: str, body: str, mode: int = 0o755,
         interpreter: str = "/bin/sh") -> Path:
    path = directory / name
    path.write_text(f"#!{interpreter}\n{body}\n")
    path.chmod(mode)
    return path


def strverscmp_order(names: list[str]) -> list[str]:
    """glibc's versionsort, which drmgr's scandirat() uses, straight from libc."""
    libc = ctypes.CDLL(None)
    libc.strverscmp.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return sorted(names, key=functools.cmp_to_key(
        lambda a, b: libc.strverscmp(a.encode(), b.encode())))


def test_hooks_chosen_and_ordered_like_drmgr(runner: Path, tmp_path: Path) -> None:
    d = tmp_path / "pmig"
    d.mkdir()
    for name in ("10-b", "9-a", "a.sh", "1.10", "1.9", ".dot"):
        hook(d, name, 'echo "$0"')
    (tmp_path / "elsewhere").mkdir()
    hook(tmp_path / "elsewhere", "tool", 'echo "$0"')
    (d / "link").symlink_to(tmp_path / "elsewhere" / "tool")
    hook(d, "README", "exit 9", mode=0o644)          # no execute bit
    hook(d, "group-x", "exit 9", mode=0o654)         # x for group only: drmgr wants S_IXUSR
    (d / "sub").mkdir()
    hook(d / "sub", "nested", "exit 9")              # drmgr does not descend
    (d / "dirlink").symlink_to(d / "sub")
    (d / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(d / "fifo")

    r = run(runner, "check", d)

    assert r.rc == 0, r.stderr
    expected = [".dot", "1.9", "1.10", "9-a", "10-b", "a.sh", "link"]
    assert r.names() == expected == strverscmp_order(expected)
    # argv[0] is the path in the hook directory, also for a symlink (drmgr's execl(name, name))
    assert r.by_name("link")["stdout"] == f"{d}/link\n"
    assert r.by_name("link")["path"] == f"{d}/link"
    assert {s["name"] for s in r.summary["skipped"]} == {
        "README", "group-x", "sub", "dirlink", "dangling", "fifo"}
    assert r.summary["hooks"] == len(expected)
    assert r.summary["failed"] == 0
    assert r.summary["phase"] == "check"


ENV_DUMP = """
import json, os
fds = []
for fd in os.listdir("/proc/self/fd"):
    try:
        fds.append((int(fd), os.readlink(f"/proc/self/fd/{fd}")))
    except OSError:
        pass  # the descriptor listdir itself used
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({
    "environ": open("/proc/self/environ", "rb").read().decode().split("\\0")[:-1],
    "cwd": os.getcwd(),
    "fds": sorted(fds),
    "pgid_is_pid": os.getpgid(0) == os.getpid(),
    "sigblk": int(status["SigBlk"], 16),
}))
"""


def test_environment_cwd_stdin_and_process_group(runner: Path, tmp_path: Path) -> None:
    d = tmp_path / "pmig"
    d.mkdir()
    hook(d, "env", ENV_DUMP, interpreter=sys.executable)
    polluted = {**os.environ, "FOO": "bar", "PHASE": "wrong", "PATH": "/usr/bin:/bin"}

    for phase in ("check", "undocheck", "pre", "post"):
        r = run(runner, phase, d, env=polluted)
        assert r.rc == 0, r.stderr
        seen = json.loads(r.by_name("env")["stdout"])
        # clearenv() and these four, in drmgr's setenv order; no PATH, no HOME
        assert seen["environ"] == ["DRC_TYPE=pmig", "DRC_COUNT=0", "ACTION=migrate",
                                   f"PHASE={phase}"]
        assert seen["cwd"] == "/"
        fds = dict(seen["fds"])
        assert fds[0] == "/dev/null"
        assert set(fds) == {0, 1, 2}, fds      # nothing of the runner's leaks into the hook
        assert fds[1].startswith("pipe:") and fds[2].startswith("pipe:")
        assert fds[1] != fds[2]                # stdout and stderr are captured apart
        assert seen["pgid_is_pid"]
        assert seen["sigblk"] == 0


def test_sigmask_drmgr_reproduces_the_blocked_signals(runner: Path, tmp_path: Path) -> None:
    d = tmp_path / "pmig"
    d.mkdir()
    hook(d, "env", ENV_DUMP, interpreter=sys.executable)
    r = run(runner, "pre", d, "--sigmask", "drmgr")
    blocked = json.loads(r.by_name("env")["stdout"])["sigblk"]

    def bit(sig: signal.Signals) -> bool:
        return bool(blocked & (1 << (sig - 1)))

    # sig_setup() in drmgr's common.c blocks everything but these
    assert bit(signal.SIGTERM) and bit(signal.SIGINT) and bit(signal.SIGCHLD)
    assert bit(signal.SIGHUP) and bit(signal.SIGUSR1)
    for sig in (signal.SIGPIPE, signal.SIGALRM, signal.SIGSEGV, signal.SIGQUIT, signal.SIGABRT):
        assert not bit(sig), sig


def test_output_captured_escaped_and_capped(runner: Path, tmp_path: Path) -> None:
    d = tmp_path / "pmig"
    d.mkdir()
    hook(d, "10-text", r"""printf 'say "hi"\\ \t\001 \342\202\254 \377end\n'; echo oops >&2""")
    hook(d, "20-big", f"{shutil.which('head') or '/usr/bin/head'} -c 70000 /dev/zero | "
                      f"{shutil.which('tr') or '/usr/bin/tr'} '\\0' x")
    r = run(runner, "post", d)
    assert r.rc == 0, r.stderr
    text = r.by_name("10-text")
    # valid UTF-8 stays, a stray byte becomes U+FFFD, controls are escaped; json.loads did
    # the unescaping, so this also proves the line is valid JSON
    assert text["stdout"] == 'say "hi"\\ \t\x01 \u20ac \ufffdend\n'
    assert text["stderr"] == "oops\n"
    assert not text["stdout_truncated"]
    big = r.by_name("20-big")
    assert big["stdout"] == "x" * 65536
    assert big["stdout_truncated"] and big["stdout_bytes"] == 70000
    assert big["rc"] == 0


def test_check_failure_fails_the_phase_and_all_hooks_still_run(runner: Path,
                                                               tmp_path: Path) -> None:
    d = tmp_path / "pmig"
    d.mkdir()
    hook(d, "10-refuse", "echo 'database not quiesced'; exit 3")
    hook(d, "20-killed", "kill -9 $$")
    hook(d, "30-ok", "echo fine")
    hook(d, "40-noexec", "", mode=0o755)
    (d / "40-noexec").write_text("no interpreter line here\n")  # exec fails: ENOEXEC

    r = run(runner, "check", d)
    assert r.rc == 1
    # run_hooks() does not stop at the first failure
    assert r.names() == ["10-refuse", "20-killed", "30-ok", "40-noexec"]
    assert r.by_name("10-refuse")["rc"] == 3
    assert r.by_name("10-refuse")["stdout"] == "database not quiesced\n"
    killed = r.by_name("20-killed")
    assert killed["signal"] == 9 and killed["rc"] == 128 + 9
    assert r.by_name("30-ok")["rc"] == 0
    noexec = r.by_name("40-noexec")
    assert noexec["rc"] == 255 and "cannot exec" in noexec["stderr"]
    assert r.summary["failed"] == 3

    for phase in ("undocheck", "pre", "post"):  # exit codes reported, never fatal
        other = run(runner, phase, d)
        assert other.rc == 0
        assert other.summary["failed"] == 3


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_timeout_kills_the_hook_and_its_process_group(runner: Path, tmp_path: Path) -> None:
    d = tmp_path / "pmig"
    d.mkdir()
    hook(d, "10-hangs", f"{SLEEP} 30 &\necho $!\n{SLEEP} 30")
    hook(d, "20-later", "echo never")

    r = run(runner, "check", d, "--timeout", "0.5")

    assert r.seconds < 3
    assert r.rc == 1
    hung = r.by_name("10-hangs")
    assert hung["timed_out"] and hung["rc"] == -1
    assert 0.4 < hung["seconds"] < 2
    child = int(hung["stdout"])                  # output before the kill is kept
    deadline = time.monotonic() + 2
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(child), "the hook's background child survived the timeout"
    later = r.by_name("20-later")                # the phase deadline has passed
    assert later["not_run"] and later["rc"] == -1 and later["stdout"] == ""
    assert r.summary["timed_out"] == 1 and r.summary["not_run"] == 1


def test_a_daemon_left_behind_does_not_hold_the_phase(runner: Path, tmp_path: Path) -> None:
    d = tmp_path / "pmig"
    d.mkdir()
    # a post hook restarting a service: the service inherits the hook's stdout
    hook(d, "10-restart", f"{SLEEP} 5 &\necho $!")
    r = run(runner, "post", d)
    try:
        assert r.rc == 0
        assert r.seconds < 2
        assert r.by_name("10-restart")["rc"] == 0
    finally:
        os.kill(int(r.by_name("10-restart")["stdout"]), signal.SIGKILL)


def test_missing_directory_means_no_hooks(runner: Path, tmp_path: Path) -> None:
    r = run(runner, "check", tmp_path / "absent")
    assert r.rc == 0
    assert r.hooks == [] and r.summary["hooks"] == 0


@pytest.mark.parametrize("args", [[], ["migrate"], ["check", "post"], ["check", "--bogus"],
                                  ["check", "--timeout", "soon"],
                                  ["check", "--sigmask", "some"]])
def test_usage_errors_exit_2(runner: Path, args: list[str]) -> None:
    proc = subprocess.run([str(runner), *args], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "usage" in proc.stderr
