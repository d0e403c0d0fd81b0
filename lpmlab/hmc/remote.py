"""The destination HMC's side of a remote migration (``migrlpar --ip``), as ``migrpeer``.

The source HMC manages the source frame and reaches the destination frame only through the
destination's HMC, over SSH with key trust: it asks this side for the destination frame's
validation state (``snapshot``), to take a port and open the destination MSP's forward and
record the incoming migration (``prepare``), to close it when the transfer ended, keeping
the partition's configuration as its profile (``complete``), and, after a failure, where the
partition's copies are and to remove a stale one (``placement``, ``remove``, ``recover``).
The hypervisors migrate peer-to-peer; both HMCs record the migration under one ID.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from lpmlab import codes
from lpmlab.adapter import migration as mig
from lpmlab.errors import FabricError, LpmlabError, NotFoundError, UsageError
from lpmlab.fabric import plan as P
from lpmlab.fabric.msp import LAB_IFACE, MOVER_IFACE, Hop
from lpmlab.hmc import msp_settings, profiles, snapshot
from lpmlab.hmc.store import LimitReached, MigrationRecord, MspLimitReached
from lpmlab.hmc.system import Hmc
from lpmlab.hmc.validation import FrameState, ViosState

DESTINATION = "destination"


# -- the wire form of validation state --------------------------------------------------------
def to_wire(obj: Any) -> dict[str, Any]:
    """A FrameState/ViosState as JSON-able data (sets become sorted lists)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, (set, frozenset)):
            v = sorted(v)
        elif isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, dict):
            v = dict(v)
        out[f.name] = v
    return out


def _from_wire(cls: type, data: dict[str, Any]) -> Any:
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        v = data[f.name]
        kind = str(f.type)
        if kind.startswith("frozenset"):
            v = frozenset(v)
        elif kind.startswith("tuple"):
            v = tuple(v)
        kw[f.name] = v
    return cls(**kw)


def frame_from_wire(data: dict[str, Any]) -> FrameState:
    return _from_wire(FrameState, data)  # type: ignore[no-any-return]


def vios_from_wire(data: dict[str, Any]) -> ViosState:
    return _from_wire(ViosState, data)  # type: ignore[no-any-return]


# -- the operations ----------------------------------------------------------------------------
def describe(hmc: Hmc, dest: str) -> dict[str, Any]:
    """The destination frame: its name, where its hypervisor listens, its migration ports."""
    fp = hmc.require_frame(dest)
    f = fp.frame
    return {"dest": f.name, "address": str(f.address), "peer_uri": fp.peer_uri,
            "migration_ports": list(f.migration_ports),
            "qemu_version": list(hmc.qemu_version(f.name)),
            "type_model": f.type_model, "serial_num": f.serial_num}


def snapshot_part(hmc: Hmc, p: dict[str, Any]) -> dict[str, Any]:
    """``snapshot``: the destination frame's and VIOS's validation state, read here."""
    info = describe(hmc, str(p.get("dest", "")))
    dest = info["dest"]
    copies = snapshot.partition_copies(hmc)
    frame = snapshot.frame_state(hmc, dest, copies)
    vios = {n: to_wire(v) for n, v in snapshot.vios_states(hmc).items() if v.frame == dest}
    return {**info, "frame": to_wire(frame), "vios": vios, "hmc": hmc.console.name}


def _dest_msp(hmc: Hmc, dest: str, wanted: str | None) -> P.ViosPlan:
    for vp in hmc.vios_plans():
        if vp.vios.frame == dest and vp.vios.msp and wanted in (None, vp.vios.name):
            return vp
    raise codes.error("HSCLL404", obj=dest)


