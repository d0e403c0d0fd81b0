"""Frames on Vagrant VMs (vagrant-libvirt): the hosts file the top-level ``Vagrantfile``
reads, the ``vagrant`` command line with a deadline on every call, and the SSH endpoints
Ansible logs in with afterwards.

lpmlab runs ``vagrant up --no-provision`` and provisions the VMs with its own Ansible run, so
Vagrant only makes VMs and networks. The box comes from ``images/box/build-box.sh``
(``make box``, whose steps are in :mod:`lpmlab.fabric.box`).

This module reads no topology: callers turn frames into :class:`VagrantFrame` values.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lpmlab.errors import DeadlineError, FabricError, HostPrepError, TopologyError
from lpmlab.paths import repo_root, state_root

BOX_NAME = "lpmlab/debian12"
BOX_FILE = "lpmlab-debian12.box"
KEY_NAME = "vagrant_key"
HOSTS_ENV = "LPMLAB_VAGRANT_HOSTS"
KEY_ENV = "LPMLAB_SSH_KEY"
DEFAULT_URI = "qemu:///system"
# Fixed MACs (QEMU's 52:54:00 prefix): the third byte pair follows the subnet's third octet.
_MAC_PREFIX = {"mgmt": "52:54:00:18:03", "lab": "52:54:00:18:00", "mover": "52:54:00:18:01"}
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_SSH_LINE = re.compile(r"^(\w+)(?:\s*=\s*|\s+)(.*)$")  # ssh_config: "Key value" or "Key=value"
# How much of vagrant's output an error carries (the whole output is in the log file).
_TAIL_LINES = 25
# After SIGTERM, how long vagrant gets to clean up before its process group is SIGKILLed.
_TERM_GRACE_S = 15.0


@dataclass(frozen=True)
class VagrantFrame:
    """One frame VM: its name (the Vagrant machine, hostname, domain ``lpmlab-<name>``), a
    small index that makes its MACs, its lab and mover addresses, and the VM's size (not the
    managed system's advertised capacity)."""

    name: str
    index: int
    lab_ip: str
    mover_ip: str
    memory_mb: int = 3072
    cpus: int = 1

    def mac(self, network: str) -> str:
        """The NIC's fixed MAC on ``network`` (mgmt, lab or mover)."""
        return f"{_MAC_PREFIX[network]}:{self.index:02x}"


@dataclass(frozen=True)
class VagrantNetworks:
    """The three libvirt networks on the physical host. ``lab_host_ip`` is the host's own
    address on the lab bridge with its prefix (the HMC's address); the mover network gives the
    host no address."""

    mgmt_name: str = "lpmlab-mgmt"
    mgmt_subnet: str = "198.18.3.0/24"
    mgmt_mode: str = "nat"
    lab_name: str = "lpmlab-lab"
    lab_host_ip: str = "198.18.0.1/24"
    mover_name: str = "lpmlab-mover"


DEFAULT_FRAMES = (
    VagrantFrame("sys1", 1, "198.18.0.11", "198.18.1.11"),
    VagrantFrame("sys2", 2, "198.18.0.12", "198.18.1.12"),
)


def _check(frames: Sequence[VagrantFrame], networks: VagrantNetworks) -> None:
    """Refuse what vagrant-libvirt would refuse later, or get wrong silently."""
    def bad(what: str) -> TopologyError:
        return TopologyError(f"Vagrant frames: {what}",
                             fix="correct the frames given to lpmlab.fabric.vagrant")

    try:
        mgmt = ipaddress.ip_network(networks.mgmt_subnet)
        lab = ipaddress.ip_interface(networks.lab_host_ip).network
    except ValueError as exc:
        raise bad(f"bad network address ({exc})") from exc
    if "/" not in networks.mgmt_subnet or "/" not in networks.lab_host_ip:
        raise bad("mgmt_subnet and lab_host_ip must carry a prefix (198.18.3.0/24)")
    if mgmt.overlaps(lab):
        raise bad(f"the management subnet {mgmt} overlaps the lab network {lab}")
    if not frames:
        raise bad("no frames")
    seen: dict[str, str] = {}
    for f in frames:
        if not _NAME_RE.match(f.name):
            raise bad(f"frame name {f.name!r} is not a host name (a-z, 0-9, -)")
        if not 1 <= f.index <= 254:
            raise bad(f"frame {f.name}: index {f.index} is outside 1..254")
        if f.memory_mb < 1024 or f.cpus < 1:
            raise bad(f"frame {f.name}: a VM needs at least 1024 MiB and 1 vCPU")
        try:
            lab_ip = ipaddress.ip_address(f.lab_ip)
            mover_ip = ipaddress.ip_address(f.mover_ip)
        except ValueError as exc:
            raise bad(f"frame {f.name}: {exc}") from exc
        if lab_ip not in lab or lab_ip == ipaddress.ip_interface(networks.lab_host_ip).ip:
            raise bad(f"frame {f.name}: lab address {lab_ip} is not a free address of {lab}")
        if mover_ip in lab or mover_ip in mgmt:
            raise bad(f"frame {f.name}: mover address {mover_ip} is on the lab or mgmt network")
        for key in (f"name {f.name}", f"index {f.index}", f"address {lab_ip}",
                    f"address {mover_ip}"):
            if key in seen:
                raise bad(f"frames {seen[key]} and {f.name} share the {key}")
            seen[key] = f.name


