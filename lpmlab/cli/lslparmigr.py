"""lslparmigr: partition migration information in HMC record format."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lpmlab.cli.common import (
    HmcArgumentParser,
    add_listing_options,
    emit_records,
    finish,
    missing_on,
    require_filtered,
    run,
)
from lpmlab.errors import UsageError
from lpmlab.hmc import msp_settings, records, resources
from lpmlab.hmc.store import RECOVERY_REQUIRED, needs_recovery


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="lslparmigr", description="List partition migration information.")
    p.add_argument("-r", dest="resource", required=True,
                   choices=["sys", "lpar", "msp", *resources.PARTITION_RESOURCES, "mc"])
    p.add_argument("-m", dest="system", help="managed system (the source)")
    p.add_argument("-t", dest="target",
                   help="target managed system (-r msp, procpool, mem, virtualio)")
    p.add_argument("--ip", dest="remote_ip",
                   help="-r msp: the HMC that manages -t, when it is another one")
    p.add_argument("-u", dest="remote_user", help="user on that HMC (default hscroot)")
    add_listing_options(p, filter_help='"lpar_names=..." or "lpar_ids=..."')
    return p


def sys_record(hmc: Any, frame: str) -> dict[str, Any]:
    fp = hmc.require_frame(frame)
    f = fp.frame
    active = hmc.migrations_on(frame)
    return {
        "inactive_lpar_mobility_capable": int(f.mobility_capable),
        "num_inactive_migrations_supported": f.max_inactive_migrations,
        "num_inactive_migrations_in_progress":
            sum(1 for m in active if m.migration_type == "inactive"),
        "active_lpar_mobility_capable": int(f.mobility_capable),
        "num_active_migrations_supported": f.max_active_migrations,
        "num_active_migrations_in_progress":
            sum(1 for m in active if m.migration_type == "active"),
        "inactive_prof_policy": msp_settings.inactive_prof_policy(hmc.plan.dir, frame),
    }


def lpar_records(hmc: Any, frame: str) -> list[dict[str, Any]]:
    frame = hmc.frame_name(frame)
    recs = []
    for lpar in hmc.lpar_records(frame, rmc=False):
        if lpar["lpar_env"] == "vioserver":
            continue
        rec: dict[str, Any] = {"name": lpar["name"], "lpar_id": lpar["lpar_id"],
                               "migration_state": "Not Migrating"}
        # the live migration, or one stopped half way: listed until migrlpar -o r closes it
        m = hmc.migration_of(lpar["name"])
        if m is not None and frame in (m.source_sys, m.dest_sys):
            # the migrating controller's telemetry (stored about twice a second)
            stats = hmc.store.latest_sample(m.id) or {}
            rec.update({
                "migration_state": RECOVERY_REQUIRED if needs_recovery(m) else m.state,
                "migration_type": m.migration_type,
                "source_sys_name": m.source_sys, "dest_sys_name": m.dest_sys,
                "dest_lpar_id": lpar["lpar_id"], "source_msp_name": m.source_msp,
                "dest_msp_name": m.dest_msp,
                "bytes_transmitted": stats.get("data_processed") or 0,
                "bytes_remaining": stats.get("data_remaining") or 0,
                # lpmlab: how long the stream has moved nothing (--stall-timeout ends it)
                "stalled_seconds": stats.get("stalled_s") or 0,
            })
        recs.append(rec)
    return recs


def partition_filter(args: Any) -> dict[str, list[str]]:
    if not args.filter:
        return {}
    flt = records.parse_filter(args.filter, ["lpar_names", "lpar_ids"])
    if len(flt) > 1:
        raise UsageError("lpar_names and lpar_ids are mutually exclusive filters",
                         fix="give only one of them")
    return flt


def check_syntax(args: Any) -> None:
    """What the resource needs, before the lab is opened."""
    r = args.resource
    if r == "mc":
        # the manager's own limits: they belong to no system and no partition
        given = [opt for opt, value in (("-t", args.target), ("--filter", args.filter),
                                        ("--ip", args.remote_ip), ("-u", args.remote_user))
                 if value is not None]
        if given:
            raise UsageError(f"{given[0]} is not valid with -r mc", fix=f"drop {given[0]}")
        return
    if not args.system:
        raise UsageError(f"lslparmigr -r {r} needs -m managed-system",
                         fix="add -m with a name from 'lssyscfg -r sys -F name'")
    if r in resources.PARTITION_RESOURCES:
        if not args.target:
            raise UsageError(f"lslparmigr -r {r} needs -t target-system",
                             fix="name the destination managed system with -t")
        if not args.filter:
            raise UsageError(f"lslparmigr -r {r} describes one partition",
                             fix='name it with --filter "lpar_names=NAME" or --filter '
                                 '"lpar_ids=ID"')
    elif args.target and r != "msp":
        raise UsageError(f"-t is not valid with -r {r}", fix="drop -t")
    if args.filter and r not in ("lpar", *resources.PARTITION_RESOURCES):
        raise UsageError(f"--filter is not valid with -r {r}", fix="drop --filter")
    if (args.remote_ip or args.remote_user) and not (r == "msp" and args.target
                                                     and args.remote_ip):
        raise UsageError("--ip (and -u) name the HMC of -t: valid with -r msp -t only",
                         fix="write lslparmigr -r msp -m SRC -t DEST --ip REMOTE_HMC")


def query(hmc: Any, args: Any) -> list[dict[str, Any]]:
    r = args.resource
    if r == "mc":
        return [resources.mc_record()]
    # every resource here describes what is inside -m (and -t): No Connection is refused
    args.system = hmc.connected_frame(args.system)
    if args.remote_ip:
        return remote_msp_pairs(hmc, args)
    if args.target:
        args.target = hmc.connected_frame(args.target)
    if r == "sys":
        return [sys_record(hmc, args.system)]
    if r == "lpar":
        recs = lpar_records(hmc, args.system)
        flt = partition_filter(args)
        if not flt:
            return recs
        # a partition named and not there is HSCL8012, as for lssyscfg (never "no results"
        # while it may be on a frame the HMC cannot see)
        require_filtered(recs, flt, args.system, missing_on(hmc, args.system))
        return records.select(recs, flt)
    if r == "msp":
        if args.target:
            return resources.msp_pair_records(hmc.plan, args.system, args.target)
        return resources.msp_records(hmc.plan, args.system, hmc.migrations_on(args.system))
    from lpmlab.hmc import snapshot

    return resources.partition_records(r, snapshot.inventory(hmc), args.system, args.target,
                                       partition_filter(args))


def remote_msp_pairs(hmc: Any, args: Any) -> list[dict[str, Any]]:
    """``-r msp -t DEST --ip HMC``: the destination's MSPs as its own HMC describes them."""
    from lpmlab.hmc.destination import RemoteDestination
    from lpmlab.hmc.remote_hmc import resolve
    from lpmlab.topology import HMC_USER

    dest = RemoteDestination(hmc, args.target, resolve(hmc.topology, args.remote_ip),
                             args.remote_user or HMC_USER)
    try:
        dest.open("", "active")
        return resources.msp_pair_records(hmc.plan, args.system, dest.frame, dest.vios())
    finally:
        dest.close_session()


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    check_syntax(args)
    if args.fields is None and args.header:
        raise UsageError("--header is only valid with -F",
                         fix="add -F with the attribute names, or drop --header")
    if args.resource == "mc":
        recs = query(None, args)  # the manager's own limits: no lab needed
    else:
        from lpmlab.hmc.system import Hmc

        hmc = Hmc.open()
        try:
            recs = query(hmc, args)
        finally:
            hmc.close()
    emit_records(recs, args.fields, args.header, args.json)
    return 0


def cli() -> None:
    finish(run(main))
