"""Another HMC, reached over SSH the way HMCs reach each other: as its HMC user, with this
HMC's own key (``mkauthkeys`` put it there), from this HMC's namespace.

Remote migration (``migrlpar --ip``) and ``mkauthkeys --ip`` use it. What one HMC asks the
other runs through the other's restricted shell and command server like any command; the
HMC-to-HMC questions are the ``migrpeer`` command (lpmlab.hmc.remote), answering in JSON.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import shlex
import socket
from dataclasses import dataclass
from typing import Any

import paramiko

from lpmlab import codes
from lpmlab.errors import FabricError, LpmlabError, UsageError
from lpmlab.fabric import netns
from lpmlab.fabric import plan as P
from lpmlab.topology import HMC_USER, LAB_RANGE, Topology

SSH_PORT = 22


@dataclass
class RemoteResult:
    rc: int
    stdout: str
    stderr: str


def trust_error(address: str, user: str) -> LpmlabError:
    """HSCL3653 with the HMC's own words."""
    return codes.error("HSCL3653", obj=address, user=user)


def resolve(topology: Topology, given: str) -> str:
    """The address ``--ip`` names: a lab HMC's name stands for its address; an address must
    lie in the lab's range (lpmlab sends nothing anywhere else)."""
    for c in topology.hmcs:
        if given == c.name:
            return str(c.address)
    try:
        addr = ipaddress.IPv4Address(given)
    except ValueError:
        raise UsageError(f"--ip {given}: neither an IPv4 address nor an HMC of the lab",
                         fix="give the remote HMC's address or its name in the topology "
                             f"({', '.join(c.name for c in topology.hmcs)})") from None
    if addr not in LAB_RANGE:
        raise UsageError(f"--ip {given} is outside the lab's range {LAB_RANGE}",
                         fix="give the address of an HMC of the lab")
    return str(addr)


class RemoteHmc:
    """An SSH session to the HMC at ``address`` as ``user``."""

    def __init__(self, local: P.ConsolePlan, address: str, user: str = HMC_USER,
                 timeout: float = 10.0) -> None:
        self.local = local
        self.address = address
        self.user = user
        self.timeout = timeout
        self._transport: paramiko.Transport | None = None

    # -- connecting ----------------------------------------------------------------------
    def connect(self, password: str | None = None) -> RemoteHmc:
        """Log on with this HMC's key (``password=None``) or with the user's password;
        HSCL3653 when the key is not trusted there."""
        if self._transport is not None and self._transport.is_active():
            return self
        sock = self._socket()
        t = paramiko.Transport(sock)
        try:
            t.start_client(timeout=self.timeout)
            self._check_host_key(t)
            if password is None:
                key = paramiko.Ed25519Key.from_private_key_file(str(self.local.key))
                t.auth_publickey(self.user, key)
            else:
                t.auth_password(self.user, password)
        except paramiko.AuthenticationException as exc:
            t.close()
            if password is None:
                raise trust_error(self.address, self.user) from exc
            raise codes.error("HSCLL470", obj=self.address, user=self.user) from exc
        except (paramiko.SSHException, OSError) as exc:
            t.close()
            raise codes.error("HSCLL471", obj=self.address, detail=f"SSH failed: {exc}") \
                from exc
        self._transport = t
        return self

    def _socket(self) -> socket.socket:
        try:
            return netns.connect_in(self.local.ns, self.address, SSH_PORT, timeout=self.timeout)
        except FabricError as exc:
            raise codes.error("HSCLL471", obj=self.address,
                              detail=f"not from HMC {self.local.name} ({exc.message})") from exc

    def _check_host_key(self, t: paramiko.Transport) -> None:
        """The first connection records the remote HMC's host key; a later change is
        refused, as ssh's StrictHostKeyChecking=accept-new does."""
        known = paramiko.HostKeys()
        path = self.local.dir / "known_hosts"
        with contextlib.suppress(OSError):
            known.load(str(path))
        key = t.get_remote_server_key()
        have = known.lookup(self.address)
        if have is not None and key.get_name() in have:
            if have[key.get_name()] != key:
                raise codes.error("HSCLL479", obj=self.address, path=path)
            return
        known.add(self.address, key.get_name(), key)
        known.save(str(path))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def __enter__(self) -> RemoteHmc:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- running commands ----------------------------------------------------------------
    def run(self, argv: list[str], timeout: float = 300.0) -> RemoteResult:
        """One HMC command line on the remote HMC (through its restricted shell)."""
        t = self.connect()._transport
        if t is None:  # closed by another thread since connect()
            raise codes.error("HSCLL471", obj=self.address, detail="the session was closed")
        chan = t.open_session(timeout=self.timeout)
        try:
            chan.settimeout(timeout)
            chan.exec_command(shlex.join(argv))
            out, err = chan.makefile("rb").read(), chan.makefile_stderr("rb").read()
            rc = chan.recv_exit_status()
        except (OSError, paramiko.SSHException) as exc:
            raise codes.error("HSCLL471", obj=self.address,
                              detail=f"{argv[0]} did not answer: {exc}") from exc
        finally:
            chan.close()
        return RemoteResult(rc, out.decode(errors="replace"), err.decode(errors="replace"))

    def call(self, op: str, payload: dict[str, Any] | None = None,
             timeout: float = 120.0) -> Any:
        """``migrpeer OP`` on the remote HMC: its JSON answer, or its error raised here with
        its own code, message and fix."""
        arg = base64.urlsafe_b64encode(json.dumps(payload or {}).encode()).decode()
        res = self.run(["migrpeer", op, arg], timeout=timeout)
        if res.rc != 0:
            raise remote_error(self.address, res)
        try:
            return json.loads(res.stdout)
        except ValueError as exc:
            raise codes.error("HSCLL471", obj=self.address,
                              detail=f"its answer to migrpeer {op} is not JSON",
                              evidence=res.stdout[-2000:]) from exc


def remote_error(address: str, res: RemoteResult) -> LpmlabError:
    """The remote HMC's error (``CODE message`` / ``Fix: ...`` on its stderr) as an error
    of this side, saying where it came from."""
    lines = res.stderr.strip().splitlines()
    first = lines[0] if lines else f"exit status {res.rc}"
    code, _, message = first.partition(" ")
    fix = next((ln[5:] for ln in lines if ln.startswith("Fix: ")), None)
    if code not in codes.REGISTRY or not message:
        return codes.error("HSCLL472", obj=address, detail=first)
    # the remote HMC's own code, words and fix; its class (exit code) is the registry's
    err = codes.error("HSCLL472", obj=address, detail=message)
    return codes.spec(code).error(err.message, fix=fix, code=code)
