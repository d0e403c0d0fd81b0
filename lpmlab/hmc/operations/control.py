"""``migrlpar -o s`` and ``-o r``: stop a migration under way, recover a failed one."""

from __future__ import annotations

from lpmlab.hmc import migration, recovery
from lpmlab.hmc.operations.base import PartitionOperation
from lpmlab.hmc.store import MigrationRecord
from lpmlab.hmc.system import Hmc


class Stop(PartitionOperation):
    """``-o s``: abort the transfer; the partition keeps running on the source. Result: the
    migration's record."""

    def act(self, hmc: Hmc, name: str) -> MigrationRecord:
        # the job is aborted inside the source: No Connection is HSCLL430, not a timeout
        hmc.require_connected(self.system)
        return migration.stop(hmc, name, self.system)


class Recover(PartitionOperation):
    """``-o r``: one defined, running copy again. Result: the
    :class:`~lpmlab.hmc.recovery.RecoveryReport` (what was done)."""

    def act(self, hmc: Hmc, name: str) -> recovery.RecoveryReport:
        return recovery.recover(hmc, name, self.system, force=self.request.force)
