"""Partition profiles: ``lssyscfg -r prof``, ``chsyscfg -r prof``, and the profile a migration
leaves on the destination (``migrlpar -n``).

Profiles live in the domain's lpmlab metadata (one ``<profile>`` child each), so they travel
with the partition as PowerVM moves a partition's profiles with it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lpmlab import codes
from lpmlab.adapter.connection import DomainInfo
from lpmlab.errors import UsageError
from lpmlab.hmc.system import Hmc
from lpmlab.topology import DEFAULT_PROFILE, NAME_RE, Profile

CHANGEABLE = set(Profile.INT_FIELDS) | {"lpar_proc_compat_mode"}


def stored(hmc: Hmc, info: DomainInfo) -> list[Profile]:
    """The partition's profiles: from its metadata, else (an older domain) the topology's."""
    if info.profiles:
        seen: dict[str, Profile] = {}
        for a in info.profiles:
            seen.setdefault(a["name"], Profile.from_attrs(a))  # a name is one profile
        return list(seen.values())
    try:
        return list(hmc.topology.partition(info.name).profiles)
    except KeyError:
        return []


def find_partition(hmc: Hmc, frame: str, name: str) -> DomainInfo:
    hmc.require_frame(frame)
    for info in hmc.domains_on(frame):
        if info.name == name and info.metadata.get("lpar_env") != "vioserver":
            return info
    raise hmc.not_found(name, frame)


def find_profile(hmc: Hmc, frame: str, info: DomainInfo, name: str) -> Profile:
    for prof in stored(hmc, info):
        if prof.name == name:
            return prof
    have = ", ".join(p.name for p in stored(hmc, info)) or "none"
    raise codes.error("HSCLL440", obj=info.name, sys=frame, profile=name, have=have)


def prof_records(hmc: Hmc, frame: str) -> list[dict[str, Any]]:
    """``lssyscfg -r prof``: one record per profile of every partition on ``frame``."""
    hmc.require_frame(frame)
    out = []
    for info in hmc.domains_on(frame):
        md = info.metadata
        for prof in stored(hmc, info):
            out.append({
                "name": prof.name, "lpar_name": info.name,
                "lpar_id": int(md.get("lpar_id", 0)), "lpar_env": md.get("lpar_env", "aixlinux"),
                "mem_mode": "ded", "min_mem": prof.min_mem, "desired_mem": prof.desired_mem,
                "max_mem": prof.max_mem, "proc_mode": "ded", "min_procs": prof.min_procs,
                "desired_procs": prof.desired_procs, "max_procs": prof.max_procs,
                "lpar_proc_compat_mode": prof.lpar_proc_compat_mode,
            })
    out.sort(key=lambda r: (r["lpar_id"], r["name"]))
    return out


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise codes.error("HSCLL422", detail=f"{name}={value!r}: expected a whole number",
                          fix=f"write {name}=N") from None


def checked(hmc: Hmc, frame: str, prof: Profile) -> Profile:
    """``prof`` when it is consistent and fits ``frame``; else a UsageError naming the field."""
    f = hmc.plan.frame(frame).frame
    for fld, what, fix in prof.problems(f.lmb_size_mb):
        raise codes.error("HSCLL422", detail=f"profile {prof.name}: {fld}: {what}", fix=fix)
    if prof.max_mem > f.memory_mb or prof.max_procs > f.processors:
        raise codes.error("HSCLL422", detail=f"profile {prof.name} asks for more than managed "
                          f"system {frame} has ({f.memory_mb} MB, {f.processors} processors)",
                          fix="lower max_mem / max_procs")
    if prof.lpar_proc_compat_mode not in f.proc_compat_modes:
        raise codes.error("HSCLL422", detail=f"profile {prof.name}: {frame} does not support "
                          f"processor compatibility mode {prof.lpar_proc_compat_mode}",
                          fix=f"choose from {', '.join(f.proc_compat_modes)}")
    return prof


def change_profile(hmc: Hmc, frame: str, fields: list[tuple[str, str]]) -> Profile:
    """``chsyscfg -r prof -i "name=P,lpar_name=L,attr=value,..."``; changes take effect at the
    next activation with the profile, as on the HMC."""
    values = dict(fields)
    name, lpar = values.pop("name", ""), values.pop("lpar_name", "")
    if not name or not lpar:
        raise UsageError("chsyscfg -r prof needs name= and lpar_name=",
                         fix='write -i "name=default_profile,lpar_name=lpar1,desired_mem=768"')
    unknown = set(values) - CHANGEABLE
    if unknown:
        raise codes.error("HSCLL420", detail=f"{', '.join(sorted(unknown))} cannot be changed "
                          "in a profile", fix=f"valid: {', '.join(sorted(CHANGEABLE))}")
    if not values:
        raise UsageError(f"nothing to change in profile {name}",
                         fix="add attributes, e.g. desired_mem=768")
    info = find_partition(hmc, frame, lpar)
    old = find_profile(hmc, frame, info, name)
    changes: dict[str, Any] = {k: v if k == "lpar_proc_compat_mode" else _int(k, v)
                               for k, v in values.items()}
    new = checked(hmc, frame, dataclasses.replace(old, **changes))
    _store(hmc, frame, info, [new if p.name == name else p for p in stored(hmc, info)])
    return new


def _store(hmc: Hmc, frame: str, info: DomainInfo, profiles: list[Profile],
           **attrs: str) -> None:
    dom = hmc.domain(frame, info.name)
    hmc.conn(frame).update_metadata(dom, profiles=tuple(p.as_attrs() for p in profiles),
                                    **attrs)


def check_profile_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise codes.error("HSCLL422", detail=f"invalid profile name {name!r}",
                          fix="use lower-case letters, digits, '-' and '_' (at most 31)")
    return name


def save_current(hmc: Hmc, frame: str, partition: str, name: str | None) -> str:
    """After an active migration: the partition's current configuration becomes profile
    ``name`` (``-n``), else replaces its last activated profile; returns the profile's name."""
    info = find_partition(hmc, frame, partition)
    profiles = stored(hmc, info)
    target = name or info.metadata.get("profile") or DEFAULT_PROFILE
    dom = hmc.domain(frame, partition)
    procs = hmc.conn(frame).vcpu_count(dom)
    memory_mb = dom.maxMemory() // 1024
    base = next((p for p in profiles if p.name == target),
                next((p for p in profiles if p.name == info.metadata.get("profile")), None))
    mode = info.metadata.get("proc_compat_mode", "default")
    if base is None:
        current = Profile(target, memory_mb, memory_mb, memory_mb, procs, procs, procs, mode)
    else:
        current = dataclasses.replace(
            base, name=target, desired_mem=memory_mb, desired_procs=procs,
            min_mem=min(base.min_mem, memory_mb), max_mem=max(base.max_mem, memory_mb),
            min_procs=min(base.min_procs, procs), max_procs=max(base.max_procs, procs),
            lpar_proc_compat_mode=mode)
    kept = [p for p in profiles if p.name != target]
    _store(hmc, frame, info, [*kept, current], profile=target)
    return target