def render_hosts(frames: Sequence[VagrantFrame] = DEFAULT_FRAMES,
                 networks: VagrantNetworks | None = None, *, box: str = BOX_NAME,
                 box_url: str | Path | None = None) -> dict[str, Any]:
    """The document the top-level Vagrantfile reads from ``$LPMLAB_VAGRANT_HOSTS``.

    ``box_url``: a path or URL of the box file; ``vagrant up`` then adds the box itself when
    it is missing. The defaults give the Vagrantfile's own DEFAULT_HOSTS.
    """
    networks = networks or VagrantNetworks()
    _check(frames, networks)
    lab = ipaddress.ip_interface(networks.lab_host_ip)
    url = box_url.resolve().as_uri() if isinstance(box_url, Path) else box_url
    return {
        "box": box,
        "box_url": url,
        "networks": {
            "mgmt": {"name": networks.mgmt_name, "subnet": networks.mgmt_subnet,
                     "mode": networks.mgmt_mode},
            "lab": {"name": networks.lab_name, "host_ip": str(lab.ip),
                    "netmask": str(lab.netmask)},
            "mover": {"name": networks.mover_name},
        },
        "frames": [
            {"name": f.name, "index": f.index, "lab_ip": f.lab_ip, "mover_ip": f.mover_ip,
             "memory_mb": f.memory_mb, "cpus": f.cpus, "mgmt_mac": f.mac("mgmt"),
             "lab_mac": f.mac("lab"), "mover_mac": f.mac("mover")}
            for f in frames
        ],
    }


def write_hosts(path: Path, frames: Sequence[VagrantFrame] = DEFAULT_FRAMES,
                networks: VagrantNetworks | None = None, *, box: str = BOX_NAME,
                box_url: str | Path | None = None) -> Path:
    """Write :func:`render_hosts` to ``path`` (atomically); return ``path``."""
    doc = render_hosts(frames, networks, box=box, box_url=box_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)
    return path


