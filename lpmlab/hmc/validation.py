"""Partition migration validation: every LPM check as a small function over a lab snapshot.

The lead gathers a :class:`LabSnapshot` (libvirt, the VIOS namespaces, the RMC channel) and a
:class:`MigrationRequestView` (what ``migrlpar`` was asked); :func:`validate` runs every check in
:data:`CHECKS` and collects all errors and warnings in a :class:`ValidationReport`. A check never
stops the others: the user sees every problem at once, as on the HMC.

Every code, message and fix lives in the one registry, :mod:`lpmlab.codes` (its validation
table: the HMC's HSCL8012, HSCLA319, HSCL3653, lpmlab's HSCL8011 and HSCLL5xx).

Pure logic: no libvirt, no I/O. docs/validation.md lists the checks and how to provoke each.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from itertools import combinations, product
from typing import Literal

from lpmlab import codes
from lpmlab.codes import Code, Severity
from lpmlab.topology import HMC_USER, Topology

MigrationType = Literal["active", "inactive"]

# Concurrent active migrations a VIOS accepts as MSP until 'migrlpar -o set -r lpar ...
# num_active_migrations_configured=N' says otherwise (lpmlab's default; unconfirmed for the HMC).
DEFAULT_MSP_ACTIVE_MIGRATIONS = 4


# The tri-state overrides migrlpar accepts, the values each takes, and its value when not
# given. Storage protection is on unless asked off; the others are not asked by default.
OVERRIDE_CHOICES: dict[str, tuple[int, ...]] = {
    "redundantvios": (0, 1, 2), "redundantmsps": (0, 1, 2), "protectstorage": (1, 2),
    "mpio": (1, 2), "vlanbridge": (1, 2), "uuid": (1, 2)}
OVERRIDE_DEFAULTS: dict[str, int] = {"protectstorage": 1, "uuid": 2}


# -- the snapshot ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameState:
    """One managed system as it is now. Source of each field in brackets.

    name: managed system name [topology].
    host_uuid: libvirt's host UUID [``getCapabilities()`` ``host/uuid``, or libvirtd.conf].
    reachable: the frame's libvirtd answered just now [connection probe]. When False, fill the
        live fields with what you have (zeros are fine): checks needing them skip this frame.
    mobility_capable, battery_power, lmb_size_mb, proc_compat_modes, max_active_migrations,
    max_inactive_migrations: frame settings [topology ``frames[]``].
    memory_mb / processors: installed capacity [topology].
    memory_free_mb / processors_free: capacity minus what the partitions (running or defined,
        as the HMC reserves them) on the frame use [sum over the frame's domains].
    active_migrations / inactive_migrations: migrations in progress that involve this frame
        (as source or destination) [migration store, live records only].
    pseries_machine: the versioned pseries machine type the frame's QEMU runs by default, e.g.
        "pseries-10.0" [capabilities ``guest/arch[@name='ppc64']/machine[@canonical]`` for
        "pseries"].
    qemu_version: e.g. "10.0.2" [``getVersion()`` of the QEMU driver, or capabilities].
    shared_proc_pools: pool name -> free processing units; the lab has only
        {"DefaultPool": processors_free} unless the topology declares pools.
    partition_names / partition_ids: names and IDs of every partition defined on the frame,
        VIOS included [the frame's lab domains + the topology's VIOS].
    vcpu_quiesce_bug: the frame's QEMU loses the "quiesced" flag of secondary vCPUs on
        migration (DESIGN.md "Multi-vCPU guests"; decide by qemu_version).
    bridged_vlans: VLAN IDs the frame's SEA bridges to the lab network. The lab's SEA (bridge
        ``sea0`` in the frame namespace) carries untagged traffic, i.e. the partitions' PVID 1,
        while it is up [``ip -n NS link show sea0``]; empty when it is down or missing.
    """

    name: str
    host_uuid: str
    reachable: bool
    mobility_capable: bool
    battery_power: bool
    lmb_size_mb: int
    memory_mb: int
    memory_free_mb: int
    processors: int
    processors_free: int
    proc_compat_modes: tuple[str, ...]
    max_active_migrations: int
    max_inactive_migrations: int
    active_migrations: int
    inactive_migrations: int
    pseries_machine: str
    qemu_version: str
    shared_proc_pools: Mapping[str, float]
    partition_names: frozenset[str]
    partition_ids: frozenset[int]
    vcpu_quiesce_bug: bool = False
    bridged_vlans: frozenset[int] = frozenset({1})
    # UUID -> name of every partition defined on the frame
    partition_uuids: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ViosState:
    """One Virtual I/O Server as it is now.

    name, frame, lpar_id, msp, time_ref: [topology, or what chsyscfg changed since].
    running: its namespace exists and tgtd runs [``Hmc.lpar_records`` logic].
    rmc_active: the controller can run commands in it (namespace exec answers).
    mover_address: its address on the mover network, None when it has none.
    mover_link_up: its mover interface is up with that address [``ip -n NS addr``].
    serves_luns: LUN ids (see PartitionState.luns) its iSCSI target exports and can hand to a
        partition [``tgtadm --op show`` backing stores, as file names].
    num_active_migrations_configured: concurrent active migrations it accepts as MSP.
    active_migrations: live migrations currently carried by it as source or destination MSP.
    """

    name: str
    frame: str
    lpar_id: int
    running: bool
    rmc_active: bool
    msp: bool
    mover_address: str | None
    mover_link_up: bool
    time_ref: bool
    serves_luns: frozenset[str]
    num_active_migrations_configured: int = DEFAULT_MSP_ACTIVE_MIGRATIONS
    active_migrations: int = 0


@dataclass(frozen=True)
class PartitionState:
    """The mobile partition as it is now, where it is defined (normally the source).

    name, lpar_id, profile, proc_compat_mode: [domain metadata].
    frame: the managed system it is defined on.
    state: libvirt state name: 'running', 'paused', 'shutoff', 'pmsuspended', 'crashed', ...
    memory_mb / procs: current memory and vCPUs [live domain].
    desired_* / min_* / max_*: profile values [persistent domain XML; metadata for min/max,
        else equal to desired]. Inactive migrations are sized by the desired values.
    rmc_active: the RMC (SSH) channel to the partition OS answers.
    migration_disabled: metadata ``migration_disabled=1`` (chsyscfg).
    migrating: a live migration record exists for it (``Hmc.active_migration``).
    luns: LUN ids of its virtual SCSI disks: the LUN's backing file name in the lab's SAN
        directory (``PartitionPlan.disk_image.name``, e.g. "lpar1.img"). Not the IQN: each VIOS
        exports the same backing under its own IQN.
    vscsi_adapters: ibmvscsi controllers in the domain XML.
    vserial_adapters: spapr-vty consoles in the domain XML; the one console stands for the
        HMC's default virtual serial pair, so 1 is the only migratable value.
    physical_io: a ``<hostdev>`` (PCI/USB passthrough) or metadata ``physical_io=1``.
    dedicated_io: an ``<interface type='hostdev'>`` (SR-IOV/HEA-like port) or metadata
        ``dedicated_io=1``.
    workload_group / bsr_arrays / huge_pages: metadata ``workload_group``, ``bsr_arrays``,
        ``huge_pages`` (huge pages also when the domain XML has ``<memoryBacking><hugepages>``).
    vlans: VLAN IDs of its virtual Ethernet adapters; every lab partition has one spapr-vlan
        adapter on the frame's SEA with PVID 1.
    """

    name: str
    lpar_id: int
    frame: str
    state: str
    memory_mb: int
    procs: int
    proc_compat_mode: str
    rmc_active: bool
    migration_disabled: bool
    migrating: bool
    luns: tuple[str, ...]
    vscsi_adapters: int
    desired_memory_mb: int
    min_memory_mb: int
    max_memory_mb: int
    desired_procs: int
    min_procs: int
    max_procs: int
    profile: str = "default_profile"
    vserial_adapters: int = 1
    physical_io: bool = False
    dedicated_io: bool = False
    workload_group: bool = False
    bsr_arrays: int = 0
    huge_pages: bool = False
    vlans: tuple[int, ...] = (1,)
    uuid: str = ""


@dataclass(frozen=True)
class MigrationRequestView:
    """What migrlpar was asked, after parsing (``-m``, ``-t``, ``-p``, ``-n``, ``-i``, flags).

    source_msp / dest_msp: ``source_msp_name`` / ``dest_msp_name`` (ids resolved to names).
    shared_proc_pool: ``shared_proc_pool_name`` (id resolved to name).
    remote_hmc: ``--ip`` for a remote migration, else None; remote_user: ``-u`` there.
    vscsi_vios: destination VIOS names from ``virtual_scsi_mappings`` (empty: any VIOS).
    overrides: tri-state flags given on the command line: redundantvios, redundantmsps,
        protectstorage, mpio, vlanbridge -> 0/1/2 (1 = required: an error when not met;
        2 = if possible: a warning; 0 = off). A missing key means 0 (not asked), except
        protectstorage, which defaults to 1 as on the HMC (see :data:`OVERRIDE_DEFAULTS`).
    """

    partition: str
    source: str
    dest: str
    migration_type: MigrationType = "active"
    dest_lpar_id: int | None = None
    dest_profile: str | None = None
    source_msp: str | None = None
    dest_msp: str | None = None
    shared_proc_pool: str | None = None
    remote_hmc: str | None = None
    remote_user: str = HMC_USER
    vscsi_vios: tuple[str, ...] = ()
    overrides: Mapping[str, int] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.migration_type == "active"


@dataclass(frozen=True)
class LabSnapshot:
    """Everything validation looks at, gathered once before the checks run.

    frames / vios / partitions: by name. ``partitions`` needs at least the partition to migrate.
    mover_reachable: (source MSP, destination MSP) -> a TCP connect from the source MSP's
        namespace to the destination MSP's mover address at a port of the destination frame's
        migration range succeeded. A pair missing here counts as not reachable.
    storage_shared: LUN id -> the VIOSes of both frames export the same backing (same file, by
        device+inode or content digest). Missing counts as not shared.
    remote_hmc_keys: remote HMC address -> ``mkauthkeys --test`` succeeded.
    """

    frames: Mapping[str, FrameState]
    vios: Mapping[str, ViosState]
    partitions: Mapping[str, PartitionState]
    mover_reachable: Mapping[tuple[str, str], bool] = field(default_factory=dict)
    storage_shared: Mapping[str, bool] = field(default_factory=dict)
    remote_hmc_keys: Mapping[str, bool] = field(default_factory=dict)


# -- findings and the one code table ---------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    obj: str
    message: str
    fix: str
    check: str = ""  # the check that produced it, filled in by validate()


# Every code, message and fix lives in the registry (lpmlab.codes); these are validation's.
CODES: Mapping[str, Code] = codes.family("validation")


def finding(code: str, obj: object, *, severity: Severity | None = None,
            **kw: object) -> Finding:
    """A finding from the table; ``kw`` fills the templates (``obj`` is always available)."""
    message, fix = codes.text(code, obj=obj, **kw)
    return Finding(code, severity or CODES[code].severity, str(obj), message, fix)


# -- lookups shared by the checks --------------------------------------------------------------
# A check that needs an object that is missing returns nothing: the check for that object
# (HSCL8011, HSCL8012, HSCLL501, HSCLL502) reports it, once.
def _frame(snap: LabSnapshot, name: str, *, live: bool = False) -> FrameState | None:
    f = snap.frames.get(name)
    if f is None or (live and not f.reachable):
        return None
    return f


def _pair(snap: LabSnapshot, req: MigrationRequestView,
          *, live: bool = False) -> tuple[FrameState, FrameState] | None:
    """Source and destination frames, when both exist, differ (and answer, with ``live``)."""
    if req.source == req.dest:
        return None
    src, dst = _frame(snap, req.source, live=live), _frame(snap, req.dest, live=live)
    return (src, dst) if src and dst else None


def _part(snap: LabSnapshot, req: MigrationRequestView) -> PartitionState | None:
    """The partition to migrate, when it exists on the source frame."""
    p = snap.partitions.get(req.partition)
    if p is None or p.frame != req.source or req.partition in snap.vios:
        return None
    return p


def _needs(p: PartitionState, req: MigrationRequestView) -> tuple[int, int, str]:
    """(memory MB, processors, basis): active moves what runs, inactive what the profile asks."""
    if req.active:
        return p.memory_mb, p.procs, "in use now"
    return p.desired_memory_mb, p.desired_procs, f"desired in profile {p.profile}"


def _vios_on(snap: LabSnapshot, frame: str) -> list[ViosState]:
    return sorted((v for v in snap.vios.values() if v.frame == frame), key=lambda v: v.lpar_id)


def _dest_hosts(snap: LabSnapshot, req: MigrationRequestView, lun: str) -> list[ViosState]:
    """Destination VIOSes that run and export ``lun`` (limited to virtual_scsi_mappings)."""
    return [v for v in _vios_on(snap, req.dest)
            if v.running and lun in v.serves_luns
            and (not req.vscsi_vios or v.name in req.vscsi_vios)]


def _msp_problem(v: ViosState) -> str | None:
    """Why an MSP cannot carry a stream (RMC is reported by its own check)."""
    if not v.running:
        return f"{v.name} is not running"
    if not v.mover_address:
        return f"{v.name} has no mover network address"
    if not v.mover_link_up:
        return f"the mover link of {v.name} is down"
    return None


def _named_msp_ok(snap: LabSnapshot, name: str, frame: str) -> ViosState | None:
    v = snap.vios.get(name)
    if v is None or not v.msp or v.frame != frame or _msp_problem(v):
        return None
    return v


def _msp_candidates(snap: LabSnapshot, req: MigrationRequestView,
                    side: Literal["source", "dest"]) -> list[ViosState]:
    """MSPs the migration may use on one side: the named one, else every working MSP."""
    frame, named = (req.source, req.source_msp) if side == "source" else (req.dest, req.dest_msp)
    if named is not None:
        v = _named_msp_ok(snap, named, frame)
        return [v] if v else []
    return [v for v in _vios_on(snap, frame) if v.msp and not _msp_problem(v)]


def _under_limit(v: ViosState) -> bool:
    return v.active_migrations < v.num_active_migrations_configured


def _reachable_pairs(snap: LabSnapshot, req: MigrationRequestView) -> list[tuple[str, str]]:
    srcs = [v.name for v in _msp_candidates(snap, req, "source") if _under_limit(v)]
    dsts = [v.name for v in _msp_candidates(snap, req, "dest") if _under_limit(v)]
    return [pair for pair in product(srcs, dsts) if snap.mover_reachable.get(pair) is True]


def _level(req: MigrationRequestView, name: str) -> int:
    return int(req.overrides.get(name, OVERRIDE_DEFAULTS.get(name, 0)))


def _severity(level: int) -> Severity:
    """1 = required: an error; 2 = if possible: a warning."""
    return "error" if level == 1 else "warning"


def _names(items: Iterable[str]) -> str:
    return ", ".join(items) or "none"


# -- the checks: request and objects -----------------------------------------------------------
def check_frames_exist(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    names = dict.fromkeys((req.source, req.dest))  # ordered, once each
    return [finding("HSCL8011", n) for n in names if n not in snap.frames]


def check_source_not_dest(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    return [finding("HSCLL501", req.source)] if req.source == req.dest else []


def check_frames_reachable(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    names = dict.fromkeys((req.source, req.dest))
    return [finding("HSCLL502", n) for n in names
            if n in snap.frames and not snap.frames[n].reachable]


def check_partition_found(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    if req.partition in snap.vios:
        return [finding("HSCLL504", req.partition, sys=snap.vios[req.partition].frame)]
    p = snap.partitions.get(req.partition)
    if p is not None and p.frame == req.source:
        return []
    src = snap.frames.get(req.source)
    if p is None and src is not None and not src.reachable:
        return []  # its partitions cannot be seen: frames_reachable (HSCLL502) says so
    where = f" It is on {p.frame}." if p is not None else ""
    return [finding("HSCL8012", req.partition, sys=req.source, where=where)]


def check_remote_hmc_trust(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    # Local migrations involve one HMC: nothing to trust.
    if req.remote_hmc is None:
        return []
    trusted = snap.remote_hmc_keys.get(req.remote_hmc)
    if trusted is None:
        return [finding("HSCLL503", req.remote_hmc)]
    return [] if trusted else [finding("HSCL3653", req.remote_hmc, user=req.remote_user)]


# -- the checks: managed systems ---------------------------------------------------------------
def check_mobility_capable(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    frames = [snap.frames[n] for n in dict.fromkeys((req.source, req.dest)) if n in snap.frames]
    return [finding("HSCLL510", f.name) for f in frames if not f.mobility_capable]


def check_battery_power(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    frames = [snap.frames[n] for n in dict.fromkeys((req.source, req.dest)) if n in snap.frames]
    return [finding("HSCLL511", f.name) for f in frames if f.battery_power]


def check_lmb_size(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    pair = _pair(snap, req)
    if pair is None or pair[0].lmb_size_mb == pair[1].lmb_size_mb:
        return []
    src, dst = pair
    return [finding("HSCLL512", dst.name, src=src.name, src_lmb=src.lmb_size_mb,
                    dest_lmb=dst.lmb_size_mb)]


def check_dest_memory(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    pair, p = _pair(snap, req, live=True), _part(snap, req)
    if pair is None or p is None:
        return []
    dst = pair[1]
    need, _procs, basis = _needs(p, req)
    if dst.memory_free_mb >= need:
        return []
    return [finding("HSCLL513", dst.name, free=dst.memory_free_mb, lpar=p.name, need=need,
                    basis=basis)]


def check_dest_processors(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    pair, p = _pair(snap, req, live=True), _part(snap, req)
    if pair is None or p is None:
        return []
    dst = pair[1]
    _mem, need, basis = _needs(p, req)
    if dst.processors_free >= need:
        return []
    return [finding("HSCLL514", dst.name, free=dst.processors_free, lpar=p.name, need=need,
                    basis=basis)]


def check_shared_proc_pool(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    # Without shared_proc_pool_name the partition lands in the default pool: HSCLL514 covers it.
    pair, p = _pair(snap, req, live=True), _part(snap, req)
    if req.shared_proc_pool is None or pair is None or p is None:
        return []
    dst, pool = pair[1], req.shared_proc_pool
    if pool not in dst.shared_proc_pools:
        return [finding("HSCLL515", pool, sys=dst.name, src=req.source,
                        pools=_names(sorted(dst.shared_proc_pools)))]
    # The lab has no fractional entitlement: a partition needs one unit per processor.
    _mem, need, _basis = _needs(p, req)
    free = dst.shared_proc_pools[pool]
    if free >= need:
        return []
    return [finding("HSCLL516", pool, sys=dst.name, src=req.source, free=free, lpar=p.name,
                    need=need)]


def check_proc_compat_mode(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    pair, p = _pair(snap, req), _part(snap, req)
    if pair is None or p is None or p.proc_compat_mode in pair[1].proc_compat_modes:
        return []
    dst = pair[1]
    return [finding("HSCLL517", dst.name, mode=p.proc_compat_mode, lpar=p.name,
                    modes=_names(dst.proc_compat_modes))]


def check_migration_limits(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    out = []
    for name in dict.fromkeys((req.source, req.dest)):
        f = _frame(snap, name, live=True)
        if f is None:
            continue
        n, limit = ((f.active_migrations, f.max_active_migrations) if req.active
                    else (f.inactive_migrations, f.max_inactive_migrations))
        if n >= limit:
            out.append(finding("HSCLL518", f.name, n=n, kind=req.migration_type, limit=limit))
    return out


def check_host_uuids(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    pair = _pair(snap, req, live=True)
    if pair is None or pair[0].host_uuid != pair[1].host_uuid:
        return []
    return [finding("HSCLL519", pair[1].name, src=pair[0].name, uuid=pair[0].host_uuid)]


def check_machine_type(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    pair = _pair(snap, req, live=True)
    if pair is None or pair[0].pseries_machine == pair[1].pseries_machine:
        return []
    src, dst = pair
    return [finding("HSCLL520", dst.name, src=src.name, src_machine=src.pseries_machine,
                    dest_machine=dst.pseries_machine)]


def check_qemu_version(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    # Only a live stream crosses QEMU versions; an inactive migration moves a definition.
    pair = _pair(snap, req, live=True)
    if not req.active or pair is None or pair[0].qemu_version == pair[1].qemu_version:
        return []
    src, dst = pair
    return [finding("HSCLL521", dst.name, src=src.name, src_version=src.qemu_version,
                    dest_version=dst.qemu_version)]


def check_vcpu_quiesce_bug(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    # DESIGN.md "Multi-vCPU guests": secondaries die after migration unless taken offline.
    pair, p = _pair(snap, req, live=True), _part(snap, req)
    if not req.active or pair is None or p is None or p.procs < 2:
        return []
    affected = [f for f in (pair[1], pair[0]) if f.vcpu_quiesce_bug]
    if not affected:
        return []
    f = affected[0]
    cpus = "processor 1" if p.procs == 2 else f"processors 1-{p.procs - 1}"
    return [finding("HSCLL522", p.name, version=f.qemu_version, sys=f.name, procs=p.procs,
                    cpus=cpus)]


# -- the checks: the partition -----------------------------------------------------------------
def check_migration_disabled(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    p = _part(snap, req)
    return [finding("HSCLL530", p.name, sys=p.frame)] if p and p.migration_disabled else []


def check_not_migrating(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    p = _part(snap, req)
    return [finding("HSCLL531", p.name, sys=p.frame)] if p and p.migrating else []


def check_partition_state(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    p = _part(snap, req)
    if p is None:
        return []
    if req.active and p.state != "running":
        return [finding("HSCLL532", p.name, sys=p.frame, state=p.state)]
    if not req.active and p.state != "shutoff":
        return [finding("HSCLL533", p.name, sys=p.frame, state=p.state)]
    return []


def check_partition_rmc(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    # Inactive migrations never talk to the partition OS. A partition that is not running has
    # no RMC by nature: HSCLL532 says so.
    p = _part(snap, req)
    if not req.active or p is None or p.state != "running" or p.rmc_active:
        return []
    return [finding("HSCLL534", p.name, sys=p.frame)]


def check_physical_io(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    p = _part(snap, req)
    if p is None:
        return []
    out = []
    if p.physical_io:
        out.append(finding("HSCLL535", p.name))
    if p.dedicated_io:
        out.append(finding("HSCLL536", p.name))
    return out


def check_virtual_serial(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    p = _part(snap, req)
    if p is None or p.vserial_adapters <= 1:
        return []
    return [finding("HSCLL537", p.name, n=p.vserial_adapters)]


def check_workload_group(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    p = _part(snap, req)
    return [finding("HSCLL538", p.name)] if p and p.workload_group else []


def check_bsr_arrays(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    # BSR state cannot be carried in a live stream; an inactive partition holds none.
    p = _part(snap, req)
    if not req.active or p is None or p.bsr_arrays == 0:
        return []
    return [finding("HSCLL539", p.name, n=p.bsr_arrays)]


def check_huge_pages(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    p = _part(snap, req)
    return [finding("HSCLL540", p.name)] if req.active and p and p.huge_pages else []


def check_dest_name_free(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    pair = _pair(snap, req, live=True)
    if pair is None or req.partition not in pair[1].partition_names:
        return []
    return [finding("HSCLL541", req.partition, sys=req.dest, src=req.source)]


def check_dest_uuid_free(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    """--uuid: the partition keeps its UUID; no other partition of the destination has it."""
    pair, p = _pair(snap, req, live=True), _part(snap, req)
    if pair is None or p is None or not p.uuid:
        return []
    other = pair[1].partition_uuids.get(p.uuid)
    if other is None or other == p.name:
        return []
    return [finding("HSCLL567", p.name, uuid=p.uuid, other=other, sys=req.dest,
                    level=_level(req, "uuid"))]


def check_dest_lpar_id_free(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    # Without dest_lpar_id the HMC picks a free ID; only an explicit one can clash.
    pair = _pair(snap, req, live=True)
    if pair is None or req.dest_lpar_id is None or req.dest_lpar_id not in pair[1].partition_ids:
        return []
    used = ", ".join(str(i) for i in sorted(pair[1].partition_ids))
    return [finding("HSCLL542", req.dest_lpar_id, sys=req.dest, used=used)]


# -- the checks: VIOS, MSPs, storage -----------------------------------------------------------
def check_vios_rmc(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    """RMC to the VIOSes the migration counts on: storage servers on both sides, and MSPs."""
    p = _part(snap, req)
    if _pair(snap, req) is None or p is None:
        return []
    roles: dict[str, list[str]] = {}
    for lun in p.luns:
        for v in _vios_on(snap, req.source):
            if lun in v.serves_luns:
                roles.setdefault(v.name, []).append(f"serves {lun} on the source")
        for v in _dest_hosts(snap, req, lun):
            roles.setdefault(v.name, []).append(f"can host {lun} on the destination")
    if req.active:
        for side, frame, named in (("source", req.source, req.source_msp),
                                   ("destination", req.dest, req.dest_msp)):
            for v in _vios_on(snap, frame):
                if v.msp and named in (None, v.name):
                    roles.setdefault(v.name, []).append(f"{side} MSP")
    out = []
    for name, role in roles.items():
        v = snap.vios[name]
        # A VIOS that is down has no RMC by nature; the storage and MSP checks report it.
        if v.running and not v.rmc_active:
            out.append(finding("HSCLL550", v.name, sys=v.frame, role="; ".join(role)))
    return out


def check_msp_available(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    """At least one working MSP on each side (sides where the user named one: see below)."""
    if not req.active or _pair(snap, req) is None:
        return []
    out = []
    for frame, named in ((req.source, req.source_msp), (req.dest, req.dest_msp)):
        if named is not None:
            continue
        msps = [v for v in _vios_on(snap, frame) if v.msp]
        if not msps:
            out.append(finding("HSCLL551", frame))
            continue
        problems = [_msp_problem(v) for v in msps]
        if all(problems):
            out.append(finding("HSCLL552", frame, detail="; ".join(filter(None, problems))))
    return out


def check_named_msps(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    """source_msp_name / dest_msp_name: exists, is an MSP, on the right frame, working."""
    if not req.active or _pair(snap, req) is None:
        return []
    out = []
    for side, frame, named in (("source", req.source, req.source_msp),
                               ("destination", req.dest, req.dest_msp)):
        if named is None:
            continue
        attr = "source_msp_name" if side == "source" else "dest_msp_name"
        kw = {"side": side, "attr": attr, "sys": frame, "src": req.source, "dest": req.dest}
        v = snap.vios.get(named)
        if v is None:
            out.append(finding("HSCLL553", named, **kw))
        elif not v.msp:
            out.append(finding("HSCLL554", named, **kw))
        elif v.frame != frame:
            out.append(finding("HSCLL555", named, actual=v.frame, **kw))
        elif problem := _msp_problem(v):
            out.append(finding("HSCLL556", named, detail=problem, **kw))
    return out


def check_msp_limits(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    # One MSP with room on a side is enough; report only when every candidate is full.
    if not req.active or _pair(snap, req) is None:
        return []
    out = []
    sides: tuple[Literal["source", "dest"], ...] = ("source", "dest")
    for side in sides:
        cands = _msp_candidates(snap, req, side)
        if cands and not any(_under_limit(v) for v in cands):
            out.extend(finding("HSCLL558", v.name, sys=v.frame, n=v.active_migrations,
                               limit=v.num_active_migrations_configured) for v in cands)
    return out


def check_mover_path(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    """Some (source MSP, destination MSP) pair the lead measured as reachable."""
    if not req.active or _pair(snap, req) is None:
        return []
    srcs = [v.name for v in _msp_candidates(snap, req, "source") if _under_limit(v)]
    dsts = [v.name for v in _msp_candidates(snap, req, "dest") if _under_limit(v)]
    if not srcs or not dsts or _reachable_pairs(snap, req):
        return []  # no candidates: HSCLL55x above says why
    states = {True: "reachable", False: "unreachable", None: "not measured"}
    pairs = list(product(srcs, dsts))
    detail = "; ".join(f"{s} -> {d} {states[snap.mover_reachable.get((s, d))]}"
                       for s, d in pairs)
    return [finding("HSCLL557", ", ".join(f"{s} -> {d}" for s, d in pairs), detail=detail,
                    dest=req.dest)]


def check_redundant_msps(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    level = _level(req, "redundantmsps")
    if not req.active or level == 0 or _pair(snap, req) is None:
        return []
    pairs = _reachable_pairs(snap, req)
    if not pairs:
        return []  # HSCLL557
    # Two pairs are independent when they share neither MSP.
    if any(a[0] != b[0] and a[1] != b[1] for a, b in combinations(pairs, 2)):
        return []
    return [finding("HSCLL562", ", ".join(f"{s} -> {d}" for s, d in pairs), n=1, level=level,
                    severity=_severity(level))]


def check_time_reference(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    # The time reference keeps the time of day of a running partition; inactive: nothing runs.
    if not req.active or _pair(snap, req) is None:
        return []
    return [finding("HSCLL559", frame) for frame in (req.source, req.dest)
            if not any(v.time_ref for v in _vios_on(snap, frame))]


def check_vscsi_mappings(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    if _pair(snap, req) is None:
        return []
    return [finding("HSCLL563", name, sys=req.dest, src=req.source, lpar=req.partition)
            for name in req.vscsi_vios
            if name not in snap.vios or snap.vios[name].frame != req.dest]


def check_storage_hostable(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    p = _part(snap, req)
    if p is None or _pair(snap, req) is None:
        return []
    dest_vios = _vios_on(snap, req.dest)
    out = []
    for lun in p.luns:
        if _dest_hosts(snap, req, lun):
            continue
        why = [f"{v.name} " + ("is not running" if not v.running else
                              "does not serve it" if lun not in v.serves_luns else
                              "is not named in virtual_scsi_mappings") for v in dest_vios]
        out.append(finding("HSCLA319", lun, kind="storage", lpar=p.name, sys=req.dest,
                           detail="; ".join(why) or f"{req.dest} has no VIOS"))
    # An adapter without a disk still needs a VIOS to be hosted by.
    if not p.luns and not any(v.running for v in dest_vios):
        out.extend(finding("HSCLA319", f"{p.name}/vscsi{i}", kind="client adapter",
                           lpar=p.name, sys=req.dest, detail=f"{req.dest} has no running VIOS")
                   for i in range(p.vscsi_adapters))
    return out


def _single_path_luns(snap: LabSnapshot, req: MigrationRequestView
                      ) -> tuple[PartitionState | None, list[tuple[str, str]]]:
    """The partition and its (LUN, only host) pairs: LUNs exactly one destination VIOS
    serves (none at all is HSCLA319's finding). --redundantvios and --mpio both ask this."""
    p = _part(snap, req)
    if p is None or _pair(snap, req) is None:
        return p, []
    pairs = [(lun, hosts[0].name) for lun in p.luns
             if len(hosts := _dest_hosts(snap, req, lun)) == 1]
    return p, pairs


def check_redundant_vios(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    level = _level(req, "redundantvios")
    if level == 0:
        return []
    _, single = _single_path_luns(snap, req)
    return [finding("HSCLL560", lun, sys=req.dest, n=1, level=level, hosts=host,
                    severity=_severity(level)) for lun, host in single]


def check_storage_shared(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    p = _part(snap, req)
    if p is None or _pair(snap, req) is None:
        return []
    out = []
    for lun in p.luns:
        shared = snap.storage_shared.get(lun)
        if shared is None and _level(req, "protectstorage") == 2:
            continue  # unprotected on request: HSCLL566 warns
        if shared is not True:
            detail = "backed differently" if shared is False else "not verified as shared"
            out.append(finding("HSCLL561", lun, lpar=p.name, src=req.source, dest=req.dest,
                               detail=detail))
    return out


def check_vlan_bridge(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    """--vlanbridge: every VLAN of the partition is bridged by the destination's SEA."""
    level = _level(req, "vlanbridge")
    pair, p = _pair(snap, req, live=True), _part(snap, req)
    if level == 0 or pair is None or p is None:
        return []
    dst = pair[1]
    bridged = _names(str(v) for v in sorted(dst.bridged_vlans))
    return [finding("HSCLL564", vlan, lpar=p.name, sys=dst.name, bridged=bridged, level=level,
                    severity=_severity(level))
            for vlan in p.vlans if vlan not in dst.bridged_vlans]


def check_mpio(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    """--mpio: each LUN keeps two paths (two hosting VIOSes) on the destination. The lab's
    client disks are single-path; two serving VIOSes are what a multipath setup needs."""
    level = _level(req, "mpio")
    if level == 0:
        return []
    p, single = _single_path_luns(snap, req)
    return [finding("HSCLL565", lun, lpar=p.name if p else "", sys=req.dest, n=1,
                    level=level, hosts=host, severity=_severity(level))
            for lun, host in single]


def check_protect_storage(snap: LabSnapshot, req: MigrationRequestView) -> list[Finding]:
    """--protectstorage 2: storage not verified as shared is a warning, not HSCLL561. Storage
    known to be backed differently stays an error: the migration would corrupt the disk."""
    p = _part(snap, req)
    if _level(req, "protectstorage") != 2 or p is None or _pair(snap, req) is None:
        return []
    return [finding("HSCLL566", lun, lpar=p.name, src=req.source, dest=req.dest)
            for lun in p.luns if snap.storage_shared.get(lun) is None]


Check = Callable[[LabSnapshot, MigrationRequestView], list[Finding]]

# Order = the order of the report: the request, the systems, the partition, VIOS/MSP/storage.
CHECKS: list[tuple[str, Check]] = [
    ("frames_exist", check_frames_exist),
    ("source_not_dest", check_source_not_dest),
    ("frames_reachable", check_frames_reachable),
    ("partition_found", check_partition_found),
    ("remote_hmc_trust", check_remote_hmc_trust),
    ("mobility_capable", check_mobility_capable),
    ("battery_power", check_battery_power),
    ("lmb_size", check_lmb_size),
    ("dest_memory", check_dest_memory),
    ("dest_processors", check_dest_processors),
    ("shared_proc_pool", check_shared_proc_pool),
    ("proc_compat_mode", check_proc_compat_mode),
    ("migration_limits", check_migration_limits),
    ("host_uuids", check_host_uuids),
    ("machine_type", check_machine_type),
    ("qemu_version", check_qemu_version),
    ("vcpu_quiesce_bug", check_vcpu_quiesce_bug),
    ("migration_disabled", check_migration_disabled),
    ("not_migrating", check_not_migrating),
    ("partition_state", check_partition_state),
    ("partition_rmc", check_partition_rmc),
    ("physical_io", check_physical_io),
    ("virtual_serial", check_virtual_serial),
    ("workload_group", check_workload_group),
    ("bsr_arrays", check_bsr_arrays),
    ("huge_pages", check_huge_pages),
    ("dest_name_free", check_dest_name_free),
    ("dest_lpar_id_free", check_dest_lpar_id_free),
    ("dest_uuid_free", check_dest_uuid_free),
    ("vios_rmc", check_vios_rmc),
    ("msp_available", check_msp_available),
    ("named_msps", check_named_msps),
    ("msp_limits", check_msp_limits),
    ("mover_path", check_mover_path),
    ("redundant_msps", check_redundant_msps),
    ("time_reference", check_time_reference),
    ("vlan_bridge", check_vlan_bridge),
    ("vscsi_mappings", check_vscsi_mappings),
    ("storage_hostable", check_storage_hostable),
    ("redundant_vios", check_redundant_vios),
    ("mpio", check_mpio),
    ("storage_shared", check_storage_shared),
    ("protect_storage", check_protect_storage),
]


# -- running them ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValidationReport:
    """Every finding of one validation, in check order."""

    findings: tuple[Finding, ...]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def render(self, *, warnings: bool = True) -> str:
        """HMC-style text: errors, then warnings; each a code + message line and a Fix: line.

        Empty when there is nothing to say (a clean validation prints nothing, as on the HMC).
        """
        sections = [("Errors:", self.errors)]
        if warnings:
            sections.append(("Warnings:", self.warnings))
        out = []
        for title, items in sections:
            if items:
                blocks = [f"{f.code} {f.message}\nFix: {f.fix}" for f in items]
                out.append(title + "\n" + "\n\n".join(blocks))
        return "\n\n".join(out)

    def records(self) -> list[dict[str, str]]:
        """For --json."""
        return [{"code": f.code, "severity": f.severity, "object": f.obj, "message": f.message,
                 "fix": f.fix, "check": f.check} for f in self.findings]

    def raise_for_errors(self) -> None:
        """The first error's (code, message, fix, and its class: the exit code follows the
        code), with the whole report as evidence when there is more to say."""
        if self.ok:
            return
        first, more = self.errors[0], len(self.errors) - 1
        msg = first.message + (f" (and {more} more, see below)" if more else "")
        raise codes.spec(first.code).error(
            msg, fix=first.fix, code=first.code,
            evidence=self.render() if more or self.warnings else None,
            findings=self.records())


def validate(snapshot: LabSnapshot, request: MigrationRequestView,
             checks: Iterable[tuple[str, Check]] | None = None) -> ValidationReport:
    """Run every check (``CHECKS`` unless given); a check that fails becomes an error finding."""
    found: list[Finding] = []
    for name, fn in CHECKS if checks is None else checks:
        try:
            result = list(fn(snapshot, request))
            if not all(isinstance(f, Finding) for f in result):
                raise TypeError("returned something other than Finding objects")
        except Exception as exc:  # one broken check must not hide the others
            detail = f"{type(exc).__name__}: {exc}"
            found.append(replace(finding("HSCLL599", name, detail=detail), check=name))
            continue
        found.extend(replace(f, check=name) for f in result)
    return ValidationReport(tuple(found))


# -- the snapshot the topology promises ------------------------------------------------------
def snapshot_from_topology(topology: Topology, *, pseries_machine: str = "pseries-10.0",
                           qemu_version: str = "10.0.2") -> LabSnapshot:
    """The state a topology promises when everything is up: every daemon answers, every link
    is up, every VIOS exports every partition's LUN (as the lab's playbooks set it up), no
    migration runs. A starting point the lead overlays with measured values
    (``dataclasses.replace``), and the healthy lab of the unit tests. Host UUIDs are
    deterministic placeholders, distinct per frame.
    """
    luns = {p.name: (f"{p.name}.img",) if p.disk else () for p in topology.partitions}
    all_luns = frozenset(lun for ls in luns.values() for lun in ls)
    frames = {}
    for f in topology.frames:
        parts = topology.partitions_on(f.name)
        vios = topology.vios_on(f.name)
        procs_free = f.processors - sum(p.procs for p in parts)
        frames[f.name] = FrameState(
            name=f.name, host_uuid=str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                  f"lpmlab:{topology.name}:{f.name}")),
            reachable=True, mobility_capable=f.mobility_capable, battery_power=f.battery_power,
            lmb_size_mb=f.lmb_size_mb, memory_mb=f.memory_mb,
            memory_free_mb=f.memory_mb - sum(p.memory_mb for p in parts),
            processors=f.processors, processors_free=procs_free,
            proc_compat_modes=f.proc_compat_modes,
            max_active_migrations=f.max_active_migrations,
            max_inactive_migrations=f.max_inactive_migrations,
            active_migrations=0, inactive_migrations=0, pseries_machine=pseries_machine,
            qemu_version=qemu_version, shared_proc_pools={"DefaultPool": float(procs_free)},
            partition_names=frozenset(o.name for o in (*parts, *vios)),
            partition_ids=frozenset(o.lpar_id for o in (*parts, *vios)))
    vios_states = {
        v.name: ViosState(name=v.name, frame=v.frame, lpar_id=v.lpar_id, running=True,
                          rmc_active=True, msp=v.msp,
                          mover_address=str(v.mover_address) if v.mover_address else None,
                          mover_link_up=v.mover_address is not None, time_ref=v.time_ref,
                          serves_luns=all_luns)
        for v in topology.vios}
    partitions = {
        p.name: PartitionState(
            name=p.name, lpar_id=p.lpar_id, frame=p.frame, state="running",
            memory_mb=p.memory_mb, procs=p.procs, proc_compat_mode=p.proc_compat_mode,
            rmc_active=True, migration_disabled=False, migrating=False, luns=luns[p.name],
            vscsi_adapters=1 if p.disk else 0, desired_memory_mb=p.memory_mb,
            min_memory_mb=p.memory_mb, max_memory_mb=p.memory_mb, desired_procs=p.procs,
            min_procs=p.procs, max_procs=p.procs)
        for p in topology.partitions}
    msps = [v.name for v in topology.vios if v.msp and v.mover_address]
    reach = {(a, b): True for a, b in product(msps, msps) if a != b}
    return LabSnapshot(frames=frames, vios=vios_states, partitions=partitions,
                       mover_reachable=reach, storage_shared=dict.fromkeys(all_luns, True))
