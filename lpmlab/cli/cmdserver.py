"""The HMC's command server: runs HMC commands for the users of its SSH endpoint.

The restricted shell runs as the HMC user (``hscroot``), who may not touch libvirt, the
namespaces or the lab's files; what the commands do needs root. So the shell hands each HMC
command line, with its own stdin/stdout/stderr (``lpmlab.cli.cmdwire``), to this server, which
runs as root in the HMC's namespace. It imports every command once and forks a child per
command: the child takes the caller's descriptors as 0/1/2 and runs the same ``main`` as the
console script, so the output is what a local run prints, and starting costs a fork, not an
interpreter and its imports.

One thread, one selector loop (a forked child must not inherit another thread's locks):
connections, control messages and children's exits (pidfds) are all events.
``python -m lpmlab.cli.cmdserver --lab-dir DIR --hmc NAME --allow-uid UID``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from lpmlab.cli import cmdwire, registry

_PEERCRED = struct.Struct("3i")


@dataclass
class Job:
    """One command under way: its connection, child and what the log says of it."""

    conn: socket.socket
    pid: int
    pidfd: int
    argv: list[str]
    uid: int
    started: float = field(default_factory=time.monotonic)
    hung_up: bool = False


class CommandServer:
    def __init__(self, socket_path: Path, hmc: str, lab_dir: Path,
                 allowed_uids: set[int]) -> None:
        self.socket_path = socket_path
        self.hmc = hmc
        self.lab_dir = lab_dir
        self.allowed_uids = allowed_uids | {0}
        self.selector = selectors.DefaultSelector()
        self.jobs: dict[int, Job] = {}  # by pid

    # -- the loop ------------------------------------------------------------------------
    def serve(self) -> None:
        registry.preload()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        listener.bind(str(self.socket_path))
        # who may connect is decided by the peer's uid (SO_PEERCRED), not by the file mode
        os.chmod(self.socket_path, 0o666)
        listener.listen(64)
        self.selector.register(listener, selectors.EVENT_READ, ("accept", None))
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        self.log(f"serving HMC {self.hmc} on {self.socket_path}")
        while True:
            for key, _mask in self.selector.select():
                kind, job = key.data
                if kind == "accept":
                    self.accept(listener)
                elif kind == "control":
                    self.control(job)
                elif kind == "exit":
                    self.reap(job)

    def accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        try:
            self.start(conn)
        except Exception as exc:  # one bad request must not stop the server
            self.log(f"refused a request: {exc!r}")
            with contextlib.suppress(OSError):
                cmdwire.send(conn, {"rc": 126, "error": str(exc)})
            conn.close()

    def start(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        pid_, uid, _gid = _PEERCRED.unpack(
            conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        if uid not in self.allowed_uids:
            raise PermissionError(f"uid {uid} (pid {pid_}) may not run HMC commands")
        request, fds = cmdwire.receive(conn, max_fds=3)
        try:
            argv = request.get("argv") if request else None
            if (not isinstance(argv, list) or not argv
                    or not all(isinstance(a, str) for a in argv)):
                raise ValueError("the request names no command")
            if not registry.is_hmc_command(argv[0]):
                raise ValueError(f"{argv[0]} is not an HMC command")
            if len(fds) != 3:
                raise ValueError("the request carries no stdin/stdout/stderr")
            env = {k: str(v) for k, v in (request.get("env") or {}).items()
                   if k in cmdwire.PASSED_ENV}
            user = str(request.get("user") or "hscroot")
            pid = os.fork()
            if pid == 0:
                _child(argv, fds, env, user, self.hmc, self.lab_dir)
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        conn.settimeout(None)
        job = Job(conn, pid, os.pidfd_open(pid), argv, uid)
        self.jobs[pid] = job
        self.selector.register(conn, selectors.EVENT_READ, ("control", job))
        self.selector.register(job.pidfd, selectors.EVENT_READ, ("exit", job))

    def control(self, job: Job) -> None:
        try:
            message, _ = cmdwire.receive(job.conn)
        except OSError:
            message = None
        if message is None:
            # the caller went away (SSH session closed): hang the command up, as a
            # terminal's hangup would
            self.selector.unregister(job.conn)
            job.hung_up = True
            # to the command only, not its group: what it runs (nft, tc) must not die with
            # the session while, as on the HMC, a migration goes on (migrlpar ignores it)
            with contextlib.suppress(ProcessLookupError):
                os.kill(job.pid, signal.SIGHUP)
            return
        sig = message.get("signal")
        if sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH,
                   signal.SIGQUIT):
            self.signal(job, sig)

    def signal(self, job: Job, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.pid, sig)

    def reap(self, job: Job) -> None:
        self.selector.unregister(job.pidfd)
        os.close(job.pidfd)
        _, status = os.waitpid(job.pid, 0)
        rc = os.waitstatus_to_exitcode(status)
        rc = 128 - rc if rc < 0 else rc  # killed by a signal: as a shell reports it
        self.jobs.pop(job.pid, None)
        if not job.hung_up:
            self.selector.unregister(job.conn)
            with contextlib.suppress(OSError):
                cmdwire.send(job.conn, {"rc": rc})
        job.conn.close()
        self.log(f"uid {job.uid}: {' '.join(job.argv)} -> {rc} in "
                 f"{time.monotonic() - job.started:.2f}s")

    def log(self, text: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}", file=sys.stderr, flush=True)


def _child(argv: list[str], fds: list[int], env: dict[str, str], user: str, hmc: str,
           lab_dir: Path) -> None:
    """In the forked child: become the command (never returns)."""
    rc = 1
    try:
        os.setsid()
        _name_process(argv[0])
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _command_environment(env, user, hmc, lab_dir)
        client = env.get("SSH_CLIENT", "").split(" ")[0]
        if client:
            os.environ["LPMLAB_HMC_CLIENT"] = client
        _standard_streams()
        sys.argv = list(argv)
        from lpmlab.cli.common import run

        rc = run(registry.main_of(argv[0]), argv[1:])
    except SystemExit as exc:  # --help
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
        rc = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(rc & 0xFF)


def _name_process(name: str) -> None:
    """Show the child as its command (``ps -C migrlpar``, ``pgrep -x migrlpar``), not as
    another command server."""
    import ctypes

    pr_set_name = 15
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_name, name.encode()[:15], 0, 0, 0)


def _command_environment(passed: dict[str, str], user: str, hmc: str, lab_dir: Path) -> None:
    """A command's environment: a clean root one, the lab's settings, who asked, and only
    what the shell passes (terminal type and size)."""
    kept = {k: v for k, v in os.environ.items() if k in ("LPMLAB_CACHE", "LPMLAB_DEBUG")}
    os.environ.clear()
    os.environ.update(kept)
    os.environ.update({
        # the venv's bin first: recovery runs ansible-playbook
        "PATH": f"{Path(sys.executable).parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                "/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8", "HOME": "/root", "LPMLAB_HOME": str(lab_dir.parent),
        "LPMLAB_HMC": hmc, "USER": user, "LOGNAME": user})
    os.environ.update(passed)


def _standard_streams() -> None:
    """sys.stdin/stdout/stderr over the caller's descriptors, buffered as a fresh
    interpreter would buffer them (line-buffered on a terminal)."""
    def stream(fd: int, mode: str, errors: str, line: bool) -> io.TextIOWrapper:
        raw = io.FileIO(fd, mode, closefd=False)
        buf: io.BufferedIOBase = (io.BufferedReader(raw) if mode == "r"
                                  else io.BufferedWriter(raw))
        return io.TextIOWrapper(buf, encoding="utf-8", errors=errors, line_buffering=line)

    sys.stdin = stream(0, "r", "strict", False)
    sys.stdout = stream(1, "w", "strict", os.isatty(1))
    sys.stderr = stream(2, "w", "backslashreplace", True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lpmlab-cmdserver")
    p.add_argument("--lab-dir", required=True, type=Path)
    p.add_argument("--hmc", required=True)
    p.add_argument("--socket", type=Path, help="default: <lab-dir>/hmcs/<hmc>/run/hmc.sock")
    p.add_argument("--allow-uid", type=int, action="append", default=[])
    args = p.parse_args(argv)
    path = args.socket or args.lab_dir / "hmcs" / args.hmc / "run" / "hmc.sock"
    CommandServer(path, args.hmc, args.lab_dir, set(args.allow_uid)).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
