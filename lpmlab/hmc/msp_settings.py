"""Mobility settings changed with ``migrlpar -o set``: per managed system
(``inactive_prof_policy``) and per mover service partition (``num_active_migrations_configured``,
``concurr_migration_perf_level``).

They are lab settings, kept in the lab's settings.json beside chsyscfg's VIOS overrides but
under their own keys (``"sys"``, ``"msp"``): ``apply_settings`` replaces ``Vios`` fields with
what it finds under ``"vios"``, and these are not topology fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lpmlab import codes
from lpmlab.errors import UsageError
from lpmlab.fabric.lab import read_settings, write_settings
from lpmlab.fabric.plan import LabPlan
from lpmlab.hmc.attributes import MigrationAttributes
from lpmlab.hmc.validation import DEFAULT_MSP_ACTIVE_MIGRATIONS
from lpmlab.topology import Vios

# A VIOS accepts 1..8 concurrent mobility operations as MSP (its cfg_msp_lpm_ops range);
# lpmlab's default stays 4, as validation assumed before the setting existed.
MAX_MSP_ACTIVE_MIGRATIONS = 8
DEFAULT_PERF_LEVEL = 3  # the VIOS default concurrency level
PERF_LEVELS = range(1, 6)
INACTIVE_PROF_POLICIES = ("prof", "config")
DEFAULT_INACTIVE_PROF_POLICY = "config"


@dataclass(frozen=True)
class MspSettings:
    num_active_migrations_configured: int = DEFAULT_MSP_ACTIVE_MIGRATIONS
    concurr_migration_perf_level: int = DEFAULT_PERF_LEVEL


# -- reading ---------------------------------------------------------------------------------
def msp(lab_dir: Path, name: str) -> MspSettings:
    """The settings of the MSP ``name`` (defaults where none were set)."""
    given = read_settings(lab_dir).get("msp", {}).get(name, {})
    return MspSettings(**{k: v for k, v in given.items()
                          if k in MspSettings.__dataclass_fields__})


def msp_limits(lab_dir: Path, names: Iterable[str | None]) -> dict[str, int]:
    """MSP name -> its num_active_migrations_configured, for ``store.claim_port(msp_limits=)``."""
    return {n: msp(lab_dir, n).num_active_migrations_configured for n in names if n}


def inactive_prof_policy(lab_dir: Path, frame: str) -> str:
    """``prof`` or ``config``: which definition an inactive migration takes to ``frame``'s
    partner when the command names no policy."""
    value = read_settings(lab_dir).get("sys", {}).get(frame, {}).get("inactive_prof_policy")
    return value if value in INACTIVE_PROF_POLICIES else DEFAULT_INACTIVE_PROF_POLICY


# -- changing --------------------------------------------------------------------------------
def _update(lab_dir: Path, section: str, name: str, values: dict[str, Any]) -> None:
    settings = read_settings(lab_dir)
    settings.setdefault(section, {}).setdefault(name, {}).update(values)
    write_settings(lab_dir, settings)


def set_sys(plan: LabPlan, frames: Iterable[str], attrs: MigrationAttributes) -> None:
    """``migrlpar -o set -r sys``: store inactive_prof_policy for each of ``frames``."""
    policy = attrs.inactive_prof_policy
    if policy is None:
        raise UsageError("migrlpar -o set -r sys needs inactive_prof_policy",
                         fix='write -i "inactive_prof_policy=config" (or =prof)')
    names = list(frames)
    for f in names:
        plan.topology.frame(f)  # the caller checked; a KeyError here is a bug
    for f in names:
        _update(plan.dir, "sys", f, {"inactive_prof_policy": policy})


def vios_named(plan: LabPlan, frame: str, name: str | None, lpar_id: int | None) -> Vios:
    """The VIOS of ``frame`` named ``name`` (or with ID ``lpar_id``): HSCLL416 for a
    partition that is not a VIOS, HSCL8012 when there is none."""
    for v in plan.topology.vios_on(frame):
        if v.name == name or (name is None and v.lpar_id == lpar_id):
            return v
    what = name if name is not None else f"with ID {lpar_id}"
    mobile = [p for p in plan.topology.partitions
              if p.name == name or (name is None and p.lpar_id == lpar_id)]
    if mobile:
        raise codes.error("HSCLL416", obj=mobile[0].name, sys=frame,
                          detail="only a mover service partition has migration settings")
    raise codes.error("HSCL8012", obj=what, sys=frame)


def _in_range(name: str, value: int, allowed: range) -> int:
    if value not in allowed:
        raise codes.error("HSCLL422", detail=f"attribute {name}={value} is out of range",
                          fix=f"give {name} a value from {allowed.start} to {allowed.stop - 1}")
    return value


def set_msp(plan: LabPlan, frame: str, attrs: MigrationAttributes, *, name: str | None = None,
            lpar_id: int | None = None) -> MspSettings:
    """``migrlpar -o set -r lpar``: the MSP's concurrency limit and performance level.

    Every value is checked before anything is written: a bad one changes nothing.
    """
    v = vios_named(plan, frame, name, lpar_id)
    if not v.msp:
        raise codes.error("HSCLL417", obj=v.name, sys=frame,
                          detail="only a mover service partition has migration settings")
    values: dict[str, int] = {}
    if attrs.num_active_migrations_configured is not None:
        values["num_active_migrations_configured"] = _in_range(
            "num_active_migrations_configured", attrs.num_active_migrations_configured,
            range(1, MAX_MSP_ACTIVE_MIGRATIONS + 1))
    if attrs.concurr_migration_perf_level is not None:
        values["concurr_migration_perf_level"] = _in_range(
            "concurr_migration_perf_level", attrs.concurr_migration_perf_level, PERF_LEVELS)
    if not values:
        raise UsageError(f"nothing to set for mover service partition {v.name}",
                         fix='write -i "num_active_migrations_configured=N,'
                             'concurr_migration_perf_level=L"')
    _update(plan.dir, "msp", v.name, values)
    return msp(plan.dir, v.name)
