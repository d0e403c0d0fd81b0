"""The lab's real state as a validation snapshot: libvirt on each frame, the VIOS
namespaces, the MSPs' mover links, RMC to the partition, and migrations in flight.

Everything is read live, once per validation, cheaply enough for ``migrlpar -o v`` to stay
well under a second (the expensive libvirt calls are avoided: see DomainInfo's metadata).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import subprocess
import threading
from pathlib import Path

from lpmlab.errors import FabricError, LpmlabError
from lpmlab.fabric import netns
from lpmlab.fabric import plan as P
from lpmlab.hmc import msp_settings, vcpu
from lpmlab.hmc.system import Hmc, pidfile_alive
from lpmlab.hmc.validation import (
    FrameState,
    LabSnapshot,
    MigrationRequestView,
    PartitionState,
    ViosState,
)


def _pseries_machine(hmc: Hmc, frame: str) -> str:
    caps = hmc.conn(frame).conn.getCapabilities()
    m = re.search(r"<machine canonical='(pseries-[0-9.]+)'[^>]*>pseries</machine>", caps)
    return m.group(1) if m else "unknown"


def _frame_state(hmc: Hmc, name: str, copies: list[PartitionState]) -> FrameState:
    fp = hmc.plan.frame(name)
    f = fp.frame
    host_uuid, machine, reachable = "", "unknown", False
    # the bounded probe first: a dead daemon must not cost the connection's retries
    if hmc.frame_state(name) == "Operating":
        try:
            host_uuid = hmc.conn(name).host_uuid()
            machine = _pseries_machine(hmc, name)
            reachable = True
        except LpmlabError:
            pass
    here = [p for p in copies if p.frame == name]
    vios = hmc.topology.vios_on(name)
    active = hmc.migrations_on(name)
    version = hmc.qemu_version(name)
    used_procs = sum(p.procs for p in here if p.state != "shutoff")
    return FrameState(
        name=name, host_uuid=host_uuid, reachable=reachable,
        mobility_capable=f.mobility_capable, battery_power=f.battery_power,
        lmb_size_mb=f.lmb_size_mb, memory_mb=f.memory_mb,
        memory_free_mb=f.memory_mb - sum(p.memory_mb for p in here if p.state != "shutoff"),
        processors=f.processors, processors_free=f.processors - used_procs,
        proc_compat_modes=f.proc_compat_modes,
        max_active_migrations=f.max_active_migrations,
        max_inactive_migrations=f.max_inactive_migrations,
        active_migrations=sum(1 for m in active if m.migration_type == "active"),
        inactive_migrations=sum(1 for m in active if m.migration_type == "inactive"),
        pseries_machine=machine, qemu_version=".".join(map(str, version)),
        shared_proc_pools={"DefaultPool": float(f.processors - used_procs)},
        partition_names=frozenset([p.name for p in here] + [v.name for v in vios]),
        partition_ids=frozenset([p.lpar_id for p in here] + [v.lpar_id for v in vios]),
        vcpu_quiesce_bug=vcpu.has_quiesce_bug(version),
        bridged_vlans=_bridged_vlans(fp.ns),
        partition_uuids={p.uuid: p.name for p in here if p.uuid},
    )


def _bridged_vlans(ns: str) -> frozenset[int]:
    """The SEA bridge carries the untagged lab network (PVID 1) while it is up."""
    if not netns.exists(ns):
        return frozenset()
    try:
        link = netns.run_in(ns, ["ip", "-o", "link", "show", P.SEA_BRIDGE], check=False,
                            timeout=5)
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    up = link.returncode == 0 and ",UP" in link.stdout and "state DOWN" not in link.stdout
    return frozenset({1}) if up else frozenset()


def _partitions(hmc: Hmc) -> list[PartitionState]:
    """Every copy of every partition on every frame (a migrating partition has two), with
    ``rmc_active`` unknown (False): a validation probes its subject's (``_with_rmc``)."""
    out = []
    active = {m.partition for m in hmc.store.active()}
    for fp in hmc.frames():
        if hmc.frame_state(fp.frame.name) != "Operating":
            continue  # its FrameState says unreachable (HSCLL502); its copies are unknown
        conn = hmc.conn(fp.frame.name)
        try:
            infos = hmc.domains_on(fp.frame.name)
        except LpmlabError:
            continue  # it died since the probe
        for info in infos:
            try:
                topo = hmc.topology.partition(info.name)
            except KeyError:
                continue
            md = info.metadata
            procs, mem = topo.procs, topo.memory_mb
            dom = conn.lookup(info.name)
            if dom is not None:
                with contextlib.suppress(LpmlabError):
                    procs = conn.vcpu_count(dom)
            out.append(PartitionState(
                name=info.name, lpar_id=int(md.get("lpar_id", topo.lpar_id)),
                frame=fp.frame.name, state=info.state, memory_mb=mem, procs=procs,
                proc_compat_mode=md.get("proc_compat_mode", topo.proc_compat_mode),
                rmc_active=False, migration_disabled=md.get("migration_disabled") == "1",
                migrating=info.name in active or info.job_active,
                luns=(f"{topo.name}.img",) if topo.disk else (),
                vscsi_adapters=1 if topo.disk else 0, desired_memory_mb=mem,
                min_memory_mb=mem, max_memory_mb=mem, desired_procs=procs, min_procs=procs,
                max_procs=procs, profile=md.get("profile", "default_profile"),
                uuid=info.uuid))
    return out


