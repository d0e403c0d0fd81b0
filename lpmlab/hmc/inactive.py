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

from lpmlab.adapter import domain_xml as dx
from lpmlab.adapter import migration as mig
from lpmlab.errors import HypervisorError, LpmlabError, MigrationError
from lpmlab.fabric import plan as P
from lpmlab.hmc import msp_settings, profiles, snapshot
from lpmlab.hmc import validation as V
from lpmlab.hmc.migration import LiveMigration, MigrationResult, MspPair, dest_storage_vios
from lpmlab.hmc.store import MigrationRecord
from lpmlab.hmc.system import hscl_error
from lpmlab.topology import Profile


class InactiveMigration(LiveMigration):
    """One inactive migration of one partition from ``source`` to ``dest``."""

    migration_type = "inactive"

    def policy(self) -> str:
        if self.attrs.inactive_prof_policy:
            return self.attrs.inactive_prof_policy
        return msp_settings.inactive_prof_policy(self.hmc.plan.dir, self.source)

    def _dest_xml(self, rec: MigrationRecord) -> str:
        hmc = self.hmc
        conn = hmc.conn(self.source)
        dom = conn.lookup(self.partition)
        assert dom is not None  # validate() found it
        info = conn.info(dom)
        xml = mig.inactive_xml(dom)
        storage = dest_storage_vios(hmc, self.dest)
        xml = dx.retarget_disk(xml, dx.IscsiDisk(
            str(storage.vios.address), hmc.plan.partition(self.partition).iqn(storage.vios.name),
            vios=storage.vios.name, port=P.ISCSI_PORT))
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
        self.hmc.require_frame(self.source)
        self.hmc.require_frame(self.dest)
        req = self.request()
        report = V.validate(snapshot.gather(self.hmc, req), req)
        report.raise_for_errors()
        return report, None

    resize_to: Profile | None = None

    def _resize(self, prof: Profile) -> None:
        """Redefine the moved partition with the profile's desired memory and processors."""
        conn = self.hmc.conn(self.dest)
        dom = conn.lookup(self.partition)
        if dom is None:
            raise HypervisorError(f"{self.partition} vanished from {self.dest}")
        conn.define(dx.set_resources(mig.inactive_xml(dom), prof.desired_mem,
                                     prof.desired_procs))

    def run(self) -> MigrationResult:
        t0 = time.monotonic()
        report, _ = self.validate()
        hmc = self.hmc
        rec = MigrationRecord(self.partition, self.source, self.dest,
                              migration_type="inactive",
                              command=shlex.join([os.path.basename(sys.argv[0]),
                                                  *sys.argv[1:]]))
        rec.stats["controller_pid"] = os.getpid()
        rec.phase("validate", seconds=round(time.monotonic() - t0, 3),
                  warnings=[f.code for f in report.warnings])
        self._claim(rec)
        try:
            dest_xml = self._dest_xml(rec)
            rec.state = "Migration In Progress"
            rec.phase("transfer")
            hmc.store.save(rec)
            dom = hmc.conn(self.source).lookup(self.partition)
            assert dom is not None
            mig.migrate_offline(dom, hmc.plan.frame(self.dest).peer_uri, dest_xml)
            where = [p.frame for p in hmc.placements(self.partition)]
            if where != [self.dest]:
                raise HypervisorError(f"after the offline migration {self.partition} is "
                                      f"defined on {', '.join(where) or 'no frame'}")
            if self.resize_to is not None:
                rec.phase("resize", memory_mb=self.resize_to.desired_mem,
                          procs=self.resize_to.desired_procs)
                self._resize(self.resize_to)
            rec.phase("complete")
            rec.state, rec.result = "Migration Complete", "success"
        except LpmlabError as exc:
            rec.error = exc.message
            rec.state, rec.result = "Migration Failed", "failed"
            rec.phase("failed", error=exc.message)
            if not isinstance(exc, HypervisorError):
                raise
            where = [p.frame for p in hmc.placements(self.partition)]
            code = "HSCLL406" if where == [self.source] else "HSCLL414"
            raise hscl_error(MigrationError, code, obj=self.partition, sys=self.source,
                             detail=exc.message) from exc
        finally:
            rec.ended = time.time()
            rec.stats["wall_s"] = round(time.monotonic() - t0, 3)
            hmc.store.save(rec)
        return MigrationResult(rec, rec.stats["wall_s"], {})
