"""The destination side of a migration, as the source HMC sees it.

A local destination is a frame this HMC manages: it reads it and sets it up itself. A remote
destination (``migrlpar --ip``) is managed by another HMC: everything about it — its
validation state, its port, its MSP's forward, the record of the incoming migration, the
partition's copies there, its profile after the move — goes through that HMC
(lpmlab.hmc.remote), never through its frame directly. The migration code asks the same
questions of both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lpmlab import codes
from lpmlab.adapter import domain_xml as dx
from lpmlab.adapter import migration as mig
from lpmlab.adapter.connection import DomainInfo
from lpmlab.errors import FabricError, HypervisorError, LpmlabError
from lpmlab.fabric import netns
from lpmlab.fabric import plan as P
from lpmlab.fabric.msp import LAB_IFACE, MOVER_IFACE, Hop
from lpmlab.hmc import profiles, remote, snapshot
from lpmlab.hmc import validation as V
from lpmlab.hmc.remote_hmc import RemoteHmc
from lpmlab.hmc.store import MigrationRecord
from lpmlab.hmc.system import Hmc, Placement


@dataclass(frozen=True)
class ViosRef:
    """A destination VIOS as the request needs it (names, IDs, mover addresses)."""

    name: str
    lpar_id: int
    mover_address: str | None
    msp: bool


@dataclass
class Landing:
    """Where the stream lands, once the destination is prepared."""

    port: int | None
    frame_address: str
    peer_uri: str
    dest_msp: str | None
    dest_msp_mover_address: str | None
    storage: dx.IscsiDisk


@dataclass
class Closing:
    """What the destination says when a migration ends there."""

    msp_bytes: int | None = None
    job: dict[str, Any] | None = None
    profile: str | None = None
    profile_error: str | None = None


class LocalDestination:
    """A frame of this HMC."""

    remote: str | None = None

    def __init__(self, hmc: Hmc, frame: str) -> None:
        self.hmc = hmc
        self.frame = hmc.frame_name(frame)

    def open(self, partition: str, migration_type: str) -> None:
        """Nothing to fetch: this HMC reads its own frames."""

    def record_for(self, rec: MigrationRecord) -> None:
        """Nothing to note in the record."""

    def vios(self) -> list[ViosRef]:
        return [ViosRef(v.name, v.lpar_id, str(v.mover_address) if v.mover_address else None,
                        v.msp) for v in self.hmc.topology.vios_on(self.frame)]

    def add_to(self, snap: V.LabSnapshot, source: str) -> V.LabSnapshot:
        return snap  # the local gather has read it

    def qemu_version(self) -> tuple[int, int, int]:
        return self.hmc.qemu_version(self.frame)

    def claim_limits(self, migration_type: str) -> dict[str, int]:
        f = self.hmc.plan.frame(self.frame).frame
        return {self.frame: f.max_active_migrations if migration_type == "active"
                else f.max_inactive_migrations}

    def ports(self) -> range:
        lo, hi = self.hmc.plan.frame(self.frame).frame.migration_ports
        return range(lo, hi + 1)

    def land(self, rec: MigrationRecord, dest_msp: str | None, partition: str) -> Landing:
        """Open the destination MSP's forward (rec.port, claimed with the record) and say
        where the partition's disk is served there."""
        fp = self.hmc.plan.frame(self.frame)
        mover = None
        if dest_msp is not None:
            dv = self.hmc.plan.vios(dest_msp)
            v = dv.vios
            if not v.mover_address:
                raise codes.error("HSCLL405", obj=v.name)
            if not rec.port:
                raise codes.error("HSCLL407", obj=self.frame)
            dv.mover_service().forward(Hop(rec.id, MOVER_IFACE, (str(v.mover_address), rec.port),
                                           LAB_IFACE, str(v.address),
                                           (str(fp.frame.address), rec.port)))
            mover = str(v.mover_address)
        storage = self.hmc.storage_vios(self.frame, partition)
        disk = dx.IscsiDisk(str(storage.vios.address),
                            self.hmc.plan.partition(partition).iqn(storage.vios.name),
                            vios=storage.vios.name, port=P.ISCSI_PORT)
        return Landing(rec.port, str(fp.frame.address), fp.peer_uri, dest_msp, mover, disk)

    def final_stats(self, partition: str) -> dict[str, Any]:
        new = self.hmc.conn(self.frame).lookup(partition)
        return mig.completed_stats(new) if new is not None else {}

    def keep_profile(self, partition: str, profile: str | None) -> str:
        return profiles.save_current(self.hmc, self.frame, partition, profile)

    def resize(self, partition: str, memory_mb: int, procs: int) -> None:
        conn = self.hmc.conn(self.frame)
        dom = conn.lookup(partition)
        if dom is None:
            raise HypervisorError(f"{partition} vanished from {self.frame}")
        conn.define(dx.set_resources(mig.inactive_xml(dom), memory_mb, procs))

    def close(self, rec: MigrationRecord, profile: str | None = None) -> Closing:
        if not rec.dest_msp:
            return Closing()
        try:
            b = self.hmc.plan.vios(rec.dest_msp).mover_service().close(rec.id)
            return Closing(msp_bytes=b["stream"] + b["return"])
        except FabricError:
            return Closing()

    def placements(self, partition: str) -> list[Placement]:
        return [p for p in self.hmc.placements(partition) if p.frame == self.frame]

    def remove_copy(self, partition: str) -> None:
        dom = self.hmc.conn(self.frame).lookup(partition)
        if dom is not None:
            mig.remove_copy(dom)

    def reset_stream(self, port: int) -> int:
        return netns.reset_tcp(self.hmc.plan.frame(self.frame).ns, port)

    def close_session(self) -> None:
        """Nothing is held open."""


