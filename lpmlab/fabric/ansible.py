"""The one way lpmlab runs Ansible playbooks: ansible-runner, local hosts, plain progress on stderr.

Every run leaves an artifact folder in ansible-runner's layout (``command``, ``status``, ``rc``,
``stdout``, ``job_events/``) under ``state_root()/runs/<timestamp>-<label>/`` unless told otherwise.

Bootstrap rule: this module runs before libvirt-python exists (host preparation installs what it
compiles against), so it imports only the stdlib, ansible_runner and lpmlab.errors/paths/log.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import ansible_runner

from lpmlab.errors import PlaybookError
from lpmlab.log import colour_wanted, progress
from lpmlab.paths import playbooks_dir, state_root

# How much of a failing task's output goes into the error (the full text is in the artifacts).
_EVIDENCE_CHARS = 2000
_EVIDENCE_LINES = 30
# ansible-runner polls its cancel callback once per pexpect timeout; keep cancelling snappy.
_POLL_S = 0.25
# After SIGTERM, how long ansible-playbook gets to stop its workers before the group is SIGKILLed.
_TERM_GRACE_S = 3.0
# Marks every process of one run, so cancellation finds exactly our ansible-playbook.
_RUN_MARKER = "LPMLAB_RUN_DIR"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_KEEP_ENV = {"PATH", "HOME", "LANG", "CI", "AWX_ISOLATED_DATA_DIR", "ORIGINAL_STDOUT_CALLBACK"}

_TASK_DONE = {
    "runner_on_ok": "ok",
    "runner_on_failed": "FAILED",
    "runner_on_skipped": "skipping",
    "runner_on_unreachable": "UNREACHABLE",
}


@dataclass
class PlaybookResult:
    """What a finished run left behind; failures raise PlaybookError instead of returning."""

    status: str
    rc: int
    artifact_dir: Path
    duration_s: float
    task_durations: list[tuple[str, str, float]] = field(default_factory=list)


@dataclass
class _Failure:
    host: str
    task: str
    res: dict[str, Any]
    unreachable: bool = False


class _EventWatcher:
    """Turns runner events into progress lines, per-task durations and the failing task."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.task_durations: list[tuple[str, str, float]] = []
        self.failures: list[_Failure] = []
        self.running: dict[tuple[str, str], str] = {}  # (host, task uuid) -> task name
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = str(data.get("host", "?"))
        task = str(data.get("task") or data.get("task_action") or "?")
        key = (host, str(data.get("task_uuid", "")))
        with self._lock:
            if kind == "runner_on_start":
                self.running[key] = task
                self._say(f"  [{host}] TASK {task} ...")
            elif kind in _TASK_DONE:
                self.running.pop(key, None)
                self._task_done(kind, host, task, data)
        return True  # keep every event in job_events/

    def _task_done(self, kind: str, host: str, task: str, data: dict[str, Any]) -> None:
        duration = float(data.get("duration") or 0.0)
        self.task_durations.append((host, task, duration))
        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        word = _TASK_DONE[kind]
        if kind == "runner_on_ok" and res.get("changed"):
            word = "changed"
        if kind == "runner_on_failed" and data.get("ignore_errors"):
            word = "FAILED (ignored)"
        elif kind in ("runner_on_failed", "runner_on_unreachable"):
            self.failures.append(_Failure(host, task, res, kind == "runner_on_unreachable"))
        self._say(f"  [{host}] TASK {task} ... {word} {duration:.1f}s")
        # What a debug task says and any warning are meant for the person watching.
        if kind == "runner_on_ok" and str(data.get("task_action", "")).endswith("debug"):
            self._say_block(res.get("msg"))
        for warning in res.get("warnings") or []:
            self._say_block(f"warning: {warning}")

    def _say_block(self, text: Any) -> None:
        if not text:
            return
        text = text if isinstance(text, str) else json.dumps(text, default=str)
        for line in _tail(text).splitlines()[:_EVIDENCE_LINES]:
            self._say(f"      {line}")

    def _say(self, line: str) -> None:
        if not self.quiet:
            progress(line)


