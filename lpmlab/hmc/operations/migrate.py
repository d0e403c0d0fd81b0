"""``migrlpar -o m`` and ``-o v``: as on the HMC, a Not Activated partition migrates (and is
validated) inactive, a running one active."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lpmlab.errors import LpmlabError
from lpmlab.hmc import migration, resources
from lpmlab.hmc.hooks import PhaseResult
from lpmlab.hmc.operations.base import PartitionOperation
from lpmlab.hmc.system import Hmc
from lpmlab.hmc.validation import ValidationReport


@dataclass
class Validated:
    """``-o v``'s result: the validation report (its warnings) and, for an active migration,
    the partition OS's check hooks."""

    report: ValidationReport
    os_check: PhaseResult | None = None


class _MigrationOperation(PartitionOperation):
    def check(self, names: list[str]) -> None:
        resources.check_partition_count(len(names))

    def job(self, hmc: Hmc, name: str) -> tuple[Any, bool]:
        """The partition's migration and whether it is active: LiveMigration for a running
        partition, else InactiveMigration (looked up at call time: tests put fakes in their
        place)."""
        req = self.request
        kind: Any = migration.LiveMigration
        lpar_id = None
        try:
            info = hmc.locate(name, self.system)
            lpar_id = int(info.metadata.get("lpar_id", 0)) or None
            if info.state == "shutoff":
                from lpmlab.hmc.inactive import InactiveMigration

                kind = InactiveMigration
        except LpmlabError:
            pass  # not a partition there (a VIOS, a wrong -m): validation says which, and why
        attrs, profile = req.attrs.for_partition(name, lpar_id, self.names.index(name))
        extra: dict[str, Any] = ({"controls": req.controls, "observer": req.observer}
                                 if kind is migration.LiveMigration and req.op == "m" else {})
        if self.remote is not None:
            extra["remote"] = self.remote
        live = kind is migration.LiveMigration
        return kind(hmc, name, self.system, self.target, attrs,
                    profile=req.profile or profile, overrides=dict(req.overrides),
                    wait_minutes=req.wait_minutes, **extra), live


class Validate(_MigrationOperation):
    """``-o v``: every validation check; for an active migration also the OS's check hooks.
    Result: :class:`Validated`; a refusal is the first error's code, with every finding."""

    def act(self, hmc: Hmc, name: str) -> Validated:
        job, live = self.job(hmc, name)
        try:
            report, _msps = job.validate()
            return Validated(report, job.validate_os() if live else None)
        finally:
            job.close()


class Migrate(_MigrationOperation):
    """``-o m``: validate, then migrate. Result: the migration's
    :class:`~lpmlab.hmc.migration.MigrationResult`."""

    steps_since_start = True

    def act(self, hmc: Hmc, name: str) -> migration.MigrationResult:
        job, _live = self.job(hmc, name)
        try:
            return job.run()
        finally:
            job.close()
