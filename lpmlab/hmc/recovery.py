"""``migrlpar -o r``: reconcile an interrupted migration so the partition is defined and
running in exactly one place and no migration state is left behind.

Interruptions it handles: the controller killed mid-transfer (libvirt finishes or fails the
peer-to-peer job on its own), a frame's libvirtd killed (restarted here), the mover link cut
(the stalled job is aborted). The running copy is the truth; stale copies are removed.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from lpmlab import codes
from lpmlab.adapter import migration as mig
from lpmlab.adapter.connection import FrameConnection
from lpmlab.errors import HypervisorError, LpmlabError
from lpmlab.hmc import artifacts
from lpmlab.hmc.destination import RemoteDestination
from lpmlab.hmc.store import IN_PROGRESS_STATES, MigrationRecord, controller_alive
from lpmlab.hmc.system import Hmc, Placement
from lpmlab.hmc.transfer import postcopy_halves


@dataclass
class RecoveryReport:
    partition: str
    frame: str | None = None
    actions: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _unfinished(hmc: Hmc, partition: str) -> list[MigrationRecord]:
    return [r for r in hmc.store.latest(partition, 20)
            if r.state in IN_PROGRESS_STATES or (r.state == "Migration Failed" and
                                                 not r.stats.get("recovered"))]


def _remotes(hmc: Hmc, records: list[MigrationRecord]) -> dict[str, RemoteDestination]:
    """Destination frame -> its HMC, for the migrations that went to another HMC's frame."""
    out: dict[str, RemoteDestination] = {}
    for r in records:
        peer = r.stats.get("remote_hmc")
        if peer and r.dest_sys not in out and not hmc.manages(r.dest_sys):
            out[r.dest_sys] = RemoteDestination(hmc, r.dest_sys, peer["address"],
                                                peer.get("user") or "hscroot")
    return out


def _frames_reachable(hmc: Hmc, frames: set[str], report: RecoveryReport,
                      restart: bool) -> None:
    for name in sorted(f for f in frames if hmc.manages(f)):
        # a short probe: the usual connection retries for 10 s before giving up
        probe = FrameConnection(name, hmc.plan.frame(name).uri, connect_timeout=1.0)
        try:
            probe.ping()
            continue
        except LpmlabError as exc:
            if not restart:
                raise codes.error("HSCLL412", obj=name) from exc
        finally:
            probe.close()
        from lpmlab.fabric.lab import Lab

        Lab(hmc.plan).reprovision(limit=name, tags="hypervisor")
        hmc.frame_state(name, refresh=True)  # it may have been seen in No Connection
        hmc.conn(name).close()
        hmc.conn(name).ping()
        report.actions.append(f"restarted the hypervisor (libvirtd) of {name}")


def _abort_jobs(hmc: Hmc, partition: str, report: RecoveryReport) -> None:
    for p in hmc.placements(partition):
        if not p.info.job_active:
            continue
        dom = hmc.conn(p.frame).lookup(partition)
        if dom is None:
            continue
        with contextlib.suppress(HypervisorError):
            mig.abort(dom)
            report.actions.append(f"aborted the migration job of {partition} on {p.frame}")
        # Wait for the outgoing side only: an incoming copy left paused by a dead
        # destination daemon never finishes its job; it is removed as a stale copy below.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not any(q.info.job_active and q.info.state == "running"
                       for q in hmc.placements(partition)):
                break
            time.sleep(0.1)


def _keeper(placements: list[Placement], preferred: list[str]) -> Placement | None:
    """The copy to keep: a running one (not paused), else paused, else a defined one;
    ties go to the frames in ``preferred`` order (the last migration's source first)."""
    def rank(p: Placement) -> tuple[int, int, int]:
        state = {"running": 0, "paused": 1, "pmsuspended": 1}.get(p.info.state, 2)
        pref = preferred.index(p.frame) if p.frame in preferred else len(preferred)
        return (state, 0 if p.info.persistent else 1, pref)
    return min(placements, key=rank) if placements else None


def _postcopy_keeper(partition: str, placements: list[Placement], halves: dict[str, str],
                     records: list[MigrationRecord], force: bool) -> Placement:
    """The copy to boot again after an interrupted post-copy: the destination's, which ran
    (and wrote to the shared disk) after the switch — resuming the source would run an older
    memory against a newer disk. libvirt here cannot resume the post-copy itself."""
    rec = next((r for r in records if {r.source_sys, r.dest_sys} >= set(halves)), None)
    if rec is None:
        # no record names them: the source side is the one paused on the missing pages
        src = next((p.frame for p in placements
                    if p.info.postcopy == "failed" and p.info.state == "paused"),
                   next(iter(halves)))
        dest = next((p.frame for p in placements if p.frame != src), src)
    else:
        src, dest = rec.source_sys, rec.dest_sys
    if not force:
        raise codes.error("HSCLL453", obj=partition, sys=src, dest=dest,
                          detail="recovering discards its memory")
    keep = next((p for p in placements if p.frame == dest != src), None)
    if keep is None:
        raise codes.error("HSCLL414", obj=partition, sys=src,
                          detail=f"after post-copy it has no copy but the paused one on {src}")
    return keep


