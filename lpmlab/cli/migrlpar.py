"""migrlpar: validate, perform, stop or recover partition migrations (HMC syntax).

Silent on success; exit 0 success, 100 partial success (several partitions, some failed),
another non-zero code on failure, as the HMC.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lpmlab.cli.common import HmcArgumentParser, run
from lpmlab.errors import LpmlabError, UsageError
from lpmlab.hmc.attributes import (
    MIGRATE_ATTRIBUTES,
    MigrationAttributes,
    parse_attributes,
    read_attribute_file,
)

if TYPE_CHECKING:
    from lpmlab.hmc.system import Hmc

PARTIAL = 100


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="migrlpar", description="Migrate partitions between managed "
                          "systems (Live Partition Mobility).")
    p.add_argument("-o", dest="op", required=True, choices=["m", "v", "s", "r"],
                   help="m: validate and migrate; v: validate; s: stop; r: recover")
    p.add_argument("-m", dest="system", required=True, help="source managed system")
    p.add_argument("-t", dest="target", help="destination managed system (-o m, -o v)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("-p", dest="names", help="partition name(s), comma separated")
    who.add_argument("--id", dest="ids", help="partition ID(s), comma separated")
    who.add_argument("--all", action="store_true", help="every partition (-o m, -o s)")
    attrs = p.add_mutually_exclusive_group()
    attrs.add_argument("-i", dest="attrs", help='attributes, e.g. "dest_msp_name=vios2,'
                       'source_msp_name=vios1" (quote a list value: "\\"a=1,2\\"")')
    attrs.add_argument("-f", dest="attr_file", help="file holding the -i attributes")
    p.add_argument("--force", action="store_true", help="recover even when the migration "
                   "looks alive or a managed system does not answer (-o r only)")
    p.add_argument("-v", dest="verbose", action="store_true",
                   help="print details and warnings even on success")
    return p


def check_syntax(args: argparse.Namespace) -> None:
    op: str = args.op
    if op in ("m", "v") and not args.target:
        raise UsageError(f"-t is required with -o {op}",
                         fix="name the destination managed system with -t")
    if op in ("s", "r") and args.target:
        raise UsageError(f"-t is not valid with -o {op}", fix="drop -t")
    if args.force and op != "r":
        raise UsageError("--force is only valid with -o r", fix="drop --force")
    if args.all and op not in ("m", "s"):
        raise UsageError(f"--all is not valid with -o {op}", fix="name the partition with -p")
    many = "," in (args.names or args.ids or "")
    if many and op not in ("m", "v"):
        raise UsageError(f"-o {op} takes one partition", fix="name one partition with -p")


@dataclass
class Outcome:
    name: str
    error: LpmlabError | None = None
    detail: str = ""


def resolve_names(hmc: Hmc, args: argparse.Namespace) -> list[str]:
    system = args.system
    recs = [r for r in hmc.lpar_records(system)
            if r["lpar_env"] != "vioserver"]
    if args.all:
        return [r["name"] for r in recs]
    if args.ids:
        by_id = {str(r["lpar_id"]): r["name"] for r in recs}
        out = []
        for i in args.ids.split(","):
            if i not in by_id:
                raise UsageError(f"no partition with ID {i} on {system}", code="HSCL8012",
                                 fix=f"list them with 'lssyscfg -r lpar -m {system} "
                                     "-F name,lpar_id'")
            out.append(by_id[i])
        return out
    return [n for n in args.names.split(",") if n]


def one(args: argparse.Namespace, name: str) -> Outcome:
    """One partition's operation, with its own HMC connections (threads share nothing)."""
    from lpmlab.hmc import migration, recovery
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        op: str = args.op
        if op == "s":
            migration.stop(hmc, name, args.system)
            return Outcome(name)
        if op == "r":
            rep = recovery.recover(hmc, name, args.system,
                                   force=args.force)
            return Outcome(name, detail="; ".join(rep.actions) or "nothing to recover")
        job = migration.LiveMigration(hmc, name, args.system, args.target,
                                      args.parsed_attrs)
        if op == "v":
            report, _ = job.validate()
            return Outcome(name, detail=report.render())
        res = job.run()
        j = res.stats
        return Outcome(name, detail=f"{args.system} -> {args.target} in "
                       f"{res.wall_s:.2f} s, downtime {j.get('downtime', '?')} ms, "
                       f"{j.get('memory_iteration', '?')} iterations, "
                       f"{j.get('data_processed', 0)} bytes")
    except LpmlabError as exc:
        return Outcome(name, exc)
    finally:
        hmc.close()


def parse_attrs(args: argparse.Namespace) -> MigrationAttributes:
    text = args.attrs
    if args.attr_file:
        text = read_attribute_file(args.attr_file)
    if text is None:
        return MigrationAttributes()
    if args.op not in ("m", "v"):
        raise UsageError(f"-i/-f are not valid with -o {args.op}", fix="drop them")
    return parse_attributes(text, allowed=MIGRATE_ATTRIBUTES)


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    check_syntax(args)
    args.parsed_attrs = parse_attrs(args)
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    hmc.require_frame(args.system)
    names = resolve_names(hmc, args)
    hmc.close()
    if not names:
        raise UsageError(f"no partition to act on on {args.system}", code="HSCL8012",
                         fix=f"list them with 'lssyscfg -r lpar -m {args.system}'")
    outcomes: dict[str, Outcome] = {}
    threads = [threading.Thread(target=lambda n=n: outcomes.__setitem__(n, one(args, n)),
                                name=f"migrlpar-{n}") for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [o for o in (outcomes[n] for n in names) if o.error is not None]
    for o in (outcomes[n] for n in names):
        if o.error is not None:
            print(f"{o.name}: {o.error.render()}" if len(names) > 1 else o.error.render(),
                  file=sys.stderr)
        elif o.detail and (args.verbose or args.op == "v"):
            print(f"{o.name}: {o.detail}", file=sys.stderr)
    if not failed:
        return 0
    if len(failed) < len(names):
        return PARTIAL
    return failed[0].error.exit_code if failed[0].error else 1


def cli() -> None:
    sys.exit(run(main))
