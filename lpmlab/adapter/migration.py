"""Live migration through libvirt-python: peer-to-peer, persistent on the destination."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import libvirt

from lpmlab import log
from lpmlab.errors import HypervisorError

F = TypeVar("F", bound=Callable[..., Any])
_log = log.get("lpmlab.libvirt")

LIVE_FLAGS = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
              | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)

# (state, reason) of either side of a post-copy migration: after the switch the destination
# runs and the source, paused, still holds the pages not yet sent
POSTCOPY_REASONS = {
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY): "active",
    (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_POSTCOPY): "active",
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED): "failed",
    (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_POSTCOPY_FAILED): "failed",
}


@dataclass
class MigrationRequest:
    dest_peer_uri: str          # how the source libvirtd reaches the destination libvirtd
    migrate_uri: str            # where the source QEMU sends the stream (the source MSP)
    listen_address: str         # where the destination QEMU listens (its frame address)
    dest_xml: str | None = None
    flags: int = LIVE_FLAGS
    bandwidth_mib: int = 0      # 0 = unlimited
    auto_converge: bool = False
    auto_converge_initial: int | None = None    # % throttle to start with (QEMU: 20)
    auto_converge_increment: int | None = None  # % added per pass (QEMU: 10)
    postcopy: bool = False      # allow a switch to post-copy (migrateStartPostCopy)

    def all_flags(self) -> int:
        flags = self.flags
        if self.auto_converge:
            flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
        if self.postcopy:
            flags |= libvirt.VIR_MIGRATE_POSTCOPY
        return flags

    def params(self) -> dict[str, Any]:
        p: dict[str, Any] = {
            libvirt.VIR_MIGRATE_PARAM_URI: self.migrate_uri,
            libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: self.listen_address,
        }
        if self.dest_xml:
            p[libvirt.VIR_MIGRATE_PARAM_DEST_XML] = self.dest_xml
            p[libvirt.VIR_MIGRATE_PARAM_PERSIST_XML] = self.dest_xml
        if self.bandwidth_mib:
            p[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = self.bandwidth_mib
        if self.auto_converge and self.auto_converge_initial is not None:
            p[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL] = self.auto_converge_initial
        if self.auto_converge and self.auto_converge_increment is not None:
            p[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT] = self.auto_converge_increment
        return p


def logged(call: str) -> Callable[[F], F]:
    """Log the libvirt call and its duration (debug) or its error (info: the command says
    what failed in the HMC's words, so stderr gets it only with --debug)."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kw: Any) -> Any:
            dom = args[0] if args else None
            name = dom.name() if hasattr(dom, "name") else None
            t0 = time.monotonic()
            try:
                out = fn(*args, **kw)
            except Exception as exc:
                _log.info("libvirt call failed", call=call, domain=name,
                             seconds=round(time.monotonic() - t0, 3), error=str(exc))
                raise
            _log.debug("libvirt call", call=call, domain=name,
                       seconds=round(time.monotonic() - t0, 3))
            return out
        return inner  # type: ignore[return-value]
    return wrap


@logged("migrateToURI3")
def migrate(dom: libvirt.virDomain, req: MigrationRequest) -> None:
    """Run the migration to completion (blocking); raise HypervisorError on failure."""
    try:
        dom.migrateToURI3(req.dest_peer_uri, req.params(), req.all_flags())
    except libvirt.libvirtError as exc:
        raise HypervisorError(f"libvirt migration of {dom.name()} failed: {exc}") from exc


def completed_stats(dom: libvirt.virDomain) -> dict[str, Any]:
    """The completed migration job's statistics (kept, so a second reader still sees them)."""
    flags = (libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED
             | libvirt.VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED)
    try:
        return dom.jobStats(flags)
    except libvirt.libvirtError:
        return {}


@logged("abortJob")
def abort(dom: libvirt.virDomain) -> None:
    try:
        dom.abortJob()
    except libvirt.libvirtError as exc:
        raise HypervisorError(f"cannot abort the job of {dom.name()}: {exc}") from exc


def postcopy_phase(dom: libvirt.virDomain) -> str | None:
    """"active" or "failed" when the domain is one side of a post-copy migration, else None."""
    try:
        return POSTCOPY_REASONS.get(tuple(dom.state()))
    except libvirt.libvirtError:
        return None


def _define_if_transient(dom: libvirt.virDomain) -> list[str]:
    """Make a transient copy persistent with the definition it runs with; ["defined"] when
    that was needed. libvirt errors pass through to the caller."""
    if dom.isPersistent():
        return []
    dom.connect().defineXML(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE
                                        | libvirt.VIR_DOMAIN_XML_SECURE))
    return ["defined"]


