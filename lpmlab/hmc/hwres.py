"""``lshwres`` records: a managed system's memory and processors, at system and partition
level, and the partitions' virtual I/O adapters (what clients read before a migration).

They are read from the same lab snapshot validation uses, so a listing never promises what
``migrlpar -o v`` refuses. Field names follow the HMC's; the lab has shared processors only
(one unit per virtual processor, uncapped, the DefaultPool).
"""

from __future__ import annotations

from typing import Any

from lpmlab.hmc.validation import LabSnapshot

RESOURCES = ("mem", "proc", "virtualio")
VIRTUALIO_SUBTYPES = ("scsi", "eth", "fc", "serial")
CLIENT_SCSI_SLOT = 2   # slots 0 and 1 are the virtual serial pair
ETH_SLOT = 3
SCSI_SERVER_SLOT_BASE = 10


def mem_sys(snap: LabSnapshot, frame: str) -> list[dict[str, Any]]:
    f = snap.frames[frame]
    return [{"configurable_sys_mem": f.memory_mb, "curr_avail_sys_mem": f.memory_free_mb,
             "pend_avail_sys_mem": f.memory_free_mb, "installed_sys_mem": f.memory_mb,
             "sys_firmware_mem": 0, "mem_region_size": f.lmb_size_mb,
             "configurable_num_sys_huge_pages": 0, "curr_mem_mirroring_mode": "none"}]


def proc_sys(snap: LabSnapshot, frame: str) -> list[dict[str, Any]]:
    f = snap.frames[frame]
    return [{"configurable_sys_proc_units": float(f.processors),
             "curr_avail_sys_proc_units": float(f.processors_free),
             "pend_avail_sys_proc_units": float(f.processors_free),
             "installed_sys_proc_units": float(f.processors),
             "curr_sys_virtual_procs": f.processors - f.processors_free,
             "max_virtual_procs_per_lpar": 8, "min_proc_units_per_virtual_proc": 1.0}]


def _partitions(snap: LabSnapshot, frame: str) -> list[Any]:
    return sorted((p for p in snap.partitions.values() if p.frame == frame),
                  key=lambda p: p.lpar_id)


def mem_lpar(snap: LabSnapshot, frame: str) -> list[dict[str, Any]]:
    out = []
    for p in _partitions(snap, frame):
        running = p.state != "shutoff"
        out.append({"lpar_name": p.name, "lpar_id": p.lpar_id,
                    "curr_min_mem": p.min_memory_mb if running else 0,
                    "curr_mem": p.memory_mb if running else 0,
                    "curr_max_mem": p.max_memory_mb if running else 0,
                    "pend_mem": p.desired_memory_mb, "run_mem": p.memory_mb if running else 0,
                    "mem_mode": "ded"})
    return out


def proc_lpar(snap: LabSnapshot, frame: str) -> list[dict[str, Any]]:
    out = []
    for p in _partitions(snap, frame):
        procs = p.procs if p.state != "shutoff" else 0
        out.append({"lpar_name": p.name, "lpar_id": p.lpar_id, "curr_shared_proc_pool_id": 0,
                    "curr_shared_proc_pool_name": "DefaultPool", "curr_proc_mode": "shared",
                    "curr_min_proc_units": float(min(procs, p.min_procs)),
                    "curr_proc_units": float(procs),
                    "curr_max_proc_units": float(p.max_procs if procs else 0),
                    "curr_min_procs": min(procs, p.min_procs), "curr_procs": procs,
                    "curr_max_procs": p.max_procs if procs else 0,
                    "curr_sharing_mode": "uncap", "curr_uncap_weight": 128,
                    "run_proc_units": float(procs), "run_procs": procs})
    return out


def virtualio(snap: LabSnapshot, frame: str, subtype: str,
              macs: dict[str, str]) -> list[dict[str, Any]]:
    """Client and server adapters: each partition's vSCSI client adapter served by the VIOS
    of its frame that exports its LUN, and its virtual Ethernet adapter (PVID 1)."""
    out: list[dict[str, Any]] = []
    vios = sorted((v for v in snap.vios.values() if v.frame == frame), key=lambda v: v.lpar_id)
    parts = _partitions(snap, frame)
    if subtype == "scsi":
        for i, p in enumerate(parts):
            server = next((v for v in vios if set(p.luns) & v.serves_luns), None)
            if not p.vscsi_adapters or server is None:
                continue
            out.append({"lpar_name": p.name, "lpar_id": p.lpar_id,
                        "slot_num": CLIENT_SCSI_SLOT, "state": 1, "is_required": 0,
                        "adapter_type": "client", "remote_lpar_id": server.lpar_id,
                        "remote_lpar_name": server.name,
                        "remote_slot_num": SCSI_SERVER_SLOT_BASE + i, "backing_devices": "none"})
            out.append({"lpar_name": server.name, "lpar_id": server.lpar_id,
                        "slot_num": SCSI_SERVER_SLOT_BASE + i, "state": 1, "is_required": 0,
                        "adapter_type": "server", "remote_lpar_id": p.lpar_id,
                        "remote_lpar_name": p.name, "remote_slot_num": CLIENT_SCSI_SLOT,
                        "backing_devices": ",".join(sorted(p.luns))})
    elif subtype == "eth":
        for p in parts:
            out.append({"lpar_name": p.name, "lpar_id": p.lpar_id, "slot_num": ETH_SLOT,
                        "state": 1, "is_required": 0, "is_trunk": 0,
                        "ieee_virtual_eth": 0, "port_vlan_id": 1, "vswitch": "ETHERNET0",
                        "addl_vlan_ids": "",
                        "mac_addr": macs.get(p.name, "").replace(":", "").upper()})
    out.sort(key=lambda r: (r["lpar_id"], r["slot_num"]))
    return out
