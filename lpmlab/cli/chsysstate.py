"""chsysstate -r lpar: activate a partition (with a profile) or shut it down (HMC syntax)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lpmlab import codes
from lpmlab.cli.common import (
    HmcArgumentParser,
    add_json_option,
    emit_json,
    finish,
    run,
    whole_number,
)
from lpmlab.errors import UsageError


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="chsysstate", description="Change the state of a partition.")
    p.add_argument("-m", dest="system", required=True, help="managed system")
    p.add_argument("-r", dest="resource", required=True, choices=["lpar"])
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("-n", dest="name", help="partition name")
    who.add_argument("--id", dest="lpar_id", type=whole_number, help="partition ID")
    p.add_argument("-o", dest="op", required=True, choices=["on", "shutdown", "osshutdown"],
                   help="on: activate; shutdown: power button (--immed: at once); "
                        "osshutdown: ask the OS")
    p.add_argument("-f", dest="profile", help="profile to activate with (-o on)")
    p.add_argument("--immed", action="store_true", help="shut down at once (-o shutdown)")
    p.add_argument("--restart", action="store_true",
                   help="activate the partition again after the shutdown (-o shutdown)")
    add_json_option(p, "what was done (the profile activated, how it was shut down)")
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    if args.profile and args.op != "on":
        raise UsageError("-f is only valid with -o on", fix="drop -f")
    if args.immed and args.op != "shutdown":
        raise UsageError("--immed is only valid with -o shutdown", fix="drop --immed")
    if args.restart and args.op not in ("shutdown", "osshutdown"):
        raise UsageError("--restart is only valid with -o shutdown or -o osshutdown",
                         fix="drop --restart")
    from lpmlab.fabric.lab import Lab
    from lpmlab.hmc import lifecycle
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        args.system = hmc.frame_name(args.system)
        name = args.name
        if name is None:
            by_id = {r["lpar_id"]: r["name"] for r in hmc.lpar_records(args.system, rmc=False)}
            if args.lpar_id not in by_id:
                raise codes.error("HSCL8012", obj=f"with ID {args.lpar_id}", sys=args.system)
            name = by_id[args.lpar_id]
        done: dict[str, Any] = {"managed_system": args.system, "partition": name,
                                "operation": args.op}
        if args.op == "on":
            done["profile"] = lifecycle.activate(hmc, args.system, name, args.profile)
        else:
            done["shutdown"] = lifecycle.shutdown(
                hmc, args.system, name, immediate=args.immed,
                os_shutdown=args.op == "osshutdown",
                evidence=lambda: Lab(hmc.plan).console_tail(name))
            if args.restart:
                # activated again as it was last activated (its current profile)
                done["profile"] = lifecycle.activate(hmc, args.system, name, None)
    finally:
        hmc.close()
    if args.json:
        emit_json(done)
    return 0


def cli() -> None:
    finish(run(main))
