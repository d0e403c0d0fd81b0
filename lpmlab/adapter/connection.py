"""Connections to frames' libvirt daemons, with an event loop, keep-alive and retries."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import libvirt
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from lpmlab import log
from lpmlab.adapter import domain_xml
from lpmlab.adapter.migration import POSTCOPY_REASONS
from lpmlab.errors import HypervisorError

_log = log.get("lpmlab.libvirt")
_event_loop_started = False
_event_lock = threading.Lock()


def _quiet_error_handler(_ctx: Any, _err: Any) -> None:
    """libvirt prints every error to stderr by default; errors reach us as exceptions."""


def ensure_event_loop() -> None:
    """Run libvirt's default event loop in a daemon thread (keep-alive and events need it)."""
    global _event_loop_started
    with _event_lock:
        if _event_loop_started:
            return
        libvirt.registerErrorHandler(_quiet_error_handler, None)
        libvirt.virEventRegisterDefaultImpl()

        def loop() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=loop, name="libvirt-events", daemon=True).start()
        _event_loop_started = True


class _Transient(Exception):
    pass


@dataclass
class DomainInfo:
    """What the HMC layer needs to know about one domain on one frame."""

    name: str
    uuid: str
    state: str  # running | paused | shutoff | pmsuspended | other
    persistent: bool
    metadata: dict[str, str]
    job_active: bool
    profiles: tuple[dict[str, str], ...] = ()
    postcopy: str | None = None  # "active" | "failed": this copy is half of a post-copy


STATE_NAMES = {
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_BLOCKED: "running",
    libvirt.VIR_DOMAIN_NOSTATE: "nostate",
}


