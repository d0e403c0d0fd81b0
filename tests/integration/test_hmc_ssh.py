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
from .hmcssh import hmcs, paramiko_client, read_until, ssh

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def hmc1(lab):
    """hmc1 as ``lab status --json`` describes it (address, user, password)."""
    h = hmcs()["hmc1"]
    assert h["sshd"] == "running" and h["command_server"] == "running", h
    return h


def local(*argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                          timeout=120, env=env)


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
    "lssyscfg -m 9009-42A*LPM0001 -r lpar -F name,uuid,rmc_ipaddr",
    "lssyscfg -r lpar -m sys1 --filter lpar_names=nosuch",
    "lsrefcode -r lpar -m sys1",
    "lsrefcode -r lpar -m sys1 --filter lpar_names=lpar1 -F refcode",
    "lsrefcode -r sys -m sys1",
    "lshmc -V",
    "lshmc -v",
    "lshmc -n -F hostname:ipaddr",
    "lssysconn -r all",
    "lshwres -r mem -m sys1 --level sys",
    "lshwres -r proc -m sys1 --level lpar --filter lpar_names=lpar1",
    "lshwres -r virtualio --rsubtype scsi -m sys1 --level lpar",
    "lshwres -r virtualio --rsubtype fc -m sys1 --level lpar",
    "diagrmc -m sys1 --ip 198.18.0.101 -p lpar1 --autocorrect",
    "diagrmc -m sys1 --ip 198.18.0.99 -p lpar1",
    "mkauthkeys",
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
        seen = read_until(chan, b"hscroot@hmc1:~> ")
        assert seen.endswith(b"hscroot@hmc1:~> ")
        chan.send(b"lssyscfg -r sys -F name\n")
        seen = read_until(chan, b"hscroot@hmc1:~> ")
        assert b"sys1\r\nsys2\r\n" in seen
        chan.send(b"lssyscfg -r lpar -m nosuch; echo Rc=$?\n")
        assert b"Rc=4\r\n" in read_until(chan, b"hscroot@hmc1:~> ")
        chan.send(b"PS1=\\[ssh-expect\\]#\n")
        assert read_until(chan, b"[ssh-expect]#").endswith(b"\n[ssh-expect]#")
        chan.send(b"exit 3\n")
        deadline = time.monotonic() + 30
        while not chan.exit_status_ready() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert chan.recv_exit_status() == 3
    finally:
        client.close()


def test_a_wrong_password_and_root_are_refused(hmc1):
    assert ssh(hmc1, "lssyscfg -r sys", password="wrong-password").returncode == 5  # sshpass
    root = ssh(hmc1, "lssyscfg -r sys", user="root")
    assert root.returncode == 5 and root.stdout == ""


def test_no_forwarding_no_sftp_and_the_users_sockets_reach_nothing(hmc1):
    client = paramiko_client(hmc1)
    try:
        with pytest.raises(paramiko.ChannelException):  # ssh -L to a frame's libvirtd
            client.get_transport().open_channel("direct-tcpip", ("198.18.0.11", 16514),
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
                            "exec 3<>/dev/tcp/198.18.0.11/16514"],
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


# -- the clients' own command lines, read the way their code reads the answers ---------------
def lines(hmc: dict, command: str) -> list[str]:
    out = ssh(hmc, command)
    assert out.returncode == 0, (command, out.stderr)
    return out.stdout.splitlines()


def test_op_test_lifecycle_and_mobility_reads(hmc1):
    """common/OpTestHMC.py: the last line of -F state / -F refcode; names as whole lines;
    '"Not' as the second word of a space-delimited line; diagrmc's RMC line."""
    assert lines(hmc1, "lssyscfg -m sys1 -r lpar --filter lpar_names=lpar1 -F state")[-1] \
        == "Running"
    ref = lines(hmc1, "lsrefcode -m sys1 -r lpar --filter lpar_names=lpar1 -F refcode")[-1]
    assert "Linux" in ref
    assert "lpar1" in lines(hmc1, "lssyscfg -r lpar -m sys1 -F name")
    assert lines(hmc1, "lssyscfg -m sys1 -r sys -F state")[-1] == "Operating"
    assert int(lines(hmc1, "lssyscfg -m sys1 -r lpar --filter lpar_names=vios1 -F msp")[0]) \
        == 1
    rmc = lines(hmc1, "diagrmc -m sys1 --ip 198.18.0.101 -p lpar1 --autocorrect")
    assert any("198.18.0.101 has RMC connection." in ln for ln in rmc)
    assert ssh(hmc1, "rmvterm -m sys1 -p lpar1").returncode == 0  # nothing open: still 0


