"""The HMC's view of the lab: managed systems, partitions (and VIOS), where each one lives."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lpmlab import codes
from lpmlab.adapter.connection import DomainInfo, FrameConnection
from lpmlab.errors import LpmlabError, UsageError
from lpmlab.fabric import netns
from lpmlab.fabric import plan as P
from lpmlab.fabric.lab import Lab, LabState, load_state, pidfile_alive
from lpmlab.hmc.store import MigrationRecord, MigrationStore, controller_alive

LPAR_STATE = {"running": "Running", "paused": "Running", "shutoff": "Not Activated",
              "shutdown": "Shutting Down", "crashed": "Error", "pmsuspended": "Running",
              "nostate": "Starting"}


@dataclass
class Placement:
    """Where one partition is defined and in what state."""

    frame: str
    info: DomainInfo


class Hmc:
    """Opens the running lab and answers the HMC's questions about it."""

    def __init__(self, plan: P.LabPlan, state: LabState, console: str | None = None) -> None:
        self.plan = plan
        self.state = state
        self.topology = plan.topology
        self.console = console_plan(plan, console)
        self._conns: dict[str, FrameConnection] = {}
        self.store = MigrationStore(self.console.db_path)

    @classmethod
    def open(cls, lab_dir: Path | None = None, console: str | None = None) -> Hmc:
        plan, state = load_state(lab_dir)
        return cls(plan, state, console)

    # -- managed systems -------------------------------------------------------------------
    def frames(self) -> list[P.FramePlan]:
        """The managed systems of this HMC (in topology order)."""
        return [self.plan.frame(f) for f in self.console.console.frames]

    def manages(self, frame: str) -> bool:
        return frame in self.console.console.frames

    def vios_plans(self) -> list[P.ViosPlan]:
        """The VIOS of this HMC's managed systems."""
        return [vp for vp in self.plan.all_vios() if self.manages(vp.vios.frame)]

    def frame_name(self, given: str | None) -> str:
        """The managed system a ``-m``/``-t`` value names: its name or, as the HMC also
        accepts, ``TYPE-MODEL*SERIAL``; HSCL8011 when this HMC manages no such system."""
        if not given:
            raise UsageError("no managed system given", fix="name one with -m")
        for fp in self.frames():
            f = fp.frame
            if given in (f.name, f"{f.type_model}*{f.serial_num}"):
                return f.name
        other = next((c.name for c in self.topology.hmcs if c.name != self.console.name
                      and any(given == f.name or given == f"{f.type_model}*{f.serial_num}"
                              for f in (self.topology.frame(n) for n in c.frames))), None)
        hint = (f"; {given} is managed by another HMC ({other}): name that HMC with --ip "
                "where the command allows it, or run the command there") if other else ""
        raise codes.error("HSCL8011", obj=given, hint=hint)

    def storage_vios(self, frame: str, partition: str) -> P.ViosPlan:
        """The VIOS of ``frame`` that serves ``partition``'s disk there (HSCLA319 when the
        frame has none)."""
        for vp in self.vios_plans():
            if vp.vios.frame == frame:
                return vp
        raise codes.error("HSCLA319", kind="client adapter", obj=f"{partition}/vscsi0",
                          lpar=partition, sys=frame, detail=f"{frame} has no VIOS")

    def require_frame(self, name: str | None) -> P.FramePlan:
        return self.plan.frame(self.frame_name(name))

    def conn(self, frame: str) -> FrameConnection:
        if frame not in self._conns:
            fp = self.require_frame(frame)
            self._conns[frame] = FrameConnection(frame, fp.uri)
        return self._conns[frame]

    def migrations_on(self, frame: str) -> list[MigrationRecord]:
        """Migrations in progress with ``frame`` as source or destination."""
        return [m for m in self.store.active() if frame in (m.source_sys, m.dest_sys)]

    def sys_record(self, fp: P.FramePlan) -> dict[str, Any]:
        f = fp.frame
        try:
            self.conn(f.name).ping()
            state = "Operating"
        except LpmlabError:
            state = "No Connection"
        active = self.migrations_on(f.name)
        used_mem = sum(p.memory_mb for p in self._partitions_defined_on(f.name))
        return {
            "name": f.name, "type_model": f.type_model, "serial_num": f.serial_num,
            "ipaddr": str(f.address), "state": state,
            "active_lpar_mobility_capable": int(f.mobility_capable),
            "inactive_lpar_mobility_capable": int(f.mobility_capable),
            "lpar_proc_compat_modes": list(f.proc_compat_modes),
            "max_lpars": 1000, "curr_sys_proc_units": f.processors,
            "installed_sys_mem": f.memory_mb, "curr_avail_sys_mem": f.memory_mb - used_mem,
            "mem_region_size": f.lmb_size_mb, "battery_power": int(f.battery_power),
            "num_active_migrations_supported": f.max_active_migrations,
            "num_active_migrations_in_progress": len(active),
            "uuid": self.state.host_uuids.get(f.name, ""),
        }

    def _partitions_defined_on(self, frame: str) -> list[Any]:
        out = []
        for info in self.domains_on(frame):
            try:
                out.append(self.topology.partition(info.name))
            except KeyError:
                continue
        return out

    # -- partitions ------------------------------------------------------------------------
    def domains_on(self, frame: str) -> list[DomainInfo]:
        try:
            return self.conn(frame).lab_domains()
        except LpmlabError:
            return []

    def placements(self, name: str) -> list[Placement]:
        """Every frame where ``name`` is defined (exactly one, when all is well)."""
        out = []
        for fp in self.frames():
            for info in self.domains_on(fp.frame.name):
                if info.name == name:
                    out.append(Placement(fp.frame.name, info))
        return out

    def locate(self, name: str, frame: str) -> DomainInfo:
        """The partition ``name`` as defined on ``frame``, or HSCL8012."""
        frame = self.frame_name(frame)
        for info in self.domains_on(frame):
            if info.name == name:
                return info
        raise self.not_found(name, frame)

    def not_found(self, name: str, frame: str) -> LpmlabError:
        """HSCL8012 for partition ``name`` on ``frame``, saying where it is instead."""
        elsewhere = [p.frame for p in self.placements(name) if p.frame != frame]
        where = f" It is on {', '.join(elsewhere)}." if elsewhere else ""
        return codes.error("HSCL8012", obj=name, sys=frame, where=where)

    def domain(self, frame: str, name: str) -> Any:
        """The adapter's domain of partition ``name`` on ``frame``; HSCL8012 when it is not
        (or no longer) defined there (it can vanish between a check and its use)."""
        dom = self.conn(frame).lookup(name)
        if dom is None:
            raise self.not_found(name, frame)
        return dom

    def qemu_version(self, frame: str) -> tuple[int, int, int]:
        """The frame's QEMU version, as recorded when the lab came up."""
        v = self.state.qemu_versions.get(frame)
        if v:
            return (v[0], v[1], v[2])
        from lpmlab.fabric.lab import frame_qemu_version

        return frame_qemu_version(self.require_frame(frame))

    def rmc(self, partition: str) -> Any:
        """An RMC (SSH) channel to the partition's OS."""
        return Lab(self.plan).rmc(partition, self.state)

    def active_migration(self, partition: str) -> MigrationRecord | None:
        for m in self.store.active():
            if m.partition == partition and controller_alive(m):
                return m
        return None

    def lpar_state(self, frame: str, info: DomainInfo) -> str:
        state = LPAR_STATE.get(info.state, "Error")
        mig = self.active_migration(info.name)
        if mig and frame in (mig.source_sys, mig.dest_sys):
            return "Migrating - Running" if state == "Running" else "Migrating - Not Activated"
        return state

    def lpar_records(self, frame: str, *, rmc: bool = True) -> list[dict[str, Any]]:
        """The frame's VIOS and partitions as HMC records; ``rmc=False`` skips the RMC
        probe (and ``rmc_state``) for callers that only need names and IDs."""
        frame = self.frame_name(frame)
        fp = self.plan.frame(frame)
        recs: list[dict[str, Any]] = []
        for vp in self.vios_plans():
            v = vp.vios
            if v.frame != frame:
                continue
            running = netns.exists(vp.ns) and pidfile_alive(vp.dir / "tgtd.pid")
            recs.append({
                "name": v.name, "lpar_id": v.lpar_id, "lpar_env": "vioserver",
                "state": "Running" if running else "Not Activated",
                "curr_lpar_proc_compat_mode": "default", "msp": int(v.msp),
                "time_ref": int(v.time_ref), "rmc_state": "active" if running else "inactive",
                "migration_disabled": 1, "uuid": vios_uuid(self.topology.name, v.name),
                "os_version": VIOS_OS_VERSION, "rmc_ipaddr": str(v.address),
            })
        infos = self.domains_on(fp.frame.name)
        probed = self.rmc_states([i.name for i in infos if i.state == "running"]) if rmc \
            else {}
        for info in infos:
            md = info.metadata
            recs.append({
                "name": info.name, "lpar_id": int(md.get("lpar_id", 0)),
                "lpar_env": md.get("lpar_env", "aixlinux"),
                "state": self.lpar_state(frame, info),
                "curr_lpar_proc_compat_mode": md.get("proc_compat_mode", "default"),
                "curr_profile": md.get("profile", ""), "msp": 0, "time_ref": 0,
                "migration_disabled": int(md.get("migration_disabled", "0")),
            })
            if rmc:
                recs[-1]["rmc_state"] = "active" if probed.get(info.name) else "inactive"
            recs[-1]["uuid"] = info.uuid
            recs[-1]["os_version"] = self.os_version() if info.state == "running" else ""
            try:
                recs[-1]["rmc_ipaddr"] = str(self.topology.partition(info.name).address)
            except KeyError:
                recs[-1]["rmc_ipaddr"] = ""
        recs.sort(key=lambda r: r["lpar_id"])
        return recs

    def os_version(self) -> str:
        """What a running partition's OS reports (the lab's partition image)."""
        kernel = self.state.image.get("kernel_version", "")
        return f"Linux/Debian {kernel}".strip()

    RMC_PROBE_S = 0.5

    def rmc_states(self, names: list[str]) -> dict[str, bool]:
        """Whether each partition's RMC endpoint (its SSH server) answers, probed in parallel
        so a listing of many partitions costs one probe's time."""
        out: dict[str, bool] = {}

        def probe(name: str) -> None:
            try:
                addr = str(self.topology.partition(name).address)
                netns.connect_in(P.HUB_NS, addr, 22, timeout=self.RMC_PROBE_S).close()
                out[name] = True
            except (KeyError, LpmlabError):
                out[name] = False

        threads = [threading.Thread(target=probe, args=(n,), daemon=True) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.RMC_PROBE_S + 2)
        return out

    def close(self) -> None:
        for c in self._conns.values():
            c.close()
        self._conns.clear()


VIOS_OS_VERSION = "VIOS lpmlab (namespace VIOS)"


def vios_uuid(lab: str, vios: str) -> str:
    """A VIOS of the lab is a namespace, not a domain: its UUID is derived from its name."""
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lpmlab://{lab}/vios/{vios}"))


def console_plan(plan: P.LabPlan, name: str | None) -> P.ConsolePlan:
    """The HMC a command speaks as: ``name``, else $LPMLAB_HMC, else the lab's first HMC
    (the SSH endpoint's command server sets $LPMLAB_HMC for its own)."""
    name = name or os.environ.get("LPMLAB_HMC") or None
    try:
        return plan.console(name)
    except KeyError:
        raise codes.error("LPM1008", obj=name,
                          names=", ".join(c.name for c in plan.topology.hmcs)) from None