class RemoteDestination:
    """A frame of another HMC, reached through that HMC over SSH with key trust."""

    def __init__(self, hmc: Hmc, frame: str, address: str, user: str) -> None:
        self.hmc = hmc
        self.frame = frame
        self.remote = address
        self.user = user
        self.peer = RemoteHmc(hmc.console, address, user)
        self._snap: dict[str, Any] | None = None
        self._profile: str | None = None

    def open(self, partition: str, migration_type: str) -> None:
        """Log on to the remote HMC with this HMC's key (HSCL3653 without trust) and read the
        destination frame's state there."""
        self.peer.connect()
        self._snap = self.peer.call("snapshot", {"dest": self.frame, "partition": partition,
                                                 "migration_type": migration_type,
                                                 "source_hmc": self.hmc.console.name})
        self.frame = self._snap["dest"]  # a TYPE-MODEL*SERIAL given as -t becomes its name

    @property
    def snap(self) -> dict[str, Any]:
        if self._snap is None:
            raise LpmlabError("the remote destination was not opened")
        return self._snap

    def record_for(self, rec: MigrationRecord) -> None:
        rec.stats["remote_hmc"] = {"address": self.remote, "user": self.user,
                                   "hmc": self.snap.get("hmc")}

    def vios(self) -> list[ViosRef]:
        return [ViosRef(v["name"], int(v["lpar_id"]), v.get("mover_address"), bool(v["msp"]))
                for v in self.snap["vios"].values()]

    def add_to(self, snap: V.LabSnapshot, source: str) -> V.LabSnapshot:
        import dataclasses

        frame = remote.frame_from_wire(self.snap["frame"])
        vios = {n: remote.vios_from_wire(v) for n, v in self.snap["vios"].items()}
        reach = dict(snap.mover_reachable)
        for vp in self.hmc.vios_plans():
            if vp.vios.frame != source or not vp.vios.msp:
                continue
            for d in vios.values():
                if d.msp and d.mover_address:
                    reach[(vp.vios.name, d.name)] = snapshot.mover_answers(vp.ns,
                                                                           d.mover_address)
        return dataclasses.replace(
            snap, frames={**snap.frames, frame.name: frame}, vios={**snap.vios, **vios},
            mover_reachable=reach,
            remote_hmc_keys={**snap.remote_hmc_keys, self.remote: True})

    def qemu_version(self) -> tuple[int, int, int]:
        v = self.snap["qemu_version"]
        return (int(v[0]), int(v[1]), int(v[2]))

    def claim_limits(self, migration_type: str) -> dict[str, int]:
        return {}  # the destination's HMC holds its frame to its limits (in prepare)

    def ports(self) -> None:
        return None  # the destination's HMC gives the port

    def land(self, rec: MigrationRecord, dest_msp: str | None, partition: str) -> Landing:
        got = self.peer.call("prepare", {
            "id": rec.id, "partition": partition, "source": rec.source_sys,
            "dest": self.frame, "dest_msp": dest_msp, "source_msp": rec.source_msp,
            "migration_type": rec.migration_type, "command": rec.command,
            "requested_by": rec.requested_by, "source_hmc": self.hmc.console.name})
        rec.port = got.get("port")
        rec.dest_msp = got.get("dest_msp")
        s = got["storage"]
        return Landing(rec.port, got["address"], got["peer_uri"], rec.dest_msp,
                       got.get("dest_msp_mover_address"),
                       dx.IscsiDisk(s["address"], s["iqn"], vios=s["vios"], port=s["port"]))

    def final_stats(self, partition: str) -> dict[str, Any]:
        return {}  # the destination's HMC reads them when the migration is closed

    def keep_profile(self, partition: str, profile: str | None) -> str:
        self._profile = profile  # kept by the destination's HMC when it closes the migration
        return profile or ""

    _resize: dict[str, int] | None = None

    def resize(self, partition: str, memory_mb: int, procs: int) -> None:
        self._resize = {"mem": memory_mb, "procs": procs}

    def close(self, rec: MigrationRecord, profile: str | None = None) -> Closing:
        result = {"Migration Complete": "success",
                  "Migration Stopped": "stopped"}.get(rec.state, "failed")
        try:
            got = self.peer.call("complete", {"id": rec.id, "result": result,
                                              "error": rec.error, "resize": self._resize,
                                              "profile": profile or self._profile})
        except LpmlabError as exc:
            rec.stats["remote_close_error"] = exc.message
            return Closing()
        return Closing(got.get("msp_bytes"), got.get("job") or None, got.get("profile"),
                       got.get("profile_error"))

    def placements(self, partition: str) -> list[Placement]:
        out = []
        for p in self.peer.call("placement", {"partition": partition}):
            out.append(Placement(p["frame"], DomainInfo(
                partition, "", p["state"], bool(p["persistent"]), {"remote": "1"},
                bool(p["job_active"]), (), p.get("postcopy"))))
        return out

    def remove_copy(self, partition: str) -> None:
        self.peer.call("remove", {"partition": partition, "frame": self.frame})

    def reset_stream(self, port: int) -> int:
        raise codes.error("HSCLL477")

    def close_session(self) -> None:
        self.peer.close()

    def recover(self, rec: MigrationRecord) -> bool:
        return bool(self.peer.call("recover", {"id": rec.id, "error": rec.error})
                    .get("closed"))


Destination = LocalDestination | RemoteDestination