def test_op_test_migrates_there_and_back_by_exit_status(hmc1):
    """migrate_lpar: -o v then -o m, success by exit status alone; afterwards the partition
    is listed only on the destination, in a state that is not Migrating."""
    for src, dst in (("sys1", "sys2"), ("sys2", "sys1")):
        for mode in ("v", "m"):
            out = ssh(hmc1, f"migrlpar -o {mode} -m {src} -t {dst} -p lpar1 ")
            assert out.returncode == 0, out.stderr
            assert (out.stdout, out.stderr) == ("", "")  # silent off a terminal
        assert "lpar1" in lines(hmc1, f"lssyscfg -r lpar -m {dst} -F name")
        assert "lpar1" not in lines(hmc1, f"lssyscfg -r lpar -m {src} -F name")
        state = lines(hmc1, f"lssyscfg -m {dst} -r lpar --filter lpar_names=lpar1 -F state")
        assert state[0] not in ("Migrating - Running", "Migrating - Not Activated")


def test_ansible_collection_command_lines(hmc1):
    """ibm.power_hmc's hmc_cli_client: /bin/sh -c "sshpass -p  'PW' ssh 'USER'@IP -o ...
    'CMD'", success by exit status; parseCSV of the default records; HSCL8012 for a
    missing partition."""
    def collection(cmd: str) -> subprocess.CompletedProcess:
        line = (f"sshpass -p  '{hmc1['password']}' ssh '{hmc1['user']}'@{hmc1['address']} "
                f" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                f"-o LogLevel=ERROR '{cmd}'")
        return subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True,
                              timeout=300)

    def parse_csv(line: str) -> dict[str, str]:
        import csv

        return {k.upper(): v for k, _, v in (f.partition("=")
                                              for f in next(csv.reader([line])))}

    out = collection("lssyscfg -r sys -m sys1")
    assert out.returncode == 0 and parse_csv(out.stdout.strip())["STATE"] == "Operating"
    out = collection('lsrefcode -r lpar -m sys1 --filter "lpar_names=lpar1"')
    assert out.returncode == 0 and "Linux" in parse_csv(out.stdout.strip())["REFCODE"]
    out = collection('lssyscfg -r lpar -m sys1 --filter "lpar_names=lpar1"')
    rec = parse_csv(out.stdout.strip())
    assert rec["RMC_STATE"] == "active" and rec["NAME"] == "lpar1"
    out = collection('lssyscfg -r lpar -m sys1 --filter "lpar_names=nosuch"')
    assert out.returncode != 0 and "HSCL8012" in out.stdout + out.stderr
    ids = list(map(int, collection("lssyscfg -r lpar -m sys1 -F lpar_id").stdout.split()))
    assert ids == sorted(ids) and 2 in ids
    mem = parse_csv(collection("lshwres -r mem -m sys1 --level sys").stdout.strip())
    assert mem["MEM_REGION_SIZE"] == "256"
    assert collection("lssysconn -r all -F type_model_serial_num").stdout.split() == \
        ["9009-42A*LPM0001", "9009-42A*LPM0002"]
    out = collection("migrlpar -o m -m sys1 -t 9009-42A*LPM0002 -p lpar1 -w 5")
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    out = collection("migrlpar -o m -m sys2 -t sys1 --id 2")
    assert out.returncode == 0, out.stderr


def test_avocado_session_bootstrap_and_its_spaced_lines(hmc1):
    """avocado.utils.ssh.Session: the ControlMaster starts with ``ssh -T -n host ''`` (a
    shell on no terminal that must exit 0); lpm.py sends runs of spaces."""
    boot = ssh(hmc1, "", extra=("-T", "-n"))
    assert boot.returncode == 0, boot.stderr
    assert "sys1" in lines(hmc1, "lssyscfg -r sys -F name")
    spaced = "lssyscfg -m sys1 -r lpar --filter lpar_names=lpar1              -F lpar_id"
    assert lines(hmc1, spaced) == ["2"]