def run_playbook(
    playbook: str | Path,
    *,
    inventory: dict | str | Path | None = None,
    extravars: dict | None = None,
    artifacts: Path | None = None,
    label: str = "",
    limit: str | None = None,
    tags: str | None = None,
    quiet: bool = False,
    cancel_event: threading.Event | None = None,
    timeout_s: int | None = None,
) -> PlaybookResult:
    """Run ``playbook`` (a path, or a name relative to ``playbooks/``) through ansible-runner.

    ``inventory`` as a dict is the lab form: every host gets ``ansible_connection: local`` and
    this interpreter unless it says otherwise; ``None`` means just localhost. A str or Path is
    handed to ansible-runner as is (an inventory file, or inline inventory text).
    ``artifacts`` is the run's folder (default ``state_root()/runs/<timestamp>-<label>``).
    ``cancel_event`` lets a caller in another thread cancel; in the main thread SIGINT and
    SIGTERM cancel too (then KeyboardInterrupt / SystemExit is raised once the run is stopped).
    ``timeout_s`` bounds the whole run; running out of it names the task it was in.
    Raises PlaybookError when the playbook fails, naming the failing task and host.
    """
    path = _resolve_playbook(playbook)
    run_dir = _make_run_dir(artifacts, label or path.stem)
    watcher = _EventWatcher(quiet)
    cancel = _Cancel(cancel_event or threading.Event(), run_dir, timeout_s)
    if not quiet:
        progress(f"playbook {path.name}: running (artifacts in {run_dir})")
    started = time.monotonic()
    with cancel.signals(), _scrubbed_command(run_dir), _runner_errors(path, run_dir):
        runner = ansible_runner.run(
            private_data_dir=str(run_dir),
            # artifact_dir/ident puts runner's own layout directly in run_dir.
            artifact_dir=str(run_dir.parent),
            ident=run_dir.name,
            playbook=str(path),
            inventory=_inventory_arg(inventory),
            extravars=extravars or {},
            limit=limit,
            tags=tags,
            envvars=_envvars(run_dir),
            settings={"pexpect_timeout": _POLL_S, "suppress_ansible_output": True},
            # The environment holds whatever the caller had; never write it to disk.
            suppress_env_files=True,
            quiet=True,
            event_handler=watcher,
            # The deadline is ours too: runner's own timeout kills only the main process group.
            cancel_callback=cancel.poll,
        )
    duration = time.monotonic() - started
    status, rc = str(runner.status), int(runner.rc if runner.rc is not None else -1)
    if cancel.timed_out and status != "successful":
        cancel.kill_leftovers()
        _record(run_dir, "timeout", rc)
        if not quiet:
            progress(f"playbook {path.name}: timed out after {duration:.1f}s ({run_dir})")
        raise _timeout_error(path, timeout_s, run_dir, watcher.running)
    if cancel.requested or status == "canceled":
        if status != "successful":  # a signal just after the end leaves the record alone
            cancel.kill_leftovers()
            _record(run_dir, "cancelled", rc)
            if not quiet:
                progress(f"playbook {path.name}: cancelled after {duration:.1f}s ({run_dir})")
        cancel.reraise(path.name, run_dir)
    if not quiet:
        progress(f"playbook {path.name}: {status} in {duration:.1f}s")
    if status != "successful" or rc != 0:
        raise _failure_error(path, status, rc, run_dir, watcher.failures)
    return PlaybookResult(status, rc, run_dir, duration, watcher.task_durations)


def _resolve_playbook(playbook: str | Path) -> Path:
    path = Path(playbook)
    if not path.is_absolute() and not path.exists():
        path = playbooks_dir() / path
    path = path.resolve()
    if not path.is_file():
        raise PlaybookError(
            f"playbook {playbook} not found",
            fix=f"give a path to a playbook file or a name inside {playbooks_dir()}",
        )
    return path


def _make_run_dir(artifacts: Path | None, label: str) -> Path:
    if artifacts is not None:
        run_dir = Path(artifacts).resolve()
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return run_dir
    runs = state_root() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "run"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    # Two runs in the same second with the same label must not share a folder.
    for n in range(1, 1000):
        run_dir = runs / (f"{stamp}-{safe}" if n == 1 else f"{stamp}-{safe}-{n}")
        try:
            run_dir.mkdir(mode=0o700)  # as ansible-runner makes its own artifact folders
            return run_dir
        except FileExistsError:
            continue
    raise PlaybookError(f"cannot create a run folder under {runs}", fix=f"clean up {runs}")


def _inventory_arg(inventory: dict | str | Path | None) -> dict | str:
    if inventory is None:
        inventory = {"all": {"hosts": {"localhost": {}}}}
    if isinstance(inventory, Path) or (isinstance(inventory, str) and os.path.exists(inventory)):
        # ansible-runner would take a relative path it cannot find for inline inventory text.
        return str(Path(inventory).resolve())
    if isinstance(inventory, str):
        return inventory
    inv = json.loads(json.dumps(inventory))  # deep copy; the caller's dict stays untouched
    group_vars = inv.setdefault("all", {}).setdefault("vars", {})
    group_vars.setdefault("ansible_connection", "local")
    # Interpreter discovery can pick a broken shim (pyenv); use the one running lpmlab.
    group_vars.setdefault("ansible_python_interpreter", sys.executable)
    return inv


