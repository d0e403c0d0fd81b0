"""RMC stand-in: an SSH connection (paramiko) from the controller to a partition's OS.

The controller sits in the lab's hub namespace only for the socket: the TCP connection is
opened inside that namespace, so no lab address ever appears in the host's own namespace.
"""

from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko

from lpmlab.errors import DeadlineError, FabricError, RmcError
from lpmlab.fabric import netns

# paramiko logs a socket closed under its reader thread (our own close) as an ERROR; with no
# handler anywhere, Python's last-resort handler printed it on the command's stderr
logging.getLogger("paramiko").addHandler(logging.NullHandler())


@dataclass
class CommandResult:
    rc: int
    stdout: str
    stderr: str


class RmcChannel:
    """One SSH session to a partition, reused for every command."""

    def __init__(self, partition: str, address: str, key_path: Path, *, ns: str,
                 host_key: str | None = None, user: str = "root") -> None:
        self.partition = partition
        self.address = address
        self.key_path = key_path
        self.ns = ns
        self.host_key = host_key
        self.user = user
        self._client: paramiko.SSHClient | None = None

    def connect(self, timeout: float = 5.0) -> None:
        try:
            sock = netns.connect_in(self.ns, self.address, 22, timeout=timeout)
        except FabricError as exc:
            raise RmcError(f"RMC connection to partition {self.partition} ({self.address}) "
                           f"is down: {exc.message}",
                           fix="check the partition is running (lssyscfg -r lpar) and "
                               "its console (lpmlab lab console)") from exc
        client = paramiko.SSHClient()
        if self.host_key:
            keytype, b64 = self.host_key.split()[:2]
            client.get_host_keys().add(self.address, keytype,
                                       paramiko.PKey.from_type_string(keytype,
                                                                      _b64(b64)))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        else:
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(self.address, username=self.user, key_filename=str(self.key_path),
                           sock=sock, timeout=timeout, banner_timeout=timeout,
                           auth_timeout=timeout, look_for_keys=False, allow_agent=False)
        except (paramiko.SSHException, OSError) as exc:
            sock.close()
            raise RmcError(f"SSH to partition {self.partition} ({self.address}) failed: {exc}",
                           fix="check the lab key in the partition's image "
                               "(lpmlab lab up rebuilds it)") from exc
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(5)
        self._client = client

    @property
    def client(self) -> paramiko.SSHClient:
        if self._client is None or not self._alive():
            self.connect()
        assert self._client is not None
        return self._client

    def _alive(self) -> bool:
        t = self._client.get_transport() if self._client else None
        return bool(t and t.is_active())

    def run(self, command: str | list[str], timeout: float = 30.0,
            check: bool = False) -> CommandResult:
        cmd = command if isinstance(command, str) else shlex.join(command)
        try:
            rc, out, err = self._exec(cmd, timeout)
        except (paramiko.SSHException, OSError, TimeoutError) as exc:
            self.close()
            raise RmcError(f"command on partition {self.partition} failed: {cmd}: {exc}",
                           fix="check the RMC connection (lssyscfg -r lpar -F name,rmc_state)"
                           ) from exc
        if check and rc != 0:
            raise RmcError(f"command on partition {self.partition} exited {rc}: {cmd}",
                           evidence=(err or out)[-2000:])
        return CommandResult(rc, out, err)

    def _exec(self, cmd: str, timeout: float) -> tuple[int, str, str]:
        """Run on a bare channel: paramiko's file objects can deadlock when garbage-collected
        in its transport thread (ChannelStdinFile.__del__ against Transport.close)."""
        transport = self.client.get_transport()
        if transport is None:  # the session closed since it was checked
            raise RmcError(f"the RMC connection to partition {self.partition} closed",
                           fix="check the RMC connection (lssyscfg -r lpar -F name,rmc_state)")
        chan = transport.open_session(timeout=timeout)
        try:
            chan.settimeout(timeout)
            chan.exec_command(cmd)
            chan.shutdown_write()  # stdin is /dev/null for every command we run
            out, err = bytearray(), bytearray()
            deadline = time.monotonic() + timeout
            while not (chan.exit_status_ready() and not chan.recv_ready()
                       and not chan.recv_stderr_ready()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no exit within {timeout:.0f} s")
                if chan.recv_ready():
                    out += chan.recv(65536)
                elif chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                else:
                    chan.status_event.wait(0.05)
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            return (chan.recv_exit_status(), out.decode(errors="replace"),
                    err.decode(errors="replace"))
        finally:
            chan.close()

    def wait_ready(self, deadline_s: float, evidence: callable | None = None) -> float:
        """Wait until the partition answers SSH; return seconds waited."""
        start = time.monotonic()
        last: Exception | None = None
        while time.monotonic() - start < deadline_s:
            try:
                self.connect(timeout=3.0)
                self.run("true", timeout=5, check=True)
                return time.monotonic() - start
            except RmcError as exc:
                last = exc
                self.close()
                time.sleep(0.5)
        raise DeadlineError(
            f"partition {self.partition} did not answer SSH on {self.address} within "
            f"{deadline_s:.0f} s (last error: {last})",
            fix="look at the console log below; 'lpmlab lab down && lpmlab lab up' rebuilds",
            evidence=evidence() if evidence else None)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _b64(s: str) -> bytes:
    import base64

    return base64.b64decode(s)