def recover(hmc: Hmc, partition: str, source: str, *, force: bool = False) -> RecoveryReport:
    t0 = time.monotonic()
    hmc.require_frame(source)
    report = RecoveryReport(partition)
    records = _unfinished(hmc, partition)
    incoming = [r for r in records if r.stats.get("role") == "destination"
                and not hmc.manages(r.source_sys)]
    if incoming:
        # The source's HMC drives the migration: recovering here could resume this HMC's
        # incoming copy while the source copy still runs.
        r = incoming[0]
        raise codes.error("HSCLL478", obj=partition, sys=r.source_sys,
                          hmc=r.stats.get("source_hmc"))
    live = [r for r in records if r.state in IN_PROGRESS_STATES and controller_alive(r)]
    if live and not force:
        r = live[0]
        raise codes.error("HSCLL411", obj=partition, sys=r.source_sys,
                          detail=f"controller process {r.stats.get('controller_pid')}")
    frames = {source} | {f for r in records for f in (r.source_sys, r.dest_sys)}
    _frames_reachable(hmc, frames, report, restart=force)
    remotes = _remotes(hmc, records)

    def everywhere() -> list[Placement]:
        # another HMC's frames are seen through that HMC
        out = hmc.placements(partition)
        for dest in remotes.values():
            out += [p for p in dest.placements(partition) if p.frame == dest.frame]
        return out

    placements = everywhere()
    halves = postcopy_halves(placements)
    if halves:
        keep = _postcopy_keeper(partition, placements, halves, records, force)
    else:
        _abort_jobs(hmc, partition, report)
        placements = everywhere()  # the aborts changed them
        if not placements:
            raise codes.error("HSCLL413", obj=partition)
        preferred = [r.source_sys for r in records] + [source]
        keep = _keeper(placements, preferred)
        assert keep is not None
    for p in placements:
        if p.frame == keep.frame:
            continue
        if p.frame in remotes:
            remotes[p.frame].remove_copy(partition)
            report.actions.append(f"removed the stale copy of {partition} on {p.frame} "
                                  f"({p.info.state}) through its HMC")
            continue
        dom = hmc.conn(p.frame).lookup(partition)
        if dom is None:
            continue
        mig.remove_copy(dom)
        report.actions.append(f"removed the stale copy of {partition} on {p.frame} "
                              f"({p.info.state})")
    report.frame = keep.frame
    if keep.frame in remotes:
        # the partition runs on the other HMC's frame: that HMC keeps it
        report.actions.append(f"{partition} stays on {keep.frame} ({keep.info.state}), "
                              "managed by the other HMC")
        _close_records(hmc, records, keep.frame, report, remotes)
        report.seconds = time.monotonic() - t0
        return report
    dom = hmc.domain(keep.frame, partition)
    if halves:
        # its memory was split between the frames: only its disk is whole
        for action in mig.restart(dom):
            report.actions.append(f"{action} {partition} on {keep.frame}")
        report.actions.append(f"{partition} lost what was in its memory (post-copy "
                              f"interrupted) and was booted again from its intact disk on "
                              f"{keep.frame}")
    for action in mig.make_running_and_persistent(dom):
        report.actions.append(f"{action} {partition} on {keep.frame}")
    _close_records(hmc, records, keep.frame, report, remotes)
    report.seconds = time.monotonic() - t0
    return report


def _close_records(hmc: Hmc, records: list[MigrationRecord], frame: str,
                   report: RecoveryReport, remotes: dict[str, RemoteDestination]) -> None:
    for r in records:
        for vios in (r.source_msp, r.dest_msp):
            if vios and vios in {vp.vios.name for vp in hmc.vios_plans()}:
                with contextlib.suppress(LpmlabError):
                    hmc.plan.vios(vios).mover_service().close(r.id)
        cap = (r.stats.get("controls") or {}).get("mover_bandwidth_mib")
        if cap and r.source_msp in {vp.vios.name for vp in hmc.vios_plans()}:
            # its controller died before lifting the mover link's cap (--mover-bandwidth)
            with contextlib.suppress(LpmlabError):
                hmc.plan.vios(r.source_msp).mover_service().limit_bandwidth(None)
                report.actions.append(f"lifted the {cap:g} MiB/s cap of {r.source_msp}'s "
                                      "mover link")
        r.state, r.result = "Migration Recovered", r.result or "failed"
        r.stats["recovered"] = True
        r.ended = r.ended or time.time()
        r.phase("recovered", frame=frame)
        hmc.store.save(r)
        # its folder gets the closed record (a killed controller wrote none) and the report
        with contextlib.suppress(OSError):
            artifacts.note(r.id, "recover", {"frame": frame, "actions": list(report.actions)})
            artifacts.save(r, hmc.store.samples(r.id), hmc=hmc.console.name)
        report.actions.append(f"closed migration record {r.id} ({r.source_sys} -> "
                              f"{r.dest_sys})")
        if r.dest_sys in remotes:
            with contextlib.suppress(LpmlabError):
                if remotes[r.dest_sys].recover(r):
                    report.actions.append(f"closed its record on the HMC of {r.dest_sys}")
