"""Domain XML of pseries partitions and the lpmlab metadata they carry."""

import copy
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from lpmlab.adapter import domain_xml as dx

VIOS1_DISK = dx.IscsiDisk(portal="198.18.0.21", iqn="iqn.2024-01.dev.lpmlab:vios1.lpar1",
                          lun=1, vios="vios1")
VIOS2_DISK = dx.IscsiDisk(portal="198.18.0.22", iqn="iqn.2024-01.dev.lpmlab:vios2.lpar1",
                          lun=3, port=3261, vios="vios2")


def spec(**over):
    kw = dict(name="lpar1", lpar_id=2, memory_mb=512, procs=1, kernel=Path("/img/vmlinux"),
              initrd=Path("/img/initrd"), cmdline="console=hvc0 quiet", mac="52:54:00:4c:50:01",
              bridge="sea0", console_log=Path("/lab/console/lpar1.log"), disk=VIOS1_DISK)
    kw.update(over)
    return dx.PartitionSpec(**kw)


@pytest.fixture
def root():
    return ET.fromstring(dx.render_partition(spec()))


def canon(el):
    """An element as nested tuples, ignoring indentation whitespace."""
    return (el.tag, sorted(el.attrib.items()), (el.text or "").strip(),
            [canon(c) for c in el])


def test_machine_is_pseries_ppc64(root):
    assert root.tag == "domain"
    assert root.findtext("name") == "lpar1"
    t = root.find("os/type")
    assert (t.get("arch"), t.get("machine"), t.text) == ("ppc64", "pseries", "hvm")
    assert root.findtext("os/kernel") == "/img/vmlinux"
    assert root.findtext("os/initrd") == "/img/initrd"
    assert root.findtext("os/cmdline") == "console=hvc0 quiet"
    assert root.find("memory").text == "512" and root.find("memory").get("unit") == "MiB"
    assert root.findtext("vcpu") == "1"


def test_vscsi_controller_and_iscsi_disk_without_host_cache(root):
    scsi = root.findall("devices/controller[@type='scsi']")
    assert [(c.get("index"), c.get("model")) for c in scsi] == [("0", "ibmvscsi")]
    disks = root.findall("devices/disk")
    assert len(disks) == 1
    d = disks[0]
    assert d.get("type") == "network"
    assert d.find("driver").get("cache") == "none"
    src = d.find("source")
    assert src.get("protocol") == "iscsi"
    assert src.get("name") == "iqn.2024-01.dev.lpmlab:vios1.lpar1/1"
    host = src.find("host")
    assert (host.get("name"), host.get("port")) == ("198.18.0.21", "3260")
    assert d.find("target").get("bus") == "scsi"


def test_no_disk_means_no_disk_element():
    root = ET.fromstring(dx.render_partition(spec(disk=None)))
    assert root.findall("devices/disk") == []
    assert "vios" not in dx.read_metadata(dx.render_partition(spec(disk=None)))
    assert dx.disk_source(dx.render_partition(spec(disk=None))) is None


def test_nic_is_spapr_vlan_on_the_frame_bridge(root):
    nics = root.findall("devices/interface")
    assert len(nics) == 1
    nic = nics[0]
    assert nic.get("type") == "bridge"
    assert nic.find("source").get("bridge") == "sea0"
    assert nic.find("model").get("type") == "spapr-vlan"
    assert nic.find("mac").get("address") == "52:54:00:4c:50:01"


def test_console_is_logged_to_a_file(root):
    con = root.find("devices/console")
    assert con.find("log").get("file") == "/lab/console/lpar1.log"
    assert con.find("target").get("type") == "serial"


def test_metadata_is_readable():
    xml = dx.render_partition(spec(extra_metadata={"owner": "test"}))
    assert dx.read_metadata(xml) == {"lab": "default", "lpar_id": "2", "lpar_env": "aixlinux",
                                     "profile": "default_profile", "proc_compat_mode": "default",
                                     "vios": "vios1", "owner": "test"}


def test_domain_without_metadata_reads_as_not_ours():
    assert dx.read_metadata("<domain type='test'><name>other</name></domain>") == {}
    foreign = ("<domain type='test'><name>x</name><metadata>"
               "<app:thing xmlns:app='https://example.org/app'/></metadata></domain>")
    assert dx.read_metadata(foreign) == {}


def test_default_compat_mode_leaves_the_cpu_alone(root):
    assert root.find("cpu") is None


@pytest.mark.parametrize("mode", ["POWER8", "POWER9", "POWER10"])
def test_compat_mode_is_recorded_in_metadata(mode):
    root = ET.fromstring(dx.render_partition(spec(proc_compat_mode=mode)))
    assert dx.read_metadata(ET.tostring(root, encoding="unicode"))["proc_compat_mode"] == mode


