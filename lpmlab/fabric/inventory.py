"""The Ansible inventory lpmlab renders from a topology (all hosts local on the single box)."""

from __future__ import annotations

import sys
from typing import Any

from lpmlab import paths
from lpmlab.fabric import ca
from lpmlab.fabric import plan as P

HUB_HOST = "hub"  # the lab switches' play (a name no topology object may take)


def render(lab: P.LabPlan, host_uuids: dict[str, str],
           domain_xml: dict[str, str]) -> dict[str, Any]:
    t = lab.topology
    common = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "hub_ns": P.HUB_NS,
        "lab_bridge": P.LAB_BRIDGE,
        "mover_bridge": P.MOVER_BRIDGE,
        "sea_bridge": P.SEA_BRIDGE,
        "lab_prefix": t.lab.subnet.prefixlen,
        "mover_prefix": t.mover.subnet.prefixlen,
        "hmc_address": str(t.hmc_address),
        "san_dir": str(lab.san_dir),
        "iscsi_port": P.ISCSI_PORT,
        "lpmlab_src": str(paths.repo_root()),
        "lab_dir": str(lab.dir),
        "qemu_caps_seed_dir": str(lab.qemu_caps_seed_dir),
        "libvirt_allowed_dns": list(ca.LIBVIRT_ALLOWED_DNS),
    }
    return {
        "all": {
            "vars": common,
            "children": {
                "hub": {"hosts": {HUB_HOST: {}}},
                "hmcs": {"hosts": _hmcs(lab)},
                "frames": {"hosts": _frames(lab, host_uuids)},
                "vios": {"hosts": _vios(lab)},
                "partitions": {"hosts": _partitions(lab, domain_xml)},
            },
        }
    }


def _frames(lab: P.LabPlan, host_uuids: dict[str, str]) -> dict[str, Any]:
    frames = {}
    for fp in lab.frames():
        f = fp.frame
        frames[f.name] = {
            "frame_ns": fp.ns, "frame_dir": str(fp.dir), "frame_address": str(f.address),
            "frame_hub_ifname": fp.hub_ifname, "host_uuid": host_uuids[f.name],
            "frame_pki_dir": str(fp.pki_dir),
            "migration_port_min": f.migration_ports[0],
            "migration_port_max": f.migration_ports[1],
        }
    return frames


def _vios(lab: P.LabPlan) -> dict[str, Any]:
    luns = [{"tid": pp.partition.index + 1, "path": str(pp.disk_image),
             "size_mb": pp.partition.disk.size_mb, "partition": pp.partition.name}
            for pp in lab.partitions() if pp.partition.disk is not None]
    vios = {}
    for vp in lab.all_vios():
        v = vp.vios
        vios[v.name] = {
            "vios_ns": vp.ns, "vios_dir": str(vp.dir), "vios_address": str(v.address),
            "vios_hub_ifname": vp.hub_ifname, "vios_mover_hub_ifname": vp.mover_hub_ifname,
            "mover_address": str(v.mover_address or ""), "msp": v.msp,
            "tgt_control_port": vp.tgt_control_port,
            "luns": [dict(lun, iqn=lab.partition(lun["partition"]).iqn(v.name)) for lun in luns],
        }
    return vios


def _hmcs(lab: P.LabPlan) -> dict[str, Any]:
    hmcs = {}
    for cp in lab.consoles():
        c = cp.console
        hmcs[c.name] = {
            "hmc_ns": cp.ns, "hmc_dir": str(cp.dir), "hmc_address": str(c.address),
            "hmc_user": c.user, "hmc_hub_ifname": cp.hub_ifname,
            "hmc_host_ifname": cp.host_ifname, "hmc_host_end": cp.host_end,
            "hmc_ns_end": cp.ns_end, "hmc_ns_end_ip": cp.ns_end.split("/")[0],
            "hmc_etc_dir": str(cp.etc_dir), "hmc_home_dir": str(cp.home_dir),
            "hmc_run_dir": str(cp.run_dir), "hmc_password_file": str(cp.password_file),
            "hmc_socket_dir_in_sshd": cp.SOCKET_DIR_IN_SSHD,
            "hmc_socket_in_sshd": f"{cp.SOCKET_DIR_IN_SSHD}/{cp.socket.name}",
            "hmc_socket": str(cp.socket),
            "hmc_tls_cert": str(ca.server_files(cp.tls_dir).cert),
            "hmc_tls_key": str(ca.server_files(cp.tls_dir).key),
            "hmc_rest_ports": list(cp.REST_PORTS),
        }
    return hmcs


def _partitions(lab: P.LabPlan, domain_xml: dict[str, str]) -> dict[str, Any]:
    lab_uris = [fp.uri for fp in lab.frames()]
    return {pp.partition.name: {"frame_uri": lab.frame(pp.partition.frame).uri,
                                "lab_uris": lab_uris,
                                "domain_xml": domain_xml[pp.partition.name]}
            for pp in lab.partitions()}