# -- vagrant ssh-config -------------------------------------------------------------------
@dataclass(frozen=True)
class SshHost:
    """One ``Host`` block of ``vagrant ssh-config``: where Ansible logs in to a frame VM."""

    name: str
    address: str
    port: int
    user: str
    identity_file: Path | None = None

    def ansible_vars(self) -> dict[str, Any]:
        """Inventory host variables for this VM (SSH, become root, the system python3)."""
        out: dict[str, Any] = {
            "ansible_connection": "ssh",
            "ansible_host": self.address,
            "ansible_port": self.port,
            "ansible_user": self.user,
            # the VMs' host keys are new at every `vagrant up`
            "ansible_ssh_common_args":
                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "ansible_become": True,
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        if self.identity_file is not None:
            out["ansible_ssh_private_key_file"] = str(self.identity_file)
        return out


def parse_ssh_config(text: str) -> dict[str, SshHost]:
    """Every ``Host`` block of ``vagrant ssh-config`` output (Vagrant 2.3.4's template
    ``templates/commands/ssh_config/config.erb``), by host name.

    Lines before the first ``Host`` (warnings) are ignored; a block without ``HostName`` or
    ``User`` (a VM without an address yet) raises FabricError.
    """
    blocks: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _SSH_LINE.match(line)
        if m is None:
            continue
        key, value = m.group(1).lower(), m.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if key == "host":
            current = blocks.setdefault(value, {})
        elif current is not None:
            current.setdefault(key, value)  # ssh's rule: the first value wins
    hosts: dict[str, SshHost] = {}
    for name, fields in blocks.items():
        missing = [k for k in ("hostname", "user") if not fields.get(k)]
        if missing:
            raise FabricError(f"vagrant ssh-config gave no {' or '.join(missing)} for {name}",
                              fix=f"is the VM up? `vagrant status {name}`; then retry",
                              evidence=text)
        try:
            port = int(fields.get("port", "22"))
        except ValueError as exc:
            raise FabricError(f"vagrant ssh-config: bad port for {name}: {fields['port']}",
                              evidence=text) from exc
        identity = fields.get("identityfile")
        hosts[name] = SshHost(name, fields["hostname"], port, fields["user"],
                              Path(identity) if identity else None)
    return hosts


# -- the vagrant command line -----------------------------------------------------------------
@dataclass(frozen=True)
class Box:
    """One line of ``vagrant box list``."""

    name: str
    provider: str
    version: str


# What a failure's output says -> the fix to show (first match wins).
_HINTS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.I), fix) for p, fix in (
    (r"private_key_path` file must exist",
     "make the key pair: python -m lpmlab.fabric.vagrant ensure-key DIR (make box does it)"),
    (r"error loading a Vagrantfile|JSON::ParserError|unexpected token",
     "the hosts file is not what the Vagrantfile reads; write it with "
     "lpmlab.fabric.vagrant.write_hosts"),
    (r"provider '?libvirt'? could not be found|plugin.*libvirt.*(not|failed)",
     "apt-get install --no-install-recommends vagrant-libvirt"),
    (r"box '[^']*'\s+(could not be found|does not exist|isn't installed)|couldn't open file",
     f"build and add the box: make box (images/box/build-box.sh, then vagrant box add "
     f"--name {BOX_NAME})"),
    (r"failed to connect socket|error while connecting to libvirt|libvirt-sock",
     "the physical host needs a system libvirt daemon: apt-get install libvirt-daemon-system "
     "dnsmasq-base, then systemctl start libvirtd"),
    (r"does not match with network name|dhcp.*mismatch",
     "a libvirt network of that name or address exists with other settings: see "
     "`virsh -c qemu:///system net-list --all`, remove it (net-destroy, net-undefine) "
     "or change the networks"),
    (r"/dev/kvm|kvm.*(not available|permission)|unsupported configuration: domain type",
     "the frame VMs need KVM: run `virt-host-validate qemu` on the physical host"),
))


