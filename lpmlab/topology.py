"""The lab topology: frames, VIOS/MSPs, networks and partitions, parsed from YAML.

A topology names every object the lab creates. Parsing checks it completely, so a bad file
fails before anything on the host changes; each error names the field and the fix.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import yaml

from lpmlab.errors import TopologyError

# Lab traffic may only use the benchmarking range, on interfaces in namespaces the lab creates.
LAB_RANGE = ipaddress.ip_network("198.18.0.0/15")
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")
# names lpmlab itself uses for namespaces and provisioning hosts (lpm-hub, ...)
RESERVED_NAMES = ("hub",)
PROC_COMPAT_MODES = ("default", "POWER8", "POWER9", "POWER10")


@dataclass(frozen=True)
class Network:
    name: str
    subnet: ipaddress.IPv4Network


@dataclass(frozen=True)
class Frame:
    """A managed system: one libvirt daemon with its own host UUID."""

    name: str
    index: int
    address: ipaddress.IPv4Address
    type_model: str = "9009-42A"
    serial_num: str = ""
    memory_mb: int = 8192
    processors: int = 8
    lmb_size_mb: int = 256
    proc_compat_modes: tuple[str, ...] = PROC_COMPAT_MODES
    mobility_capable: bool = True
    battery_power: bool = False
    max_active_migrations: int = 16
    max_inactive_migrations: int = 4
    migration_ports: tuple[int, int] = (49152, 49215)


@dataclass(frozen=True)
class Vios:
    """A Virtual I/O Server: serves partition disks (iSCSI) and, with msp, the migration stream."""

    name: str
    index: int
    frame: str
    lpar_id: int
    address: ipaddress.IPv4Address
    msp: bool = True
    mover_address: ipaddress.IPv4Address | None = None
    time_ref: bool = False


@dataclass(frozen=True)
class Disk:
    size_mb: int
    vios: str


@dataclass(frozen=True)
class Profile:
    """A partition profile: the resources an activation with this profile asks for."""

    name: str
    desired_mem: int
    min_mem: int
    max_mem: int
    desired_procs: int
    min_procs: int
    max_procs: int
    lpar_proc_compat_mode: str = "default"

    INT_FIELDS: ClassVar[tuple[str, ...]] = (
        "min_mem", "desired_mem", "max_mem", "min_procs", "desired_procs", "max_procs")

    def as_attrs(self) -> dict[str, str]:
        """The profile as the string attributes it is stored with in domain metadata."""
        out = {"name": self.name}
        out.update({k: str(getattr(self, k)) for k in self.INT_FIELDS})
        out["lpar_proc_compat_mode"] = self.lpar_proc_compat_mode
        return out

    @classmethod
    def from_attrs(cls, attrs: dict[str, str]) -> Profile:
        return cls(name=attrs["name"], **{k: int(attrs[k]) for k in cls.INT_FIELDS},
                   lpar_proc_compat_mode=attrs.get("lpar_proc_compat_mode", "default"))

    def problems(self, lmb_mb: int | None = None) -> list[tuple[str, str, str]]:
        """(field, what is wrong, fix) for every inconsistency; empty when valid."""
        out = []
        for kind in ("mem", "procs"):
            lo, want, hi = (getattr(self, f"{k}_{kind}") for k in ("min", "desired", "max"))
            if not lo <= want <= hi:
                out.append((f"desired_{kind}", f"min_{kind} {lo} <= desired_{kind} {want} <= "
                            f"max_{kind} {hi} does not hold",
                            f"choose min_{kind} <= desired_{kind} <= max_{kind}"))
        if lmb_mb:
            for k in ("min_mem", "desired_mem", "max_mem"):
                if getattr(self, k) % lmb_mb:
                    out.append((k, f"{getattr(self, k)} MiB is not a multiple of the "
                                f"{lmb_mb} MiB memory block", f"use a multiple of {lmb_mb}"))
        if self.lpar_proc_compat_mode not in PROC_COMPAT_MODES:
            out.append(("lpar_proc_compat_mode", f"invalid mode {self.lpar_proc_compat_mode!r}",
                        f"choose from {', '.join(PROC_COMPAT_MODES)}"))
        return out


DEFAULT_PROFILE = "default_profile"


@dataclass(frozen=True)
class Partition:
    """A mobile partition (AIX/Linux environment): a pseries domain."""

    name: str
    index: int
    frame: str
    lpar_id: int
    address: ipaddress.IPv4Address
    memory_mb: int = 512
    procs: int = 1
    proc_compat_mode: str = "default"
    disk: Disk | None = None
    mac: str = ""
    profiles: tuple[Profile, ...] = ()


HMC_USER = "hscroot"
DEFAULT_HOST_LINK = ipaddress.ip_network("198.18.2.0/24")


@dataclass(frozen=True)
class ManagementConsole:
    """An HMC: its SSH endpoint on the lab network and the frames it manages (its records are
    its own; it reaches other HMCs' frames only through them)."""

    name: str
    index: int
    address: ipaddress.IPv4Address
    frames: tuple[str, ...]
    password: str | None = None  # hscroot's; None: generated when the lab comes up
    user: str = HMC_USER


@dataclass(frozen=True)
class Topology:
    name: str
    lab: Network
    mover: Network
    hmc_address: ipaddress.IPv4Address
    frames: tuple[Frame, ...]
    vios: tuple[Vios, ...]
    partitions: tuple[Partition, ...]
    source: str = "<built-in default>"
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    hmcs: tuple[ManagementConsole, ...] = ()
    # point-to-point links from the host's own namespace to each HMC endpoint
    host_link: ipaddress.IPv4Network = DEFAULT_HOST_LINK

    def console(self, name: str) -> ManagementConsole:
        for h in self.hmcs:
            if h.name == name:
                return h
        raise KeyError(name)

    def host_link_of(self, console: ManagementConsole) \
            -> tuple[ipaddress.IPv4Interface, ipaddress.IPv4Interface]:
        """(host end, HMC end) of the point-to-point link from the host's namespace to an
        HMC endpoint: four addresses of ``host_link`` per HMC, in HMC order."""
        base = self.host_link.network_address + 4 * console.index
        return (ipaddress.IPv4Interface(f"{base + 1}/30"),
                ipaddress.IPv4Interface(f"{base + 2}/30"))

    def console_of(self, frame: str) -> ManagementConsole:
        """The HMC that manages ``frame``."""
        for h in self.hmcs:
            if frame in h.frames:
                return h
        raise KeyError(frame)

    def frame(self, name: str) -> Frame:
        for f in self.frames:
            if f.name == name:
                return f
        raise KeyError(name)

    def vios_on(self, frame: str) -> list[Vios]:
        return [v for v in self.vios if v.frame == frame]

    def partitions_on(self, frame: str) -> list[Partition]:
        return [p for p in self.partitions if p.frame == frame]

    def partition(self, name: str) -> Partition:
        for p in self.partitions:
            if p.name == name:
                return p
        raise KeyError(name)

    def vios_named(self, name: str) -> Vios:
        for v in self.vios:
            if v.name == name:
                return v
        raise KeyError(name)


def default_topology_text() -> str:
    return resources.files("lpmlab.topologies").joinpath("default.yaml").read_text()


def load(path: str | Path | None = None) -> Topology:
    """Parse a topology file, or the built-in default when ``path`` is None."""
    if path is None:
        return parse(default_topology_text(), source="<built-in default>")
    p = Path(path)
    builtin = resources.files("lpmlab.topologies").joinpath(f"{p.name}.yaml")
    if not p.exists() and "/" not in str(path) and builtin.is_file():
        # a built-in topology by name: lpmlab lab up -t two-hmcs
        return parse(builtin.read_text(), source=f"<built-in {p.name}>")
    try:
        text = p.read_text()
    except OSError as exc:
        raise TopologyError(f"cannot read topology file {p}: {exc.strerror}",
                            fix="give the path of an existing YAML topology file") from exc
    return parse(text, source=str(p))


def parse(text: str, *, source: str = "<string>") -> Topology:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(f"{source}: not valid YAML: {exc}",
                            fix="fix the YAML syntax (see docs/topology.md)") from exc
    if not isinstance(data, dict):
        raise TopologyError(f"{source}: the topology must be a mapping",
                            fix="start from lpmlab/topologies/default.yaml")
    return _Parser(source).topology(data)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str, fix: str) -> TopologyError:
        return TopologyError(f"{self.source}: {where}: {problem}", fix=fix)

    # -- typed field readers -------------------------------------------------------------
    def _get(self, d: dict[str, Any], key: str, where: str, default: Any = ...) -> Any:
        if key in d:
            return d[key]
        if default is ...:
            raise self.fail(where, f"missing required field '{key}'", f"add '{key}:'")
        return default

    def integer(self, d: dict[str, Any], key: str, where: str, default: Any = ...,
                lo: int | None = None, hi: int | None = None) -> int:
        v = self._get(d, key, where, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(f"{where}.{key}", f"expected an integer, got {v!r}", "write a number")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.fail(f"{where}.{key}", f"{v} is outside {lo}..{hi}",
                            f"choose a value between {lo} and {hi}")
        return v

    def boolean(self, d: dict[str, Any], key: str, where: str, default: Any = ...) -> bool:
        v = self._get(d, key, where, default)
        if not isinstance(v, bool):
            raise self.fail(f"{where}.{key}", f"expected true or false, got {v!r}",
                            "write true or false")
        return v

    def name(self, d: dict[str, Any], where: str) -> str:
        v = self._get(d, "name", where)
        if not isinstance(v, str) or not NAME_RE.match(v):
            raise self.fail(f"{where}.name", f"invalid name {v!r}",
                            "use 1-31 characters: lower-case letters, digits, '-' or '_', "
                            "starting with a letter")
        if v in RESERVED_NAMES:
            raise self.fail(f"{where}.name", f"the name {v!r} is reserved for lpmlab's own "
                            "network switches", "choose another name")
        return v

    def address(self, d: dict[str, Any], key: str, where: str,
                net: Network | None) -> ipaddress.IPv4Address:
        v = self._get(d, key, where)
        try:
            addr = ipaddress.IPv4Address(str(v))
        except ValueError as exc:
            raise self.fail(f"{where}.{key}", f"{v!r} is not an IPv4 address",
                            "write an address such as 198.18.0.11") from exc
        if addr not in LAB_RANGE:
            raise self.fail(f"{where}.{key}", f"{addr} is outside {LAB_RANGE}",
                            f"lab addresses must lie in {LAB_RANGE} (benchmarking range)")
        if net is not None and (addr not in net.subnet or addr in
                                (net.subnet.network_address, net.subnet.broadcast_address)):
            raise self.fail(f"{where}.{key}", f"{addr} is not a host address of the "
                            f"{net.name} network {net.subnet}",
                            f"pick a host address inside {net.subnet}")
        return addr

    def items(self, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
        v = data.get(key, [])
        if not isinstance(v, list) or not all(isinstance(i, dict) for i in v):
            raise self.fail(key, "expected a list of mappings", f"write '{key}:' as a YAML list")
        return v

    # -- sections ------------------------------------------------------------------------
    def network(self, nets: dict[str, Any], name: str) -> Network:
        d = nets.get(name)
        if not isinstance(d, dict):
            raise self.fail(f"networks.{name}", "missing", f"declare networks.{name}.subnet")
        try:
            subnet = ipaddress.IPv4Network(str(self._get(d, "subnet", f"networks.{name}")))
        except ValueError as exc:
            raise self.fail(f"networks.{name}.subnet", str(exc), "write a CIDR such as "
                            "198.18.0.0/24") from exc
        if not subnet.subnet_of(LAB_RANGE):
            raise self.fail(f"networks.{name}.subnet", f"{subnet} is outside {LAB_RANGE}",
                            f"use a subnet of {LAB_RANGE}")
        return Network(name, subnet)

    def topology(self, data: dict[str, Any]) -> Topology:
        nets = data.get("networks") or {}
        if not isinstance(nets, dict):
            raise self.fail("networks", "expected a mapping", "see docs/topology.md")
        lab, mover = self.network(nets, "lab"), self.network(nets, "mover")
        if lab.subnet.overlaps(mover.subnet):
            raise self.fail("networks", "the lab and mover subnets overlap",
                            "give the mover network its own subnet")
        hmc = self.address(nets["lab"], "hmc_address", "networks.lab", lab)
        frames = tuple(self.frame(d, i, lab) for i, d in enumerate(self.items(data, "frames")))
        if not frames:
            raise self.fail("frames", "no frames declared", "declare at least two frames")
        vios = tuple(self.vios(d, i, lab, mover) for i, d in enumerate(self.items(data, "vios")))
        parts = tuple(self.partition(d, i, lab)
                      for i, d in enumerate(self.items(data, "partitions")))
        name = data.get("name", "default")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise self.fail("name", f"invalid lab name {name!r}", "use a short lower-case name")
        host_link = self.host_link(nets, lab, mover)
        hmcs = self.consoles(data, lab, frames)
        topo = Topology(name, lab, mover, hmc, frames, vios, parts, self.source, data,
                        hmcs=hmcs, host_link=host_link)
        self.cross_check(topo)
        return topo

    def host_link(self, nets: dict[str, Any], lab: Network, mover: Network) \
            -> ipaddress.IPv4Network:
        link = (self.network(nets, "host_link").subnet if "host_link" in nets
                else DEFAULT_HOST_LINK)
        for other in (lab, mover):
            if link.overlaps(other.subnet):
                raise self.fail("networks.host_link.subnet", f"{link} overlaps the "
                                f"{other.name} network {other.subnet}",
                                "give the host links their own subnet, e.g. 198.18.2.0/24")
        if link.num_addresses < 4:
            raise self.fail("networks.host_link.subnet", f"{link} is too small",
                            "use a /29 or larger (four addresses per HMC)")
        return link

    def consoles(self, data: dict[str, Any], lab: Network,
                 frames: tuple[Frame, ...]) -> tuple[ManagementConsole, ...]:
        """The HMCs; without an ``hmcs`` list, one ``hmc1`` managing every frame at the lab
        network's second host address."""
        if "hmcs" not in data:
            addr = next(iter(lab.subnet.hosts())) + 1
            return (ManagementConsole("hmc1", 0, addr, tuple(f.name for f in frames)),)
        out = []
        for i, d in enumerate(self.items(data, "hmcs")):
            where = f"hmcs[{i}]"
            managed = d.get("frames")
            if (not isinstance(managed, list) or not managed
                    or not all(isinstance(f, str) for f in managed)):
                raise self.fail(f"{where}.frames", f"expected a list of frame names, got "
                                f"{managed!r}", "write frames: [sys1, sys2]")
            password = d.get("password")
            if password is not None and (not isinstance(password, str) or len(password) < 6
                                         or any(c.isspace() for c in password)):
                raise self.fail(f"{where}.password", "a password is 6 or more characters "
                                "without spaces", "write another, or leave it out to have "
                                "one generated")
            out.append(ManagementConsole(self.name(d, where), i,
                                         self.address(d, "address", where, lab),
                                         tuple(managed), password))
        if not out:
            raise self.fail("hmcs", "no HMC declared", "declare one, or leave 'hmcs' out")
        return tuple(out)

    def frame(self, d: dict[str, Any], i: int, lab: Network) -> Frame:
        where = f"frames[{i}]"
        modes = d.get("proc_compat_modes", list(PROC_COMPAT_MODES))
        if not isinstance(modes, list) or any(m not in PROC_COMPAT_MODES for m in modes):
            raise self.fail(f"{where}.proc_compat_modes", f"invalid modes {modes!r}",
                            f"choose from {', '.join(PROC_COMPAT_MODES)}")
        ports = d.get("migration_ports", [49152, 49215])
        if (not isinstance(ports, list) or len(ports) != 2
                or not all(isinstance(p, int) for p in ports)
                or not 1024 <= ports[0] <= ports[1] <= 65535):
            raise self.fail(f"{where}.migration_ports", f"invalid port range {ports!r}",
                            "write [first, last] with 1024 <= first <= last <= 65535")
        name = self.name(d, where)
        return Frame(
            name=name, index=i, address=self.address(d, "address", where, lab),
            type_model=str(d.get("type_model", "9009-42A")),
            serial_num=str(d.get("serial_num", f"LPM{i + 1:04d}")),
            memory_mb=self.integer(d, "memory_mb", where, 8192, 256),
            processors=self.integer(d, "processors", where, 8, 1),
            lmb_size_mb=self.integer(d, "lmb_size_mb", where, 256, 16, 4096),
            proc_compat_modes=tuple(modes),
            mobility_capable=self.boolean(d, "mobility_capable", where, True),
            battery_power=self.boolean(d, "battery_power", where, False),
            max_active_migrations=self.integer(d, "max_active_migrations", where, 16, 0),
            max_inactive_migrations=self.integer(d, "max_inactive_migrations", where, 4, 0),
            migration_ports=(ports[0], ports[1]),
        )

    def vios(self, d: dict[str, Any], i: int, lab: Network, mover: Network) -> Vios:
        where = f"vios[{i}]"
        msp = self.boolean(d, "msp", where, True)
        mover_addr = (self.address(d, "mover_address", where, mover)
                      if msp or "mover_address" in d else None)
        return Vios(
            name=self.name(d, where), index=i, frame=str(self._get(d, "frame", where)),
            lpar_id=self.integer(d, "lpar_id", where, 1, 1, 1000),
            address=self.address(d, "address", where, lab), msp=msp,
            mover_address=mover_addr, time_ref=self.boolean(d, "time_ref", where, False),
        )

    def partition(self, d: dict[str, Any], i: int, lab: Network) -> Partition:
        where = f"partitions[{i}]"
        disk = None
        if "disk" in d:
            dd = d["disk"]
            if not isinstance(dd, dict):
                raise self.fail(f"{where}.disk", "expected a mapping",
                                "write disk: {size_mb: 64, vios: vios1}")
            disk = Disk(self.integer(dd, "size_mb", f"{where}.disk", 64, 8, 65536),
                        str(self._get(dd, "vios", f"{where}.disk")))
        mode = d.get("proc_compat_mode", "default")
        if mode not in PROC_COMPAT_MODES:
            raise self.fail(f"{where}.proc_compat_mode", f"invalid mode {mode!r}",
                            f"choose from {', '.join(PROC_COMPAT_MODES)}")
        memory_mb = self.integer(d, "memory_mb", where, 512, 256, 16384)
        procs = self.integer(d, "procs", where, 1, 1, 8)
        profiles = self.profiles(d, where, memory_mb, procs, mode)
        return Partition(
            name=self.name(d, where), index=i, frame=str(self._get(d, "frame", where)),
            lpar_id=self.integer(d, "lpar_id", where, i + 2, 1, 1000),
            address=self.address(d, "address", where, lab),
            # the partition is first activated with its first profile
            memory_mb=profiles[0].desired_mem, procs=profiles[0].desired_procs,
            proc_compat_mode=profiles[0].lpar_proc_compat_mode, disk=disk,
            mac=str(d.get("mac") or f"52:54:00:4c:50:{i + 1:02x}"),
            profiles=profiles,
        )

    def profiles(self, d: dict[str, Any], where: str, memory_mb: int, procs: int,
                 mode: str) -> tuple[Profile, ...]:
        """The partition's profiles; without a list, one profile from memory_mb and procs."""
        raw = d.get("profiles")
        if raw is None:
            return (Profile(DEFAULT_PROFILE, memory_mb, memory_mb, memory_mb,
                            procs, 1, procs, mode),)
        if not isinstance(raw, list) or not raw:
            raise self.fail(f"{where}.profiles", "expected a non-empty list",
                            "write profiles: [{name: normal, desired_mem: 512, "
                            "desired_procs: 1}]")
        out: list[Profile] = []
        for j, pd in enumerate(raw):
            pw = f"{where}.profiles[{j}]"
            if not isinstance(pd, dict):
                raise self.fail(pw, "expected a mapping", "write {name: ..., desired_mem: ...}")
            want_mem = self.integer(pd, "desired_mem", pw, memory_mb, 256, 16384)
            want_procs = self.integer(pd, "desired_procs", pw, procs, 1, 8)
            prof = Profile(
                name=self.name(pd, pw), desired_mem=want_mem,
                min_mem=self.integer(pd, "min_mem", pw, min(256, want_mem), 256, 16384),
                max_mem=self.integer(pd, "max_mem", pw, want_mem, 256, 16384),
                desired_procs=want_procs,
                min_procs=self.integer(pd, "min_procs", pw, 1, 1, 8),
                max_procs=self.integer(pd, "max_procs", pw, want_procs, 1, 8),
                lpar_proc_compat_mode=str(pd.get("lpar_proc_compat_mode", mode)))
            for fld, what, fix in prof.problems():
                raise self.fail(f"{pw}.{fld}", what, fix)
            if prof.name in {o.name for o in out}:
                raise self.fail(f"{pw}.name", f"profile {prof.name!r} is defined twice",
                                "give each profile of a partition its own name")
            out.append(prof)
        return tuple(out)

    def check_consoles(self, t: Topology, frame_names: set[str]) -> None:
        """Each frame is managed by exactly one HMC; the host links fit the subnet."""
        manager: dict[str, str] = {}
        for h in t.hmcs:
            for f in h.frames:
                if f not in frame_names:
                    raise self.fail(f"hmcs[{h.index}].frames", f"unknown frame '{f}'",
                                    f"use one of: {', '.join(sorted(frame_names))}")
                if f in manager:
                    raise self.fail(f"hmcs[{h.index}].frames", f"frame '{f}' is already "
                                    f"managed by {manager[f]}",
                                    "let one HMC manage each frame")
                manager[f] = h.name
        for f in t.frames:
            if f.name not in manager:
                raise self.fail(f"frames[{f.index}]", f"frame '{f.name}' is managed by no HMC",
                                "add it to the frames of an HMC under 'hmcs'")
        if len(t.hmcs) * 4 > t.host_link.num_addresses:
            raise self.fail("networks.host_link.subnet", f"{t.host_link} has room for "
                            f"{t.host_link.num_addresses // 4} HMC(s), not {len(t.hmcs)}",
                            "use a larger subnet (four addresses per HMC)")

    def cross_check(self, t: Topology) -> None:
        names: dict[str, str] = {}
        for kind, objs in (("frames", t.frames), ("vios", t.vios), ("partitions", t.partitions),
                           ("hmcs", t.hmcs)):
            for o in objs:
                if o.name in names:
                    raise self.fail(f"{kind}[{o.index}].name",
                                    f"name '{o.name}' is already used by {names[o.name]}",
                                    "give every frame, VIOS and partition its own name")
                names[o.name] = f"{kind}[{o.index}]"
        addrs: dict[Any, str] = {t.hmc_address: "networks.lab.hmc_address"}
        for kind, objs in (("frames", t.frames), ("vios", t.vios), ("partitions", t.partitions),
                           ("hmcs", t.hmcs)):
            for o in objs:
                for a in (o.address, getattr(o, "mover_address", None)):
                    if a is None:
                        continue
                    if a in addrs:
                        raise self.fail(f"{kind}[{o.index}]", f"address {a} is already used "
                                        f"by {addrs[a]}", "give each endpoint its own address")
                    addrs[a] = f"{kind}[{o.index}]"
        frame_names = {f.name for f in t.frames}
        vios_names = {v.name for v in t.vios}
        self.check_consoles(t, frame_names)
        for v in t.vios:
            if v.frame not in frame_names:
                raise self.fail(f"vios[{v.index}].frame", f"unknown frame '{v.frame}'",
                                f"use one of: {', '.join(sorted(frame_names))}")
        ids: dict[tuple[str, int], str] = {}
        for kind, objs in (("vios", t.vios), ("partitions", t.partitions)):
            for o in objs:
                key = (o.frame, o.lpar_id)
                if key in ids:
                    raise self.fail(f"{kind}[{o.index}].lpar_id", f"partition ID {o.lpar_id} "
                                    f"is already used on {o.frame} by {ids[key]}",
                                    "give each partition on a frame its own lpar_id")
                ids[key] = o.name
        for p in t.partitions:
            where = f"partitions[{p.index}]"
            if p.frame not in frame_names:
                raise self.fail(f"{where}.frame", f"unknown frame '{p.frame}'",
                                f"use one of: {', '.join(sorted(frame_names))}")
            lmb = t.frame(p.frame).lmb_size_mb
            raw = (t.raw.get("partitions") or [{}] * (p.index + 1))[p.index]
            if isinstance(raw, dict) and raw.get("profiles"):
                # the user's profiles size the partition: name the field they wrote
                for j, prof in enumerate(p.profiles):
                    for fld, what, fix in prof.problems(lmb):
                        raise self.fail(f"{where}.profiles[{j}].{fld}", f"{what} ({p.frame})",
                                        fix)
            if p.memory_mb % lmb:
                raise self.fail(f"{where}.memory_mb", f"{p.memory_mb} MiB is not a multiple "
                                f"of the {lmb} MiB memory block of {p.frame}",
                                f"use a multiple of {lmb}")
            if p.disk is not None and p.disk.vios not in vios_names:
                raise self.fail(f"{where}.disk.vios", f"unknown VIOS '{p.disk.vios}'",
                                f"use one of: {', '.join(sorted(vios_names)) or '(none)'}")