def prepare(hmc: Hmc, p: dict[str, Any]) -> dict[str, Any]:
    """``prepare``: record the incoming migration (the source's ID), take a port of the
    destination frame within its limits and its MSP's, open the destination MSP's forward."""
    info = describe(hmc, str(p.get("dest", "")))
    dest, partition = info["dest"], str(p["partition"])
    active = p.get("migration_type", "active") == "active"
    rec = MigrationRecord(partition, str(p["source"]), dest, id=str(p["id"]),
                          migration_type="active" if active else "inactive",
                          command=str(p.get("command", "")),
                          requested_by=str(p.get("requested_by", "")),
                          source_msp=p.get("source_msp"))
    rec.stats.update(role=DESTINATION, source_hmc=p.get("source_hmc"))
    fp = hmc.plan.frame(dest)
    dv = _dest_msp(hmc, dest, p.get("dest_msp")) if active else None
    rec.dest_msp = dv.vios.name if dv else None
    limit = fp.frame.max_active_migrations if active else fp.frame.max_inactive_migrations
    lo, hi = fp.frame.migration_ports
    msps = (rec.dest_msp,) if rec.dest_msp else ()
    try:
        port = hmc.store.claim_port(rec, range(lo, hi + 1) if active else None,
                                    limits={dest: limit},
                                    msp_limits=msp_settings.msp_limits(hmc.plan.dir, msps))
    except MspLimitReached as exc:
        raise codes.error("HSCLL415", obj=exc.args[0], sys=dest,
                          detail=str(exc.args[1])) from None
    except LimitReached as exc:
        raise codes.error("HSCLL410", obj=exc.args[0],
                          detail=str(exc.args[1])) from None
    if port is None:
        raise codes.error("HSCLL407", obj=dest)
    landing: dict[str, Any] = {**info, "port": port or None, "dest_msp": rec.dest_msp,
                               "id": rec.id}
    try:
        if dv is not None:
            v = dv.vios
            if not v.mover_address:
                raise codes.error("HSCLL405", obj=v.name)
            dv.mover_service().forward(Hop(rec.id, MOVER_IFACE, (str(v.mover_address), port),
                                           LAB_IFACE, str(v.address),
                                           (str(fp.frame.address), port)))
            landing["dest_msp_mover_address"] = str(v.mover_address)
        storage = hmc.storage_vios(dest, partition)
        landing["storage"] = {"address": str(storage.vios.address),
                              "iqn": hmc.plan.partition(partition).iqn(storage.vios.name),
                              "vios": storage.vios.name, "port": P.ISCSI_PORT}
    except LpmlabError as exc:
        _close(hmc, rec, "failed", f"the destination could not be prepared: {exc.message}")
        raise
    rec.state = "Migration In Progress"
    rec.phase("transfer", source_hmc=p.get("source_hmc"))
    hmc.store.save(rec)
    return landing


def _record(hmc: Hmc, mid: str) -> MigrationRecord:
    rec = hmc.store.get(mid)
    if rec is None or rec.stats.get("role") != DESTINATION:
        raise codes.error("HSCLL473", obj=hmc.console.name, id=mid)
    return rec


def _close(hmc: Hmc, rec: MigrationRecord, result: str, error: str | None) -> int | None:
    carried: int | None = None
    if rec.dest_msp:
        try:
            b = hmc.plan.vios(rec.dest_msp).mover_service().close(rec.id)
            carried = b["stream"] + b["return"]
        except FabricError:
            carried = None
    rec.stats["msp_bytes"] = {rec.dest_msp: carried} if rec.dest_msp else {}
    rec.state, rec.result = {"success": ("Migration Complete", "success"),
                             "stopped": ("Migration Stopped", "stopped"),
                             "recovered": ("Migration Recovered", "failed")}.get(
                                 result, ("Migration Failed", "failed"))
    rec.error = error
    rec.ended = time.time()
    rec.phase("recovered" if result == "recovered" else
              "complete" if result == "success" else result)
    hmc.store.save(rec)
    return carried


