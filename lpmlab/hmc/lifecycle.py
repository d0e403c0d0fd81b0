"""``chsysstate -r lpar``: activate a partition with a profile, shut it down.

A partition is activated only where it is defined, and only when it runs nowhere else (a
partition is always running in at most one place).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lpmlab.adapter import domain_xml as dx
from lpmlab.adapter import migration as mig
from lpmlab.errors import DeadlineError, MigrationError, RmcError
from lpmlab.hmc import profiles
from lpmlab.hmc.system import Hmc

SHUTDOWN_SECONDS = 60.0


def _refuse(code: str, message: str, fix: str) -> MigrationError:
    return MigrationError(message, code=code, fix=fix)


def activate(hmc: Hmc, frame: str, name: str, profile: str | None = None) -> str:
    """Start partition ``name`` on ``frame`` sized by ``profile`` (default: its last
    activated one); return the profile used. Returns once the partition starts (as the HMC
    does); the OS boots afterwards."""
    info = profiles.find_partition(hmc, frame, name)
    if info.state != "shutoff":
        raise _refuse("HSCLL441", f"Partition {name} on {frame} is "
                      f"{hmc.lpar_state(frame, info)}; only a Not Activated partition can be "
                      "activated.",
                      f"shut it down first: 'chsysstate -m {frame} -r lpar -n {name} -o "
                      "shutdown --immed'")
    if hmc.active_migration(name) is not None:
        raise _refuse("HSCLL531", f"Partition {name} is migrating.",
                      f"wait for it ('lslparmigr -r lpar -m {frame}')")
    elsewhere = [p.frame for p in hmc.placements(name)
                 if p.frame != frame and p.info.state != "shutoff"]
    if elsewhere:
        raise _refuse("HSCLL442", f"Partition {name} already runs on {elsewhere[0]}.",
                      f"it may run in one place only; shut it down on {elsewhere[0]} first")
    chosen = profiles.find_profile(hmc, frame, info,
                                   profile or info.metadata.get("profile")
                                   or profiles.DEFAULT_PROFILE)
    profiles.checked(hmc, frame, chosen)
    _check_room(hmc, frame, chosen.desired_mem, chosen.desired_procs)
    conn = hmc.conn(frame)
    dom = conn.lookup(name)
    assert dom is not None
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
        raise _refuse("HSCLL443", f"Managed system {frame} has {f.memory_mb - used_mem} MB and "
                      f"{f.processors - used_procs} processors free; the profile asks for "
                      f"{memory_mb} MB and {procs} processors.",
                      "activate with a smaller profile (-f) or stop another partition")


def shutdown(hmc: Hmc, frame: str, name: str, *, immediate: bool = False,
             os_shutdown: bool = False, evidence: Callable[[], str] | None = None) -> str:
    """Stop partition ``name``: ``--immed`` at once; else the power button (EPOW, which the
    Linux kernel turns into an orderly poweroff); ``osshutdown`` asks the OS over RMC.
    Waits until it is Not Activated; returns how it was stopped."""
    info = profiles.find_partition(hmc, frame, name)
    if info.state == "shutoff":
        raise _refuse("HSCLL444", f"Partition {name} on {frame} is already Not Activated.",
                      "nothing to do")
    if hmc.active_migration(name) is not None:
        raise _refuse("HSCLL531", f"Partition {name} is migrating.",
                      f"stop the migration first ('migrlpar -o s -m {frame} -p {name}')")
    dom = hmc.conn(frame).lookup(name)
    assert dom is not None
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
            raise _refuse("HSCLL534", f"There is no RMC connection to partition {name}: "
                          f"{exc.message}", "use -o shutdown (power button) or --immed") \
                from exc
        finally:
            ch.close()
    else:
        hmc.conn(frame).power(dom, "button")
    deadline = time.monotonic() + SHUTDOWN_SECONDS
    while time.monotonic() < deadline:
        if hmc.conn(frame).info(dom).state == "shutoff":
            return how
        time.sleep(0.3)
    raise DeadlineError(
        f"partition {name} did not power off within {SHUTDOWN_SECONDS:.0f} s of the "
        f"{how} shutdown request", code="HSCLL445",
        fix=f"stop it with 'chsysstate -m {frame} -r lpar -n {name} -o shutdown --immed'",
        evidence=evidence() if evidence else None)
