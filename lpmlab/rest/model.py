"""What the REST API shows, read from the same HMC core the commands read: a survey of the
HMC's managed systems and, on each it can see into, its partitions and VIOS.

Nothing here is a second implementation of a listing: the records are ``lssyscfg``'s
(``Hmc.sys_record``, ``Hmc.lpar_records``), the memory and processors ``lshwres``'s (the
lab snapshot), the migration state ``lslparmigr``'s (``Hmc.migration_of``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lpmlab.hmc import snapshot
from lpmlab.hmc.store import needs_recovery
from lpmlab.hmc.system import OPERATING, Hmc
from lpmlab.hmc.validation import FrameState, PartitionState

RECOVERY_REQUIRED = "Migration Recovery Required"


def object_type(*, vios: bool) -> str:
    """The REST object type of a VIOS or of a logical partition."""
    return "VirtualIOServer" if vios else "LogicalPartition"


@dataclass(frozen=True)
class SystemView:
    uuid: str
    name: str
    record: dict[str, Any]          # lssyscfg -r sys
    facts: FrameState | None        # None while the HMC cannot see into it
    migrations: dict[str, int]      # active/inactive in progress

    @property
    def connected(self) -> bool:
        return self.record["state"] == OPERATING


@dataclass(frozen=True)
class PartitionView:
    uuid: str
    name: str
    system: SystemView
    record: dict[str, Any]          # lssyscfg -r lpar
    facts: PartitionState | None    # None for a VIOS (a namespace: no memory of its own)
    migration_state: str            # lslparmigr's: Not Migrating, Migration In Progress...
    refcode: str = ""

    @property
    def is_vios(self) -> bool:
        return self.record["lpar_env"] == "vioserver"

    @property
    def kind(self) -> str:
        """Its REST object type."""
        return object_type(vios=self.is_vios)

    @property
    def running(self) -> bool:
        """Its OS runs (migrating too): what its current memory and processors count on."""
        return self.record["state"] in ("Running", "Migrating - Running")

    @property
    def current_procs(self) -> int:
        return self.facts.procs if self.facts is not None and self.running else 0

    @property
    def runs_here(self) -> bool:
        """This copy is the one that runs the partition (mid-migration the other waits)."""
        return self.facts is not None and self.facts.frame == self.system.name


@dataclass
class Survey:
    hmc_name: str
    systems: list[SystemView] = field(default_factory=list)
    partitions: list[PartitionView] = field(default_factory=list)

    def system(self, uuid: str) -> SystemView | None:
        return next((s for s in self.systems if s.uuid == uuid.lower()), None)

    def system_named(self, name: str) -> SystemView | None:
        return next((s for s in self.systems if s.name == name), None)

    def partition(self, uuid: str, *, vios: bool | None = None) -> PartitionView | None:
        return next((p for p in self.partitions_of(None, vios=vios) if p.uuid == uuid.lower()),
                    None)

    def partitions_of(self, system: SystemView | None, *,
                      vios: bool | None) -> list[PartitionView]:
        """A system's partitions (a migrating one on both of its systems, as lssyscfg lists
        it); without a system, each partition once: the copy that runs it."""
        mine = [p for p in self.partitions if (vios is None or p.is_vios == vios)
                and (system is None or p.system.uuid == system.uuid)]
        if system is not None:
            return mine
        out: dict[str, PartitionView] = {}
        for p in mine:
            have = out.get(p.uuid)
            if have is None or (p.runs_here and not have.runs_here):
                out[p.uuid] = p
        return list(out.values())


def survey(hmc: Hmc, *, rmc: bool = True) -> Survey:
    """Every managed system of the HMC and what is on those it can see into."""
    from lpmlab.hmc import refcodes

    snap = snapshot.inventory(hmc)
    out = Survey(hmc.console.name)
    for fp in hmc.frames():
        rec = hmc.sys_record(fp)
        active = hmc.migrations_on(fp.frame.name)
        view = SystemView(
            uuid=str(rec["uuid"]).lower(), name=fp.frame.name, record=rec,
            facts=snap.frames.get(fp.frame.name) if rec["state"] == OPERATING else None,
            migrations={"active": sum(1 for m in active if m.migration_type == "active"),
                        "inactive": sum(1 for m in active if m.migration_type == "inactive")})
        out.systems.append(view)
        if not view.connected:
            continue
        listed = hmc.domains_on(fp.frame.name)
        infos = {i.name: i for i in listed}
        for lpar in hmc.lpar_records(fp.frame.name, rmc=rmc, infos=listed):
            name = lpar["name"]
            # mid-migration this may be the other frame's copy: the same sizes
            facts = snap.partitions.get(name)
            code = ""
            if name in infos:
                pp = hmc.plan.partition(name)
                code = refcodes.current(infos[name], pp.console_log,
                                        lpar.get("rmc_state") == "active").refcode
            out.partitions.append(PartitionView(
                uuid=str(lpar["uuid"]).lower(), name=name, system=view, record=lpar,
                facts=facts, migration_state=_migration_state(hmc, name, fp.frame.name),
                refcode=code))
    return out


def _migration_state(hmc: Hmc, partition: str, frame: str) -> str:
    m = hmc.migration_of(partition)
    if m is None or frame not in (m.source_sys, m.dest_sys):
        return "Not Migrating"
    return RECOVERY_REQUIRED if needs_recovery(m) else m.state
