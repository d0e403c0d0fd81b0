"""lshwres: a managed system's memory, processors and virtual I/O (HMC syntax).

``lshwres -r mem|proc -m S --level sys|lpar [--filter "lpar_names=L"] [-F ...]`` and
``lshwres -r virtualio --rsubtype scsi|eth|fc|serial -m S --level lpar``.
"""

from __future__ import annotations

from collections.abc import Sequence

from lpmlab.cli.common import (
    HmcArgumentParser,
    add_listing_options,
    emit_listing,
    finish,
    missing_on,
    require_filtered,
    run,
)
from lpmlab.errors import UsageError
from lpmlab.hmc import hwres, records

FILTERS = ["lpar_names", "lpar_ids"]


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="lshwres", description="List hardware resources.")
    p.add_argument("-r", dest="resource", required=True, choices=list(hwres.RESOURCES))
    p.add_argument("-m", dest="system", required=True, help="managed system")
    p.add_argument("--level", choices=["sys", "lpar"], help="sys or lpar")
    p.add_argument("--rsubtype", choices=list(hwres.VIRTUALIO_SUBTYPES),
                   help="-r virtualio: the adapter type")
    add_listing_options(p, filter_help='"lpar_names=a,b" or "lpar_ids=1,2"')
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    if args.resource == "virtualio":
        if not args.rsubtype:
            raise UsageError("-r virtualio needs --rsubtype scsi|eth|fc|serial",
                             fix="add e.g. --rsubtype scsi")
        args.level = args.level or "lpar"
    elif args.rsubtype:
        raise UsageError(f"--rsubtype is not valid with -r {args.resource}",
                         fix="drop --rsubtype")
    if args.level is None:
        raise UsageError(f"-r {args.resource} needs --level sys or --level lpar",
                         fix="add --level sys")
    if args.level == "sys" and (args.filter or args.resource == "virtualio"):
        raise UsageError("--level sys takes no --filter and no virtual I/O",
                         fix="use --level lpar")
    from lpmlab.hmc import snapshot
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        # its resources are read inside it: No Connection is refused (HSCLL430)
        frame = hmc.connected_frame(args.system)
        snap = snapshot.inventory(hmc)
        macs = {p.name: p.mac for p in hmc.topology.partitions}
        partitions = hmc.lpar_records(frame, rmc=False) if args.filter else []
        missing = missing_on(hmc, frame)
        if args.resource == "virtualio":
            if args.filter:
                # a partition without such adapters lists nothing; one that is not on the
                # system is HSCL8012, as in the other listings
                require_filtered(partitions, records.parse_filter(args.filter, FILTERS), frame,
                                 missing)
            recs = hwres.virtualio(snap, frame, args.rsubtype, macs)
        else:
            recs = {("mem", "sys"): hwres.mem_sys, ("proc", "sys"): hwres.proc_sys,
                    ("mem", "lpar"): hwres.mem_lpar,
                    ("proc", "lpar"): hwres.proc_lpar}[(args.resource, args.level)](snap,
                                                                                   frame)
        emit_listing(recs, args, FILTERS,
                     None if args.resource == "virtualio" else frame, missing)
    finally:
        hmc.close()
    return 0


def cli() -> None:
    finish(run(main))
