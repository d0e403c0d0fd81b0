"""The controller's side of the MSP relay protocol (JSON lines over a unix socket)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from lpmlab.errors import FabricError


class MspClient:
    def __init__(self, name: str, control: Path, timeout: float = 5.0) -> None:
        self.name = name
        self.control = control
        self.timeout = timeout

    def call(self, **req: Any) -> dict[str, Any]:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(self.timeout)
                s.connect(str(self.control))
                s.sendall(json.dumps(req).encode() + b"\n")
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
        except OSError as exc:
            raise FabricError(f"MSP {self.name} does not answer on {self.control}: {exc}",
                              fix="check the VIOS with 'lpmlab lab status'; "
                                  "'lpmlab lab up' restarts a dead relay") from exc
        reply = json.loads(buf or b"{}")
        if not reply.get("ok"):
            raise FabricError(f"MSP {self.name} refused {req.get('op')}: {reply.get('error')}")
        return reply

    def forward(self, fid: str, listen: tuple[str, int], to: tuple[str, int]) -> dict[str, Any]:
        return self.call(op="forward", id=fid, listen=list(listen), to=list(to))["forward"]

    def close(self, fid: str) -> dict[str, Any] | None:
        return self.call(op="close", id=fid).get("forward")

    def stats(self) -> dict[str, Any]:
        return self.call(op="stats")
