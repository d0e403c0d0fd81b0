"""Domain XML for pseries partitions, and the lpmlab metadata every lab domain carries."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

METADATA_NS = "https://lpmlab.dev/xmlns/partition/1.0"
METADATA_TAG = f"{{{METADATA_NS}}}partition"
ET.register_namespace("lpm", METADATA_NS)


@dataclass(frozen=True)
class IscsiDisk:
    """A LUN served by a VIOS over iSCSI (the vSCSI client adapter's backing)."""

    portal: str  # VIOS address
    iqn: str
    lun: int = 1
    port: int = 3260
    vios: str = ""


@dataclass(frozen=True)
class PartitionSpec:
    name: str
    lpar_id: int
    memory_mb: int
    procs: int
    kernel: Path
    initrd: Path
    cmdline: str
    mac: str
    bridge: str
    console_log: Path
    lab: str = "default"
    env: str = "aixlinux"
    profile: str = "default_profile"
    proc_compat_mode: str = "default"
    disk: IscsiDisk | None = None
    extra_metadata: dict[str, str] = field(default_factory=dict)
    profiles: tuple[dict[str, str], ...] = ()


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def disk_element(disk: IscsiDisk) -> ET.Element:
    d = ET.Element("disk", {"type": "network", "device": "disk"})
    # cache=none: libvirt only calls a migration safe when no host cache can hold writes.
    _sub(d, "driver", name="qemu", type="raw", cache="none")
    src = _sub(d, "source", protocol="iscsi", name=f"{disk.iqn}/{disk.lun}")
    _sub(src, "host", name=disk.portal, port=str(disk.port))
    _sub(d, "target", dev="sda", bus="scsi")
    _sub(d, "address", type="drive", controller="0", bus="0", target="0", unit="0")
    return d


def render_partition(spec: PartitionSpec) -> str:
    dom = ET.Element("domain", {"type": "qemu"})
    _sub(dom, "name", spec.name)
    _sub(dom, "title", f"lpmlab partition {spec.name} (lpar_id {spec.lpar_id})")
    meta = _sub(dom, "metadata")
    attrs = {"lab": spec.lab, "lpar_id": str(spec.lpar_id), "lpar_env": spec.env,
             "profile": spec.profile, "proc_compat_mode": spec.proc_compat_mode}
    if spec.disk is not None:
        attrs["vios"] = spec.disk.vios
    attrs.update(spec.extra_metadata)
    part = ET.SubElement(meta, METADATA_TAG, attrs)
    _add_profiles(part, spec.profiles)
    _sub(dom, "memory", str(spec.memory_mb), unit="MiB")
    _sub(dom, "vcpu", str(spec.procs), placement="static")
    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm", arch="ppc64", machine="pseries")
    _sub(os_el, "kernel", str(spec.kernel))
    _sub(os_el, "initrd", str(spec.initrd))
    _sub(os_el, "cmdline", spec.cmdline)
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")
    dev = _sub(dom, "devices")
    _sub(dev, "emulator", "/usr/bin/qemu-system-ppc64")
    _sub(dev, "controller", type="scsi", index="0", model="ibmvscsi")
    _sub(dev, "controller", type="usb", model="none")  # a POWER partition has no USB
    if spec.disk is not None:
        dev.append(disk_element(spec.disk))
    nic = _sub(dev, "interface", type="bridge")
    _sub(nic, "mac", address=spec.mac)
    _sub(nic, "source", bridge=spec.bridge)
    _sub(nic, "model", type="spapr-vlan")
    console = _sub(dev, "console", type="pty")
    _sub(console, "log", file=str(spec.console_log), append="on")
    _sub(console, "target", type="serial", port="0")
    _sub(dev, "memballoon", model="none")
    _sub(dev, "panic", model="pseries")
    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode")


def read_metadata(xml: str) -> dict[str, str]:
    """The lpmlab metadata of a domain; empty when the domain is not lpmlab's."""
    root = ET.fromstring(xml)
    el = root.find(f"metadata/{METADATA_TAG}")
    return dict(el.attrib) if el is not None else {}


# Profiles are children of the metadata element, so they move with the partition the way
# PowerVM moves a partition's profiles with it. libvirt's setMetadata() puts the children of
# the element it is given into lpmlab's namespace too; both spellings are read.
PROFILE_TAG = f"{{{METADATA_NS}}}profile"
_PROFILE_TAGS = (PROFILE_TAG, "profile")


def _add_profiles(parent: ET.Element, profiles: tuple[dict[str, str], ...],
                  tag: str = PROFILE_TAG) -> None:
    for prof in profiles:
        ET.SubElement(parent, tag, prof)


def metadata_element(attrs: dict[str, str],
                     profiles: tuple[dict[str, str], ...] = ()) -> str:
    """The metadata element as libvirt's setMetadata() takes it (namespace added by libvirt)."""
    el = ET.Element("partition", attrs)
    _add_profiles(el, profiles, tag="profile")
    return ET.tostring(el, encoding="unicode")


def read_metadata_element(xml: str) -> dict[str, str]:
    """Attributes of the metadata element as libvirt's metadata() call returns it."""
    return dict(ET.fromstring(xml).attrib)


def read_profiles_element(xml: str) -> tuple[dict[str, str], ...]:
    """The profiles held in the metadata element as libvirt's metadata() call returns it."""
    return tuple(dict(p.attrib) for p in ET.fromstring(xml) if p.tag in _PROFILE_TAGS)


def set_profiles(xml: str, profiles: tuple[dict[str, str], ...]) -> str:
    """The same domain with its profiles replaced."""
    root = ET.fromstring(xml)
    meta = root.find(f"metadata/{METADATA_TAG}")
    if meta is None:
        raise ValueError("the domain has no lpmlab metadata")
    for old in [p for p in meta if p.tag in _PROFILE_TAGS]:
        meta.remove(old)
    _add_profiles(meta, profiles)
    return ET.tostring(root, encoding="unicode")


def set_resources(xml: str, memory_mb: int, procs: int) -> str:
    """The same (inactive) domain sized as a profile asks: memory and virtual processors."""
    root = ET.fromstring(xml)
    for tag in ("memory", "currentMemory"):
        el = root.find(tag)
        if el is not None:
            el.set("unit", "KiB")
            el.text = str(memory_mb * 1024)
    vcpu = root.find("vcpu")
    if vcpu is not None:
        vcpu.text = str(procs)
        vcpu.attrib.pop("current", None)
    return ET.tostring(root, encoding="unicode")


def retarget_disk(xml: str, disk: IscsiDisk) -> str:
    """The same domain with its LUN reached through another VIOS (the destination's).

    Only the disk source changes, which libvirt accepts as ABI-compatible for migration.
    """
    root = ET.fromstring(xml)
    retargeted = False
    for d in root.findall("devices/disk"):
        src = d.find("source")
        if src is None or src.get("protocol") != "iscsi":
            continue
        retargeted = True
        src.set("name", f"{disk.iqn}/{disk.lun}")
        for h in src.findall("host"):
            src.remove(h)
        ET.SubElement(src, "host", {"name": disk.portal, "port": str(disk.port)})
    meta = root.find(f"metadata/{METADATA_TAG}")
    if meta is not None and disk.vios and retargeted:
        meta.set("vios", disk.vios)
    return ET.tostring(root, encoding="unicode")


def set_metadata(xml: str, **attrs: str) -> str:
    """The same domain with these lpmlab metadata attributes changed (e.g. a new lpar_id)."""
    root = ET.fromstring(xml)
    meta = root.find(f"metadata/{METADATA_TAG}")
    if meta is None:
        holder = root.find("metadata")
        if holder is None:
            holder = ET.SubElement(root, "metadata")
        meta = ET.SubElement(holder, METADATA_TAG)
    for k, v in attrs.items():
        meta.set(k, v)
    return ET.tostring(root, encoding="unicode")


def disk_source(xml: str) -> tuple[str, str] | None:
    """(portal, iqn/lun) of the domain's iSCSI disk, if it has one."""
    root = ET.fromstring(xml)
    src = root.find("devices/disk/source[@protocol='iscsi']")
    if src is None:
        return None
    host = src.find("host")
    return (host.get("name", "") if host is not None else "", src.get("name", ""))