class FrameConnection:
    """A libvirt connection to one frame (managed system)."""

    def __init__(self, frame: str, uri: str, *, connect_timeout: float = 10.0) -> None:
        self.frame = frame
        self.uri = uri
        self.connect_timeout = connect_timeout
        self._conn: libvirt.virConnect | None = None

    @property
    def conn(self) -> libvirt.virConnect:
        if self._conn is None or not self._conn.isAlive():
            self._conn = self._open()
        return self._conn

    def _open(self) -> libvirt.virConnect:
        ensure_event_loop()

        def retrying(state: RetryCallState) -> None:
            _log.info("libvirt connection retried", frame=self.frame, uri=self.uri,
                      attempt=state.attempt_number,
                      error=str(state.outcome.exception()) if state.outcome else None)

        @retry(retry=retry_if_exception_type(_Transient), reraise=True,
               stop=stop_after_delay(self.connect_timeout),
               wait=wait_exponential(multiplier=0.1, max=1.0), before_sleep=retrying)
        def attempt() -> libvirt.virConnect:
            try:
                return libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise _Transient(str(exc)) from exc

        try:
            conn = attempt()
        except _Transient as exc:
            raise HypervisorError(
                f"cannot connect to managed system {self.frame} ({self.uri}): {exc}",
                fix="start the lab with 'lpmlab lab up' (or check 'lpmlab lab status')",
            ) from exc
        # keep-alive is an optimisation; unix sockets may refuse it
        with contextlib.suppress(libvirt.libvirtError):
            conn.setKeepAlive(5, 3)
        return conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(libvirt.libvirtError):
                self._conn.close()
            self._conn = None

    def ping(self) -> None:
        """Raise HypervisorError unless the frame's libvirtd answers (a cheap call: the first
        getCapabilities() of a daemon probes every QEMU binary and takes 10+ s)."""
        try:
            self.conn.getLibVersion()
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"{self.frame}: libvirtd does not answer: {exc}") from exc

    def host_uuid(self) -> str:
        try:
            caps = self.conn.getCapabilities()
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"{self.frame}: cannot read capabilities: {exc}") from exc
        if "<uuid>" not in caps:
            raise HypervisorError(f"{self.frame}: the hypervisor reports no host UUID",
                                  fix="set host_uuid in the frame's libvirtd.conf")
        return caps.split("<uuid>", 1)[1].split("</uuid>", 1)[0]

    def vcpu_count(self, dom: libvirt.virDomain) -> int:
        try:
            return int(dom.info()[3])
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"{self.frame}: cannot read {dom.name()}: {exc}") from exc

    def update_metadata(self, dom: libvirt.virDomain,
                        profiles: tuple[dict[str, str], ...] | None = None,
                        **attrs: str) -> None:
        """Change lpmlab metadata attributes (and, given, the profiles) of a domain, live and
        in its persistent config (so the change moves with the partition when it migrates)."""
        try:
            # the persistent copy is the reference: profiles are kept there
            xml = _metadata_xml(dom, libvirt.VIR_DOMAIN_AFFECT_CONFIG if dom.isPersistent()
                                else 0)
            md = domain_xml.read_metadata_element(xml) if xml else {}
            if profiles is None:
                profiles = domain_xml.read_profiles_element(xml) if xml else ()
            md.update(attrs)
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
            if dom.isActive():
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                            domain_xml.metadata_element(md, profiles), "lpm",
                            domain_xml.METADATA_NS, flags)
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"{self.frame}: cannot change {dom.name()}: {exc}") from exc

    def define(self, xml: str) -> libvirt.virDomain:
        """Define (or redefine) a persistent domain from ``xml``."""
        try:
            return self.conn.defineXML(xml)
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"{self.frame}: cannot define the domain: {exc}") from exc

    def power(self, dom: libvirt.virDomain, action: str) -> None:
        """``start``, ``button`` (ACPI/EPOW power button) or ``off`` (destroy) a domain."""
        calls = {"start": dom.create, "button": dom.shutdown, "off": dom.destroy}
        try:
            calls[action]()
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"{self.frame}: cannot {action} {dom.name()}: {exc}") from exc

    def lookup(self, name: str) -> libvirt.virDomain | None:
        try:
            return self.conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise HypervisorError(f"{self.frame}: lookup of {name} failed: {exc}") from exc

    def domains(self) -> Iterator[libvirt.virDomain]:
        try:
            doms = self.conn.listAllDomains(0)
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"{self.frame}: cannot list domains: {exc}") from exc
        yield from doms

    def migratable_xml(self, dom: libvirt.virDomain) -> str:
        """The running definition as a destination may receive it."""
        flags = libvirt.VIR_DOMAIN_XML_MIGRATABLE | libvirt.VIR_DOMAIN_XML_SECURE
        try:
            return dom.XMLDesc(flags)
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"{self.frame}: cannot read {dom.name()}: {exc}") from exc

    def info(self, dom: libvirt.virDomain) -> DomainInfo:
        try:
            state, reason = dom.state()
            # An incoming migration holds the domain's state lock: XMLDesc would wait 30 s
            # for it, the metadata call does not.
            incoming = (state == libvirt.VIR_DOMAIN_PAUSED
                        and reason == libvirt.VIR_DOMAIN_PAUSED_MIGRATION)
            # a domain whose job cannot be read is still listed
            job = incoming or (bool(dom.isActive()) and job_running(dom) is True)
            xml = _metadata_xml(dom)
            md = domain_xml.read_metadata_element(xml) if xml else {}
            profiles = domain_xml.read_profiles_element(xml) if xml else ()
            return DomainInfo(dom.name(), dom.UUIDString(), STATE_NAMES.get(state, "other"),
                              bool(dom.isPersistent()), md, job, profiles,
                              POSTCOPY_REASONS.get((state, reason)))
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"{self.frame}: cannot read domain {dom.name()}: {exc}") \
                from exc

    def lab_domains(self) -> list[DomainInfo]:
        """Domains that carry lpmlab metadata (everything else on the frame is not ours)."""
        out = []
        for dom in self.domains():
            try:
                info = self.info(dom)
            except HypervisorError:
                continue  # vanished while listing (e.g. migrated away)
            if info.metadata:
                out.append(info)
        return out


def job_running(dom: libvirt.virDomain) -> bool | None:
    """Whether the domain has a job (a migration); None when libvirt cannot tell (e.g. its
    daemon died)."""
    try:
        return dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE
    except libvirt.libvirtError:
        return None


def _metadata_xml(dom: libvirt.virDomain, flags: int = 0) -> str:
    """The domain's lpmlab metadata element; "" when it has none."""
    try:
        return dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, domain_xml.METADATA_NS, flags)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
            return ""
        raise
