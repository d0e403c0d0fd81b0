"""``migrlpar``'s operations as HMC-core classes (Molecule-style: a plain class per verb does
the work, ``execute()`` returns an outcome); the command parses, calls and prints.

- :class:`Migrate` (``-o m``) and :class:`Validate` (``-o v``): live or inactive by the
  partition's state, as on the HMC;
- :class:`Stop` (``-o s``) and :class:`Recover` (``-o r``);
- :class:`SetSettings` (``-o set``).

The partition operations run one thread per partition and report each partition's outcome
(partial results: some may fail while others succeed).
"""

from __future__ import annotations

from lpmlab.hmc.operations.base import (
    DEFAULT_DETAIL_LEVEL,
    MigrlparOutcome,
    MigrlparRequest,
    PartitionOperation,
    PartitionOutcome,
)
from lpmlab.hmc.operations.control import Recover, Stop
from lpmlab.hmc.operations.migrate import Migrate, Validate, Validated
from lpmlab.hmc.operations.settings import SetSettings, SettingsOutcome

OPERATIONS: dict[str, type[PartitionOperation]] = {
    "m": Migrate, "v": Validate, "s": Stop, "r": Recover}

__all__ = ["DEFAULT_DETAIL_LEVEL", "OPERATIONS", "Migrate", "MigrlparOutcome",
           "MigrlparRequest", "PartitionOperation", "PartitionOutcome", "Recover",
           "SetSettings", "SettingsOutcome", "Stop", "Validate", "Validated", "for_request"]


def for_request(request: MigrlparRequest) -> PartitionOperation:
    """The operation ``request.op`` names."""
    return OPERATIONS[request.op](request)
