"""``chsysstate -r lpar``: activate a partition with a profile, shut it down.

A partition is activated only where it is defined, and only when it runs nowhere else (a
partition is always running in at most one place).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lpmlab import codes
from lpmlab.adapter import domain_xml as dx
from lpmlab.adapter import migration as mig
from lpmlab.errors import RmcError
from lpmlab.hmc import profiles
from lpmlab.hmc.system import Hmc

SHUTDOWN_SECONDS = 60.0


def activate(hmc: Hmc, frame: str, name: str, profile: str | None = None) -> str:
    """Start partition ``name`` on ``frame`` sized by ``profile`` (default: its last
    activated one); return the profile used. Returns once the partition starts (as the HMC
    does); the OS boots afterwards."""
    info = profiles.find_partition(hmc, frame, name)
    if info.state != "shutoff":
        raise codes.error("HSCLL441", obj=name, sys=frame, state=hmc.lpar_state(frame, info))
    if hmc.active_migration(name) is not None:
        raise codes.error("HSCLL531", obj=name, sys=frame)
    elsewhere = [p.frame for p in hmc.placements(name)
                 if p.frame != frame and p.info.state != "shutoff"]
    if elsewhere:
        raise codes.error("HSCLL442", obj=name, other=elsewhere[0])
    chosen = profiles.find_profile(hmc, frame, info,
                                   profile or info.metadata.get("profile")
                                   or profiles.DEFAULT_PROFILE)
    profiles.checked(hmc, frame, chosen)
    _check_room(hmc, frame, chosen.desired_mem, chosen.desired_procs)
    conn = hmc.conn(frame)
    dom = hmc.domain(frame, name)
    xml = dx.set_resources(mig.inactive_xml(dom), chosen.desired_mem, chosen.desired_procs)
    xml = dx.set_metadata(xml, profile=chosen.name,
                          proc_compat_mode=chosen.lpar_proc_compat_mode)
    conn.power(conn.define(xml), "start")
    return chosen.name


def _check_room(hmc: Hmc, frame: str, memory_mb: int, procs: int) -> None:
    f = hmc.plan.frame(frame).frame
    used_mem = used_procs = 0
    conn = hmc.conn(frame)
    for info in hmc.domains_on(frame):
        if info.state in ("running", "paused"):
            dom = conn.lookup(info.name)
            if dom is not None:
                used_mem += dom.maxMemory() // 1024
                used_procs += conn.vcpu_count(dom)
    if used_mem + memory_mb > f.memory_mb or used_procs + procs > f.processors:
        raise codes.error("HSCLL443", obj=frame, free_mem=f.memory_mb - used_mem,
                          free_procs=f.processors - used_procs, mem=memory_mb, procs=procs)


def shutdown(hmc: Hmc, frame: str, name: str, *, immediate: bool = False,
             os_shutdown: bool = False, evidence: Callable[[], str] | None = None) -> str:
    """Stop partition ``name``: ``--immed`` at once; else the power button (EPOW, which the
    Linux kernel turns into an orderly poweroff); ``osshutdown`` asks the OS over RMC.
    Waits until it is Not Activated; returns how it was stopped."""
    info = profiles.find_partition(hmc, frame, name)
    if info.state == "shutoff":
        raise codes.error("HSCLL444", obj=name, sys=frame)
    if hmc.active_migration(name) is not None:
        raise codes.error("HSCLL531", obj=name, sys=frame)
    dom = hmc.domain(frame, name)
    how = "immediate" if immediate else ("os" if os_shutdown else "delayed")
    if immediate:
        hmc.conn(frame).power(dom, "off")
        return how
    if os_shutdown:
        ch = hmc.rmc(name)
        try:
            # the reply may never come: the OS powers off under the channel
            ch.run("(sleep 0.2; poweroff) >/dev/null 2>&1 &", timeout=10)
        except RmcError as exc:
            raise codes.error("HSCLL448", obj=name, detail=exc.message) from exc
        finally:
            ch.close()
    else:
        hmc.conn(frame).power(dom, "button")
    deadline = time.monotonic() + SHUTDOWN_SECONDS
    while time.monotonic() < deadline:
        if hmc.conn(frame).info(dom).state == "shutoff":
            return how
        time.sleep(0.3)
    raise codes.error("HSCLL445", obj=name, sys=frame, seconds=f"{SHUTDOWN_SECONDS:.0f}",
                      how=how, evidence=evidence() if evidence else None)
