"""The MSP relay: real relay processes on 127.0.0.1, driven through MspClient."""

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import lpmlab
from lpmlab.errors import FabricError
from lpmlab.fabric.msp_client import MspClient

REPO = Path(lpmlab.__file__).resolve().parent.parent
LOCAL = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((LOCAL, 0))
        return s.getsockname()[1]


class Sink:
    """A TCP server that reads one connection to EOF and keeps the digest and size."""

    def __init__(self):
        self.sock = socket.create_server((LOCAL, 0))
        self.port = self.sock.getsockname()[1]
        self.digest = None
        self.size = 0
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        conn, _ = self.sock.accept()
        h = hashlib.sha256()
        with conn:
            while chunk := conn.recv(1 << 20):
                h.update(chunk)
                self.size += len(chunk)
        self.digest = h.hexdigest()
        self.done.set()
        self.sock.close()


@pytest.fixture
def start_relay(tmp_path):
    procs = []

    def start(name):
        control = tmp_path / f"{name}.sock"
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.Popen([sys.executable, "-m", "lpmlab.fabric.msp_relay", "--name", name,
                                 "--control", str(control)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(proc)
        client = MspClient(name, control, timeout=5)
        deadline = time.monotonic() + 10
        while True:
            try:
                assert client.stats()["msp"] == name
                return client
            except FabricError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"relay {name} did not start: "
                                         f"{proc.stderr.read().decode()}") from None
                time.sleep(0.02)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def wait_for(predicate, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_two_chained_relays_carry_a_stream_intact(start_relay):
    a, b = start_relay("vios1"), start_relay("vios2")
    sink = Sink()
    pa, pb = free_port(), free_port()
    b.forward("m1", (LOCAL, pb), (LOCAL, sink.port))
    a.forward("m1", (LOCAL, pa), (LOCAL, pb))

    size = 20 * 1024 * 1024 + 12345
    payload = os.urandom(size)
    with socket.create_connection((LOCAL, pa), timeout=20) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b""  # the sink closed: EOF travels back through both relays
    assert sink.done.wait(20)
    assert sink.size == size
    assert sink.digest == hashlib.sha256(payload).hexdigest()

    for relay in (a, b):
        st = relay.close("m1")
        assert st["bytes_forward"] == size
        assert st["bytes_back"] == 0
        assert st["connections"] == 1
        assert st["errors"] == []
        # closed forwards stay visible, and count in the relay's total
        stats = relay.stats()
        assert "m1" not in stats["forwards"]
        assert stats["closed"]["m1"]["bytes_forward"] == size
        assert stats["total_bytes"] == size


def test_closed_forward_frees_its_port(start_relay):
    relay = start_relay("vios1")
    port = free_port()
    relay.forward("m7", (LOCAL, port), (LOCAL, 9))
    relay.close("m7")
    # the next migration on the same port range must be able to use the port again
    relay.forward("m8", (LOCAL, port), (LOCAL, 9))


def test_bytes_back_are_counted(start_relay):
    relay = start_relay("vios1")
    server = socket.create_server((LOCAL, 0))
    port = free_port()
    relay.forward("m2", (LOCAL, port), (LOCAL, server.getsockname()[1]))
    with socket.create_connection((LOCAL, port), timeout=5) as c:
        up, _ = server.accept()
        with up:
            c.sendall(b"ping")
            assert up.recv(4) == b"ping"
            up.sendall(b"pong!")
            assert c.recv(5) == b"pong!"
            wait_for(lambda: relay.stats()["forwards"]["m2"]["bytes_back"] == 5, "bytes_back")
            assert relay.stats()["forwards"]["m2"]["active"] == 1
    server.close()
    st = relay.close("m2")
    assert (st["bytes_forward"], st["bytes_back"]) == (4, 5)


def test_refused_upstream_is_recorded_as_an_error(start_relay):
    relay = start_relay("vios1")
    dead, port = free_port(), free_port()
    relay.forward("m3", (LOCAL, port), (LOCAL, dead))
    with socket.create_connection((LOCAL, port), timeout=5) as c:
        c.settimeout(15)
        assert c.recv(1) == b""  # the relay hangs up on the client
    wait_for(lambda: relay.stats()["forwards"]["m3"]["errors"], "the error")
    st = relay.close("m3")
    assert len(st["errors"]) == 1
    assert f"connect {LOCAL}:{dead}" in st["errors"][0]
    assert st["connections"] == 0 and st["bytes_forward"] == 0


def test_duplicate_forward_id_is_idempotent(start_relay):
    relay = start_relay("vios1")
    port, other = free_port(), free_port()
    first = relay.forward("m4", (LOCAL, port), (LOCAL, 9))
    again = relay.forward("m4", (LOCAL, other), (LOCAL, 10))
    assert again == first
    assert again["listen"] == [LOCAL, port]
    assert list(relay.stats()["forwards"]) == ["m4"]
    # the second request bound nothing
    with socket.create_server((LOCAL, other)):
        pass


def test_busy_port_is_refused(start_relay):
    relay = start_relay("vios1")
    with socket.create_server((LOCAL, 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(FabricError) as exc:
            relay.forward("m5", (LOCAL, port), (LOCAL, 9))
    assert "vios1" in exc.value.message
    assert f"bind {LOCAL}:{port}" in exc.value.message
    assert relay.stats()["forwards"] == {}


def test_close_of_an_unknown_id_is_harmless(start_relay):
    relay = start_relay("vios1")
    assert relay.close("never") is None


def test_bad_requests_are_refused(start_relay):
    relay = start_relay("vios1")
    with pytest.raises(FabricError) as exc:
        relay.call(op="explode")
    assert "explode" in exc.value.message
    with pytest.raises(FabricError) as exc:
        relay.call(op="forward", id="m6")  # no listen/to
    assert "bad request" in exc.value.message
    assert relay.stats()["ok"]  # still serving


def test_relay_exits_cleanly_on_sigterm(tmp_path):
    control = tmp_path / "r.sock"
    proc = subprocess.Popen([sys.executable, "-m", "lpmlab.fabric.msp_relay", "--name", "v",
                             "--control", str(control)], env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stderr=subprocess.PIPE)
    try:
        line = proc.stderr.readline().decode()
        assert str(control) in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_missing_control_socket_is_a_fabric_error_with_a_fix(tmp_path):
    client = MspClient("vios9", tmp_path / "missing.sock", timeout=1)
    with pytest.raises(FabricError) as exc:
        client.stats()
    err = exc.value
    assert "vios9" in err.message and "missing.sock" in err.message
    assert "lpmlab lab up" in err.fix
