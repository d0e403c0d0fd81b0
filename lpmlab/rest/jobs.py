"""REST jobs: each runs its HMC command (:mod:`lpmlab.rest.operations`) in a thread of the
API server, through the HMC's command server; clients poll ``/rest/api/uom/jobs/ID``.

Status, as the HMC reports it: ``NOT_STARTED``, ``RUNNING``, then ``COMPLETED_OK``,
``FAILED_BEFORE_COMPLETION`` (refused before it acted: bad input, a validation error, an
object not there) or ``COMPLETED_WITH_ERROR`` (it failed while acting). The failure's text,
HSCL code first, is the job's ``result``; the command's JSON outcome is kept beside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from lpmlab import codes
from lpmlab.errors import NotFoundError, UsageError
from lpmlab.rest.operations import Command, hmc_code, stop_argv

_log = structlog.get_logger("lpmlab.rest.jobs")

NOT_STARTED, RUNNING = "NOT_STARTED", "RUNNING"
COMPLETED_OK, COMPLETED_WITH_ERROR = "COMPLETED_OK", "COMPLETED_WITH_ERROR"
FAILED_BEFORE_COMPLETION = "FAILED_BEFORE_COMPLETION"
TERMINAL = (COMPLETED_OK, COMPLETED_WITH_ERROR, FAILED_BEFORE_COMPLETION)

KEEP_S = 3600.0   # a finished job nobody deleted is forgotten after this
# A job's PUT answers once it has ended, if that is within START_WAIT_S (pypowervm then skips
# its polls), and a poll of a running job answers when it ends, or after POLL_HOLD_S: the
# clients' fixed sleeps between polls (pypowervm 1 s) no longer add to every job's time.
START_WAIT_S = 2.0
POLL_HOLD_S = 5.0
MAX_JOBS = 1000

# (argv, user, on_start(send)) -> (rc, stdout, stderr)
Runner = Callable[[list[str], str, Callable[[Callable[[dict[str, Any]], None]], None]],
                  tuple[int, str, str]]


@dataclass
class Job:
    id: str
    group: str
    target_uuid: str
    command: Command
    user: str
    status: str = NOT_STARTED
    started_ms: int = 0
    ended_ms: int = 0
    ended_at: float = 0.0
    rc: int | None = None
    code: str = ""
    message: str = ""
    outcome: Any = None
    send: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)
    ended: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def results(self) -> dict[str, str]:
        """The job's Results parameters (what pypowervm's ``get_job_results_as_dict``
        gives): ``result`` is the failure's text, or what was done."""
        out: dict[str, str] = {}
        if self.done:
            out["returnCode"] = str(self.rc if self.rc is not None else -1)
            out["result"] = self.message or "completed"
            if self.code:
                out["ErrorCode"] = self.code
            if self.outcome is not None:
                out["CommandOutput"] = json.dumps(self.outcome, separators=(",", ":"))
            out["Command"] = " ".join(self.command.argv)
        return out


def outcome_of(rc: int, stdout: str, stderr: str) -> tuple[str, str, str, Any]:
    """(status, code, message, JSON outcome) of a finished command."""
    try:
        doc = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        doc = None
    if rc == 0:
        return COMPLETED_OK, "", "", doc
    err = _first_error(doc)
    if err is None:
        text = stderr.strip() or f"the command ended with status {rc}"
        code = text.split()[0] if text.split() and text.split()[0].startswith(("HSCL", "LPM")) \
            else ""
        return _status_of(code), code, text, doc
    message = f"{err.get('code', '')} {err.get('message', '')}".strip()
    if err.get("fix"):
        message += f" Fix: {err['fix']}"
    return _status_of(str(err.get("code", ""))), str(err.get("code", "")), message, doc


def _first_error(doc: Any) -> dict[str, Any] | None:
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("error"), dict):
        return doc["error"]
    for part in doc.get("partitions") or []:
        if isinstance(part, dict) and isinstance(part.get("error"), dict):
            return part["error"]
    return None


def _status_of(code: str) -> str:
    """Refused before acting (bad input, not there, a validation check) or failed while
    acting."""
    try:
        spec = codes.spec(code)
    except KeyError:
        return COMPLETED_WITH_ERROR
    if spec.family == "validation" or issubclass(spec.error, (UsageError, NotFoundError)):
        return FAILED_BEFORE_COMPLETION
    return COMPLETED_WITH_ERROR


