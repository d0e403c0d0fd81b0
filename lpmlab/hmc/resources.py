"""What ``lslparmigr -r procpool|mem|virtualio|mc|msp`` reports: the destination resources one
partition's migration would use, the MSPs and their settings, and the manager's limits.

The partition listings read a :class:`~lpmlab.hmc.validation.LabSnapshot` (from
``snapshot.inventory``) and size things the way validation does, so a listing never promises
what ``migrlpar -o v`` then refuses. Field names the HMC does not document are lpmlab's choice
(docs/hmc.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lpmlab import codes
from lpmlab.errors import UsageError
from lpmlab.fabric.plan import LabPlan
from lpmlab.hmc import msp_settings
from lpmlab.hmc.hooks import DEFAULT_WAIT_MINUTES
from lpmlab.hmc.store import MigrationRecord
from lpmlab.hmc.validation import (
    DEFAULT_MSP_ACTIVE_MIGRATIONS,
    FrameState,
    LabSnapshot,
    PartitionState,
    ViosState,
)

PARTITION_RESOURCES = ("procpool", "mem", "virtualio")
# One migrlpar command migrates at most this many partitions (each runs in its own thread and
# takes a migration slot on both frames; the default frames allow 16).
MAX_LPARS_PER_MIGRLPAR_CMD = 10
DEFAULT_POOL = "DefaultPool"
FIRST_CLIENT_SLOT = 2  # virtual slots 0 and 1 hold the virtual serial adapters
NONE = "none"  # what the HMC prints for an empty list


# -- the subject -------------------------------------------------------------------------------
def frames(snap: LabSnapshot, source: str, target: str) -> tuple[FrameState, FrameState]:
    """Source and destination as the snapshot has them, or HSCL8011 / HSCLL501."""
    for name in (source, target):
        if name not in snap.frames:
            raise codes.error("HSCL8011", obj=name)
    if source == target:
        raise codes.error("HSCLL501", obj=source)
    return snap.frames[source], snap.frames[target]


def subject(snap: LabSnapshot, source: str, flt: Mapping[str, Sequence[str]]) -> PartitionState:
    """The one partition named by ``--filter lpar_names=X`` or ``lpar_ids=N`` on ``source``."""
    names, ids = list(flt.get("lpar_names", [])), list(flt.get("lpar_ids", []))
    if len(names) + len(ids) != 1:
        raise UsageError("this lslparmigr resource describes one partition",
                         fix='name it with --filter "lpar_names=NAME" or --filter '
                             '"lpar_ids=ID" (one partition)')
    here = [p for p in snap.partitions.values() if p.frame == source]
    found = ([p for p in here if p.name == names[0]] if names
             else [p for p in here if str(p.lpar_id) == ids[0]])
    if found:
        return found[0]
    key = names[0] if names else f"with ID {ids[0]}"
    vios = [v for v in snap.vios.values() if v.frame == source
            and (v.name in names or str(v.lpar_id) in ids)]
    if vios:
        raise codes.error("HSCLL504", obj=vios[0].name, sys=source)
    elsewhere = [p.frame for p in snap.partitions.values() if p.name == key]
    where = f" It is on {elsewhere[0]}." if elsewhere else ""
    raise codes.error("HSCL8012", obj=key, sys=source, where=where)


def _needs(p: PartitionState) -> tuple[int, int]:
    """(memory MB, processors) the destination must give, as validation sizes them: a
    running partition moves what it uses, a shut-off one what its profile desires."""
    if p.state == "shutoff":
        return p.desired_memory_mb, p.desired_procs
    return p.memory_mb, p.procs


def _head(p: PartitionState, dest: FrameState) -> dict[str, Any]:
    return {"lpar_name": p.name, "lpar_id": p.lpar_id, "dest_sys_name": dest.name}


# -- the partition resources -------------------------------------------------------------------
def pool_ids(pools: Mapping[str, float]) -> dict[str, int]:
    """Pool name -> ID: the default pool is 0, declared pools follow in name order."""
    others = sorted(n for n in pools if n != DEFAULT_POOL)
    ids = {DEFAULT_POOL: 0} if DEFAULT_POOL in pools else {}
    ids.update({n: i for i, n in enumerate(others, 1)})
    return ids


def procpool_record(snap: LabSnapshot, source: str, target: str,
                    p: PartitionState) -> dict[str, Any]:
    """Destination shared processor pools with room for the partition (one processing unit
    per processor: the lab has no fractional entitlement)."""
    _src, dest = frames(snap, source, target)
    _mem, procs = _needs(p)
    ids = pool_ids(dest.shared_proc_pools)
    room = sorted((ids[n], n, free) for n, free in dest.shared_proc_pools.items()
                  if free >= procs)
    return {
        **_head(p, dest), "required_proc_units": float(procs),
        "shared_proc_pool_ids": [i for i, _n, _f in room] or NONE,
        "shared_proc_pool_names": [n for _i, n, _f in room] or NONE,
        "shared_proc_pool_avail_proc_units": [float(f) for _i, _n, f in room] or NONE,
    }


def mem_record(snap: LabSnapshot, source: str, target: str,
               p: PartitionState) -> dict[str, Any]:
    """Memory the partition needs against what the destination has free."""
    _src, dest = frames(snap, source, target)
    need, _procs = _needs(p)
    return {
        **_head(p, dest), "curr_mem": p.memory_mb, "desired_mem": p.desired_memory_mb,
        "required_mem": need, "dest_avail_mem": dest.memory_free_mb,
        "dest_installed_mem": dest.memory_mb, "dest_mem_region_size": dest.lmb_size_mb,
        "dest_mem_sufficient": int(dest.reachable and dest.memory_free_mb >= need),
    }


def _hosts(snap: LabSnapshot, dest: str, lun: str | None) -> list[ViosState]:
    """Running destination VIOSes that serve ``lun`` (any running one for an empty adapter)."""
    return sorted((v for v in snap.vios.values() if v.frame == dest and v.running
                   and (lun is None or lun in v.serves_luns)), key=lambda v: v.lpar_id)


def suggested_vscsi_mappings(snap: LabSnapshot, dest: str, p: PartitionState) -> list[str]:
    """``client-slot/vios-name/vios-id`` for every destination VIOS that can host each
    virtual SCSI client adapter; several items for one slot are alternatives."""
    out = []
    for i in range(max(p.vscsi_adapters, len(p.luns))):
        lun = p.luns[i] if i < len(p.luns) else None
        slot = FIRST_CLIENT_SLOT + i
        out += [f"{slot}/{v.name}/{v.lpar_id}" for v in _hosts(snap, dest, lun)]
    return out


def virtualio_record(snap: LabSnapshot, source: str, target: str,
                     p: PartitionState) -> dict[str, Any]:
    _src, dest = frames(snap, source, target)
    return {**_head(p, dest),
            "suggested_virtual_scsi_mappings": suggested_vscsi_mappings(snap, dest.name, p)
            or NONE,
            "suggested_virtual_fc_mappings": NONE}  # no virtual FC in the lab


def partition_records(resource: str, snap: LabSnapshot, source: str, target: str,
                      flt: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """``lslparmigr -r procpool|mem|virtualio -m source -t target --filter ...``."""
    fn = {"procpool": procpool_record, "mem": mem_record,
          "virtualio": virtualio_record}[resource]
    frames(snap, source, target)
    return [fn(snap, source, target, subject(snap, source, flt))]


# -- the manager and the MSPs ------------------------------------------------------------------
def mc_record() -> dict[str, Any]:
    """``lslparmigr -r mc``: the limits this HMC (the lpmlab controller) applies."""
    return {
        "max_lpars_per_migrlpar_cmd": MAX_LPARS_PER_MIGRLPAR_CMD,
        "max_msp_concurr_migrations": msp_settings.MAX_MSP_ACTIVE_MIGRATIONS,
        "default_msp_concurr_migrations": DEFAULT_MSP_ACTIVE_MIGRATIONS,
        "default_concurr_migration_perf_level": msp_settings.DEFAULT_PERF_LEVEL,
        "default_wait_minutes": DEFAULT_WAIT_MINUTES,
    }


def check_partition_count(n: int) -> None:
    """migrlpar refuses more partitions in one command than ``lslparmigr -r mc`` says."""
    if n > MAX_LPARS_PER_MIGRLPAR_CMD:
        raise codes.error("HSCLL418", obj=MAX_LPARS_PER_MIGRLPAR_CMD, detail=n)


def _settings(plan: LabPlan, name: str) -> dict[str, int]:
    s = msp_settings.msp(plan.dir, name)
    return {"num_active_migrations_configured": s.num_active_migrations_configured,
            "concurr_migration_perf_level": s.concurr_migration_perf_level}


def msp_pair_records(plan: LabPlan, source: str, target: str,
                     dests: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """``-r msp -m source -t target``: each source MSP with the destination MSPs it can pair
    with, and its own settings. ``dests`` (name, lpar_id, mover_address, msp): a remote
    destination's VIOS, as its HMC describes them; else the topology's."""
    topo = plan.topology
    targets = [d for d in (dests if dests is not None else topo.vios_on(target)) if d.msp]
    out = []
    for v in topo.vios_on(source):
        if not v.msp:
            continue
        out.append({
            "source_msp_name": v.name, "source_msp_id": v.lpar_id,
            "dest_msp_names": [d.name for d in targets],
            "dest_msp_ids": [d.lpar_id for d in targets],
            "ipaddr_mappings": [f"{v.mover_address}//{d.name}/{d.lpar_id}/{d.mover_address}"
                                for d in targets],
            **_settings(plan, v.name),
        })
    return out


def msp_records(plan: LabPlan, frame: str,
                in_progress: Sequence[MigrationRecord]) -> list[dict[str, Any]]:
    """``-r msp -m frame`` (no -t): every MSP of the frame with its settings and load."""
    out = []
    for v in plan.topology.vios_on(frame):
        if not v.msp:
            continue
        out.append({
            "msp_name": v.name, "msp_id": v.lpar_id,
            "ipaddr": str(v.mover_address) if v.mover_address else None,
            "num_active_migrations_supported": msp_settings.MAX_MSP_ACTIVE_MIGRATIONS,
            **_settings(plan, v.name),
            "num_active_migrations_in_progress":
                sum(1 for m in in_progress if v.name in (m.source_msp, m.dest_msp)),
        })
    return out
