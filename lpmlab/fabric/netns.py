"""Network namespaces: the single-box stand-in for separate hosts.

Every namespace, bridge and veth lpmlab creates starts with ``lpm-`` (namespaces) or lives
inside such a namespace, so teardown can find exactly what the lab owns.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import threading
from pathlib import Path

from lpmlab.errors import FabricError

NS_PREFIX = "lpm-"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ns_name(obj: str) -> str:
    """The namespace of a lab object (frame, VIOS, or ``hub`` for the lab's switches)."""
    return f"{NS_PREFIX}{obj}"


def ns_path(name: str) -> Path:
    return Path("/run/netns") / name


def exists(name: str) -> bool:
    return ns_path(name).exists()


def list_lab_namespaces() -> list[str]:
    d = Path("/run/netns")
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if p.name.startswith(NS_PREFIX))


def pids_in(name: str) -> list[int]:
    """Processes whose network namespace is ``name`` (``ip netns pids``)."""
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split() if x.isdigit()]


def run_in(name: str, argv: list[str], *, check: bool = True,
           timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a command inside namespace ``name`` and capture its output."""
    cp = subprocess.run(["ip", "netns", "exec", name, *argv], capture_output=True, text=True,
                        timeout=timeout)
    if check and cp.returncode != 0:
        raise FabricError(f"command failed in namespace {name}: {' '.join(argv)}",
                          evidence=(cp.stderr or cp.stdout).strip()[-2000:])
    return cp


def reset_tcp(name: str, port: int, *, remote: bool = False) -> int:
    """Close (``ss -K``, a reset to both ends) the established TCP connections in namespace
    ``name`` whose local port (``remote``: remote port) is ``port``; how many there were."""
    side = "dport" if remote else "sport"
    try:
        cp = run_in(name, ["ss", "-tnHK", "state", "established", f"( {side} = :{port} )"],
                    check=False, timeout=10)
    except subprocess.TimeoutExpired:
        return 0
    return len([ln for ln in cp.stdout.splitlines() if ln.strip()])


def _setns(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def connect_in(name: str, host: str, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection made from inside namespace ``name``.

    setns() changes only the calling thread, so a short-lived thread enters the namespace,
    creates and connects the socket, and hands it back; the socket stays in that namespace.
    """
    result: dict[str, object] = {}

    def worker() -> None:
        try:
            _setns(ns_path(name))
            s = socket.create_connection((host, port), timeout=timeout)
            result["sock"] = s
        except OSError as exc:
            result["error"] = exc

    t = threading.Thread(target=worker, name=f"setns-{name}", daemon=True)
    t.start()
    t.join(timeout + 5)
    if "sock" in result:
        return result["sock"]  # type: ignore[return-value]
    exc = result.get("error")
    raise FabricError(f"cannot connect to {host}:{port} from namespace {name}: {exc}",
                      fix="check that the lab is up (lpmlab lab status)")


def delete(name: str) -> None:
    """Kill every process in the namespace, then remove it (a namespace dies with its last user)."""
    import signal
    import time

    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = pids_in(name)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while pids_in(name) and time.monotonic() < deadline:
            time.sleep(0.1)
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)