def stand_ins(copies: list[PartitionState]) -> dict[str, PartitionState]:
    """One copy per partition: the running one (a migration's incoming copy is paused, a
    leftover is shut off); the first listed on a tie. The other copies still count on their
    frames (names, IDs, memory) through ``_frame_state``."""
    rank = {"running": 0, "paused": 1, "pmsuspended": 1}
    out: dict[str, PartitionState] = {}
    for p in copies:
        have = out.get(p.name)
        if have is None or rank.get(p.state, 2) < rank.get(have.state, 2):
            out[p.name] = p
    return out


class _RmcProbe:
    """``_rmc_answers`` in a thread, started first: the SSH handshake with the partition is
    the slowest read of a validation, and the frames and VIOS are read meanwhile."""

    def __init__(self, hmc: Hmc, name: str) -> None:
        self.answers = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._probe, args=(hmc, name),
                                        name=f"rmc-probe-{name}", daemon=True)
        self._thread.start()

    def _probe(self, hmc: Hmc, name: str) -> None:
        try:
            self.answers = _rmc_answers(hmc, name)
        except BaseException as exc:  # raised where the answer is used
            self.error = exc

    def join(self) -> None:
        self._thread.join(10)  # _rmc_answers's own timeouts end it sooner

    def result(self) -> bool:
        self.join()
        if self.error is not None:
            raise self.error
        return self.answers


def _with_rmc(copies: list[PartitionState], subject: str,
              probe: _RmcProbe | None) -> list[PartitionState]:
    """The subject's running copy marked with what the RMC probe found (the probe of a
    partition that is not running is not asked)."""
    if probe is None:
        return copies
    if not any(c.name == subject and c.state == "running" for c in copies):
        probe.join()  # its session must not outlive the HMC that closes it
        return copies
    answers = probe.result()
    return [dataclasses.replace(c, rmc_active=answers)
            if c.name == subject and c.state == "running" else c for c in copies]


def _rmc_answers(hmc: Hmc, name: str) -> bool:
    """The partition's RMC session comes up (its SSH server authenticates the HMC's key); it
    stays open for the hook phases that follow, which are the first commands run on it."""
    ch = hmc.rmc_session(name)
    try:
        ch.connect(timeout=3)
        return True
    except LpmlabError:
        ch.close()
        return False


def _served_luns(vp: P.ViosPlan, san_dir: Path) -> frozenset[str]:
    """LUN ids (SAN file names) the VIOS's iSCSI target really exports, read from its tgtd:
    a LUN is served only when a target of this VIOS has the shared SAN file as backing."""
    cp = netns.run_in(vp.ns, ["tgtadm", "-C", str(vp.tgt_control_port), "--lld", "iscsi",
                              "--mode", "target", "--op", "show"], check=False, timeout=5)
    if cp.returncode != 0:
        return frozenset()
    out = set()
    for line in cp.stdout.splitlines():
        line = line.strip()
        if line.startswith("Backing store path:"):
            path = Path(line.split(":", 1)[1].strip())
            if path.parent == san_dir:
                out.add(path.name)
    return frozenset(out)


