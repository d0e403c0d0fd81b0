"""lssyscfg: list managed systems and partitions in HMC record format."""

from __future__ import annotations

from collections.abc import Sequence

from lpmlab.cli.common import (
    HmcArgumentParser,
    add_listing_options,
    emit_listing,
    finish,
    missing_on,
    run,
)
from lpmlab.errors import UsageError


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="lssyscfg", description="List managed systems and partitions.")
    p.add_argument("-r", dest="resource", required=True, choices=["sys", "lpar", "prof"],
                   help="sys: managed systems; lpar: partitions of -m; prof: their profiles")
    p.add_argument("-m", dest="system", help="managed system name")
    add_listing_options(p, filter_help='e.g. "lpar_names=lpar1,lpar2"')
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    from lpmlab.hmc.system import Hmc

    if args.resource in ("lpar", "prof") and not args.system:
        raise UsageError(f"lssyscfg -r {args.resource} needs -m managed-system",
                         fix="add -m with a name from 'lssyscfg -r sys -F name'")
    hmc = Hmc.open()
    try:
        if args.system:
            args.system = hmc.frame_name(args.system)
        if args.resource == "sys":
            # lists every frame with its state (No Connection too): nothing to refuse
            frames = [hmc.require_frame(args.system)] if args.system else hmc.frames()
            recs = [hmc.sys_record(fp) for fp in frames]
            allowed = ["names"]
        else:
            # a frame the HMC cannot see into is refused (HSCLL430), never listed empty
            hmc.require_connected(args.system)
            if args.resource == "prof":
                from lpmlab.hmc.profiles import prof_records

                recs = prof_records(hmc, args.system)
                allowed = ["lpar_names", "lpar_ids", "profile_names"]
            else:
                recs = hmc.lpar_records(args.system)
                allowed = ["lpar_names", "lpar_ids"]
        # inside the HMC's session: a missing partition's HSCL8012 looks at the other frames
        emit_listing(recs, args, allowed, None if args.resource == "sys" else args.system,
                     missing_on(hmc, args.system) if args.system else None)
    finally:
        hmc.close()
    return 0


def cli() -> None:
    finish(run(main))
