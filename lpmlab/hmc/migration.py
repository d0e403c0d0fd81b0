"""Active partition migration: validate, carry the stream over the MSPs, complete, record.

The stream path is set up per migration: the source MSP relay listens on the source VIOS's
lab address at a port of the destination frame's migration range and forwards over the mover
network to the destination MSP, whose relay hands it to the destination frame's QEMU.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from lpmlab import codes, log
from lpmlab.adapter import domain_xml as dx
from lpmlab.adapter import migration as mig
from lpmlab.adapter import telemetry as tele
from lpmlab.adapter.connection import job_running
from lpmlab.errors import (
    FabricError,
    HypervisorError,
    LpmlabError,
    RmcError,
)
from lpmlab.fabric import netns
from lpmlab.fabric import plan as P
from lpmlab.fabric.msp import LAB_IFACE, MOVER_IFACE, Hop
from lpmlab.hmc import artifacts, hooks, msp_settings, precopy, snapshot, transfer, vcpu
from lpmlab.hmc import validation as V
from lpmlab.hmc.attributes import MigrationAttributes
from lpmlab.hmc.destination import (
    Destination,
    Landing,
    LocalDestination,
    RemoteDestination,
    ViosRef,
)
from lpmlab.hmc.fault_trigger import FaultTrigger
from lpmlab.hmc.store import LimitReached, MigrationRecord, MspLimitReached
from lpmlab.hmc.system import Hmc
from lpmlab.topology import HMC_USER

_log = log.get("lpmlab.migration")


@dataclass
class MspPair:
    """The source MSP (a VIOS of this HMC) and the destination MSP's name (its HMC may be
    another one)."""

    source: P.ViosPlan
    dest: str


@dataclass
class MigrationResult:
    record: MigrationRecord
    wall_s: float
    stats: dict[str, Any] = field(default_factory=dict)


def named_msp(vios: list[ViosRef], name: str | None, lpar_id: int | None,
              ipaddr: object | None) -> str | None:
    """The VIOS of ``vios`` (one frame's) an ``-i`` MSP attribute (name, id or mover address)
    means; the text as given when nothing matches, so validation can name it."""
    if name is None and lpar_id is None and ipaddr is None:
        return None
    for v in vios:
        if ((name is None or v.name == name) and (lpar_id is None or v.lpar_id == lpar_id)
                and (ipaddr is None or str(v.mover_address) == str(ipaddr))):
            return v.name
    return name or (f"id {lpar_id}" if lpar_id is not None else f"ipaddr {ipaddr}")


def pick_msps(hmc: Hmc, source: str, destination: Destination,
              source_msp: str | None = None, dest_msp: str | None = None) -> MspPair:
    """The MSPs named by the user, else the first MSP VIOS of each frame."""
    src = next((vp for vp in hmc.vios_plans() if vp.vios.frame == source and vp.vios.msp
                and source_msp in (None, vp.vios.name)), None)
    if src is None:
        raise codes.error("HSCLL404", obj=source)
    dst = next((v.name for v in destination.vios() if v.msp and dest_msp in (None, v.name)),
               None)
    if dst is None:
        raise codes.error("HSCLL404", obj=destination.frame)
    return MspPair(src, dst)


class LiveMigration:
    """One active migration of one partition from ``source`` to ``dest``."""

    migration_type: V.MigrationType = "active"

    def __init__(self, hmc: Hmc, partition: str, source: str, dest: str,
                 attrs: MigrationAttributes | None = None, profile: str | None = None,
                 overrides: Mapping[str, int] | None = None,
                 wait_minutes: int | None = None,
                 controls: precopy.Controls | None = None,
                 observer: precopy.TelemetryObserver | None = None,
                 remote: tuple[str, str] | None = None) -> None:
        self.hmc = hmc
        self.partition = partition
        self.source = source
        # --ip/-u: the destination frame is another HMC's (address, user)
        self.destination: Destination = (
            RemoteDestination(hmc, dest, remote[0], remote[1]) if remote
            else LocalDestination(hmc, dest))
        self.dest = self.destination.frame
        self._landed = False
        # where the controller's time goes, step by step (the record's "timeline")
        self._marks: list[tuple[str, float]] = []
        self.attrs = attrs or MigrationAttributes()
        self.profile = profile  # -n: the profile the partition has on the destination
        self.overrides = dict(overrides or {})  # --redundantvios, --mpio, ...: 0/1/2
        # -w: minutes the partition OS may take (its hooks); 0 = no limit; HMC default 3
        minutes = hooks.DEFAULT_WAIT_MINUTES if wait_minutes is None else wait_minutes
        self.wait_s: float | None = minutes * 60.0 if minutes else None
        self.controls = controls or precopy.Controls()
        self.observer = observer
        self._schedule_stop: str | None = None  # why a schedule aborted the transfer
        self._stall_stop: str | None = None     # why the stall watch aborted it
        self.trigger: FaultTrigger | None = None  # faults armed for this migration

    def close(self) -> None:
        """Let go of what the migration held open (a session with the remote HMC)."""
        self.destination.close_session()

    def request(self) -> V.MigrationRequestView:
        a = self.attrs
        source_vios = [ViosRef(v.name, v.lpar_id, str(v.mover_address), v.msp)
                       for v in self.hmc.topology.vios_on(self.source)]
        return V.MigrationRequestView(
            self.partition, self.source, self.dest, migration_type=self.migration_type,
            dest_profile=self.profile, dest_lpar_id=a.dest_lpar_id, overrides=self.overrides,
            source_msp=named_msp(source_vios, a.source_msp_name, a.source_msp_id,
                                 a.source_msp_ipaddr),
            dest_msp=named_msp(self.destination.vios(), a.dest_msp_name, a.dest_msp_id,
                               a.dest_msp_ipaddr),
            remote_hmc=self.destination.remote,
            remote_user=(self.destination.user if isinstance(self.destination, RemoteDestination)
                         else HMC_USER),
            shared_proc_pool=a.shared_proc_pool_name or (
                None if a.shared_proc_pool_id is None else f"id {a.shared_proc_pool_id}"),
            vscsi_vios=tuple(self._mapped_vios(m.vios_name, m.vios_id)
                             for m in a.virtual_scsi_mappings or []))

    def _mapped_vios(self, name: str | None, lpar_id: int | None) -> str:
        """The destination VIOS a virtual_scsi_mappings item names (by name and/or ID); the
        text as given when none matches, so validation can name it."""
        for v in self.destination.vios():
            if (name is None or v.name == name) and (lpar_id is None or v.lpar_id == lpar_id):
                return v.name
        return name or f"id {lpar_id}"

    def snapshot(self) -> tuple[V.LabSnapshot, V.MigrationRequestView]:
        """The lab's real state for this migration: this HMC's frames read here, a remote
        destination's through its HMC."""
        hmc = self.hmc
        hmc.require_frame(self.source)
        if self.destination.remote and self.controls.postcopy:
            raise codes.error("HSCLL477")
        self.destination.open(self.partition, self.migration_type)
        self.dest = self.destination.frame
        req = self.request()
        return self.destination.add_to(snapshot.gather(hmc, req), self.source), req

    def validate(self) -> tuple[V.ValidationReport, MspPair]:
        """Every validation check against the lab's real state; raise on any error."""
        snap, req = self.snapshot()
        report = V.validate(snap, req)
        report.raise_for_errors()
        return report, pick_msps(self.hmc, self.source, self.destination, req.source_msp,
                                 req.dest_msp)

    def _claim(self, rec: MigrationRecord) -> None:
        """Record the migration and take a destination port, within the frames' limits (a
        remote destination's HMC holds its own frame to them, and gives the port)."""
        src = self.hmc.plan.frame(self.source).frame
        limits = {src.name: src.max_active_migrations if self.migration_type == "active"
                  else src.max_inactive_migrations,
                  **self.destination.claim_limits(self.migration_type)}
        local_msps = {vp.vios.name for vp in self.hmc.vios_plans()}
        msps = tuple(m for m in (rec.source_msp, rec.dest_msp) if m and m in local_msps)
        ports = self.destination.ports() if self.migration_type == "active" else None
        try:
            port = self.hmc.store.claim_port(
                rec, ports, limits=limits,
                msp_limits=msp_settings.msp_limits(self.hmc.plan.dir, msps))
        except MspLimitReached as exc:
            msp, busy = exc.args
            raise codes.error("HSCLL415", obj=msp,
                              sys=self.source if msp == rec.source_msp else self.dest,
                              detail=str(busy)) from None
        except LimitReached as exc:
            frame, busy = exc.args
            raise codes.error("HSCLL410", obj=frame, detail=str(busy)) from None
        if port is None:
            raise codes.error("HSCLL407", obj=self.dest)

    def _mark(self, step: str) -> None:
        """The step that ends now (it began at the previous mark)."""
        self._marks.append((step, time.monotonic()))

    def timeline(self, t0: float) -> list[dict[str, Any]]:
        """Each step's seconds, in order: what ``benchmarks/lab_bench.py`` breaks down."""
        out, last = [], t0
        for step, t in self._marks:
            out.append({"step": step, "s": round(t - last, 4)})
            last = t
        return out

    def run(self) -> MigrationResult:
        t0 = time.monotonic()
        started = time.time()
        report, msps = self.validate()
        self._mark("validate")
        hmc = self.hmc
        rec = MigrationRecord(self.partition, self.source, self.dest,
                              command=shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
                              source_msp=msps.source.vios.name, dest_msp=msps.dest,
                              started=started)
        rec.stats["controller_pid"] = os.getpid()
        self.destination.record_for(rec)
        self.begin_artifacts(rec)
        rec.stats["wait_s"] = self.wait_s
        rec.phase("validate", seconds=round(time.monotonic() - t0, 3),
                  warnings=[f.code for f in report.warnings])
        self._claim_or_drop(rec)
        self.trigger = FaultTrigger(hmc, rec, lambda: hmc.store.save(rec))
        self.trigger.claim()
        self._mark("record and claim")
        # one RMC channel for every OS step (hooks, processors); its TCP session moves with
        # the partition, and it reconnects if it has to
        partition_os = hooks.PartitionOS(hmc.rmc_session(self.partition), self.wait_s)
        src_msp = None
        try:
            self.os_check(partition_os, rec)
            self._mark("hooks check")
            pre = self._os_phase(partition_os, rec, "pre")
            self._mark("hooks pre")
            if partition_os.expired() or any(h.timed_out for h in pre.hooks):
                self._os_phase(partition_os, rec, "post")
                rec.state, rec.result = "Migration Stopped", "stopped"
                rec.error = f"the partition OS took longer than -w ({self.wait_s:.0f} s)"
                rec.phase("stopped", reason="-w")
                raise codes.error("HSCLL451", obj=self.partition,
                                  sys=self.source, detail=f"{self.wait_s:.0f} s")
            src_msp = msps.source.mover_service()
            self._transfer(rec, msps, partition_os)
        except LpmlabError as exc:
            rec.stats["hmc_error"] = exc.render()  # what the user was told, for the folder
            raise
        finally:
            self.trigger.close()
            partition_os.channel.close()
            if self.controls.mover_mbit is not None and src_msp is not None:
                with contextlib.suppress(FabricError):
                    src_msp.limit_bandwidth(None)
            rec.stats["hooks"] = partition_os.record()
            if rec.state in ("Migration Starting", "Migration In Progress"):
                # an error nobody expected: the record must not look alive
                rec.state, rec.result = "Migration Failed", "failed"
            rec.stats["msp_bytes"] = {}
            if src_msp is not None:
                try:
                    carried = src_msp.close(rec.id)
                    rec.stats["msp_bytes"][src_msp.name] = (carried["stream"]
                                                            + carried["return"])
                except FabricError:
                    rec.stats["msp_bytes"][src_msp.name] = None
            if self._landed:
                closing = self.destination.close(rec)
                if rec.dest_msp:
                    rec.stats["msp_bytes"][rec.dest_msp] = closing.msp_bytes
                if closing.job and not rec.stats.get("job"):
                    rec.stats["job"] = closing.job
                if closing.profile is not None:
                    rec.stats["profile"] = closing.profile
                if closing.profile_error:
                    rec.stats["profile_error"] = closing.profile_error
            self._mark("MSPs and destination closed")
            rec.ended = time.time()
            rec.stats["wall_s"] = round(time.monotonic() - t0, 3)
            rec.stats["timeline"] = self.timeline(t0)
            hmc.store.save(rec)
            self.keep_artifacts(rec)
        return MigrationResult(rec, rec.stats["wall_s"], rec.stats.get("job", {}))

    def begin_artifacts(self, rec: MigrationRecord) -> None:
        """From here on the migration's log goes to its artifact folder too."""
        log.bind_migration(rec.id, artifacts.folder(rec.id))
        _log.info("migration started", partition=self.partition, source=self.source,
                  dest=self.dest, type=self.migration_type, remote_hmc=self.destination.remote,
                  hmc=self.hmc.console.name)

    def _claim_or_drop(self, rec: MigrationRecord) -> None:
        """Claim a port; a refused claim started no migration, so it leaves no folder."""
        try:
            self._claim(rec)
        except LpmlabError:
            log.unbind_migration(rec.id)
            shutil.rmtree(artifacts.folder(rec.id), ignore_errors=True)
            raise

    def keep_artifacts(self, rec: MigrationRecord) -> None:
        """The migration's folder, kept beyond the lab (lpmlab.hmc.artifacts)."""
        _log.info("migration ended", state=rec.state, result=rec.result, error=rec.error,
                  wall_s=rec.stats.get("wall_s"))
        tail = None
        if rec.result != "success":
            from lpmlab.fabric.lab import Lab

            tail = Lab(self.hmc.plan).console_tail(self.partition, 60)
        try:
            artifacts.save(rec, self.hmc.store.samples(rec.id), hmc=self.hmc.console.name,
                           console_tail=tail)
        except OSError as exc:
            _log.warning("artifact folder not written", error=str(exc))
        finally:
            log.unbind_migration(rec.id)

    def validate_os(self) -> hooks.PhaseResult:
        """``-o v`` of a running partition: its check hooks too; then, since no migration
        follows a validation, its undocheck hooks release what check prepared."""
        partition_os = hooks.PartitionOS(self.hmc.rmc_session(self.partition), self.wait_s)
        try:
            self.os_check(partition_os, None)
            partition_os.run("undocheck", at_least=hooks.PartitionOS.POST_MIN_S)
            return partition_os.results[0]
        finally:
            partition_os.channel.close()

    def os_check(self, partition_os: hooks.PartitionOS, rec: MigrationRecord | None) -> None:
        """The check phase: a failing hook (or an OS that cannot answer) refuses the
        migration; then the undocheck hooks run and nothing moves."""
        res = self._os_phase(partition_os, rec, "check")
        if not res.failed and not res.error:
            return
        self._os_phase(partition_os, rec, "undocheck")
        why = ", ".join(f"{h.hook} exited {h.rc}" + (" (timed out)" if h.timed_out else "")
                        for h in res.failed) or str(res.error)
        if rec is not None:
            rec.state, rec.result, rec.error = "Migration Failed", "failed", why
            rec.phase("failed", error=why)
        err = codes.error("HSCLL450", obj=self.partition, sys=self.source,
                          detail=why)
        err.evidence = res.render()
        raise err

    def _os_phase(self, partition_os: hooks.PartitionOS, rec: MigrationRecord | None,
                  phase: str) -> hooks.PhaseResult:
        if rec is not None and self.trigger is not None:
            self.trigger.at(f"phase:{phase}")
        res = partition_os.run(phase, at_least=hooks.PartitionOS.POST_MIN_S
                               if phase in ("post", "undocheck") else 0.0)
        if rec is not None:
            rec.phase(f"hooks {phase}", seconds=round(res.seconds, 3), error=res.error,
                      hooks=[{"hook": h.hook, "rc": h.rc, "seconds": h.seconds,
                              "timed_out": h.timed_out} for h in res.hooks])
        return res

    def _transfer(self, rec: MigrationRecord, msps: MspPair,
                  partition_os: hooks.PartitionOS) -> None:
        hmc = self.hmc
        dom = hmc.domain(self.source, self.partition)  # validate() found it; still there?
        landing = self.destination.land(rec, msps.dest, self.partition)
        self._landed = True
        vplan = vcpu.plan_for(hmc.conn(self.source).vcpu_count(dom),
                              self.destination.qemu_version())
        rec.stats["vcpu"] = vplan.record()
        rmc = partition_os.channel if vplan.method == vcpu.WORKAROUND else None
        try:
            if rmc is not None:
                rec.phase("secondary processors offline")
                vcpu.take_secondaries_offline(rmc, vplan, self.partition)
            req = self._stream(rec, msps, landing, dom)
            rec.state = "Migration In Progress"
            rec.phase("transfer")
            hmc.store.save(rec)
            self._mark("transfer setup (landing, MSP hops, XML)")
            transfer_start = time.monotonic()
            final = self._watched_migrate(dom, req, rec)
            transfer_end = time.monotonic()
            self._mark("telemetry closed, final statistics")
            rec.stats["job"] = _clean(final)
            self._complete(rec, partition_os, rmc, vplan, (transfer_start, transfer_end))
        except (HypervisorError, FabricError, RmcError) as exc:
            self._fail_transfer(exc, rec, dom, partition_os, rmc, vplan)

    def _stream(self, rec: MigrationRecord, msps: MspPair, landing: Landing,
                dom: Any) -> mig.MigrationRequest:
        """The stream's path (the source MSP's hop to the destination MSP, the mover
        bandwidth cap) and the libvirt request that sends the partition down it."""
        hmc, port, sv = self.hmc, landing.port, msps.source.vios
        if not sv.mover_address:
            raise codes.error("HSCLL405", obj=sv.name)
        if not (landing.dest_msp_mover_address and port):
            raise codes.error("HSCLL405", obj=msps.dest)
        src_msp = msps.source.mover_service()
        src_msp.forward(Hop(rec.id, LAB_IFACE, (str(sv.address), port), MOVER_IFACE,
                            str(sv.mover_address), (landing.dest_msp_mover_address, port)))
        dest_xml = dx.retarget_disk(hmc.conn(self.source).migratable_xml(dom), landing.storage)
        if self.attrs.dest_lpar_id is not None:
            # the HMC gives the partition the requested ID on the destination
            dest_xml = dx.set_metadata(dest_xml, lpar_id=str(self.attrs.dest_lpar_id))
        c = self.controls
        rec.stats["controls"] = c.record()
        if c.mover_mbit is not None:
            src_msp.limit_bandwidth(c.mover_mbit)
        return mig.MigrationRequest(
            dest_peer_uri=landing.peer_uri, migrate_uri=f"tcp://{sv.address}:{port}",
            listen_address=landing.frame_address, dest_xml=dest_xml,
            bandwidth_mib=c.max_speed_mib or 0, auto_converge=c.auto_converge,
            postcopy=c.postcopy)

    def _complete(self, rec: MigrationRecord, partition_os: hooks.PartitionOS, rmc: Any,
                  vplan: vcpu.VcpuPlan, window: tuple[float, float]) -> None:
        """After the switch: processors back, the profile kept, the copy on the destination
        checked, the post hooks run there, the guest's own view of the transfer read."""
        if rmc is not None:
            rec.phase("secondary processors online")
            try:
                vcpu.bring_secondaries_online(rmc, vplan, self.partition)
            except RmcError as exc:
                # the partition did move: a warning for the record, not a failure
                rec.stats["vcpu_error"] = exc.message
            rec.stats["vcpu"] = vplan.record()
        # as PowerVM: the current configuration becomes the -n profile (else replaces
        # the last activated one)
        try:
            rec.stats["profile"] = self.destination.keep_profile(self.partition, self.profile)
        except LpmlabError as exc:
            # the partition did move: a warning for the record, not a failure
            rec.stats["profile_error"] = exc.message
        self._require_running_on_dest(rec)
        self._mark("after the switch (processors, profile, destination check)")
        self._os_phase(partition_os, rec, "post")  # on the destination, after resume
        self._mark("hooks post")
        # after the post hooks: the dirtier has written its passes file (each second)
        self._guest_slowdown(partition_os, rec, *window)
        self._mark("guest's own view read")
        rec.phase("complete")
        rec.state, rec.result = "Migration Complete", "success"

    def _fail_transfer(self, exc: LpmlabError, rec: MigrationRecord, dom: Any,
                       partition_os: hooks.PartitionOS, rmc: Any,
                       vplan: vcpu.VcpuPlan) -> NoReturn:
        """After a failed transfer: the partition left in exactly one place (or both halves
        of a broken post-copy kept), its post hooks run where it runs, the record says what
        happened, and the HMC error that tells it is raised."""
        hmc = self.hmc
        message = (f"the transfer stalled: {self._stall_stop}" if self._stall_stop
                   else exc.message if self._schedule_stop is None
                   else f"pre-copy did not converge: {self._schedule_stop}")
        if rmc is not None:
            # still (or again) on the source: give the partition its processors back
            with contextlib.suppress(RmcError):
                vcpu.bring_secondaries_online(rmc, vplan, self.partition)
        rec.stats["job"] = _clean(mig.completed_stats(dom))
        rec.error = message
        halves = transfer.postcopy_halves(hmc.placements(self.partition))
        if halves:
            # Each copy holds part of the memory: neither may be removed, and its OS
            # cannot answer hooks while it waits for pages that will not come.
            rec.state, rec.result = "Migration Failed", "failed"
            rec.stats["postcopy_failed"] = halves
            rec.phase("failed", error=message, postcopy=halves)
            raise codes.error("HSCLL453", obj=self.partition,
                              sys=self.source, dest=self.dest, detail=message) from exc
        where = settle_after_failure(hmc, self.partition, self.source, self.dest,
                                     self.destination
                                     if isinstance(self.destination, RemoteDestination)
                                     else None)
        rec.phase("settled", frame=where)
        if where is not None:
            self._os_phase(partition_os, rec, "post")  # post runs after a failure too
        stored = hmc.store.get(rec.id)
        if stored is not None and stored.state == "Migration Stopping":
            rec.state, rec.result = "Migration Stopped", "stopped"
            rec.phase("stopped")
            raise codes.error("HSCLL408", obj=self.partition,
                              sys=self.source, detail="migrlpar -o s") from exc
        if self._schedule_stop is not None and where == self.source:
            rec.state, rec.result = "Migration Stopped", "stopped"
            rec.phase("stopped", reason=message)
            raise codes.error("HSCLL452", obj=self.partition,
                              sys=self.source, detail=self._schedule_stop,
                              id=rec.id) from exc
        rec.state, rec.result = "Migration Failed", "failed"
        rec.phase("failed", error=message)
        if self._stall_stop is not None and where == self.source:
            raise codes.error("HSCLL455", obj=self.partition, sys=self.source,
                              detail=self._stall_stop) from exc
        if where == self.source:
            raise codes.error("HSCLL406", obj=self.partition, sys=self.source,
                              detail=message) from exc
        raise codes.error("HSCLL414", obj=self.partition, sys=self.source,
                          detail=message) from exc

    def _require_running_on_dest(self, rec: MigrationRecord) -> None:
        """After the switch the partition lives only on the destination: if that copy died
        (its QEMU killed as it resumed), its post hooks would wait out every RMC timeout and
        the migration would still look a success."""
        states = [p.info.state for p in self.destination.placements(self.partition)]
        if any(s in ("running", "paused") for s in states):
            return
        detail = f"state {'/'.join(states)}" if states else "not defined there"
        rec.error = f"not running on {self.dest} after the switch: {detail}"
        rec.state, rec.result = "Migration Failed", "failed"
        rec.phase("failed", error=rec.error)
        raise codes.error("HSCLL456", obj=self.partition, dest=self.dest, detail=detail)

    def _guest_slowdown(self, partition_os: hooks.PartitionOS, rec: MigrationRecord,
                        start: float, end: float) -> None:
        """The partition's own view of the transfer (when its dirtier runs): how much slower
        its passes over its working set were, the longest it was held still."""
        from lpmlab.hmc import workload

        try:
            rows = workload.guest_passes(partition_os.channel)
        except RmcError:
            return
        if rows:
            rec.stats["guest"] = workload.slowdown(rows, start, end)

    def _watched_migrate(self, dom: Any, req: mig.MigrationRequest,
                         rec: MigrationRecord) -> dict[str, Any]:
        """The libvirt migration with its telemetry: samples stored with the record, the
        schedule's actions applied while the job runs, the observer told. Returns the
        completed job's statistics, as the destination keeps them."""
        telemetry = precopy.Telemetry(self.partition, rec.id, self.hmc.store, self.controls,
                                      self.observer)
        trigger = self.trigger
        watcher = tele.JobWatcher(dom, telemetry.on_sample,
                                  on_job=lambda: self._apply_all(watcher,
                                                                 telemetry.runner.initial()),
                                  on_switchover=(lambda: trigger.at("switchover"))
                                  if trigger is not None and trigger.waiting else None)
        telemetry.act = lambda a: self._apply_all(watcher, [a])
        if trigger is not None and trigger.waiting:
            telemetry.taps.append(trigger.on_sample)
        guard = None
        if req.postcopy:
            port = rec.port or 0
            guard = transfer.PostcopyGuard(dom, lambda: self.destination.reset_stream(port))
            guard.start()
        watcher.start()
        ok = False
        final: dict[str, Any] = {}
        try:
            self._mark("telemetry started")
            self._migrate_unless_stalled(dom, req, watcher, telemetry, rec.port or 0)
            self._mark("libvirt migration (migrateToURI3)")
            ok = True
        finally:
            if guard is not None:
                guard.stop()
                if guard.resets:
                    rec.phase("destination end of the broken post-copy stream reset",
                              connections=sum(guard.resets))
            # only a finished job sends job-completed; a failed one has nothing to wait for
            watcher.stop(wait_completed_s=1.0 if ok else 0.0)
            if ok:
                final = self.destination.final_stats(self.partition)
                if watcher.completed is None and final:
                    # the job-completed event did not come: the kept statistics stand in
                    telemetry.on_sample(tele.sample_from_stats(
                        final, t=watcher.job_end(final, watcher.now()), kind="completed",
                        iteration=watcher.events[-1][1] if watcher.events else None))
            telemetry.flush()
            rec.stats["telemetry"] = telemetry.record()
            rec.stats["precopy"] = telemetry.summary()
            if watcher.errors:
                rec.stats["telemetry"]["control_errors"] += watcher.errors
        return final

    @staticmethod
    def _abort_quietly(watcher: tele.JobWatcher) -> None:
        with contextlib.suppress(HypervisorError):
            watcher.abort()

    def _migrate_unless_stalled(self, dom: Any, req: mig.MigrationRequest,
                                watcher: tele.JobWatcher, telemetry: precopy.Telemetry,
                                port: int) -> None:
        frame_ns = self.hmc.plan.frame(self.source).ns
        transfer.migrate_unless_stalled(
            dom, req, watcher, telemetry, lambda a: self._apply_all(watcher, [a]),
            lambda: netns.reset_tcp(frame_ns, port, remote=True) if port else 0)

    def _apply_all(self, watcher: tele.JobWatcher, actions: list[precopy.Action]) -> None:
        for a in actions:
            if a.kind == "downtime" and a.value is not None:
                watcher.set_max_downtime(a.value)
            elif a.kind == "postcopy":
                watcher.start_postcopy()
            elif a.kind == "abort":
                self._schedule_stop = (f"schedule {self.controls.schedule} stopped it after "
                                       f"{a.reason}")
                watcher.abort()
            elif a.kind == "stall":
                self._stall_stop = a.reason
                _log.info("transfer stalled: aborting it", reason=a.reason)
                # the abort itself may wait for a blocked monitor: not in this thread
                threading.Thread(target=self._abort_quietly, args=(watcher,),
                                 name="lpm-stall-abort", daemon=True).start()


SETTLE_SECONDS = 15.0


def settle_after_failure(hmc: Hmc, partition: str, source: str, dest: str,
                         remote: RemoteDestination | None = None) -> str | None:
    """After a failed transfer, leave the partition in exactly one place and say where.

    libvirt tears the destination copy down on its own, but a moment after the call
    returns; the next command must not find a half-gone copy there. When the source copy
    runs, a destination copy still present after the deadline is removed (the disk is
    shared: nothing is lost). Anything else (the source copy gone, both paused) is left
    for ``migrlpar -o r``, which decides with the whole history.
    """
    def copies() -> dict[str, Any]:
        # a remote destination's copies are known only through its HMC
        out = {p.frame: p.info for p in hmc.placements(partition)}
        if remote is not None:
            with contextlib.suppress(LpmlabError):
                out.update({p.frame: p.info for p in remote.placements(partition)})
        return out

    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        frames = copies()
        src, dst = frames.get(source), frames.get(dest)
        if dst is None or src is None or src.state != "running":
            break
        if time.monotonic() >= deadline:
            if remote is not None:
                with contextlib.suppress(LpmlabError):
                    remote.remove_copy(partition)
                break
            dom = hmc.conn(dest).lookup(partition)
            if dom is not None:
                with contextlib.suppress(HypervisorError):
                    mig.remove_copy(dom)
            break
        time.sleep(0.2)
    frames = copies()
    running = [f for f, info in frames.items() if info.state == "running"]
    return running[0] if len(running) == 1 and len(frames) == 1 else None


def stop(hmc: Hmc, partition: str, source: str) -> MigrationRecord:
    """``migrlpar -o s``: abort the transfer; the partition keeps running on the source."""
    hmc.require_frame(source)
    rec = hmc.active_migration(partition)
    if rec is None or rec.source_sys != source:
        raise codes.error("HSCLL409", obj=partition, sys=source)
    dom = hmc.conn(source).lookup(partition)
    if dom is None:
        raise codes.error("HSCLL409", obj=partition, sys=source)
    if mig.postcopy_phase(dom) is not None:
        # after the switch the destination runs the partition: there is nothing to go back to
        raise codes.error("HSCLL454", obj=partition, sys=source,
                          dest=rec.dest_sys)
    hmc.store.set_state(rec.id, "Migration Stopping")
    _log.info("stopping the migration", migration=rec.id, partition=partition)
    with contextlib.suppress(OSError):
        artifacts.note(rec.id, "stop", {"partition": partition, "source": source,
                                        "requested_by": rec.requested_by, "at": time.time()})
    try:
        mig.abort(dom)
    except HypervisorError as exc:
        # The transfer ended on its own, or switched to post-copy, since our read.
        hmc.store.set_state(rec.id, rec.state)
        if mig.postcopy_phase(dom) is not None:
            raise codes.error("HSCLL454", obj=partition, sys=source, dest=rec.dest_sys) from exc
        if job_running(dom) is False:
            raise codes.error("HSCLL409", obj=partition, sys=source) from exc
        # the job goes on (or its frame stopped answering): not "nothing to stop"
        raise codes.error("HSCLL457", obj=partition, sys=source, detail=exc.message) from exc
    return rec


def _clean(stats: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe job statistics."""
    return {k: v for k, v in stats.items() if isinstance(v, (int, float, str, bool))}
