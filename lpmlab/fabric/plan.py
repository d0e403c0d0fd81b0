"""Everything the lab derives from a topology: namespaces, paths, URIs, interface names.

One place computes these so that the playbooks, the controller and teardown agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lpmlab import paths
from lpmlab.fabric.msp import MoverService
from lpmlab.fabric.netns import ns_name
from lpmlab.topology import Frame, ManagementConsole, Partition, Topology, Vios

HUB_NS = ns_name("hub")
LAB_BRIDGE = "labbr"
MOVER_BRIDGE = "movbr"
SEA_BRIDGE = "sea0"
IQN_PREFIX = "iqn.2026-11.dev.lpmlab"
ISCSI_PORT = 3260


@dataclass(frozen=True)
class FramePlan:
    frame: Frame
    ns: str
    dir: Path

    @property
    def socket(self) -> Path:
        return self.dir / "run" / "libvirt-sock"

    @property
    def uri(self) -> str:
        """How the controller reaches the frame's libvirtd (a path: no namespace needed)."""
        return f"qemu+unix:///system?socket={self.socket}"

    @property
    def peer_uri(self) -> str:
        """How another frame's libvirtd reaches this one (peer-to-peer migration)."""
        return f"qemu+tls://{self.frame.address}/system"

    @property
    def pki_dir(self) -> Path:
        """The frame's libvirt PKI tree, seen by its libvirtd as /etc/pki."""
        return self.dir / "pki"

    @property
    def qemu_caps_dir(self) -> Path:
        """The frame's libvirt QEMU capabilities cache (its libvirtd's /var/cache/libvirt)."""
        return self.dir / "cache" / "qemu" / "capabilities"

    @property
    def hub_ifname(self) -> str:
        return f"lf{self.frame.index}"


@dataclass(frozen=True)
class ViosPlan:
    vios: Vios
    ns: str
    dir: Path

    @property
    def tgt_control_port(self) -> int:
        # Port 0 belongs to a system tgtd; each VIOS gets its own control socket.
        return 100 + self.vios.index

    def mover_service(self) -> MoverService:
        return MoverService(self.vios.name, self.ns, self.dir)

    @property
    def hub_ifname(self) -> str:
        return f"lv{self.vios.index}"

    @property
    def mover_hub_ifname(self) -> str:
        return f"mv{self.vios.index}"


@dataclass(frozen=True)
class PartitionPlan:
    partition: Partition
    dir: Path
    san_dir: Path

    @property
    def disk_image(self) -> Path:
        return self.san_dir / f"{self.partition.name}.img"

    @property
    def kernel(self) -> Path:
        """The partition's own kernel file: the image cache may change under a running lab."""
        return self.dir / "vmlinux"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd.gz"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    def iqn(self, vios: str) -> str:
        """The target through which ``vios`` serves this partition's LUN."""
        return f"{IQN_PREFIX}:{vios}.{self.partition.name}"


@dataclass(frozen=True)
class ConsolePlan:
    """An HMC endpoint: its namespace, its sshd and command server, its records and keys.

    Inside the sshd's private mount namespace ``etc_dir`` is /etc/ssh (config, host keys,
    authorized keys), ``home_dir`` is /home and ``run_dir`` is /run/lpmlab-hmc (the command
    server's socket); the rest of the lab's state is hidden from the HMC user.
    """

    console: ManagementConsole
    ns: str
    dir: Path
    host_end: str   # CIDR of the host's end of its point-to-point link
    ns_end: str     # CIDR of the HMC's end

    SOCKET_DIR_IN_SSHD = "/run/lpmlab-hmc"

    @property
    def name(self) -> str:
        return self.console.name

    @property
    def etc_dir(self) -> Path:
        return self.dir / "ssh"

    @property
    def home_dir(self) -> Path:
        return self.dir / "home"

    @property
    def run_dir(self) -> Path:
        return self.dir / "run"

    @property
    def socket(self) -> Path:
        return self.run_dir / "hmc.sock"

    @property
    def db_path(self) -> Path:
        """The HMC's migration records (SQLite)."""
        return self.dir / "hmc.sqlite"

    @property
    def key(self) -> Path:
        """The HMC's own SSH key (hscroot's), used towards other HMCs (mkauthkeys, --ip)."""
        return self.dir / "keys" / "id_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self.etc_dir / "authorized_keys" / self.console.user

    @property
    def password_file(self) -> Path:
        return self.dir / "password"

    @property
    def tls_dir(self) -> Path:
        """The REST API's certificate and key (signed by the lab's CA)."""
        return self.dir / "tls"

    REST_PORTS = (12443, 443)  # pypowervm's; IBM's Ansible collection (no port option)

    @property
    def hub_ifname(self) -> str:
        return f"lh{self.console.index}"

    @property
    def host_ifname(self) -> str:
        """The host namespace's end of the HMC's link (it goes with the HMC namespace)."""
        return f"lpmh{self.console.index}"


