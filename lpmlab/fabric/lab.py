"""The lab lifecycle: up (idempotent), down (also of a half-built lab), status.

``up`` renders an inventory from the topology and runs playbooks/lab.yml through
ansible-runner; what Ansible cannot do (waiting for a partition's SSH from inside the lab
network) is done here. Lifecycle stages are data, timed and printed one by one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lpmlab import log, paths, topology
from lpmlab.atomic import replace_file
from lpmlab.errors import LabNotRunningError, TopologyError
from lpmlab.fabric import keys, netns
from lpmlab.fabric import plan as P


@dataclass
class StageTiming:
    name: str
    seconds: float
    detail: str = ""


@dataclass
class UpReport:
    stages: list[StageTiming] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(s.seconds for s in self.stages)


@dataclass
class LabState:
    """What ``up`` records so later commands know the running lab."""

    topology_text: str
    topology_source: str
    host_uuids: dict[str, str]
    image: dict[str, str] = field(default_factory=dict)
    host_keys: dict[str, str] = field(default_factory=dict)
    qemu_versions: dict[str, list[int]] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def save(self, path: Path) -> None:
        replace_file(path, json.dumps(self.__dict__, indent=2))

    @classmethod
    def read(cls, path: Path) -> LabState:
        return cls(**json.loads(path.read_text()))


def load_state(lab_dir: Path | None = None) -> tuple[P.LabPlan, LabState]:
    """The running lab's plan and state, or LabNotRunningError."""
    d = lab_dir or paths.lab_dir()
    sf = d / "state.json"
    if not sf.exists():
        raise LabNotRunningError(f"no lab is set up on this host (no {sf})",
                                 fix="bring one up with 'lpmlab lab up' (or 'make demo')")
    state = LabState.read(sf)
    topo = topology.parse(state.topology_text, source=state.topology_source)
    return P.LabPlan.for_topology(apply_settings(topo, d), d), state


SETTINGS_FILE = "settings.json"


