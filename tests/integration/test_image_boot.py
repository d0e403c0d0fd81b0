"""Boot the partition image under real QEMU (pseries, TCG) and drive it through its console.

No libvirt here: a raw qemu-system-ppc64 with the console on a unix socket, a 64 MiB raw disk
on a spapr-vscsi controller, and a spapr-vlan NIC on a hub that leads nowhere (the guest
can reach no network at all).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lpmlab.images import combine, dropbear_ed25519_key, ensure_partition_image, write_overlay

pytestmark = pytest.mark.integration

QEMU = "qemu-system-ppc64"
READY_DEADLINE_S = 180  # ≈11 s on an idle 2-core host under TCG; generous for busy CI
HOSTNAME = "lpmtest"


class Console:
    """The guest's hvc0, through QEMU's unix-socket chardev."""

    def __init__(self, path: Path, log: Path, deadline_s: float = 30) -> None:
        self.log = log
        self.buf = b""
        end = time.monotonic() + deadline_s
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(0.2)

    def tail(self, n: int = 40) -> str:
        text = self.log.read_bytes().decode(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-n:])

    def expect(self, pattern: bytes, timeout: float, what: str) -> re.Match[bytes]:
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            if time.monotonic() > end:
                pytest.fail(f"no {what} on the console within {timeout:.0f} s; "
                            f"console tail:\n{self.tail()}")
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                pytest.fail(f"console closed while waiting for {what}; tail:\n{self.tail()}")
            self.buf += chunk

    def run(self, command: str, timeout: float = 60) -> tuple[int, str]:
        """Run a shell command; (exit status, output). The echoed marker has ``$?``, never
        digits, so only the real output matches."""
        tag = f"__LPMRC{time.monotonic_ns()}_"
        self.buf = b""
        self.sock.sendall(f'{command}; echo "{tag}$?_"\n'.encode())
        m = self.expect(re.escape(tag.encode()) + rb"(\d+)_", timeout, f"end of `{command}`")
        out = self.buf_before(m)
        return int(m.group(1)), out

    def buf_before(self, m: re.Match[bytes]) -> str:
        return m.string[:m.start()].decode(errors="replace")

    def close(self) -> None:
        self.sock.close()


def _keys() -> tuple[bytes, bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    client = ed25519.Ed25519PrivateKey.generate()
    authorized = client.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                  serialization.PublicFormat.OpenSSH)
    host = ed25519.Ed25519PrivateKey.generate()
    host_pub = host.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                              serialization.PublicFormat.OpenSSH)
    return authorized + b" lpmlab-test\n", dropbear_ed25519_key(host), host_pub


@pytest.fixture
def guest(tmp_path: Path) -> Iterator[tuple[Console, bytes, float]]:
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} is not installed (Debian: qemu-system-ppc)")
    image = ensure_partition_image()
    authorized, host_key, host_pub = _keys()
    initrd = tmp_path / "initrd.gz"
    combine(image.initrd, write_overlay({
        "/root/.ssh/authorized_keys": (authorized, 0o600),
        "/etc/dropbear/dropbear_ed25519_host_key": (host_key, 0o600),
    }), initrd)
    disk = tmp_path / "disk.img"
    with disk.open("wb") as f:
        f.truncate(64 * 1024 * 1024)
    sock, log = tmp_path / "console.sock", tmp_path / "console.log"
    cmd = [
        QEMU, "-M", "pseries", "-m", "512", "-display", "none", "-nodefaults",
        "-serial", "none", "-monitor", "none",
        "-kernel", str(image.kernel), "-initrd", str(initrd),
        "-append", f"console=hvc0 lpm.ip=198.18.0.10/24 lpm.hostname={HOSTNAME}",
        "-chardev", f"socket,id=con,path={sock},server=on,wait=off,logfile={log}",
        "-device", "spapr-vty,chardev=con",
        "-drive", f"file={disk},format=raw,if=none,id=d0",
        "-device", "spapr-vscsi,id=scsi0",
        "-device", "scsi-hd,drive=d0,bus=scsi0.0",
        # a NIC on a hub with no other port: ibmveth gets an eth0, nothing is reachable
        "-netdev", "hubport,id=n0,hubid=0",
        "-device", "spapr-vlan,netdev=n0",
    ]
    qemu_err = tmp_path / "qemu.stderr"
    start = time.monotonic()
    with qemu_err.open("wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    console = None
    try:
        try:
            console = Console(sock, log)
        except OSError:
            proc.kill()
            pytest.fail(f"QEMU console never appeared; QEMU said:\n{qemu_err.read_text()}")
        m = console.expect(rb"LPMLAB-READY (\S+)\r?\n", READY_DEADLINE_S, "LPMLAB-READY")
        assert m.group(1).decode() == HOSTNAME
        boot_s = time.monotonic() - start
        console.expect(rb"# ", 30, "the console shell prompt")
        rc, _ = console.run("stty -echo")  # keep command echo out of the output
        assert rc == 0
        yield console, host_pub, boot_s
    finally:
        if console is not None:
            console.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_partition_image_boots_and_runs_the_workloads(
        guest: tuple[Console, bytes, float]) -> None:
    console, host_pub, boot_s = guest
    print(f"boot to LPMLAB-READY: {boot_s:.1f} s")

    # SSH is listening with the host key from the overlay; authorized_keys is private
    rc, out = console.run("grep -c ':0016 [0-9A-F]*:0000 0A' /proc/net/tcp /proc/net/tcp6")
    assert ":1" in out, out
    rc, out = console.run("dropbearkey -y -f /etc/dropbear/dropbear_ed25519_host_key")
    assert rc == 0 and host_pub.split()[1].decode() in out, out
    rc, out = console.run("stat -c '%a %n' /root /root/.ssh /root/.ssh/authorized_keys")
    assert "700 /root\n" in out.replace("\r", "") and "600 /root/.ssh/authorized_keys" in out
    rc, out = console.run("ip -o -4 addr show dev eth0")
    assert "198.18.0.10/24" in out, out

    rc, out = console.run("lpm-disk write /dev/sda --count 50", timeout=120)
    assert rc == 0, out
    rc, out = console.run("lpm-disk verify /dev/sda", timeout=120)
    assert rc == 0, out
    assert re.search(r"records=50 first=0 last=49 gaps=0 bad=0", out), out

    rc, out = console.run("lpm-dirty --rate 50 --wss 32 --daemon")
    assert rc == 0, out
    rc, out = console.run("sleep 2; cat /run/lpm-dirty.stat /run/lpm-dirty.pid")
    m = re.search(r"rate_target=50 wss=32 achieved_mibps=([0-9.]+) pages=(\d+)", out)
    assert m, out
    assert float(m.group(1)) > 0 and int(m.group(2)) > 0, out