def test_special_characters_survive():
    xml = dx.render_partition(spec(cmdline="a<b & c=\"d\"", bridge="sea&0"))
    root = ET.fromstring(xml)
    assert root.findtext("os/cmdline") == "a<b & c=\"d\""
    assert root.find("devices/interface/source").get("bridge") == "sea&0"


def test_disk_source_reports_portal_and_lun():
    xml = dx.render_partition(spec())
    assert dx.disk_source(xml) == ("198.18.0.21", "iqn.2024-01.dev.lpmlab:vios1.lpar1/1")


def test_retarget_changes_only_the_disk_source_and_metadata_vios():
    before = ET.fromstring(dx.render_partition(spec()))
    after_xml = dx.retarget_disk(dx.render_partition(spec()), VIOS2_DISK)
    after = ET.fromstring(after_xml)

    assert dx.disk_source(after_xml) == ("198.18.0.22", "iqn.2024-01.dev.lpmlab:vios2.lpar1/3")
    hosts = after.findall("devices/disk/source/host")
    assert [(h.get("name"), h.get("port")) for h in hosts] == [("198.18.0.22", "3261")]
    assert dx.read_metadata(after_xml)["vios"] == "vios2"

    # apply the three expected edits to the original and compare the whole tree
    expected = copy.deepcopy(before)
    src = expected.find("devices/disk/source")
    src.set("name", "iqn.2024-01.dev.lpmlab:vios2.lpar1/3")
    src.find("host").attrib.update(name="198.18.0.22", port="3261")
    expected.find(f"metadata/{dx.METADATA_TAG}").set("vios", "vios2")
    assert canon(after) == canon(expected)


def test_retarget_without_a_vios_name_keeps_the_metadata():
    disk = dx.IscsiDisk(portal="198.18.0.22", iqn="iqn.x:y")
    xml = dx.retarget_disk(dx.render_partition(spec()), disk)
    assert dx.read_metadata(xml)["vios"] == "vios1"
    assert dx.disk_source(xml) == ("198.18.0.22", "iqn.x:y/1")


def test_retarget_of_a_diskless_domain_changes_nothing():
    xml = dx.render_partition(spec(disk=None))
    assert canon(ET.fromstring(dx.retarget_disk(xml, VIOS2_DISK))) == \
        canon(ET.fromstring(xml))


# -- libvirt's test driver accepts the XML -----------------------------------------------------

@pytest.fixture
def test_conn():
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open("test:///default")
    defined = []
    yield conn, defined
    for name in defined:
        try:
            dom = conn.lookupByName(name)
        except libvirt.libvirtError:
            continue
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    conn.close()


def test_libvirt_accepts_the_rendered_xml_and_keeps_the_metadata(test_conn):
    conn, defined = test_conn
    xml = dx.render_partition(spec(name="lpmlab-xml-1", proc_compat_mode="POWER9"))
    dom = conn.defineXML(xml)
    defined.append("lpmlab-xml-1")
    back = dom.XMLDesc(0)
    assert dx.read_metadata(back) == dx.read_metadata(xml)
    root = ET.fromstring(back)
    assert root.find("os/type").get("machine") == "pseries"
    assert root.find("os/type").get("arch") == "ppc64"
    assert dx.disk_source(back) == dx.disk_source(xml)


def test_libvirt_accepts_a_retargeted_definition(test_conn):
    conn, defined = test_conn
    xml = dx.render_partition(spec(name="lpmlab-xml-2"))
    dom = conn.defineXML(xml)
    defined.append("lpmlab-xml-2")
    dom2 = conn.defineXML(dx.retarget_disk(dom.XMLDesc(0), VIOS2_DISK))
    assert dom2.UUIDString() == dom.UUIDString()
    back = conn.lookupByName("lpmlab-xml-2").XMLDesc(0)
    assert dx.disk_source(back) == ("198.18.0.22", "iqn.2024-01.dev.lpmlab:vios2.lpar1/3")
    assert dx.read_metadata(back)["vios"] == "vios2"


def test_set_metadata_changes_only_the_named_attributes():
    xml = dx.render_partition(spec())
    out = dx.set_metadata(xml, lpar_id="7")
    md = dx.read_metadata(out)
    assert md["lpar_id"] == "7"
    assert {k: v for k, v in md.items() if k != "lpar_id"} == \
        {k: v for k, v in dx.read_metadata(xml).items() if k != "lpar_id"}
    bare = "<domain type='qemu'><name>x</name></domain>"
    assert dx.read_metadata(dx.set_metadata(bare, lpar_id="3")) == {"lpar_id": "3"}