def complete(hmc: Hmc, p: dict[str, Any]) -> dict[str, Any]:
    """``complete``: the transfer ended (``result``); close the forward and the record; after
    a success, read the job's statistics here and keep the configuration as its profile."""
    rec = _record(hmc, str(p["id"]))
    result = str(p.get("result", "failed"))
    out: dict[str, Any] = {"job": {}, "profile": None}
    if result == "success":
        dom = hmc.conn(rec.dest_sys).lookup(rec.partition)
        if dom is not None and rec.migration_type == "active":
            out["job"] = {k: v for k, v in mig.completed_stats(dom).items()
                          if isinstance(v, (int, float, str, bool))}
        try:
            if rec.migration_type == "active":
                out["profile"] = profiles.save_current(hmc, rec.dest_sys, rec.partition,
                                                       p.get("profile"))
            elif p.get("resize"):
                from lpmlab.adapter import domain_xml as dx

                conn = hmc.conn(rec.dest_sys)
                if dom is None:
                    raise hmc.not_found(rec.partition, rec.dest_sys)
                conn.define(dx.set_resources(mig.inactive_xml(dom), int(p["resize"]["mem"]),
                                             int(p["resize"]["procs"])))
        except LpmlabError as exc:
            out["profile_error"] = exc.message
    out["msp_bytes"] = _close(hmc, rec, result, p.get("error"))
    return out


def placement(hmc: Hmc, p: dict[str, Any]) -> list[dict[str, Any]]:
    """``placement``: every copy of the partition on this HMC's frames."""
    return [{"frame": pl.frame, "state": pl.info.state, "job_active": pl.info.job_active,
             "persistent": pl.info.persistent, "postcopy": pl.info.postcopy}
            for pl in hmc.placements(str(p["partition"]))]


def remove(hmc: Hmc, p: dict[str, Any]) -> dict[str, Any]:
    """``remove``: a stale copy of the partition on a frame of this HMC (its disk is shared:
    nothing is lost); never the only running one, which the source must not ask for."""
    frame = hmc.frame_name(str(p["frame"]))
    name = str(p["partition"])
    copies = hmc.placements(name)
    if len(copies) == 1 and copies[0].info.state == "running" and not p.get("force"):
        raise codes.error("HSCLL474", obj=name, sys=frame)
    dom = hmc.conn(frame).lookup(name)
    if dom is not None:
        mig.remove_copy(dom)
    return {"removed": dom is not None}


def recover(hmc: Hmc, p: dict[str, Any]) -> dict[str, Any]:
    """``recover``: the source recovered the migration; close what this side still holds."""
    try:
        rec = _record(hmc, str(p["id"]))
    except NotFoundError:
        return {"closed": False}
    if rec.state in ("Migration Complete", "Migration Recovered") and not p.get("reopen"):
        return {"closed": False, "state": rec.state}
    rec.stats["recovered"] = True
    _close(hmc, rec, "recovered", p.get("error") or rec.error)
    return {"closed": True}


def public_key(hmc: Hmc) -> dict[str, Any]:
    """``pubkey``: this HMC's own public key (``mkauthkeys -g`` adds it on the other side)."""
    pub = hmc.console.key.with_suffix(".pub")
    try:
        return {"key": pub.read_text().strip(), "hmc": hmc.console.name}
    except OSError as exc:
        raise FabricError(f"HMC {hmc.console.name} has no key ({pub})",
                          fix="bring the lab up again ('lpmlab lab up')") from exc


OPERATIONS = {"snapshot": snapshot_part, "prepare": prepare, "complete": complete,
              "placement": placement, "remove": remove, "recover": recover}


def run(hmc: Hmc, op: str, payload: dict[str, Any]) -> Any:
    if op == "pubkey":
        return public_key(hmc)
    if op == "ping":
        return {"hmc": hmc.console.name}
    if op not in OPERATIONS:
        raise UsageError(f"migrpeer: unknown operation {op}",
                         fix="one of: " + ", ".join(["ping", "pubkey", *OPERATIONS]))
    return OPERATIONS[op](hmc, payload)