class JobBoard:
    """The jobs of one HMC's REST API."""

    def __init__(self, hmc: str, runner: Runner, keep_s: float = KEEP_S) -> None:
        self.hmc = hmc
        self.runner = runner
        self.keep_s = keep_s
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._last_id = 0

    def submit(self, command: Command, group: str, target_uuid: str, user: str) -> Job:
        with self._lock:
            self._forget()
            job_id = max(int(time.time() * 1000), self._last_id + 1)
            self._last_id = job_id
            job = Job(str(job_id), group, target_uuid, command, user)
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), name=f"job-{job.id}",
                         daemon=True).start()
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise codes.error("HSCLR410", obj=self.hmc, job=job_id)
        return job

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        if not job.done:
            raise codes.error("HSCLR408", job=job_id, operation=job.command.operation)
        with self._lock:
            self._jobs.pop(job_id, None)

    def cancel(self, job_id: str) -> Job:
        """Stop the job's work: a migration is stopped as ``migrlpar -o s`` stops it; any
        other command is interrupted (Ctrl-C). The job then ends as its command does."""
        from lpmlab.rest.operations import JOBS

        job = self.get(job_id)
        if job.done:
            return job
        if JOBS[job.command.operation].stopped_by_migrlpar and job.status == RUNNING:
            threading.Thread(target=self._stop, args=(job,), daemon=True).start()
        elif job.send is not None:
            with contextlib.suppress(OSError):
                job.send({"signal": int(signal.SIGINT)})
        return job

    def running(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if not j.done]

    # -- in the job's thread -------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        job.status, job.started_ms = RUNNING, int(time.time() * 1000)
        _log.info("job started", job=job.id, command=job.command.argv, user=job.user)

        def started(send: Callable[[dict[str, Any]], None]) -> None:
            job.send = send

        try:
            rc, out, err = self.runner(job.command.argv, job.user, started)
            status, code, message, doc = outcome_of(rc, out, err)
            theirs = hmc_code(job.command.operation, code, message)
            if theirs:
                message = f"{theirs} {message}"
        except (OSError, ConnectionError) as exc:
            rc, status, code, doc = -1, COMPLETED_WITH_ERROR, "LPM1009", None
            message = (f"LPM1009 the HMC's command server could not run "
                       f"{job.command.argv[0]}: {exc}")
        job.rc, job.code, job.message, job.outcome = rc, code, message, doc
        job.ended_ms, job.ended_at = int(time.time() * 1000), time.monotonic()
        job.send = None
        job.status = status
        job.ended.set()
        _log.info("job ended", job=job.id, status=status, rc=rc, code=code)

    def _stop(self, job: Job) -> None:
        try:
            self.runner(stop_argv(job.command.system, job.command.partition), job.user,
                        lambda _send: None)
        except (OSError, ConnectionError) as exc:
            _log.warning("job cancel could not stop the migration", job=job.id,
                         error=str(exc))

    def _forget(self) -> None:
        now = time.monotonic()
        for j in [j for j in self._jobs.values() if j.done and now - j.ended_at > self.keep_s]:
            del self._jobs[j.id]
        while len(self._jobs) >= MAX_JOBS:
            oldest = min((j for j in self._jobs.values() if j.done),
                         key=lambda j: j.ended_at, default=None)
            if oldest is None:
                raise codes.error("HSCLR409", obj=self.hmc, detail=f"{MAX_JOBS} jobs run")
            del self._jobs[oldest.id]


def command_server_runner(socket_path: str) -> Runner:
    """Runs commands through the HMC's command server (``lpmlab.cli.cmdserver``): a fork of
    a process that has every command imported, so a job starts in milliseconds."""
    from lpmlab.cli import cmdwire

    def run(argv: list[str], user: str,
            on_start: Callable[[Callable[[dict[str, Any]], None]], None]) -> tuple[int, str, str]:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
                open(os.devnull, "rb") as devnull:
            rc = cmdwire.run(socket_path, argv, user, devnull.fileno(), out.fileno(),
                             err.fileno(), on_start)
            out.seek(0)
            err.seek(0)
            return (rc, out.read().decode("utf-8", "replace"),
                    err.read().decode("utf-8", "replace"))

    return run