def read_settings(lab_dir: Path) -> dict[str, Any]:
    """Changes made with chsyscfg to objects the topology declared (VIOS msp, time_ref)."""
    try:
        return json.loads((lab_dir / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def write_settings(lab_dir: Path, settings: dict[str, Any]) -> None:
    replace_file(lab_dir / SETTINGS_FILE, json.dumps(settings, indent=2))


def apply_settings(topo: topology.Topology, lab_dir: Path) -> topology.Topology:
    """The topology as the running lab has it: chsyscfg changes applied to its VIOS."""
    import dataclasses

    changes = read_settings(lab_dir).get("vios", {})
    if not changes:
        return topo
    vios = tuple(dataclasses.replace(v, **changes.get(v.name, {})) for v in topo.vios)
    return dataclasses.replace(topo, vios=vios)


class Lab:
    def __init__(self, plan: P.LabPlan) -> None:
        self.plan = plan

    # -- up --------------------------------------------------------------------------------
    def up(self, *, ssh_deadline_s: float = 120.0) -> UpReport:
        from lpmlab.hostprep import check_host

        report = UpReport()
        state = self._state_for_up()
        stages: list[tuple[str, Callable[[LabState], str]]] = [
            ("host check", lambda s: self._check_host(check_host)),
            ("partition image", self._stage_image),
            ("keys and initrd", self._stage_keys),
            ("provision (playbooks/lab.yml)", self._stage_playbook),
            ("faults in force undone", lambda s: self._stage_faults()),
            ("partitions answer SSH", lambda s: self._stage_wait_ssh(s, ssh_deadline_s)),
        ]
        for name, fn in stages:
            log.progress(f"lab up: {name} ...")
            t0 = time.monotonic()
            detail = fn(state)
            dt = time.monotonic() - t0
            report.stages.append(StageTiming(name, dt, detail))
            log.progress(f"lab up: {name} done in {dt:.1f}s{' - ' + detail if detail else ''}")
            state.save(self.plan.state_file)
        return report

    def _stage_faults(self) -> str:
        """``lab up`` puts back what ``lpmlab fault`` broke (the playbook restarted the
        daemons and targets already)."""
        from lpmlab.fabric import faults

        done = faults.undo_all(self.plan, why="lab up",
                               skip=frozenset({"start_frame", "start_target"}))
        for line in done:
            log.progress(f"  {line}")
        return f"{len(done)} fault(s)" if done else ""

    def _state_for_up(self) -> LabState:
        t = self.plan.topology
        sf = self.plan.state_file
        if sf.exists():
            old = LabState.read(sf)
            if topology.parse(old.topology_text).raw != t.raw:
                raise TopologyError(
                    f"a lab with another topology ({old.topology_source}) is already set up",
                    fix="take it down first with 'lpmlab lab down'")
            return old
        uuids = {f.name: str(uuid.uuid4()) for f in t.frames}
        text = yaml_dump(t.raw)
        return LabState(text, t.source, uuids)

    def _check_host(self, check_host: Callable[[], list[str]]) -> str:
        problems = check_host()
        if problems:
            from lpmlab.errors import HostPrepError

            raise HostPrepError("this host cannot run the lab: " + "; ".join(problems),
                                fix="prepare it with 'make host' (python -m lpmlab.hostprep)")
        return "ok"

    def _stage_image(self, state: LabState) -> str:
        from lpmlab.images import ensure_partition_image

        img = ensure_partition_image()
        state.image = {"digest": img.digest, "kernel": str(img.kernel),
                       "initrd": str(img.initrd), "kernel_version": img.kernel_version}
        return f"partition-{img.digest[:16]} (kernel {img.kernel_version})"

    def _stage_keys(self, state: LabState) -> str:
        from lpmlab.images import combine, write_overlay

        _, pub = keys.ensure_keypair(self.plan.ssh_key, "lpmlab-hmc")
        base = Path(state.image["initrd"])
        for pp in self.plan.partitions():
            pp.dir.mkdir(parents=True, exist_ok=True)
            _link_or_copy(Path(state.image["kernel"]), pp.kernel)
            host_key, host_pub = keys.dropbear_host_key(pp.dir / "ssh_host_ed25519_key")
            overlay = write_overlay({
                "/root/.ssh/authorized_keys": (pub.encode() + b"\n", 0o600),
                "/etc/dropbear/dropbear_ed25519_host_key": (host_key, 0o600),
            })
            combine(base, overlay, pp.initrd)
            state.host_keys[pp.partition.name] = host_pub
        from lpmlab.fabric import ca  # cryptography: ~40 ms that HMC commands need not pay

        authority = ca.ensure_ca(self.plan.ca_dir, self.plan.topology.name)
        for cp in self.plan.consoles():
            keys.ensure_password(cp.password_file, cp.console.password)
            ca.ensure_server_cert(authority, cp.tls_dir, cp.name, [str(cp.console.address)])
        for fp in self.plan.frames():
            ca.ensure_frame_pki(authority, fp.pki_dir, fp.frame.name, [str(fp.frame.address)])
        ca.ensure_controller_pki(authority, self.plan.controller_pki_dir)
        return (f"{len(self.plan.partitions())} partition initrd(s), "
                f"{len(self.plan.consoles())} HMC account(s) and certificate(s), "
                f"{len(self.plan.frames())} frame libvirt TLS identities")

    def domain_xml(self, state: LabState, name: str) -> str:
        from lpmlab.adapter import domain_xml as dx

        pp = self.plan.partition(name)
        p = pp.partition
        disk = None
        if p.disk is not None:
            v = self.plan.topology.vios_named(p.disk.vios)
            disk = dx.IscsiDisk(str(v.address), pp.iqn(v.name), vios=v.name,
                                port=P.ISCSI_PORT)
        prefix = self.plan.topology.lab.subnet.prefixlen
        cmdline = (f"console=hvc0 quiet lpm.ip={p.address}/{prefix} lpm.hostname={p.name}")
        spec = dx.PartitionSpec(
            name=p.name, lpar_id=p.lpar_id, memory_mb=p.memory_mb, procs=p.procs,
            kernel=pp.kernel, initrd=pp.initrd, cmdline=cmdline, mac=p.mac,
            bridge=P.SEA_BRIDGE, console_log=pp.console_log, lab=self.plan.topology.name,
            proc_compat_mode=p.proc_compat_mode, disk=disk, profile=p.profiles[0].name,
            profiles=tuple(prof.as_attrs() for prof in p.profiles))
        return dx.render_partition(spec)

    def _inventory(self, state: LabState) -> dict[str, Any]:
        from lpmlab.fabric import inventory

        xml = {p.name: self.domain_xml(state, p.name) for p in self.plan.topology.partitions}
        return inventory.render(self.plan, state.host_uuids, xml)

    def _stage_playbook(self, state: LabState) -> str:
        from lpmlab.fabric.ansible import run_playbook

        res = run_playbook("lab.yml", inventory=self._inventory(state), label="lab-up")
        for fp in self.plan.frames():
            state.qemu_versions[fp.frame.name] = list(frame_qemu_version(fp))
        return f"{len(res.task_durations)} task runs, artifacts {res.artifact_dir}"

    def reprovision(self, limit: str, tags: str | None = None) -> None:
        """Run the lab playbook again for one host (``tags`` narrows it to some tasks)."""
        from lpmlab.fabric.ansible import run_playbook

        state = LabState.read(self.plan.state_file)
        run_playbook("lab.yml", inventory=self._inventory(state),
                     label=f"reprovision-{limit}", limit=limit, tags=tags)

    def rmc(self, name: str, state: LabState | None = None) -> Any:
        from lpmlab.rmc.channel import RmcChannel

        state = state or LabState.read(self.plan.state_file)
        p = self.plan.topology.partition(name)
        return RmcChannel(name, str(p.address), self.plan.ssh_key, ns=P.HUB_NS,
                          host_key=state.host_keys.get(name))

    def console_tail(self, name: str, lines: int = 25) -> str:
        path = self.plan.partition(name).console_log
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return f"(no console log at {path})"
        return "\n".join(text.splitlines()[-lines:]) or "(console log is empty)"

    def _warm_frames(self) -> None:
        """Ask each libvirtd for its capabilities once, so the first validation does not pay
        for the daemon probing every QEMU binary (10+ s per frame here without the seed),
        then keep what they probed as the next lab's seed."""
        threads = [threading.Thread(target=_warm_frame, args=(fp,), name=f"warm-{fp.ns}",
                                    daemon=True) for fp in self.plan.frames()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for fp in self.plan.frames():
            save_caps_seed(fp.qemu_caps_dir, self.plan.qemu_caps_seed_dir)

    def _stage_wait_ssh(self, state: LabState, deadline_s: float) -> str:
        # partitions boot meanwhile: warming the frames costs no wall time
        warm = threading.Thread(target=self._warm_frames, name="warm-frames", daemon=True)
        warm.start()
        waited = []
        for p in self.plan.topology.partitions:
            ch = self.rmc(p.name, state)
            t = ch.wait_ready(deadline_s, evidence=lambda n=p.name: self.console_tail(n))
            ch.close()
            waited.append(f"{p.name} {t:.1f}s")
        warm.join(120)
        return ", ".join(waited)

    # -- down ------------------------------------------------------------------------------
    def down(self) -> list[str]:
        return teardown(self.plan.dir)

    # -- status ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        from lpmlab.adapter.connection import FrameConnection
        from lpmlab.errors import LpmlabError

        out: dict[str, Any] = {"lab": self.plan.topology.name, "dir": str(self.plan.dir),
                               "frames": {}, "vios": {}, "partitions": {}}
        for fp in self.plan.frames():
            entry: dict[str, Any] = {
                "namespace": netns.exists(fp.ns),
                "tls_uri": f"{fp.peer_uri}?pkipath={self.plan.controller_pki_dir}"}
            try:
                conn = FrameConnection(fp.frame.name, fp.uri, connect_timeout=1)
                entry["libvirtd"] = "running"
                entry["domains"] = {d.name: d.state for d in conn.lab_domains()}
                conn.close()
            except LpmlabError:
                entry["libvirtd"] = "down"
            out["frames"][fp.frame.name] = entry
        for vp in self.plan.all_vios():
            v: dict[str, Any] = {"namespace": netns.exists(vp.ns)}
            if vp.vios.msp:
                msp = vp.mover_service()
                v["msp_bytes"] = msp.totals().get("bytes", 0)
                try:
                    msp.check()
                    v["msp"] = "ready"
                except LpmlabError as exc:
                    v["msp"] = f"down ({exc.message})"
            out["vios"][vp.vios.name] = v
        out["hmcs"] = {cp.name: console_status(self.plan, cp)
                       for cp in self.plan.consoles()}
        from lpmlab.fabric.faults import Ledger

        out["faults"] = [{"id": e.id, "name": e.name, "state": e.state, "when": e.when,
                          "target": e.target, "detail": e.detail}
                         for e in Ledger(self.plan.dir).active()]
        for fname, f in out["frames"].items():
            for dname, dstate in f.get("domains", {}).items():
                out["partitions"].setdefault(dname, []).append(f"{fname}:{dstate}")
        return out


def pidfile_alive(path: Path) -> bool:
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def console_status(plan: P.LabPlan, cp: P.ConsolePlan) -> dict[str, Any]:
    """An HMC endpoint as ``lab status`` shows it: how to log in, and whether its sshd,
    command server and REST API run (and the CA file REST clients trust)."""
    from lpmlab.fabric import ca

    try:
        password = cp.password_file.read_text().strip()
    except OSError:
        password = None
    return {"address": str(cp.console.address), "user": cp.console.user,
            "password": password, "frames": list(cp.console.frames),
            "ssh": f"ssh {cp.console.user}@{cp.console.address}",
            "sshd": "running" if pidfile_alive(cp.dir / "sshd.pid") else "down",
            "command_server": ("running" if pidfile_alive(cp.dir / "cmdserver.pid")
                               else "down"),
            "rest_api": "running" if pidfile_alive(cp.dir / "rest.pid") else "down",
            "rest_url": f"https://{cp.console.address}:{cp.REST_PORTS[0]}/rest/api",
            "ca_file": str(plan.ca_dir / ca.CA_FILE),
            "host_route": f"{cp.console.address} via {cp.ns_end.split('/')[0]} dev "
                          f"{cp.host_ifname}"}


def frame_qemu_version(fp: P.FramePlan) -> tuple[int, int, int]:
    """The QEMU a frame runs partitions with (libvirt's getVersion() can take ~10 s on its
    first call while it probes emulators, so the lab asks the binary once at ``up``)."""
    import re

    out = netns.run_in(fp.ns, ["qemu-system-ppc64", "--version"]).stdout
    m = re.search(r"version (\d+)\.(\d+)\.(\d+)", out)
    if not m:
        from lpmlab.errors import FabricError

        raise FabricError(f"cannot read the QEMU version of frame {fp.frame.name}",
                          evidence=out)
    return (int(m[1]), int(m[2]), int(m[3]))


def _link_or_copy(src: Path, dst: Path) -> None:
    """Give ``dst`` the content of ``src`` (hard link when possible), replacing it atomically."""
    tmp = dst.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    tmp.replace(dst)


def yaml_dump(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def _lab_processes(lab_dir: Path) -> list[int]:
    """Processes that belong to the lab whatever namespace they are in (by their command line)."""
    marker = str(lab_dir).encode()
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmd:
            pids.append(int(d.name))
    return pids


def _warm_frame(fp: P.FramePlan) -> None:
    from lpmlab.adapter.connection import FrameConnection
    from lpmlab.errors import LpmlabError

    conn = FrameConnection(fp.frame.name, fp.uri)
    with contextlib.suppress(LpmlabError):
        conn.host_uuid()
    conn.close()


def save_caps_seed(frame_caps: Path, seed: Path) -> None:
    """Copy the capabilities files a frame's libvirtd wrote that the seed lacks or holds
    older; each lands whole (rename), so a lab starting meanwhile never reads half of one.
    A copy, not a link: libvirtd rewrites its files in place."""
    seed.mkdir(parents=True, exist_ok=True)
    for f in sorted(frame_caps.glob("*.xml")) if frame_caps.is_dir() else []:
        dst = seed / f.name
        with contextlib.suppress(OSError):
            data = f.read_bytes()
            if dst.exists() and dst.read_bytes() == data:
                continue
            replace_file(dst, data, 0o600)


def teardown(lab_dir: Path) -> list[str]:
    """Remove everything the lab created; safe on a half-built or already removed lab."""
    removed: list[str] = []
    for ns in netns.list_lab_namespaces():
        netns.delete(ns)
        removed.append(f"namespace {ns}")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _lab_processes(lab_dir)
        for pid in pids:
            try:
                os.kill(pid, sig)
                removed.append(f"process {pid}")
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while _lab_processes(lab_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
    # veth ends left in the root namespace by an interrupted provisioning step
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith("lpt"):
            subprocess.run(["ip", "link", "del", name], capture_output=True)
            removed.append(f"link {name}")
    if lab_dir.exists():
        shutil.rmtree(lab_dir, ignore_errors=True)
        removed.append(f"folder {lab_dir}")
    return removed