def _create(dom: libvirt.virDomain) -> bool:
    """Start the domain; False when it was started meanwhile by someone else (libvirt itself
    resumes a source copy once its dead migration's job is cleaned up): "already running"."""
    try:
        dom.create()
        return True
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID and dom.isActive():
            return False
        raise


@logged("destroy+create")
def restart(dom: libvirt.virDomain) -> list[str]:
    """Power the domain off and boot it again from its (shared) disk; return what was done.
    For a copy whose memory cannot be trusted (a failed post-copy): its disk is the truth."""
    try:
        # keep the definition the copy runs with: destroy would drop a transient domain
        done = _define_if_transient(dom)
        if dom.isActive():
            dom.destroy()
            done.append("powered off")
        dom.create()
        done.append("booted")
    except libvirt.libvirtError as exc:
        raise HypervisorError(f"cannot restart {dom.name()}: {exc}") from exc
    return done


@logged("destroy+undefine")
def remove_copy(dom: libvirt.virDomain) -> None:
    """Destroy and undefine a stale copy of a domain (its disk is shared: nothing is lost)."""
    try:
        if dom.isActive():
            dom.destroy()
        if dom.isPersistent():
            dom.undefine()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise HypervisorError(f"cannot remove the copy of {dom.name()}: {exc}") from exc


@logged("define+resume")
def make_running_and_persistent(dom: libvirt.virDomain) -> list[str]:
    """Bring the kept copy to running + persistent; return what had to be done."""
    try:
        done = _define_if_transient(dom)
        state = dom.state()[0]
        if not dom.isActive():
            done.append("activated" if _create(dom) else "found running")
        elif state in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PMSUSPENDED):
            dom.resume()
            done.append("resumed")
    except libvirt.libvirtError as exc:
        raise HypervisorError(f"cannot bring {dom.name()} back to running: {exc}") from exc
    return done


OFFLINE_FLAGS = (libvirt.VIR_MIGRATE_OFFLINE | libvirt.VIR_MIGRATE_PEER2PEER
                 | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)


@logged("migrateToURI3 offline")
def migrate_offline(dom: libvirt.virDomain, dest_peer_uri: str, dest_xml: str) -> None:
    """Move a shut-off domain's definition (libvirt offline migration): defined on the
    destination with ``dest_xml``, undefined on the source; no stream, nothing runs."""
    params = {libvirt.VIR_MIGRATE_PARAM_DEST_XML: dest_xml,
              libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: dest_xml}
    try:
        dom.migrateToURI3(dest_peer_uri, params, OFFLINE_FLAGS)
    except libvirt.libvirtError as exc:
        raise HypervisorError(f"libvirt offline migration of {dom.name()} failed: {exc}") \
            from exc


def inactive_xml(dom: libvirt.virDomain) -> str:
    """The persistent definition as another frame may receive it."""
    try:
        return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
                           | libvirt.VIR_DOMAIN_XML_MIGRATABLE)
    except libvirt.libvirtError as exc:
        raise HypervisorError(f"cannot read the definition of {dom.name()}: {exc}") from exc