def test_op_test_interactive_fallback(hmc1):
    """OpTestUtil.set_PS1 and try_command on the interactive shell: the setup lines are
    answered with a prompt, PS1 becomes exactly '[ssh-expect]#', and a command's status
    is read with echo $?."""
    client = paramiko_client(hmc1)
    try:
        chan = client.invoke_shell(term="xterm", width=1000, height=1000)
        read_until(chan, b"~>")
        chan.send(b"which bash && exec bash --norc --noprofile\n")
        read_until(chan, b"hscroot@hmc1:~> ")
        for line in (b"PS1=\\[ssh-expect\\]#",
                     b"which stty && stty cols 300;which stty && stty rows 30",
                     b"export LANG=C", b""):
            chan.send(line + b"\n")
            read_until(chan, b"[ssh-expect]#")
        chan.send(b"\n")
        assert read_until(chan, b"[ssh-expect]#").endswith(b"[ssh-expect]#")
        chan.send(b"lssyscfg -m sys1 -r lpar --filter lpar_names=lpar1 -F state\n")
        out = read_until(chan, b"[ssh-expect]#")
        assert b"Running" in out
        chan.send(b"echo $?\n")
        out = read_until(chan, b"[ssh-expect]#").replace(b"\r", b"").split(b"\n")
        assert int(out[-2]) == 0
        chan.send(b"lssyscfg -r lpar -m nosuch\n")
        read_until(chan, b"[ssh-expect]#")
        chan.send(b"echo $?\n")
        out = read_until(chan, b"[ssh-expect]#").replace(b"\r", b"").split(b"\n")
        assert int(out[-2]) == 4
    finally:
        client.close()


def test_mkvterm_over_ssh_opens_the_console_and_tilde_dot_leaves(hmc1):
    client = paramiko_client(hmc1)
    try:
        chan = client.invoke_shell(term="xterm", width=200, height=50)
        read_until(chan, b"hscroot@hmc1:~> ")
        chan.send(b"mkvterm -m sys1 -p lpar1\n")
        read_until(chan, b"Open Completed.")
        chan.send(b"\r")
        chan.send(b"echo vterm-$((6*7))\r")
        read_until(chan, b"vterm-42")
        chan.send(b"\r~.")
        read_until(chan, b"hscroot@hmc1:~> ")
    finally:
        client.close()


def test_keys_added_with_mkauthkeys_log_in_and_removed_ones_do_not(hmc1, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tester@lab", "-f",
                    str(tmp_path / "k")], check=True)
    pub = (tmp_path / "k.pub").read_text().strip()
    key = paramiko.Ed25519Key.from_private_key_file(str(tmp_path / "k"))
    assert ssh(hmc1, f'mkauthkeys -a "{pub}"').returncode == 0
    client = paramiko_client(hmc1, pkey=key)
    try:
        _i, out, _e = client.exec_command("lssyscfg -r sys -F name")
        assert out.channel.recv_exit_status() == 0 and b"sys1" in out.read()
    finally:
        client.close()
    assert ssh(hmc1, "mkauthkeys -r tester@lab").returncode == 0
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_client(hmc1, pkey=key)
    bad = ssh(hmc1, 'mkauthkeys -a "ssh-ed25519 AAAAbroken"')
    assert bad.returncode == 2 and "HSCLL475" in bad.stderr


@pytest.mark.parametrize("command,message", [
    ("ls /", "rbash: ls: command not found"),
    ("lssyscfg -r sys > /tmp/x", "cannot redirect output"),
    ("lssyscfg -r $(id -u)", "command substitution is not allowed"),
    ("lssyscfg -r sys; /bin/sh", "cannot specify `/' in command names"),
    ("lssyscfg -r sys | sed -n 1p /etc/shadow", "cannot read files"),
    ("PATH=/tmp lssyscfg -r sys", "no variable reaches a command"),
])
def test_the_shell_refuses_over_ssh_too(hmc1, command, message):
    out = ssh(hmc1, command)
    assert out.returncode != 0 and out.stdout == "" and message in out.stderr


def test_a_migration_goes_on_when_the_ssh_session_drops(hmc1):
    """As on the HMC: the client (an SSH session) going away does not stop a migration."""
    from .hmcssh import SSH_OPTS

    cmd = "migrlpar -o m -m sys1 -t sys2 -p lpar1 --mover-bandwidth 30"
    client = subprocess.Popen(["sshpass", "-p", hmc1["password"], "ssh", *SSH_OPTS,
                               f"hscroot@{hmc1['address']}", cmd],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = lines(hmc1, "lslparmigr -r lpar -m sys1 --filter lpar_names=lpar1 "
                            "-F migration_state")
        if state == ["Migration In Progress"]:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the migration never started")
    client.kill()  # the SSH client dies: sshd closes the session, the shell hangs up
    client.wait()
    deadline = time.monotonic() + 120
    while "lpar1" not in lines(hmc1, "lssyscfg -r lpar -m sys2 -F name") \
            or lines(hmc1, "lslparmigr -r lpar -m sys2 --filter lpar_names=lpar1 "
                           "-F migration_state") != ["Not Migrating"]:
        assert time.monotonic() < deadline, "the migration did not finish"
        time.sleep(0.5)
    assert "lpar1" not in lines(hmc1, "lssyscfg -r lpar -m sys1 -F name")
    back = ssh(hmc1, "migrlpar -o m -m sys2 -t sys1 -p lpar1")
    assert back.returncode == 0, back.stderr
