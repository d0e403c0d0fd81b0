"""lssyscfg: list managed systems and partitions in HMC record format."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lpmlab.cli.common import HmcArgumentParser, emit_records, require_filtered, run
from lpmlab.errors import UsageError
from lpmlab.hmc import records


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="lssyscfg", description="List managed systems and partitions.")
    p.add_argument("-r", dest="resource", required=True, choices=["sys", "lpar", "prof"],
                   help="sys: managed systems; lpar: partitions of -m; prof: their profiles")
    p.add_argument("-m", dest="system", help="managed system name")
    p.add_argument("-F", dest="fields", help="attribute names, e.g. name,state or name:state")
    p.add_argument("--header", action="store_true", help="print the -F names first")
    p.add_argument("--filter", dest="filter", help='e.g. "lpar_names=lpar1,lpar2"')
    p.add_argument("--json", action="store_true", help="JSON list of records")
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
            frames = [hmc.require_frame(args.system)] if args.system else hmc.frames()
            recs = [hmc.sys_record(fp) for fp in frames]
            allowed = ["names"]
        elif args.resource == "prof":
            from lpmlab.hmc.profiles import prof_records

            recs = prof_records(hmc, args.system)
            allowed = ["lpar_names", "lpar_ids", "profile_names"]
        else:
            recs = hmc.lpar_records(args.system)
            allowed = ["lpar_names", "lpar_ids"]
    finally:
        hmc.close()
    if args.filter:
        flt = records.parse_filter(args.filter, allowed)
        if args.resource != "sys":
            require_filtered(recs, flt, args.system)
        recs = records.select(recs, flt)
    emit_records(recs, args.fields, args.header, args.json)
    return 0


def cli() -> None:
    sys.exit(run(main))
