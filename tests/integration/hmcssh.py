"""Reaching the lab's HMCs the way clients do: ``sshpass`` + ``ssh``, paramiko."""

from __future__ import annotations

import json
import subprocess
import time

import paramiko

from .conftest import cli

SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]


def hmcs() -> dict[str, dict]:
    """Every HMC of the running lab as ``lab status --json`` shows it."""
    return json.loads(cli("lpmlab", "lab", "status", "--json", check=True).stdout)["hmcs"]


def ssh(hmc: dict, command: str, *, user: str | None = None, password: str | None = None,
        extra: tuple[str, ...] = (), timeout: float = 300) -> subprocess.CompletedProcess:
    """``sshpass -p PW ssh USER@HMC 'CMD'`` (how ibm.power_hmc runs every HMC command)."""
    argv = ["sshpass", "-p", password or hmc["password"], "ssh", *SSH_OPTS, *extra,
            f"{user or hmc['user']}@{hmc['address']}", command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def paramiko_client(hmc: dict, **kw: object) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    args = {"username": hmc["user"], "timeout": 30, "allow_agent": False,
            "look_for_keys": False}
    if "pkey" not in kw:
        args["password"] = hmc["password"]
    client.connect(hmc["address"], **{**args, **kw})
    return client


def read_until(chan: paramiko.Channel, marker: bytes, timeout: float = 60) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    chan.settimeout(1.0)
    while marker not in buf:
        assert time.monotonic() < deadline, f"no {marker!r} in {buf[-600:]!r}"
        try:
            buf += chan.recv(65536)
        except TimeoutError:
            continue
    return buf
