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
from lpmlab.hmc.store import (
    MigrationRecord,
    MigrationStore,
    controller_alive,
    needs_recovery,
)

OPERATING, NO_CONNECTION = "Operating", "No Connection"

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
        # each frame's connection state, probed once per command (frame_state)
        self._frame_states: dict[str, str] = {}
        # RMC sessions shared by the steps of one command (see rmc_session)
        self._rmc_sessions: dict[str, Any] = {}
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
        """The frame's libvirt connection; HSCLL430 at once when this command already found
        the frame in No Connection (the connection's retries would take 10 s)."""
        if self._frame_states.get(frame) == NO_CONNECTION:
            raise self.no_connection(frame)
        if frame not in self._conns:
            fp = self.require_frame(frame)
            self._conns[frame] = FrameConnection(frame, fp.uri)
        return self._conns[frame]

    # -- the managed systems' connection state -----------------------------------------------
    FRAME_PROBE_S = 2.0

    def frame_state(self, frame: str, *, refresh: bool = False) -> str:
        """``Operating`` when the frame's libvirtd answers within FRAME_PROBE_S, else ``No
        Connection``; probed once per command (``refresh`` probes again)."""
        if refresh or frame not in self._frame_states:
            self._frame_states[frame] = OPERATING if self._probe(frame) else NO_CONNECTION
        return self._frame_states[frame]

    def _probe(self, frame: str) -> bool:
        """A bounded probe: a dead daemon refuses at once, but a hung one (stopped, or
        stuck) would hold libvirt's open() forever, so the probe runs in a thread that is
        given up after its deadline."""
        fp = self.require_frame(frame)
        probe = FrameConnection(frame, fp.uri, connect_timeout=self.FRAME_PROBE_S)
        answered: list[bool] = []

        def attempt() -> None:
            try:
                probe.ping()
                answered.append(True)
            except LpmlabError:
                answered.append(False)
            finally:
                probe.close()

        t = threading.Thread(target=attempt, name=f"probe-{frame}", daemon=True)
        t.start()
        t.join(self.FRAME_PROBE_S + 1.0)
        return bool(answered and answered[0])

    def require_connected(self, frame: str) -> str:
        """``frame`` when it is Operating; HSCLL430 (names its state and the fix) when the
        HMC cannot see into it."""
        if self.frame_state(frame) != OPERATING:
            raise self.no_connection(frame)
        return frame

    def connected_frame(self, given: str | None) -> str:
        """The managed system ``-m``/``-t`` names (``frame_name``), which must be
        Operating: a command that looks inside it refuses rather than list part of it."""
        return self.require_connected(self.frame_name(given))

    def no_connection(self, frame: str) -> LpmlabError:
        """HSCLL430 for ``frame``, naming the unfinished migrations that involve it (the
        partitions whose place the HMC cannot tell) and how to recover them."""
        recs = self.migrations_on(frame)
        where = "".join(f" Partition {r.partition}'s migration {r.source_sys} -> "
                        f"{r.dest_sys} ({r.id}) is unfinished." for r in recs)
        if recs:
            r = recs[0]
            hint = (f", or recover {r.partition} with 'migrlpar -o r -m {r.source_sys} -p "
                    f"{r.partition} --force' (restarts it too)")
        else:
            hint = (f", or 'migrlpar -o r -m {frame} -p PARTITION --force' (recovering a "
                    "partition restarts it)")
        return codes.error("HSCLL430", obj=frame, where=where, hint=hint)

    def unseen_frames(self) -> list[str]:
        """This HMC's managed systems it cannot see into now (probing each)."""
        return [fp.frame.name for fp in self.frames()
                if self.frame_state(fp.frame.name) != OPERATING]

    def migrations_on(self, frame: str) -> list[MigrationRecord]:
        """Unfinished migrations with ``frame`` as source or destination: in progress
        (alive, or left by a dead controller) or failed and waiting for recovery."""
        return [m for m in self.store.unfinished() if frame in (m.source_sys, m.dest_sys)]

    def sys_record(self, fp: P.FramePlan) -> dict[str, Any]:
        """``lssyscfg -r sys``: a frame in No Connection keeps what the HMC knows without
        looking inside it (its configuration, the migrations on record); its free memory
        is left out rather than guessed."""
        f = fp.frame
        state = self.frame_state(f.name)
        active = self.migrations_on(f.name)
        rec: dict[str, Any] = {
            "name": f.name, "type_model": f.type_model, "serial_num": f.serial_num,
            "ipaddr": str(f.address), "state": state,
            "active_lpar_mobility_capable": int(f.mobility_capable),
            "inactive_lpar_mobility_capable": int(f.mobility_capable),
            "lpar_proc_compat_modes": list(f.proc_compat_modes),
            "max_lpars": 1000, "curr_sys_proc_units": f.processors,
            "installed_sys_mem": f.memory_mb,
        }
        if state == OPERATING:
            try:
                used_mem = sum(p.memory_mb for p in self._partitions_defined_on(f.name))
                rec["curr_avail_sys_mem"] = f.memory_mb - used_mem
            except LpmlabError:
                rec["state"] = NO_CONNECTION  # it died since the probe
        rec.update({
            "mem_region_size": f.lmb_size_mb, "battery_power": int(f.battery_power),
            "num_active_migrations_supported": f.max_active_migrations,
            "num_active_migrations_in_progress": len(active),
            "uuid": self.state.host_uuids.get(f.name, ""),
        })
        return rec

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
        """The lab's domains on ``frame``; HSCLL430 when the frame cannot be seen (an empty
        list would say that nothing is there)."""
        self.require_connected(frame)
        try:
            return self.conn(frame).lab_domains()
        except LpmlabError as exc:
            # it answered the probe and has gone since
            self._frame_states[frame] = NO_CONNECTION
            raise self.no_connection(frame) from exc

    def placements(self, name: str) -> list[Placement]:
        """Every frame where ``name`` is defined (exactly one, when all is well), among the
        frames that can be seen: ``unseen_frames()`` says which could not."""
        out = []
        for fp in self.frames():
            if self.frame_state(fp.frame.name) != OPERATING:
                continue
            try:
                infos = self.domains_on(fp.frame.name)
            except LpmlabError:
                continue  # it died since the probe: it is unseen now
            out += [Placement(fp.frame.name, info) for info in infos if info.name == name]
        return out

    def locate(self, name: str, frame: str) -> DomainInfo:
        """The partition ``name`` as defined on ``frame``, or HSCL8012."""
        frame = self.frame_name(frame)
        for info in self.domains_on(frame):
            if info.name == name:
                return info
        raise self.not_found(name, frame)

    def not_found(self, name: str, frame: str, *, lpar_id: str | None = None) -> LpmlabError:
        """HSCL8012 for partition ``name`` (or the one with ``lpar_id``) on ``frame``, saying
        where it is instead, or that it may be on a frame the HMC cannot see (its migration
        records naming that frame are the evidence)."""
        obj = f"with ID {lpar_id}" if lpar_id is not None else name
        elsewhere = [] if lpar_id is not None else \
            [p.frame for p in self.placements(name) if p.frame != frame]
        if elsewhere:
            return codes.error("HSCL8012", obj=obj, sys=frame,
                               where=f" It is on {', '.join(elsewhere)}.")
        dark = [f for f in self.unseen_frames() if f != frame]
        if not dark:
            return codes.error("HSCL8012", obj=obj, sys=frame)
        recs = [] if lpar_id is not None else \
            [r for r in self.store.latest(name, 5) if {r.source_sys, r.dest_sys} & set(dark)]
        named = [f for f in dark if recs and f in (recs[0].source_sys, recs[0].dest_sys)]
        where = (f" It may be on {', '.join(named or dark)}, which is in state No Connection: "
                 "the HMC cannot see its partitions (bring it back with 'lpmlab lab up').")
        evidence = "\n".join(f"migration {r.id}: {r.partition} {r.source_sys} -> "
                              f"{r.dest_sys}, {r.state}" for r in recs[:1]) or None
        return codes.error("HSCL8012", obj=obj, sys=frame, where=where, evidence=evidence)

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

    def rmc_session(self, partition: str) -> Any:
        """The partition's RMC channel shared by this HMC's steps (the validation's RMC
        probe, the hook phases, the processor steps): an SSH handshake with a partition
        under TCG costs ~0.17 s, and a real HMC keeps its RMC sessions open too. Closed with
        the HMC; a closed one reconnects when used."""
        ch = self._rmc_sessions.get(partition)
        if ch is None:
            ch = self._rmc_sessions[partition] = self.rmc(partition)
        return ch

    def active_migration(self, partition: str) -> MigrationRecord | None:
        """The partition's migration whose controller still drives it."""
        for m in self.store.active():
            if m.partition == partition and controller_alive(m):
                return m
        return None

    def migration_of(self, partition: str) -> MigrationRecord | None:
        """The migration the listings show the partition under: the live one, else one
        that stopped half way and waits for ``migrlpar -o r`` (``needs_recovery``). Until
        then both of its frames show the partition migrating, as the HMC does, and never
        as two running partitions."""
        live = self.active_migration(partition)
        if live is not None:
            return live
        stuck = [m for m in self.store.unfinished()
                 if m.partition == partition and needs_recovery(m)]
        return stuck[-1] if stuck else None

    def lpar_state(self, frame: str, info: DomainInfo) -> str:
        state = LPAR_STATE.get(info.state, "Error")
        mig = self.migration_of(info.name)
        if mig and frame in (mig.source_sys, mig.dest_sys):
            return "Migrating - Running" if state == "Running" else "Migrating - Not Activated"
        return state

    def lpar_records(self, frame: str, *, rmc: bool = True,
                     infos: list[DomainInfo] | None = None) -> list[dict[str, Any]]:
        """The frame's VIOS and partitions as HMC records; ``rmc=False`` skips the RMC
        probe (and ``rmc_state``) for callers that only need names and IDs; ``infos``: the
        frame's domains when the caller has just listed them (``domains_on``)."""
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
        if infos is None:
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
        for ch in self._rmc_sessions.values():
            ch.close()
        self._rmc_sessions.clear()
        for c in self._conns.values():
            c.close()
        self._conns.clear()
        self._frame_states.clear()


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
