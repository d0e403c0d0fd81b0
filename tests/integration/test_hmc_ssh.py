"""The HMC on the network: its real sshd, the restricted shell, the command server.

Everything goes through the real OpenSSH server of hmc1, the way clients reach an HMC: the
``ssh`` client under ``sshpass`` (IBM's Ansible collection), paramiko's ``exec_command``
(op-test) and an interactive paramiko shell on a pty.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import paramiko
import pytest

from .conftest import BIN, cli

pytestmark = pytest.mark.integration

SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]


@pytest.fixture(scope="module")
def hmc1(lab):
    """hmc1 as ``lab status --json`` describes it (address, user, password)."""
    import json

    st = json.loads(cli("lpmlab", "lab", "status", "--json", check=True).stdout)
    h = st["hmcs"]["hmc1"]
    assert h["sshd"] == "running" and h["command_server"] == "running", h
    return h


def ssh(hmc: dict, command: str, *, user: str | None = None, password: str | None = None,
        extra: tuple[str, ...] = (), timeout: float = 120) -> subprocess.CompletedProcess:
    """``sshpass -p PW ssh USER@HMC 'CMD'`` (how ibm.power_hmc runs every HMC command)."""
    argv = ["sshpass", "-p", password or hmc["password"], "ssh", *SSH_OPTS, *extra,
            f"{user or hmc['user']}@{hmc['address']}", command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def local(*argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                          timeout=120, env=env)


def paramiko_client(hmc: dict, **kw: object) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(hmc["address"], username=hmc["user"], password=hmc["password"],
                   timeout=30, allow_agent=False, look_for_keys=False, **kw)
    return client


# The same command, locally and over SSH: bytes and exit status identical.
SAME = [
    "lssyscfg -r sys",
    "lssyscfg -r sys -F name,state,type_model,serial_num",
    "lssyscfg -m sys1 -r sys -F state",
    "lssyscfg -r lpar -m sys1 -F name,lpar_id,lpar_env,state,curr_lpar_proc_compat_mode,msp",
    "lssyscfg -r lpar -m sys1 -F name state",
    "lssyscfg -r prof -m sys1",
    "lslparmigr -r sys -m sys1",
    "lslparmigr -r lpar -m sys1",
    "lslparmigr -r msp -m sys1 -t sys2",
    "lslparmigr -r mc",
    "migrlpar -o v -m sys1 -t sys2 -p lpar1",
    "lssyscfg -r lpar -m sys3",
    "migrlpar -o m -m sys1",
    "migrlpar -o v -m sys1 -t sys2 -p nosuch",
    "lssyscfg --help",
]


@pytest.mark.parametrize("command", SAME)
def test_every_command_over_ssh_is_the_local_one(hmc1, command):
    import shlex

    here = local(*shlex.split(command))
    there = ssh(hmc1, command)
    assert (there.returncode, there.stdout, there.stderr) == \
           (here.returncode, here.stdout, here.stderr), command


def test_exit_status_and_streams_come_back_separately(hmc1):
    ok = ssh(hmc1, "lssyscfg -r sys -F name")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "sys1\nsys2\n", "")
    bad = ssh(hmc1, "lssyscfg -r lpar -m nosuch")
    assert bad.returncode == 4 and bad.stdout == "" and bad.stderr.startswith("HSCL8011")


def test_the_clients_pipeline_reads_the_vios_name(hmc1):
    out = ssh(hmc1, "lssyscfg -r lpar -m sys1 -F name,lpar_env|grep vio|tail -1|cut -d, -f 1")
    assert (out.returncode, out.stdout) == (0, "vios1\n")


def test_paramiko_exec_command_as_op_test_does(hmc1):
    client = paramiko_client(hmc1)
    try:
        _stdin, stdout, stderr = client.exec_command(
            "lssyscfg -m sys1 -r lpar --filter lpar_names=lpar1 -F state", timeout=60)
        assert stdout.channel.recv_exit_status() == 0
        assert stdout.read().decode().splitlines() == ["Running"]
        assert stderr.read() == b""
    finally:
        client.close()


def test_interactive_login_gives_the_prompt_and_exit_leaves(hmc1):
    client = paramiko_client(hmc1)
    try:
        chan = client.invoke_shell(term="xterm", width=200, height=50)
        chan.settimeout(30)
        seen = _read_until(chan, b"hscroot@hmc1:~> ")
        assert seen.endswith(b"hscroot@hmc1:~> ")
        chan.send(b"lssyscfg -r sys -F name\n")
        seen = _read_until(chan, b"hscroot@hmc1:~> ")
        assert b"sys1\r\nsys2\r\n" in seen
        chan.send(b"lssyscfg -r lpar -m nosuch; echo Rc=$?\n")
        assert b"Rc=4\r\n" in _read_until(chan, b"hscroot@hmc1:~> ")
        chan.send(b"PS1=\\[ssh-expect\\]#\n")
        assert _read_until(chan, b"[ssh-expect]#").endswith(b"\n[ssh-expect]#")
        chan.send(b"exit 3\n")
        deadline = time.monotonic() + 30
        while not chan.exit_status_ready() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert chan.recv_exit_status() == 3
    finally:
        client.close()


def _read_until(chan: paramiko.Channel, marker: bytes, timeout: float = 30) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while marker not in buf:
        assert time.monotonic() < deadline, f"no {marker!r} in {buf[-400:]!r}"
        buf += chan.recv(65536)
    return buf


def test_a_wrong_password_and_root_are_refused(hmc1):
    assert ssh(hmc1, "lssyscfg -r sys", password="wrong-password").returncode == 5  # sshpass
    root = ssh(hmc1, "lssyscfg -r sys", user="root")
    assert root.returncode == 5 and root.stdout == ""


def test_no_forwarding_no_sftp_and_the_users_sockets_reach_nothing(hmc1):
    client = paramiko_client(hmc1)
    try:
        with pytest.raises(paramiko.ChannelException):  # ssh -L to a frame's libvirtd
            client.get_transport().open_channel("direct-tcpip", ("198.18.0.11", 16509),
                                                ("127.0.0.1", 0))
        with pytest.raises(paramiko.SSHException):
            client.open_sftp()
    finally:
        client.close()
    # a socket opened by the HMC user's uid in the HMC namespace is rejected
    uid = int(Path("/var/lib/lpmlab/lab/hmcs/hmc1/accounts/passwd").read_text()
              .split("hscroot:x:")[1].split(":")[0])
    probe = subprocess.run(["ip", "netns", "exec", "lpm-hmc1", "setpriv", f"--reuid={uid}",
                            f"--regid={uid}", "--clear-groups", "bash", "-c",
                            "exec 3<>/dev/tcp/198.18.0.11/16509"],
                           capture_output=True, text=True, timeout=30)
    assert probe.returncode != 0


def test_sshd_listens_only_inside_the_lab_and_the_host_stays_untouched(hmc1):
    listening = subprocess.run(["ip", "netns", "exec", "lpm-hmc1", "ss", "-Hltn"],
                               capture_output=True, text=True).stdout.split()
    assert f"{hmc1['address']}:22" in listening and "0.0.0.0:22" not in listening
    assert "hscroot" not in Path("/etc/passwd").read_text()
    route = subprocess.run(["ip", "route", "get", hmc1["address"]], capture_output=True,
                           text=True).stdout
    assert "dev lpmh0" in route


def test_lab_status_says_how_to_log_in(hmc1):
    out = cli("lpmlab", "lab", "status", check=True).stdout
    assert f"ssh hscroot@{hmc1['address']}" in out and hmc1["password"] in out
