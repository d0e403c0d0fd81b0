"""A partition's virtual terminal: libvirt's console stream joined to the caller's terminal.

Uses libvirt's own event loop (it must be registered before the connection is opened), as
``virsh console`` does. ``~.`` at the start of a line leaves, as on the HMC's ``mkvterm``.
"""

from __future__ import annotations

import contextlib
import os
import termios
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field

import libvirt

from lpmlab.errors import HypervisorError

ESCAPE = b"~."
DRAIN_QUIET_S = 1.0
DRAIN_MAX_S = 10.0


@dataclass
class EscapeFilter:
    """Finds ``~.`` typed at the start of a line; passes everything else through."""

    at_line_start: bool = True
    held: bytes = b""
    done: bool = False

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            ch = bytes([b])
            if self.held:
                self.held = b""
                if ch == b".":
                    self.done = True
                    return bytes(out)
                out += b"~"
                if ch == b"~":  # "~~" sends one tilde, as in ssh
                    self.at_line_start = False
                    continue
            if self.at_line_start and ch == b"~":
                self.held = ch
                continue
            out += ch
            self.at_line_start = ch in (b"\r", b"\n")
        return bytes(out)


@dataclass
class ConsoleSession:
    """One attachment to the console of ``name`` on the libvirt daemon at ``uri``."""

    uri: str
    name: str
    force: bool = False
    reason: str = ""
    _escape: EscapeFilter = field(default_factory=EscapeFilter)

    def run(self, stdin_fd: int = 0, stdout_fd: int = 1,
            on_open: Callable[[], None] | None = None) -> str:
        """Relay until ``~.``, end of input, the stream closing (``rmvterm``, the partition
        stopping or moving away); return why it ended."""
        with contextlib.suppress(libvirt.libvirtError):
            libvirt.virEventRegisterDefaultImpl()
        # stream errors at shutdown are reported through the reason, not printed
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        try:
            conn = libvirt.open(self.uri)
            dom = conn.lookupByName(self.name)
            stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
            flags = libvirt.VIR_DOMAIN_CONSOLE_FORCE if self.force \
                else libvirt.VIR_DOMAIN_CONSOLE_SAFE
            dom.openConsole(None, stream, flags)
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"cannot open the console of {self.name}: {exc}") from exc
        saved = None
        if os.isatty(stdin_fd):
            saved = termios.tcgetattr(stdin_fd)
            # raw before the banner, and without flushing: what a client types as soon as it
            # sees "Open Completed." must reach the partition, not the cooked tty's echo
            tty.setraw(stdin_fd, termios.TCSANOW)
        if on_open is not None:
            on_open()

        def from_stream(st: libvirt.virStream, _events: int, _opaque: object) -> None:
            try:
                data = st.recv(4096)
            except libvirt.libvirtError:
                self.reason = self.reason or "the console was closed"
                return
            if data == -2:  # would block
                return
            if not data:
                self.reason = self.reason or "the console was closed"
                closed.append(True)
                return
            last_output[0] = time.monotonic()
            os.write(stdout_fd, data)

        def from_user(_watch: int, fd: int, _events: int, _opaque: object) -> None:
            data = os.read(fd, 1024)
            if not data:
                self.reason = "end of input"
                return
            send = self._escape.feed(data)
            if send:
                with contextlib.suppress(libvirt.libvirtError):
                    stream.send(send)
            if self._escape.done:
                self.reason = "~."

        stream.eventAddCallback(libvirt.VIR_STREAM_EVENT_READABLE
                                | libvirt.VIR_STREAM_EVENT_ERROR
                                | libvirt.VIR_STREAM_EVENT_HANGUP, from_stream, None)
        watch = libvirt.virEventAddHandle(stdin_fd, libvirt.VIR_EVENT_HANDLE_READABLE,
                                          from_user, None)
        closed: list[bool] = []
        last_output = [time.monotonic()]
        tick = libvirt.virEventAddTimeout(100, lambda _t, _o: None, None)
        try:
            while not self.reason:
                libvirt.virEventRunDefaultImpl()
            if saved is None and not closed:
                # piped input: let the partition answer what was typed before leaving
                end = time.monotonic() + DRAIN_MAX_S
                while not closed and time.monotonic() < end \
                        and time.monotonic() - last_output[0] < DRAIN_QUIET_S:
                    libvirt.virEventRunDefaultImpl()
        finally:
            libvirt.virEventRemoveTimeout(tick)
            libvirt.virEventRemoveHandle(watch)
            with contextlib.suppress(libvirt.libvirtError):
                stream.eventRemoveCallback()
                stream.finish()
            if saved is not None:
                termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
            conn.close()
        return self.reason


def force_close(uri: str, name: str) -> None:
    """``rmvterm``: take the console over (which closes a held one), then let it go."""
    with contextlib.suppress(libvirt.libvirtError):
        libvirt.virEventRegisterDefaultImpl()
    try:
        conn = libvirt.open(uri)
        try:
            stream = conn.newStream(0)
            conn.lookupByName(name).openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
        finally:
            conn.close()
    except libvirt.libvirtError as exc:
        raise HypervisorError(f"cannot close the console of {name}: {exc}") from exc