def _envvars(run_dir: Path) -> dict[str, str]:
    tmp = run_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    venv_bin = os.path.dirname(sys.executable)
    path = [venv_bin, *os.environ.get("PATH", "").split(os.pathsep)]
    # ansible-playbook lives beside this interpreter; without it first ansible-runner gets rc 127.
    system = ("/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin")
    path += [d for d in system if d not in path]
    env = {
        "PATH": os.pathsep.join(p for p in path if p),
        "ANSIBLE_CONFIG": str(playbooks_dir() / "ansible.cfg"),
        "ANSIBLE_REMOTE_TMP": str(tmp),
        "ANSIBLE_LOCAL_TEMP": str(tmp),
        _RUN_MARKER: str(run_dir),
    }
    if colour_wanted():
        env["ANSIBLE_FORCE_COLOR"] = "1"
    else:
        env["ANSIBLE_NOCOLOR"] = "1"
    return env


@contextmanager
def _runner_errors(path: Path, run_dir: Path) -> Iterator[None]:
    """ansible-runner's own exceptions (bad inventory, config) become a PlaybookError."""
    try:
        yield
    except Exception as exc:
        raise PlaybookError(
            f"ansible-runner could not run playbook {path.name}: {exc}",
            fix="check the inventory and extra variables passed to run_playbook",
            evidence=f"artifacts: {run_dir}",
        ) from exc


@contextmanager
def _scrubbed_command(run_dir: Path) -> Iterator[None]:
    """ansible-runner writes the whole environment into ``command`` even with
    suppress_env_files; keep only what explains the run (tokens in the caller's env stay out)."""
    try:
        yield
    finally:
        command = run_dir / "command"
        with suppress(OSError, ValueError):
            data = json.loads(command.read_text())
            env = data.get("env") or {}
            data["env"] = {k: v for k, v in env.items() if k in _KEEP_ENV or k.startswith(
                ("ANSIBLE_", "RUNNER_", "LPMLAB_", "LC_"))}
            command.write_text(json.dumps(data, indent=1))


def _record(run_dir: Path, status: str, rc: int) -> None:
    (run_dir / "status").write_text(status)
    (run_dir / "rc").write_text(str(rc))


class _Cancel:
    """Cancellation and deadline of one run, polled by ansible-runner's cancel callback.

    ansible-runner's own default installs SIGINT/SIGTERM handlers and never restores them; this
    installs them only for the run. On cancel or timeout it SIGTERMs our ansible-playbook
    (main and workers) and remembers their process groups; ansible-runner then SIGKILLs the
    main group, and ``kill_leftovers`` the workers' groups (workers sit in sessions of their
    own, so cancelling through ansible-runner alone leaves them and their commands running).
    """

    def __init__(self, event: threading.Event, run_dir: Path, timeout_s: float | None) -> None:
        self.event = event
        self.run_dir = run_dir
        self.deadline = time.monotonic() + timeout_s if timeout_s else None
        self.timed_out = False
        self.signum: int | None = None
        self._old: dict[int, Any] = {}
        self._groups: set[int] | None = None

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    @contextmanager
    def signals(self) -> Iterator[None]:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                old = signal.getsignal(sig)
                if old is signal.SIG_IGN:
                    continue  # someone asked not to be interrupted by this one
                self._old[sig] = old
                signal.signal(sig, self._on_signal)
        try:
            yield
        finally:
            for sig, old in self._old.items():
                signal.signal(sig, old)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        self.event.set()

    def poll(self) -> bool:
        """ansible-runner's cancel callback: True makes it SIGKILL the child's process group."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = True
        if not (self.event.is_set() or self.timed_out):
            return False
        if self._groups is None:
            self._groups = _terminate_run(self.run_dir)
        return True

    def kill_leftovers(self) -> None:
        """SIGKILL every group of this run still holding one of its processes."""
        wanted = (self._groups or set()) | _run_groups(self.run_dir, ansible_only=True)
        _signal_groups(wanted & _run_groups(self.run_dir, ansible_only=False), signal.SIGKILL)

    def reraise(self, playbook: str, run_dir: Path) -> None:
        old = self._old.get(self.signum) if self.signum is not None else None
        if self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum == signal.SIGTERM:
            if callable(old):
                old(signal.SIGTERM, None)
            raise SystemExit(128 + signal.SIGTERM)
        raise PlaybookError(
            f"playbook {playbook} was cancelled",
            fix="run it again; the playbooks are idempotent",
            evidence=f"artifacts: {run_dir}",
        )


def _terminate_run(run_dir: Path) -> set[int]:
    """SIGTERM this run's ansible-playbook groups, give them a moment; return the groups."""
    groups = _run_groups(run_dir, ansible_only=True)
    _signal_groups(groups, signal.SIGTERM)
    deadline = time.monotonic() + _TERM_GRACE_S
    left = set(groups)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _run_groups(run_dir, ansible_only=True)
    return groups


