"""The HMC's REST API server: HTTPS (uvicorn) on the HMC's address, ports 12443 (pypowervm's)
and 443 (IBM's Ansible collection has no port option), with the certificate the lab's CA made.

Started by ``lpmlab lab up`` in the HMC's namespace, beside its sshd and command server:
``python -m lpmlab.rest.server --lab-dir DIR --hmc NAME --address A --port 12443 --port 443
--cert CERT --key KEY --user hscroot --password-file FILE --command-socket SOCK``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from lpmlab import log
from lpmlab.rest.app import Api, create_app
from lpmlab.rest.jobs import JobBoard, command_server_runner
from lpmlab.rest.sessions import SessionStore

PORTS = (12443, 443)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lpmlab.rest.server", description=__doc__)
    p.add_argument("--lab-dir", type=Path, required=True)
    p.add_argument("--hmc", required=True)
    p.add_argument("--address", required=True, help="the HMC's address to listen on")
    p.add_argument("--port", type=int, action="append", help="repeatable; 12443 and 443")
    p.add_argument("--cert", type=Path, required=True)
    p.add_argument("--key", type=Path, required=True)
    p.add_argument("--user", default="hscroot")
    p.add_argument("--password-file", type=Path, required=True)
    p.add_argument("--command-socket", type=Path, required=True)
    return p


def listen(address: str, ports: Sequence[int]) -> list[socket.socket]:
    out = []
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, port))
        s.listen(128)
        s.set_inheritable(True)
        out.append(s)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    log.configure(verbose=True)  # the daemon's log file is where its story is told
    api = Api(args.hmc, args.lab_dir,
              SessionStore(args.hmc, args.user, args.password_file),
              JobBoard(args.hmc, command_server_runner(str(args.command_socket))))
    config = uvicorn.Config(create_app(api), ssl_certfile=str(args.cert),
                            ssl_keyfile=str(args.key), log_level="info", access_log=True,
                            timeout_keep_alive=30, server_header=False)
    server = uvicorn.Server(config)
    asyncio.run(server.serve(sockets=listen(args.address, args.port or PORTS)))


if __name__ == "__main__":
    main()
