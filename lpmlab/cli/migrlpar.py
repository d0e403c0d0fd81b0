"""migrlpar: validate or perform partition migrations (HMC syntax; silent on success)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lpmlab.cli.common import HmcArgumentParser, run
from lpmlab.errors import UsageError


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="migrlpar", description="Migrate partitions between managed "
                          "systems (Live Partition Mobility).")
    p.add_argument("-o", dest="op", required=True, choices=["m", "v"],
                   help="m: validate and migrate; v: validate only")
    p.add_argument("-m", dest="system", required=True, help="source managed system")
    p.add_argument("-t", dest="target", help="destination managed system")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("-p", dest="names", help="partition name")
    who.add_argument("--id", dest="ids", help="partition ID")
    p.add_argument("-v", dest="verbose", action="store_true",
                   help="print details and warnings even on success")
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    if not args.target:
        raise UsageError(f"-t is required with -o {args.op}",
                         fix="name the destination managed system with -t")
    from lpmlab.hmc.migration import LiveMigration
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    name = args.names
    if args.ids:
        by_id = {r["lpar_id"]: r["name"] for r in hmc.lpar_records(args.system)}
        try:
            name = by_id[int(args.ids)]
        except (KeyError, ValueError):
            raise UsageError(f"no partition with ID {args.ids} on {args.system}",
                             code="HSCL8012",
                             fix=f"list them with 'lssyscfg -r lpar -m {args.system} "
                                 "-F name,lpar_id'") from None
    if "," in name:
        raise UsageError("several partitions in one command are not supported yet",
                         fix="run one migrlpar per partition")
    job = LiveMigration(hmc, name, args.system, args.target)
    if args.op == "v":
        job.validate()
        return 0
    result = job.run()
    if args.verbose:
        j = result.stats
        print(f"{name}: {args.system} -> {args.target} in {result.wall_s:.2f} s, downtime "
              f"{j.get('downtime', '?')} ms, {j.get('memory_iteration', '?')} iterations, "
              f"{j.get('data_processed', 0)} bytes", file=sys.stderr)
    return 0


def cli() -> None:
    sys.exit(run(main))
