"""lslparmigr: partition migration information in HMC record format."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from lpmlab.cli.common import HmcArgumentParser, emit, run
from lpmlab.errors import UsageError
from lpmlab.hmc import records


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="lslparmigr", description="List partition migration information.")
    p.add_argument("-r", dest="resource", required=True, choices=["sys", "lpar", "msp"])
    p.add_argument("-m", dest="system", help="managed system (the source)")
    p.add_argument("-t", dest="target", help="target managed system (-r msp)")
    p.add_argument("-F", dest="fields")
    p.add_argument("--header", action="store_true")
    p.add_argument("--filter", dest="filter", help='"lpar_names=..." or "lpar_ids=..."')
    p.add_argument("--json", action="store_true")
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
        "inactive_prof_policy": "config",
    }


def lpar_records(hmc: Any, frame: str) -> list[dict[str, Any]]:
    from lpmlab.adapter.migration import live_job_stats

    recs = []
    for lpar in hmc.lpar_records(frame):
        if lpar["lpar_env"] == "vioserver":
            continue
        rec: dict[str, Any] = {"name": lpar["name"], "lpar_id": lpar["lpar_id"],
                               "migration_state": "Not Migrating"}
        m = hmc.active_migration(lpar["name"])
        if m is not None:
            stats = {}
            dom = hmc.conn(m.source_sys).lookup(m.partition)
            if dom is not None:
                stats = live_job_stats(dom)
            rec.update({
                "migration_state": m.state, "migration_type": m.migration_type,
                "source_sys_name": m.source_sys, "dest_sys_name": m.dest_sys,
                "dest_lpar_id": lpar["lpar_id"], "source_msp_name": m.source_msp,
                "dest_msp_name": m.dest_msp,
                "bytes_transmitted": stats.get("data_processed", 0),
                "bytes_remaining": stats.get("data_remaining", 0),
            })
        recs.append(rec)
    return recs


def msp_records(hmc: Any, source: str, target: str) -> list[dict[str, Any]]:
    hmc.require_frame(source)
    hmc.require_frame(target)
    dests = [v.vios for v in hmc.plan.all_vios() if v.vios.frame == target and v.vios.msp]
    out = []
    for vp in hmc.plan.all_vios():
        v = vp.vios
        if v.frame != source or not v.msp:
            continue
        out.append({
            "source_msp_name": v.name, "source_msp_id": v.lpar_id,
            "dest_msp_names": [d.name for d in dests], "dest_msp_ids": [d.lpar_id for d in dests],
            "ipaddr_mappings": [f"{v.mover_address}//{d.name}/{d.lpar_id}/{d.mover_address}"
                                for d in dests],
        })
    return out


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    from lpmlab.hmc.system import Hmc

    if not args.system:
        raise UsageError(f"lslparmigr -r {args.resource} needs -m managed-system",
                         fix="add -m with a name from 'lssyscfg -r sys -F name'")
    hmc = Hmc.open()
    if args.resource == "sys":
        recs = [sys_record(hmc, args.system)]
    elif args.resource == "lpar":
        recs = lpar_records(hmc, args.system)
        if args.filter:
            flt = records.parse_filter(args.filter, ["lpar_names", "lpar_ids"])
            if len(flt) > 1:
                raise UsageError("lpar_names and lpar_ids are mutually exclusive filters",
                                 fix="give only one of them")
            recs = records.select(recs, flt)
    else:
        if not args.target:
            raise UsageError("lslparmigr -r msp needs -t target-system", fix="add -t")
        recs = msp_records(hmc, args.system, args.target)
    if args.json:
        json.dump(recs, sys.stdout, indent=2)
        print()
    else:
        emit(records.render(recs, args.fields, args.header))
    return 0


def cli() -> None:
    sys.exit(run(main))