def _vios(hmc: Hmc) -> dict[str, ViosState]:
    luns = frozenset(f"{p.name}.img" for p in hmc.topology.partitions if p.disk
                     and (hmc.plan.san_dir / f"{p.name}.img").exists())
    active = hmc.store.active()
    out = {}
    for vp in hmc.vios_plans():
        v = vp.vios
        up = netns.exists(vp.ns)
        link_up = False
        if v.msp and up:
            try:
                vp.mover_service().check()
                link_up = True
            except FabricError:
                link_up = False
        settings = msp_settings.msp(hmc.plan.dir, v.name)
        out[v.name] = ViosState(
            name=v.name, frame=v.frame, lpar_id=v.lpar_id,
            running=up and pidfile_alive(vp.dir / "tgtd.pid"), rmc_active=up, msp=v.msp,
            mover_address=str(v.mover_address) if v.mover_address else None,
            mover_link_up=link_up, time_ref=v.time_ref,
            serves_luns=(luns & _served_luns(vp, hmc.plan.san_dir)) if up else frozenset(),
            num_active_migrations_configured=settings.num_active_migrations_configured,
            active_migrations=sum(1 for m in active if v.name in (m.source_msp, m.dest_msp)))
    return out


def _mover_reachable(hmc: Hmc, src: str, dst: str) -> dict[tuple[str, str], bool]:
    """(source MSP, destination MSP) -> a TCP connection attempt over the mover network gets
    an answer (a refusal counts: the peer's stack answered)."""
    out = {}
    for a in hmc.vios_plans():
        for b in hmc.vios_plans():
            if (a.vios.frame, b.vios.frame) != (src, dst) or not (a.vios.msp and b.vios.msp):
                continue
            out[(a.vios.name, b.vios.name)] = _answers(a.ns, str(b.vios.mover_address))
    return out


def _answers(ns: str, addr: str) -> bool:
    if not netns.exists(ns):
        return False
    try:
        netns.connect_in(ns, addr, 9, timeout=0.5).close()  # discard port: nothing listens
        return True
    except FabricError as exc:
        return isinstance(exc.__cause__, ConnectionRefusedError) or "refused" in exc.message


def gather(hmc: Hmc, request: MigrationRequestView) -> LabSnapshot:
    probe = (_RmcProbe(hmc, request.partition) if request.migration_type == "active"
             else None)
    copies = _partitions(hmc)
    frames = {fp.frame.name: _frame_state(hmc, fp.frame.name, copies) for fp in hmc.frames()}
    vios = _vios(hmc)
    mover = _mover_reachable(hmc, request.source, request.dest)
    return LabSnapshot(frames=frames, vios=vios,
                       partitions=stand_ins(_with_rmc(copies, request.partition, probe)),
                       mover_reachable=mover, storage_shared=_luns(hmc))


def inventory(hmc: Hmc) -> LabSnapshot:
    """Frames, VIOS and partitions without the probes a validation adds (RMC to the
    partition, TCP over the mover network): what the lslparmigr resource listings read."""
    copies = _partitions(hmc)
    frames = {fp.frame.name: _frame_state(hmc, fp.frame.name, copies) for fp in hmc.frames()}
    return LabSnapshot(frames=frames, vios=_vios(hmc), partitions=stand_ins(copies),
                       storage_shared=_luns(hmc))


def _luns(hmc: Hmc) -> dict[str, bool]:
    return {f"{p.name}.img": (hmc.plan.san_dir / f"{p.name}.img").exists()
            for p in hmc.topology.partitions if p.disk}




def partition_copies(hmc: Hmc) -> list[PartitionState]:
    """Every copy of every partition on this HMC's frames, without RMC probes."""
    return _partitions(hmc)


frame_state = _frame_state
vios_states = _vios
mover_answers = _answers
