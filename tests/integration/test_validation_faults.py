"""More validation checks provoked by real faults in the default lab (a paused partition, a
dead hypervisor, a leftover definition, a missing iSCSI target, a cut link, an OS that does
not answer), each asserted by its code; every fault is undone and changes nothing else."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import libvirt
import pytest

from lpmlab.hmc.system import Hmc

from .conftest import BIN, cli, placements

pytestmark = pytest.mark.integration


def validate(*extra: str, system: str = "sys1", target: str = "sys2",
             name: str = "lpar1") -> subprocess.CompletedProcess:
    return cli("migrlpar", "-o", "v", "-m", system, "-t", target, "-p", name, *extra)


def refused(cp: subprocess.CompletedProcess, code: str) -> None:
    assert cp.returncode != 0, cp.stderr
    assert code in cp.stderr, cp.stderr
    assert "Fix:" in cp.stderr


def console(text: str) -> str:
    cp = subprocess.run([str(BIN / "mkvterm"), "-m", "sys1", "-p", "lpar1"], input=text,
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def test_a_vios_is_not_a_mobile_partition(lab):
    refused(validate(name="vios1"), "HSCLL504")


def test_msp_named_on_the_destination_must_be_an_msp_with_a_working_link(lab):
    cli("chsyscfg", "-r", "lpar", "-m", "sys2", "-i", "name=vios2,msp=0", check=True)
    try:
        refused(validate("-i", "dest_msp_name=vios2"), "HSCLL554")
    finally:
        cli("chsyscfg", "-r", "lpar", "-m", "sys2", "-i", "name=vios2,msp=1", check=True)
    ns = lab.plan.vios("vios2").ns
    subprocess.run(["ip", "-n", ns, "link", "set", "mover0", "down"], check=True)
    try:
        refused(validate("-i", "dest_msp_name=vios2"), "HSCLL556")
    finally:
        subprocess.run(["ip", "-n", ns, "link", "set", "mover0", "up"], check=True)


def test_mover_path_cut_between_the_msps(lab):
    # vios2 stops answering vios1 on the mover network (both links stay up)
    src = str(lab.plan.vios("vios1").vios.mover_address)
    rule = ("add table inet lpmtest { chain input { type filter hook input priority 0; "
            f"ip saddr {src} drop; }}; }}")
    ns = lab.plan.vios("vios2").ns
    subprocess.run(["ip", "netns", "exec", ns, "nft", rule], check=True)
    try:
        refused(validate(), "HSCLL557")
    finally:
        subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "lpmtest"],
                       check=True)
    assert validate().returncode == 0


def test_vscsi_mapping_to_a_vios_of_another_frame(lab):
    refused(validate("-i", '"virtual_scsi_mappings=2/vios1/"'), "HSCLL563")


def test_vlan_not_bridged_on_the_destination(lab):
    subprocess.run(["ip", "-n", "lpm-sys2", "link", "set", "sea0", "down"], check=True)
    try:
        refused(validate("--vlanbridge", "1"), "HSCLL564")
    finally:
        subprocess.run(["ip", "-n", "lpm-sys2", "link", "set", "sea0", "up"], check=True)
    assert validate("--vlanbridge", "1").returncode == 0


def test_storage_not_shared(lab):
    # the LUN's backing file leaves the SAN; tgtd keeps its open file, the guest notices nothing
    san = Path(lab.plan.san_dir)
    (san / "lpar1.img").rename(san / "lpar1.img.away")
    try:
        refused(validate(), "HSCLL561")
    finally:
        (san / "lpar1.img.away").rename(san / "lpar1.img")
    assert validate().returncode == 0


def test_leftover_definition_on_the_destination(lab):
    hmc = Hmc.open()
    try:
        src = hmc.conn("sys1").lookup("lpar1")
        xml = src.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_MIGRATABLE)
        copy = hmc.conn("sys2").define(xml)
        try:
            refused(validate(), "HSCLL541")
        finally:
            copy.undefine()
    finally:
        hmc.close()
    assert placements() == [("sys1", "running")]


def test_a_paused_partition_cannot_migrate_active(lab):
    hmc = Hmc.open()
    dom = hmc.conn("sys1").lookup("lpar1")
    dom.suspend()
    try:
        refused(validate(), "HSCLL532")
    finally:
        dom.resume()
        hmc.close()


def test_an_inactive_migration_needs_a_shut_off_partition(lab):
    from lpmlab.errors import LpmlabError
    from lpmlab.hmc.inactive import InactiveMigration

    hmc = Hmc.open()
    try:
        with pytest.raises(LpmlabError) as exc:
            InactiveMigration(hmc, "lpar1", "sys1", "sys2").validate()
        assert "HSCLL533" in exc.value.render()
    finally:
        hmc.close()


def test_partition_os_not_answering(lab):
    out = console("\nip link set eth0 down; echo link-$((2+3))-down\n")
    assert "link-5-down" in out
    try:
        refused(validate(), "HSCLL534")
    finally:
        console("\nip link set eth0 up\n")
    ch = lab.rmc("lpar1")
    ch.wait_ready(60, evidence=lambda: lab.console_tail("lpar1"))
    ch.close()


def test_destination_hypervisor_down(lab):
    pid = int((lab.plan.frame("sys2").dir / "libvirtd.pid").read_text())
    # SIGKILL: a hypervisor that is down, at once (a SIGTERM'd libvirtd once took over 30 s
    # to finish its shutdown, and 'lab up' must not find it still shutting down)
    subprocess.run(["kill", "-KILL", str(pid)], check=True)
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists():
            assert time.monotonic() < deadline, f"libvirtd {pid} still runs 10 s after SIGKILL"
            time.sleep(0.2)
        refused(validate(), "HSCLL502")
    finally:
        cli("lpmlab", "lab", "up", check=True)
    assert validate().returncode == 0


def test_no_destination_vios_serves_the_disk(lab):
    vp = lab.plan.vios("vios2")
    ns, ctl = vp.ns, str(vp.tgt_control_port)
    tids = subprocess.run(["ip", "netns", "exec", ns, "tgtadm", "-C", ctl, "--lld", "iscsi",
                           "--mode", "target", "--op", "show"], capture_output=True, text=True,
                          check=True).stdout
    tid = next(line.split()[1].rstrip(":") for line in tids.splitlines()
               if line.startswith("Target") and line.endswith("vios2.lpar1"))
    subprocess.run(["ip", "netns", "exec", ns, "tgtadm", "-C", ctl, "--lld", "iscsi",
                    "--mode", "target", "--op", "delete", "--force", "--tid", tid], check=True)
    try:
        refused(validate(), "HSCLA319")
    finally:
        cli("lpmlab", "lab", "up", check=True)
    assert validate().returncode == 0
    assert placements() == [("sys1", "running")]
