"""The mover service partition's relay: carries migration streams between VIOS namespaces.

One relay process runs in each MSP's namespace. The controller asks it over a unix socket
(JSON lines) to forward a port for one migration; the stream then really flows
source frame -> source MSP -> mover network -> destination MSP -> destination frame,
so choosing, losing or throttling an MSP has a real effect. Data moves with splice(2)
through a 1 MiB pipe (small buffers halve throughput here), and bytes are counted per forward.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

F_SETPIPE_SZ = 1031
CHUNK = 1 << 20


@dataclass
class Forward:
    """One forwarded port: a listening socket and the connections it carried."""

    fid: str
    listen: tuple[str, int]
    to: tuple[str, int]
    sock: socket.socket
    bytes_forward: int = 0  # towards the destination (the migration stream)
    bytes_back: int = 0
    connections: int = 0
    active: int = 0
    errors: list[str] = field(default_factory=list)
    peers: list[socket.socket] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.time)

    def stats(self) -> dict[str, Any]:
        return {"id": self.fid, "listen": list(self.listen), "to": list(self.to),
                "bytes_forward": self.bytes_forward, "bytes_back": self.bytes_back,
                "connections": self.connections, "active": self.active,
                "errors": self.errors[-5:]}


def pump(src: socket.socket, dst: socket.socket, fwd: Forward, forward: bool) -> None:
    """Move bytes src -> dst with splice until EOF; count them on ``fwd``."""
    r, w = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(w, F_SETPIPE_SZ, CHUNK)
    flags = os.SPLICE_F_MOVE | os.SPLICE_F_MORE
    try:
        while True:
            n = os.splice(src.fileno(), w, CHUNK, flags=flags)
            if n == 0:
                break
            left = n
            while left:
                left -= os.splice(r, dst.fileno(), left, flags=flags)
            with fwd.lock:
                if forward:
                    fwd.bytes_forward += n
                else:
                    fwd.bytes_back += n
    except OSError as exc:
        with fwd.lock:
            fwd.errors.append(f"{'forward' if forward else 'back'}: {exc}")
    finally:
        os.close(r)
        os.close(w)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def serve_connection(client: socket.socket, fwd: Forward) -> None:
    try:
        upstream = socket.create_connection(fwd.to, timeout=10)
        upstream.settimeout(None)
    except OSError as exc:
        with fwd.lock:
            fwd.errors.append(f"connect {fwd.to[0]}:{fwd.to[1]}: {exc}")
        client.close()
        return
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with fwd.lock:
        fwd.connections += 1
        fwd.active += 1
        fwd.peers += [client, upstream]
    back = threading.Thread(target=pump, args=(upstream, client, fwd, False), daemon=True)
    back.start()
    pump(client, upstream, fwd, True)
    back.join()
    client.close()
    upstream.close()
    with fwd.lock:
        fwd.active -= 1


def accept_loop(fwd: Forward) -> None:
    while True:
        try:
            client, _ = fwd.sock.accept()
        except OSError:
            return  # listener closed
        threading.Thread(target=serve_connection, args=(client, fwd), daemon=True).start()


class Relay:
    def __init__(self, name: str) -> None:
        self.name = name
        self.forwards: dict[str, Forward] = {}
        self.closed: dict[str, dict[str, Any]] = {}
        self.total_bytes = 0
        self.lock = threading.Lock()

    def forward(self, fid: str, listen: list[Any], to: list[Any]) -> dict[str, Any]:
        with self.lock:
            if fid in self.forwards:
                return {"ok": True, "forward": self.forwards[fid].stats()}
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((str(listen[0]), int(listen[1])))
            except OSError as exc:
                sock.close()
                return {"ok": False, "error": f"bind {listen[0]}:{listen[1]}: {exc}"}
            sock.listen(8)
            fwd = Forward(fid, (str(listen[0]), int(listen[1])), (str(to[0]), int(to[1])), sock)
            self.forwards[fid] = fwd
        threading.Thread(target=accept_loop, args=(fwd,), daemon=True).start()
        return {"ok": True, "forward": fwd.stats()}

    def close(self, fid: str) -> dict[str, Any]:
        with self.lock:
            fwd = self.forwards.pop(fid, None)
        if fwd is None:
            return {"ok": True, "forward": self.closed.get(fid)}
        # shutdown() wakes the thread blocked in accept(); close() alone leaves the port bound.
        with contextlib.suppress(OSError):
            fwd.sock.shutdown(socket.SHUT_RDWR)
        fwd.sock.close()
        with fwd.lock:
            for s in fwd.peers:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            stats = fwd.stats()
        self.closed[fid] = stats
        self.total_bytes += stats["bytes_forward"] + stats["bytes_back"]
        return {"ok": True, "forward": stats}

    def stats(self) -> dict[str, Any]:
        with self.lock:
            live = {f: fwd.stats() for f, fwd in self.forwards.items()}
        total = self.total_bytes + sum(s["bytes_forward"] + s["bytes_back"] for s in live.values())
        return {"ok": True, "msp": self.name, "forwards": live, "closed": self.closed,
                "total_bytes": total, "pid": os.getpid()}

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "forward":
            return self.forward(str(req["id"]), req["listen"], req["to"])
        if op == "close":
            return self.close(str(req["id"]))
        if op in ("stats", "ping"):
            return self.stats()
        return {"ok": False, "error": f"unknown op {op!r}"}


def serve(name: str, control: str) -> None:
    relay = Relay(name)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                try:
                    reply = relay.handle(json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    reply = {"ok": False, "error": f"bad request: {exc}"}
                self.wfile.write(json.dumps(reply).encode() + b"\n")
                self.wfile.flush()

    with contextlib.suppress(FileNotFoundError):
        os.unlink(control)
    server = socketserver.ThreadingUnixStreamServer(control, Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: (server.server_close(), os._exit(0)))
    print(f"msp relay {name} listening on {control}", file=sys.stderr, flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", required=True, help="the MSP (VIOS) name")
    ap.add_argument("--control", required=True, help="unix socket path for the controller")
    args = ap.parse_args(argv)
    serve(args.name, args.control)


if __name__ == "__main__":
    main()