@dataclass(frozen=True)
class LabPlan:
    topology: Topology
    dir: Path

    @classmethod
    def for_topology(cls, topology: Topology, lab_dir: Path | None = None) -> LabPlan:
        return cls(topology, lab_dir or paths.lab_dir())

    @property
    def ca_dir(self) -> Path:
        """The lab's CA (``lpmlab-ca.pem``: what REST clients trust); beside the lab folder,
        so it outlives ``lab down`` and clients keep trusting the HMCs of the next lab."""
        return self.dir.parent / "ca"

    @property
    def controller_pki_dir(self) -> Path:
        """The controller's libvirt TLS client identity (a ``?pkipath=`` folder): what
        reaches a frame's libvirtd at ``qemu+tls://<frame address>/system``."""
        return self.dir / "pki" / "controller"

    @property
    def qemu_caps_seed_dir(self) -> Path:
        """libvirt's QEMU capabilities cache as the last lab's frames left it: each frame
        starts from a copy (libvirt checks every file against the binaries and re-probes a
        stale one), so a new lab does not probe every QEMU binary again."""
        return paths.cache_dir() / "libvirt-qemu-capabilities"

    @property
    def san_dir(self) -> Path:
        """Shared storage: every VIOS serves LUNs backed by these files (the "SAN")."""
        return self.dir / "san"

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def ssh_key(self) -> Path:
        return self.dir / "keys" / "id_ed25519"

    def frame(self, name: str) -> FramePlan:
        f = self.topology.frame(name)
        return FramePlan(f, ns_name(f.name), self.dir / "frames" / f.name)

    def frames(self) -> list[FramePlan]:
        return [self.frame(f.name) for f in self.topology.frames]

    def vios(self, name: str) -> ViosPlan:
        v = self.topology.vios_named(name)
        return ViosPlan(v, ns_name(v.name), self.dir / "vios" / v.name)

    def all_vios(self) -> list[ViosPlan]:
        return [self.vios(v.name) for v in self.topology.vios]

    def partition(self, name: str) -> PartitionPlan:
        p = self.topology.partition(name)
        return PartitionPlan(p, self.dir / "partitions" / p.name, self.san_dir)

    def partitions(self) -> list[PartitionPlan]:
        return [self.partition(p.name) for p in self.topology.partitions]

    def console(self, name: str | None = None) -> ConsolePlan:
        """An HMC of the lab by name; ``None``: the first one (the local commands' HMC unless
        LPMLAB_HMC names another)."""
        c = self.topology.console(name) if name else self.topology.hmcs[0]
        host_end, ns_end = self.topology.host_link_of(c)
        return ConsolePlan(c, ns_name(c.name), self.dir / "hmcs" / c.name, str(host_end),
                           str(ns_end))

    def consoles(self) -> list[ConsolePlan]:
        return [self.console(c.name) for c in self.topology.hmcs]

    def namespaces(self) -> list[str]:
        return ([HUB_NS] + [f.ns for f in self.frames()] + [v.ns for v in self.all_vios()]
                + [c.ns for c in self.consoles()])
