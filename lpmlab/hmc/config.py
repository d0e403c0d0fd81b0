"""``chsyscfg -r lpar``: change partition and VIOS settings that migration depends on.

Partition settings live in the domain's lpmlab metadata (they move with the partition);
VIOS settings are lab settings applied over the topology (a VIOS does not migrate).
"""

from __future__ import annotations

from lpmlab.errors import NotFoundError, UsageError
from lpmlab.fabric.lab import read_settings, write_settings
from lpmlab.hmc.system import Hmc

VIOS_ATTRS = {"msp", "time_ref"}
LPAR_ATTRS = {"migration_disabled"}


def _flag(name: str, value: str) -> bool:
    if value not in ("0", "1"):
        raise UsageError(f"{name}={value!r}: the value must be 0 or 1", code="HSCLL422",
                         fix=f"write {name}=0 or {name}=1")
    return value == "1"


def change_lpar(hmc: Hmc, frame: str, fields: list[tuple[str, str]]) -> None:
    """Apply ``name=...,attr=value`` (or ``lpar_id=N,...``) to that partition or VIOS."""
    frame = hmc.frame_name(frame)
    values = dict(fields)
    name = values.pop("name", None) or ""
    lpar_id = values.pop("lpar_id", None)
    if not name and lpar_id is not None:
        by_id = {str(r["lpar_id"]): r["name"] for r in hmc.lpar_records(frame, rmc=False)}
        if lpar_id not in by_id:
            raise NotFoundError(f"The partition with ID {lpar_id} was not found on managed "
                                f"system {frame}.", code="HSCL8012",
                                fix=f"list them with 'lssyscfg -r lpar -m {frame} -F "
                                    "name,lpar_id'")
        name = by_id[lpar_id]
    if not name:
        raise UsageError("chsyscfg -r lpar needs name= or lpar_id=",
                         fix='write -i "name=lpar1,..."')
    if not values:
        raise UsageError(f"nothing to change for {name}",
                         fix="add attributes, e.g. migration_disabled=1")
    vios = {v.name: v for v in hmc.topology.vios_on(frame)}
    if name in vios:
        unknown = set(values) - VIOS_ATTRS
        if unknown:
            raise UsageError(f"{', '.join(sorted(unknown))} cannot be changed on VIOS {name}",
                             code="HSCLL420", fix=f"valid: {', '.join(sorted(VIOS_ATTRS))}")
        changes = {k: _flag(k, v) for k, v in values.items()}
        if changes.get("msp") and vios[name].mover_address is None:
            raise UsageError(f"VIOS {name} has no mover network address, so it cannot be an "
                             "MSP", code="HSCLL422",
                             fix="give it mover_address in the topology")
        settings = read_settings(hmc.plan.dir)
        settings.setdefault("vios", {}).setdefault(name, {}).update(changes)
        write_settings(hmc.plan.dir, settings)
        return
    info = next((d for d in hmc.domains_on(frame) if d.name == name), None)
    if info is None:
        raise NotFoundError(f"The partition {name} was not found on managed system {frame}.",
                            code="HSCL8012", fix=f"list them with 'lssyscfg -r lpar -m {frame}'")
    unknown = set(values) - LPAR_ATTRS
    if unknown:
        raise UsageError(f"{', '.join(sorted(unknown))} cannot be changed on partition {name}",
                         code="HSCLL420", fix=f"valid: {', '.join(sorted(LPAR_ATTRS))}")
    attrs = {k: "1" if _flag(k, v) else "0" for k, v in values.items()}
    dom = hmc.conn(frame).lookup(name)
    assert dom is not None
    hmc.conn(frame).update_metadata(dom, **attrs)