class Vagrant:
    """The ``vagrant`` command line for the repository's Vagrantfile, with lpmlab's
    environment: boxes under ``<state>/vagrant.d``, Vagrant's machine records under
    ``<state>/vagrant/machines``, no version checks, the libvirt provider.

    Every call has a deadline; a failure raises FabricError (DeadlineError when the deadline
    passed, HostPrepError when vagrant is not installed) with the tail of vagrant's output
    and a fix. The whole output of the last call of each command is in ``<state>/vagrant/``.
    """

    def __init__(self, hosts_file: Path | None = None, *, state: Path | None = None,
                 key: Path | None = None, vagrantfile_dir: Path | None = None,
                 libvirt_uri: str = DEFAULT_URI, executable: str = "vagrant") -> None:
        self.state = state or state_root()
        self.hosts_file = hosts_file
        self.key = key or self.state / "box" / KEY_NAME
        self.vagrantfile_dir = vagrantfile_dir or repo_root()
        self.libvirt_uri = libvirt_uri
        self.executable = executable
        self.log_dir = self.state / "vagrant"

    def env(self) -> dict[str, str]:
        """The environment every vagrant call runs with."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("VAGRANT_VAGRANTFILE", HOSTS_ENV)}
        env.update({
            "VAGRANT_HOME": str(self.state / "vagrant.d"),
            "VAGRANT_DOTFILE_PATH": str(self.log_dir / "machines"),  # not <repo>/.vagrant
            "VAGRANT_CWD": str(self.vagrantfile_dir),
            "VAGRANT_CHECKPOINT_DISABLE": "1",
            "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1",
            "VAGRANT_DEFAULT_PROVIDER": "libvirt",
            "VAGRANT_NO_COLOR": "1",
            "LIBVIRT_DEFAULT_URI": self.libvirt_uri,
            "LPMLAB_HOME": str(self.state),
            KEY_ENV: str(self.key),
        })
        if self.hosts_file is not None:
            env[HOSTS_ENV] = str(self.hosts_file)
        return env

    # -- commands --
    def validate(self, *, timeout: float = 120) -> None:
        self._run(["validate"], timeout=timeout,
                  fix=f"correct {self.hosts_file or 'the Vagrantfile defaults'}")

    def box_list(self, *, timeout: float = 60) -> list[Box]:
        out = self._run(["box", "list", "--machine-readable"], timeout=timeout,
                        fix=f"look at {self.state / 'vagrant.d'}")
        boxes: list[Box] = []
        name = provider = ""
        for line in out.splitlines():
            parts = line.split(",", 3)
            if len(parts) < 4:
                continue
            kind, value = parts[2], parts[3]
            if kind == "box-name":
                name, provider = value, ""
            elif kind == "box-provider":
                provider = value
            elif kind == "box-version" and name:
                boxes.append(Box(name, provider, value))
        return boxes

    def box_add(self, name: str, file: Path, *, force: bool = True,
                timeout: float = 900) -> None:
        """Add the box file ``file`` as ``name`` (checked against ``file.sha256`` when that
        exists). A re-added box also needs its old libvirt pool volume removed
        (``<name with -VAGRANTSLASH->_vagrant_box_image_0_box.img``) before VMs use it."""
        if not file.is_file():
            raise FabricError(f"box file {file} does not exist", fix="build it: make box")
        args = ["box", "add", "--name", name, "--provider", "libvirt"]
        if force:
            args.append("--force")
        sums = file.with_name(file.name + ".sha256")
        if sums.is_file():
            args += ["--checksum-type", "sha256", "--checksum", sums.read_text().split()[0]]
        self._run([*args, str(file)], timeout=timeout, fix=f"rebuild {file}: make box")

    def up(self, machines: Iterable[str] = (), *, no_provision: bool = True,
           timeout: float = 1800) -> None:
        args = ["up", "--provider", "libvirt"]
        if no_provision:
            args.append("--no-provision")
        self._run([*args, *machines], timeout=timeout,
                  fix="see the output; `lpmlab lab down` removes a half-made lab")

    def ssh_config(self, machines: Iterable[str] = (), *,
                   timeout: float = 120) -> dict[str, SshHost]:
        out = self._run(["ssh-config", *machines], timeout=timeout,
                        fix="the VMs must be up: run `vagrant up` (lpmlab lab up) first")
        return parse_ssh_config(out)

    def destroy(self, machines: Iterable[str] = (), *, timeout: float = 600) -> None:
        self._run(["destroy", "--force", *machines], timeout=timeout,
                  fix="remove what is left with `virsh -c qemu:///system undefine "
                      "--remove-all-storage lpmlab-<frame>`")

    # -- the one way vagrant runs --
    def _run(self, args: list[str], *, timeout: float, fix: str) -> str:
        command = f"vagrant {shlex.join(args)}"
        env = self.env()
        exe = shutil.which(self.executable, path=env.get("PATH"))
        if exe is None:
            raise HostPrepError(f"{self.executable} is not installed (Vagrant frames need it)",
                                fix="apt-get install --no-install-recommends vagrant "
                                    "vagrant-libvirt (make box installs them)")
        if self.hosts_file is not None and not self.hosts_file.is_file():
            raise FabricError(f"the Vagrant hosts file {self.hosts_file} does not exist",
                              fix="write it first (lpmlab.fabric.vagrant.write_hosts)")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"vagrant-{args[0]}.log"
        # own process group: on a deadline vagrant and everything it started are stopped
        proc = subprocess.Popen([exe, *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, cwd=self.vagrantfile_dir, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            out, err = _stop(proc)
            _write_log(log, command, None, out, err)
            raise DeadlineError(f"`{command}` did not finish within {timeout:.0f} s",
                                fix=f"{_hint(out + err) or fix}; whole output: {log}",
                                evidence=_tail(out, err)) from None
        _write_log(log, command, proc.returncode, out, err)
        if proc.returncode != 0:
            raise FabricError(f"`{command}` failed (exit {proc.returncode})",
                              fix=f"{_hint(out + err) or fix}; whole output: {log}",
                              evidence=_tail(out, err))
        return out


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM vagrant's process group, SIGKILL it after a grace; the output so far."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.communicate(timeout=_TERM_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate()


def _hint(output: str) -> str | None:
    return next((fix for pattern, fix in _HINTS if pattern.search(output)), None)


def _tail(out: str, err: str) -> str:
    """vagrant's errors go to stderr; without any, the end of its progress output."""
    lines = (err.strip() or out.strip() or "(no output)").splitlines()
    return "\n".join(lines[-_TAIL_LINES:])


def _write_log(path: Path, command: str, rc: int | None, out: str, err: str) -> None:
    status = "timed out" if rc is None else f"exit {rc}"
    path.write_text(f"$ {command}\n# {status}\n--- stdout\n{out}--- stderr\n{err}")