def _signal_groups(groups: set[int], sig: int) -> None:
    for pgid in groups:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _run_groups(run_dir: Path, *, ansible_only: bool) -> set[int]:
    """Process groups holding live processes of this run (found by the marker in their
    environment; zombies show none). ``ansible_only``: only ansible-playbook processes (main and
    workers), so daemons a playbook started on purpose in groups of their own are spared."""
    marker = f"{_RUN_MARKER}={run_dir}".encode()
    own = os.getpgrp()
    groups: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            if ansible_only and b"ansible-playbook" not in (proc / "cmdline").read_bytes():
                continue
            pgid = os.getpgid(int(proc.name))
        except (OSError, ProcessLookupError):
            continue
        if pgid != own:
            groups.add(pgid)
    return groups


def _timeout_error(
    path: Path, timeout_s: int | None, run_dir: Path, running: dict[tuple[str, str], str]
) -> PlaybookError:
    where = "; ".join(f"task '{task}' on host {host}" for (host, _), task in running.items())
    return PlaybookError(
        f"playbook {path.name} ran out of its {timeout_s} s" + (f" in {where}" if where else ""),
        fix="find out why that task hangs (its output so far is in the run's stdout)",
        evidence=_tail(_read(run_dir / "stdout")) + f"\nartifacts: {run_dir}",
    )


def _failure_error(
    path: Path, status: str, rc: int, run_dir: Path, failures: list[_Failure]
) -> PlaybookError:
    if failures:
        failure = failures[-1]
        what = "unreachable" if failure.unreachable else "failed"
        message = (
            f"playbook {path.name} failed: task '{failure.task}' {what} on host {failure.host}"
        )
        evidence = _task_evidence(failure) + f"\nartifacts: {run_dir}"
        fix = f"see the task output below; the full log is {run_dir / 'stdout'}"
    else:
        # No task failed: syntax error, missing ansible-playbook (rc 127), bad inventory ...
        message = f"playbook {path.name} failed before any task did (status {status}, rc {rc})"
        evidence = _tail(_read(run_dir / "stdout")) + f"\nartifacts: {run_dir}"
        fix = f"read the playbook output in {run_dir / 'stdout'}"
    return PlaybookError(message, fix=fix, evidence=evidence.strip())


def _task_evidence(failure: _Failure) -> str:
    lines = [f"task: {failure.task}", f"host: {failure.host}"]
    results = [failure.res]
    # A loop task carries the failing item's output inside results[].
    items = failure.res.get("results")
    if isinstance(items, list):
        results += [r for r in items if isinstance(r, dict) and r.get("failed")]
    for res in results:
        if "item" in res and res is not failure.res:
            lines.append(f"item: {_short(res['item'])}")
        if "cmd" in res:
            cmd = res["cmd"]
            text = shlex.join(map(str, cmd)) if isinstance(cmd, list) else str(cmd)
            lines.append(f"cmd: {text}")
        if "rc" in res:
            lines.append(f"rc: {res['rc']}")
        for key in ("msg", "stderr", "stdout", "module_stderr", "module_stdout"):
            value = res.get(key)
            if value and not (key == "msg" and value == "All items completed"):
                text = value if isinstance(value, str) else json.dumps(value, default=str)
                lines.append(f"{key}:")
                lines.extend("  " + line for line in _tail(text).splitlines())
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def _tail(text: str) -> str:
    """The end of a long output: that is where errors are."""
    text = text.rstrip()
    lines = text.splitlines()
    if len(lines) > _EVIDENCE_LINES:
        text = "\n".join(["...", *lines[-_EVIDENCE_LINES:]])
    if len(text) > _EVIDENCE_CHARS:
        text = "..." + text[-_EVIDENCE_CHARS:]
    return text


def _read(path: Path) -> str:
    """A text artifact without colour codes (ANSIBLE_FORCE_COLOR is set on a terminal)."""
    try:
        return _ANSI.sub("", path.read_text(errors="replace"))
    except OSError:
        return ""


def load_events(run_dir: Path) -> list[dict[str, Any]]:
    """The job events of a finished run, in order (for tests and post-mortems)."""
    events: list[tuple[int, dict[str, Any]]] = []
    for f in (run_dir / "job_events").glob("*.json"):
        try:
            event = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        events.append((int(event.get("counter", 0)), event))
    return [e for _, e in sorted(events, key=lambda pair: pair[0])]


__all__ = ["PlaybookResult", "load_events", "run_playbook"]
