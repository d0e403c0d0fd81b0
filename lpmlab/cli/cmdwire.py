"""How the HMC shell asks the HMC's command server to run one command.

A Unix SOCK_SEQPACKET connection per command. The shell sends one message: a JSON request
(``argv``, a few environment values) with its three standard descriptors attached
(SCM_RIGHTS), so the command reads and writes the SSH session's own stdin, stdout and
stderr: its output is byte for byte what it prints locally, stdout and stderr stay separate,
and a terminal stays a terminal. While it runs the shell may send ``{"signal": N}`` (Ctrl-C,
a window resize); closing the connection hangs the command up. The server answers
``{"rc": N}`` when the command has ended.

Standard library only (the shell side runs outside the lab's venv).
"""

from __future__ import annotations

import json
import socket
from typing import Any

MAX_MESSAGE = 64 * 1024
# What of the caller's environment reaches the command (nothing else does).
PASSED_ENV = ("TERM", "COLUMNS", "LINES", "SSH_CLIENT", "SSH_CONNECTION", "NO_COLOR")


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def receive(sock: socket.socket, max_fds: int = 0) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the descriptors it carried; (None, []) at the end of the connection."""
    if max_fds:
        data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, max_fds)
    else:
        data, fds = sock.recv(MAX_MESSAGE), []
    if not data:
        for fd in fds:
            _close(fd)
        return None, []
    try:
        message = json.loads(data)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        for fd in fds:
            _close(fd)
        return {}, []
    return message, list(fds)


def _close(fd: int) -> None:
    import contextlib
    import os

    with contextlib.suppress(OSError):
        os.close(fd)


def run(socket_path: str, argv: list[str], user: str, stdin: int, stdout: int, stderr: int,
        on_start: Any = None) -> int:
    """Run one HMC command through the command server with the given descriptors and wait
    for its exit status. ``on_start(send)`` gets a function that sends a control message
    (``{"signal": N}``) while it runs."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
        conn.connect(socket_path)
        send(conn, {"argv": argv, "env": {}, "user": user}, [stdin, stdout, stderr])
        if on_start is not None:
            on_start(lambda message: send(conn, message))
        rc, error = wait_status(conn)
        if rc is None:
            raise ConnectionError(f"the command server ended {argv[0]} without a status")
        if error:
            raise ConnectionError(f"{argv[0]}: {error}")
        return rc


def wait_status(conn: socket.socket) -> tuple[int | None, str | None]:
    """The command's exit status and the server's error, if any, once it has ended; (None,
    None) when the connection ends without one. OSError passes through."""
    while True:
        try:
            message, _ = receive(conn)
        except InterruptedError:
            continue
        if message is None:
            return None, None
        if "rc" in message:
            return int(message["rc"]), message.get("error")
