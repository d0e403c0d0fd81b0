"""``lpmlab fault``: inject a named fault now or at a point of a migration, list what is in
force, clear it. Thin functions over lpmlab.hmc.faults."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from lpmlab.cli.common import emit, unknown_partition
from lpmlab.fabric import faults as F
from lpmlab.hmc import faults


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fault", help="inject a fault into the lab (now or at a point of a "
                       "migration), list faults, clear them",
                       description="lpmlab fault NAME [RATE] [--when POINT] | "
                                   "lpmlab fault list | lpmlab fault clear [ID|NAME ...]")
    p.add_argument("name", metavar="NAME|list|clear",
                   help=f"a fault ({', '.join(faults.KINDS)}), 'list' or 'clear'")
    p.add_argument("args", nargs="*", metavar="ARG",
                   help="mover-link-slow: RATE in MiB/s; clear: fault IDs or names "
                        "(default: all)")
    p.add_argument("--when", default="now",
                   help="now (default), transferring, pass:N, switchover, "
                        "phase:check|pre|post: armed for the next migration")
    p.add_argument("-p", "--partition", help="the partition (default: the one migrating, "
                   "else the lab's only one)")
    p.add_argument("--vios", help="the VIOS a link, MSP or storage fault hits (default: "
                   "the migration's source MSP / storage VIOS)")
    p.add_argument("-m", "--frame", help="the frame a frame-down fault hits")
    p.add_argument("--side", choices=["source", "dest"], default="source",
                   help="msp-path-broken: which MSP (default source)")
    p.add_argument("--for", dest="outage_s", type=float, default=faults.DEFAULT_OUTAGE_S,
                   metavar="SECONDS", help="vios-storage-down: how long the target stays "
                   f"down (default {faults.DEFAULT_OUTAGE_S:g}; 0 = until 'fault clear')")
    p.add_argument("--json", action="store_true", help="the fault entries as JSON on stdout")


def fault(args: argparse.Namespace) -> int:
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        if args.name == "list":
            return _list(hmc, args)
        if args.name == "clear":
            return _show(faults.clear(hmc, list(args.args)), args)
        if len(args.args) > 1:
            faults.check_request(faults.FaultRequest(args.name, " ".join(args.args)))
        req = faults.FaultRequest(args.name, args.args[0] if args.args else None,
                                  args.when, args.partition, args.vios, args.frame,
                                  args.side, args.outage_s)
        if req.partition is not None:
            try:
                hmc.topology.partition(req.partition)
            except KeyError:
                raise unknown_partition(req.partition) from None
        entry = faults.inject_now(hmc, req) if req.when == "now" else faults.arm(hmc, req)
        return _show([entry], args)
    finally:
        hmc.close()


def _show(entries: list[F.FaultEntry], args: argparse.Namespace) -> int:
    if args.json:
        emit(json.dumps([asdict(e) for e in entries], indent=2))
        return 0
    for e in entries:
        emit(render(e))
    return 0


def render(e: F.FaultEntry) -> str:
    target = ",".join(f"{k}={v}" for k, v in e.target.items()) or "-"
    line = f"{e.id} {e.name}{' ' + e.arg if e.arg else ''} [{e.state}] when={e.when} " \
           f"target={target}: {e.detail}"
    if e.acked_before is not None:
        line += f"; disk records acknowledged before it: {e.acked_before}"
    if e.cleared:
        line += f"; cleared: {e.cleared}"
    return line


def _list(hmc: object, args: argparse.Namespace) -> int:
    from lpmlab.hmc.system import Hmc

    assert isinstance(hmc, Hmc)
    active = F.Ledger(hmc.plan.dir).active()
    if args.json:
        emit(json.dumps({"kinds": [asdict(k) for k in faults.KINDS.values()],
                         "active": [asdict(e) for e in active]}, indent=2))
        return 0
    lines = ["Faults (lpmlab fault NAME [--when POINT]):"]
    for k in faults.KINDS.values():
        lines.append(f"  {k.name + (' ' + k.arg if k.arg else ''):<22} {k.summary}"
                     + ("" if k.lasting else " (one-shot)"))
    lines.append("Armed or in force:" if active else "Armed or in force: none")
    lines += [f"  {render(e)}" for e in active]
    emit("\n".join(lines))
    return 0
