"""Inactive partition migration: a Not Activated partition's definition and profiles move to
the destination (libvirt offline migration); its storage stays where it is, shared.

``inactive_prof_policy`` (``-i``, else the managed system's setting) says how the partition is
sized on the destination: ``config`` keeps its last activated configuration, ``prof`` takes the
desired values of its profile (the ``-n`` one, else the last activated one).
"""

from __future__ import annotations

import os
import shlex
import sys
import time

from lpmlab import codes
from lpmlab.adapter import domain_xml as dx
from lpmlab.adapter import migration as mig
from lpmlab.errors import HypervisorError, LpmlabError
from lpmlab.hmc import msp_settings, profiles
from lpmlab.hmc import validation as V
from lpmlab.hmc.destination import Landing, RemoteDestination
from lpmlab.hmc.migration import LiveMigration, MigrationResult, MspPair
from lpmlab.hmc.store import MigrationRecord
from lpmlab.topology import Profile


class InactiveMigration(LiveMigration):
    """One inactive migration of one partition from ``source`` to ``dest``."""

    migration_type = "inactive"

    def policy(self) -> str:
        if self.attrs.inactive_prof_policy:
            return self.attrs.inactive_prof_policy
        return msp_settings.inactive_prof_policy(self.hmc.plan.dir, self.source)

    def _dest_xml(self, rec: MigrationRecord, landing: Landing) -> str:
        hmc = self.hmc
        conn = hmc.conn(self.source)
        dom = hmc.domain(self.source, self.partition)  # validate() found it; still there?
        info = conn.info(dom)
        xml = dx.retarget_disk(mig.inactive_xml(dom), landing.storage)
        if self.attrs.dest_lpar_id is not None:
            xml = dx.set_metadata(xml, lpar_id=str(self.attrs.dest_lpar_id))
        stored = profiles.stored(hmc, info)
        last = info.metadata.get("profile") or profiles.DEFAULT_PROFILE
        name = self.profile or last
        prof = next((p for p in stored if p.name == name), None)
        policy = self.policy()
        rec.stats["inactive_prof_policy"] = policy
        if policy == "prof":
            prof = profiles.find_profile(hmc, self.source, info, name)
            # libvirt's offline migration keeps the guest ABI (memory, vCPUs): the resize is
            # a redefinition on the destination once the definition is there
            self.resize_to = prof
            xml = dx.set_metadata(xml, proc_compat_mode=prof.lpar_proc_compat_mode)
            rec.stats["sized_by"] = f"profile {prof.name}"
        else:
            rec.stats["sized_by"] = "last activated configuration"
            if prof is None:
                # -n names a new profile: it holds the configuration the partition moves with
                memory_mb = dom.maxMemory() // 1024
                procs = hmc.conn(self.source).vcpu_count(dom)
                mode = info.metadata.get("proc_compat_mode", "default")
                prof = Profile(name, memory_mb, memory_mb, memory_mb, procs, procs, procs, mode)
                xml = dx.set_profiles(xml, tuple([*(p.as_attrs() for p in stored),
                                                  prof.as_attrs()]))
        rec.stats["profile"] = name
        return dx.set_metadata(xml, profile=name)

    def validate(self) -> tuple[V.ValidationReport, MspPair | None]:  # type: ignore[override]
        """Every validation check; an inactive migration moves no stream, so needs no MSP."""
        snap, req = self.snapshot()
        report = V.validate(snap, req)
        report.raise_for_errors()
        return report, None

    resize_to: Profile | None = None

    def _where(self) -> list[str]:
        """The frames the partition is defined on (a remote destination's, through its
        HMC)."""
        where = [p.frame for p in self.hmc.placements(self.partition)]
        if isinstance(self.destination, RemoteDestination):
            where += [p.frame for p in self.destination.placements(self.partition)]
        return where

    def run(self) -> MigrationResult:
        t0 = time.monotonic()
        report, _ = self.validate()
        hmc = self.hmc
        rec = MigrationRecord(self.partition, self.source, self.dest,
                              migration_type="inactive",
                              command=shlex.join([os.path.basename(sys.argv[0]),
                                                  *sys.argv[1:]]))
        rec.stats["controller_pid"] = os.getpid()
        self.destination.record_for(rec)
        self.begin_artifacts(rec)
        rec.phase("validate", seconds=round(time.monotonic() - t0, 3),
                  warnings=[f.code for f in report.warnings])
        self._claim_or_drop(rec)
        try:
            landing = self.destination.land(rec, None, self.partition)
            self._landed = True
            dest_xml = self._dest_xml(rec, landing)
            rec.state = "Migration In Progress"
            rec.phase("transfer")
            hmc.store.save(rec)
            dom = hmc.domain(self.source, self.partition)
            mig.migrate_offline(dom, landing.peer_uri, dest_xml)
            where = self._where()
            if where != [self.dest]:
                raise HypervisorError(f"after the offline migration {self.partition} is "
                                      f"defined on {', '.join(where) or 'no frame'}")
            if self.resize_to is not None:
                rec.phase("resize", memory_mb=self.resize_to.desired_mem,
                          procs=self.resize_to.desired_procs)
                # libvirt's offline migration keeps the ABI: the resize is a redefinition
                self.destination.resize(self.partition, self.resize_to.desired_mem,
                                        self.resize_to.desired_procs)
            rec.phase("complete")
            rec.state, rec.result = "Migration Complete", "success"
        except LpmlabError as exc:
            rec.error = exc.message
            rec.state, rec.result = "Migration Failed", "failed"
            rec.phase("failed", error=exc.message)
            if not isinstance(exc, HypervisorError):
                raise
            where = self._where()
            if where == [self.source]:
                raise codes.error("HSCLL406", obj=self.partition, sys=self.source,
                                  detail=exc.message) from exc
            raise codes.error("HSCLL414", obj=self.partition, sys=self.source,
                              detail=exc.message) from exc
        finally:
            if rec.state in ("Migration Starting", "Migration In Progress"):
                rec.state, rec.result = "Migration Failed", "failed"
            if self._landed:
                closing = self.destination.close(rec)
                if closing.profile_error:
                    rec.stats["profile_error"] = closing.profile_error
            rec.ended = time.time()
            rec.stats["wall_s"] = round(time.monotonic() - t0, 3)
            hmc.store.save(rec)
            self.keep_artifacts(rec)
        return MigrationResult(rec, rec.stats["wall_s"], {})
