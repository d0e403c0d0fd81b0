"""diagrmc: diagnose the RMC connection between the HMC and a partition (HMC syntax).

``diagrmc -m S --ip IP {-p L | --id N} [--autocorrect] [-v]`` checks that the partition's
OS answers on its RMC channel (in the lab: its SSH server runs a command) and says
``IP has RMC connection.`` — the line clients wait for before they migrate. Without ``-m``
every running partition of this HMC's systems is checked. ``--autocorrect`` gives an OS that
is still starting time to answer (30 s) instead of failing at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from lpmlab.cli.common import (
    HmcArgumentParser,
    add_json_option,
    emit_json,
    finish,
    run,
    whole_number,
)
from lpmlab.errors import LpmlabError, RmcError, UsageError

AUTOCORRECT_S = 30.0


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="diagrmc", description="Diagnose RMC connections.")
    p.add_argument("-m", dest="system", help="managed system")
    p.add_argument("--ip", dest="ip", help="the partition's IP address")
    who = p.add_mutually_exclusive_group()
    who.add_argument("-p", dest="name", help="partition name")
    who.add_argument("--id", dest="lpar_id", type=whole_number, help="partition ID")
    p.add_argument("--autocorrect", action="store_true",
                   help="wait for an OS that is still starting (up to 30 s)")
    p.add_argument("-v", dest="verbose", action="store_true", help="say what was checked")
    add_json_option(p, "each partition's RMC state (on failure: in the error's findings)")
    return p


def check(hmc: Any, name: str, ip: str, deadline_s: float) -> tuple[bool, str]:
    """(answers, what was seen) for one partition's RMC channel."""
    t_end = time.monotonic() + deadline_s
    while True:
        ch = hmc.rmc(name)
        try:
            ch.connect(timeout=3)
            res = ch.run("true", timeout=5)
            if res.rc == 0:
                return True, f"its OS answered at {ch.address}"
            why = f"a command in the partition exited {res.rc}"
        except LpmlabError as exc:
            why = exc.message
        finally:
            ch.close()
        if time.monotonic() >= t_end:
            return False, why
        time.sleep(1.0)


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    if (args.name or args.lpar_id is not None or args.ip) and not args.system:
        raise UsageError("diagrmc -p/--id/--ip needs -m managed-system",
                         fix="write diagrmc -m SYS --ip IP -p PARTITION")
    if args.system and not (args.name or args.lpar_id is not None):
        raise UsageError("diagrmc -m needs the partition (-p or --id)",
                         fix="write diagrmc -m SYS --ip IP -p PARTITION")
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    failed: list[str] = []
    checked: list[dict[str, Any]] = []
    try:
        targets: list[tuple[str, str, str]] = []  # (frame, partition, ip)
        if args.system:
            frame = hmc.frame_name(args.system)
            recs = [r for r in hmc.lpar_records(frame, rmc=False)
                    if r["lpar_env"] != "vioserver"]
            rec = next((r for r in recs if r["name"] == args.name
                        or r["lpar_id"] == args.lpar_id), None)
            if rec is None:
                # says where it is instead, or that it may be on a frame in No Connection
                raise hmc.not_found(args.name or "", frame,
                                    lpar_id=None if args.name else str(args.lpar_id))
            address = rec["rmc_ipaddr"]
            if args.ip and args.ip != address:
                raise RmcError(f"{args.ip} is not an address of partition {rec['name']}: its "
                               f"RMC connection uses {address}.",
                               fix=f"write --ip {address}")
            targets.append((frame, rec["name"], args.ip or address))
        else:
            for fp in hmc.frames():
                for r in hmc.lpar_records(fp.frame.name, rmc=False):
                    if r["lpar_env"] != "vioserver" and r["state"].endswith("Running"):
                        targets.append((fp.frame.name, r["name"], r["rmc_ipaddr"]))
        for frame, name, ip in targets:
            ok, seen = check(hmc, name, ip, AUTOCORRECT_S if args.autocorrect else 0.0)
            checked.append({"lpar_name": name, "managed_system": frame, "ipaddr": ip,
                            "rmc_connection": ok, "seen": seen})
            if not args.json:  # --json: one document at the end
                if args.verbose:
                    print(f"Partition {name} on {frame}: {seen}.")
                print(f"{ip} has RMC connection." if ok else f"{ip} has no RMC connection.")
            if not ok:
                failed.append(f"{name} on {frame} ({seen})")
    finally:
        hmc.close()
    if failed:
        raise RmcError("No RMC connection to partition " + "; ".join(failed) + ".",
                       fix="check that its OS runs: 'lsrefcode -r lpar -m SYS' and "
                           "'mkvterm -m SYS -p NAME'; retry with --autocorrect while it boots",
                       findings=checked)
    if args.json:
        emit_json(checked)
    return 0


def cli() -> None:
    finish(run(main))
