"""``chsyscfg -r lpar``: change partition and VIOS settings that migration depends on.

Partition settings live in the domain's lpmlab metadata (they move with the partition);
VIOS settings are lab settings applied over the topology (a VIOS does not migrate).
"""

from __future__ import annotations

from typing import Any

from lpmlab import codes
from lpmlab.errors import UsageError
from lpmlab.fabric.lab import read_settings, write_settings
from lpmlab.hmc.system import Hmc

VIOS_ATTRS = {"msp", "time_ref"}
LPAR_ATTRS = {"migration_disabled"}


def _flag(name: str, value: str) -> bool:
    if value not in ("0", "1"):
        raise codes.error("HSCLL422", detail=f"{name}={value!r}: the value must be 0 or 1",
                          fix=f"write {name}=0 or {name}=1")
    return value == "1"


def change_lpar(hmc: Hmc, frame: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
    """Apply ``name=...,attr=value`` (or ``lpar_id=N,...``) to that partition or VIOS;
    returns its name and the values now set."""
    frame = hmc.frame_name(frame)
    values = dict(fields)
    name = values.pop("name", None) or ""
    lpar_id = values.pop("lpar_id", None)
    if not name and lpar_id is not None:
        by_id = {str(r["lpar_id"]): r["name"] for r in hmc.lpar_records(frame, rmc=False)}
        if lpar_id not in by_id:
            raise codes.error("HSCL8012", obj=f"with ID {lpar_id}", sys=frame)
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
            raise codes.error("HSCLL420", detail=f"{', '.join(sorted(unknown))} cannot be "
                              f"changed on VIOS {name}",
                              fix=f"valid: {', '.join(sorted(VIOS_ATTRS))}")
        changes = {k: _flag(k, v) for k, v in values.items()}
        if changes.get("msp") and vios[name].mover_address is None:
            raise codes.error("HSCLL422", detail=f"VIOS {name} has no mover network address, "
                              "so it cannot be an MSP", fix="give it mover_address in the topology")
        settings = read_settings(hmc.plan.dir)
        settings.setdefault("vios", {}).setdefault(name, {}).update(changes)
        write_settings(hmc.plan.dir, settings)
        return {"name": name, **{k: int(v) for k, v in changes.items()}}
    if not any(d.name == name for d in hmc.domains_on(frame)):
        raise hmc.not_found(name, frame)
    unknown = set(values) - LPAR_ATTRS
    if unknown:
        raise codes.error("HSCLL420", detail=f"{', '.join(sorted(unknown))} cannot be changed "
                          f"on partition {name}", fix=f"valid: {', '.join(sorted(LPAR_ATTRS))}")
    attrs = {k: "1" if _flag(k, v) else "0" for k, v in values.items()}
    hmc.conn(frame).update_metadata(hmc.domain(frame, name), **attrs)
    return {"name": name, **{k: int(v) for k, v in attrs.items()}}
