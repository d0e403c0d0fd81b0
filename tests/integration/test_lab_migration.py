"""The default lab end to end: up, SSH, a loaded partition migrated there and back, down."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from lpmlab.fabric import netns
from lpmlab.hmc import artifacts

from .conftest import BIN, cli

pytestmark = pytest.mark.integration


def latest_id() -> str:
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        return hmc.store.latest("lpar1", 1)[0].id
    finally:
        hmc.close()


def frames_of(name: str) -> list[str]:
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        return [p.frame for p in hmc.placements(name)]
    finally:
        hmc.close()


def lpar_states(frame: str) -> dict[str, str]:
    out = cli("lssyscfg", "-r", "lpar", "-m", frame, "-F", "name:state", check=True).stdout
    return dict(line.split(":", 1) for line in out.splitlines())


def disk_verify(lab) -> str:
    res = lab.rmc("lpar1").run("lpm-disk verify /dev/sda", timeout=60)
    assert res.rc == 0, f"disk records not contiguous: {res.stdout} {res.stderr}"
    return res.stdout


def record_count(verify_line: str) -> int:
    return int(verify_line.split("records=")[1].split()[0])


def bridge_macs() -> dict[str, str]:
    out = {}
    for ns, br in (("lpm-sys1", "sea0"), ("lpm-sys2", "sea0"), ("lpm-hub", "labbr")):
        line = subprocess.run(["ip", "-n", ns, "-br", "link", "show", "dev", br],
                              capture_output=True, text=True, check=True).stdout
        out[f"{ns}/{br}"] = line.split()[2]
    return out


def test_lab_up_is_idempotent_and_partition_runs_on_sys1(lab):
    cp = cli("lpmlab", "lab", "up", timeout=300)
    assert cp.returncode == 0, cp.stderr
    assert "lab up: provision" in cp.stderr
    assert lpar_states("sys1")["lpar1"] == "Running"
    assert lpar_states("sys1")["vios1"] == "Running"
    assert "lpar1" not in lpar_states("sys2")
    assert frames_of("lpar1") == ["sys1"]
    sys_out = cli("lssyscfg", "-r", "sys", "-F", "name,state", check=True).stdout.split()
    assert sys_out == ["sys1,Operating", "sys2,Operating"]


def test_next_lab_starts_from_the_qemu_capabilities_the_frames_probed(lab):
    """What the frames' libvirtd probed (every QEMU binary, ~10 s each) is kept for the next
    lab, whose frames start from a copy."""
    seed = lab.plan.qemu_caps_seed_dir
    for fp in lab.plan.frames():
        probed = {f.name: f.read_bytes() for f in fp.qemu_caps_dir.glob("*.xml")}
        assert len(probed) >= 1, f"{fp.frame.name} probed no QEMU binary"
        assert {n: (seed / n).read_bytes() for n in probed} == probed


def test_partition_answers_ssh(lab):
    res = lab.rmc("lpar1").run("uname -m; cat /proc/cpuinfo | grep -c processor", check=True)
    arch, cpus = res.stdout.split()
    assert arch == "ppc64le"
    assert int(cpus) == 1


def test_frames_speak_libvirt_over_verified_tls_only(lab, tmp_path):
    from lpmlab.fabric import ca

    tls = {name: f["tls_uri"] for name, f in lab.status()["frames"].items()}
    assert tls["sys1"].startswith("qemu+tls://198.18.0.11/system?pkipath=")

    def virsh(uri: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", "lpm-hub", "virsh", "-c", uri, "list",
                               "--all", "--name"], capture_output=True, text=True, timeout=60)

    listed = virsh(tls["sys1"])
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["lpar1"]
    assert "error" in virsh("qemu+tcp://198.18.0.11/system").stderr.lower()
    # a client the lab CA did not sign is turned away by the frame
    stranger = ca.ensure_controller_pki(ca.ensure_ca(tmp_path / "ca", "stranger"),
                                        tmp_path / "stranger")
    refused = virsh(f"qemu+tls://198.18.0.11/system?pkipath={stranger}")
    assert refused.returncode != 0 and "lpar1" not in refused.stdout


def test_migrate_there_and_back_under_load(lab):
    ch = lab.rmc("lpar1")
    ch.run("lpm-disk write /dev/sda --daemon", check=True)
    ch.run("lpm-dirty --rate 64 --wss 128 --daemon", check=True)
    time.sleep(2)
    before = record_count(disk_verify(lab))
    assert before > 0
    macs = bridge_macs()
    for src, dst in (("sys1", "sys2"), ("sys2", "sys1")):
        dest_id = 7 if dst == "sys2" else 2
        msps = (f"source_msp_name=vios{src[-1]},dest_msp_name=vios{dst[-1]},"
                f"dest_lpar_id={dest_id}")
        proc = subprocess.Popen([str(BIN / "migrlpar"), "-o", "m", "-m", src, "-t", dst,
                                 "-p", "lpar1", "-i", msps], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        seen = set()
        while proc.poll() is None:
            out = cli("lslparmigr", "-r", "lpar", "-m", src, "-F", "name,migration_state")
            seen.update(line for line in out.stdout.splitlines() if line.startswith("lpar1,"))
            time.sleep(0.1)
        stdout, stderr = proc.communicate()
        assert proc.returncode == 0, stderr
        assert stdout == "", "a successful migrlpar prints nothing"
        assert "lpar1,Migration In Progress" in seen, seen
        # exactly one place, running, answering, disk intact and still growing
        assert frames_of("lpar1") == [dst]
        assert lpar_states(dst)["lpar1"] == "Running"
        ids = cli("lssyscfg", "-r", "lpar", "-m", dst, "-F", "name,lpar_id", check=True).stdout
        assert f"lpar1,{dest_id}" in ids.split()
        assert "lpar1" not in lpar_states(src)
        after = record_count(disk_verify(lab))
        assert after > before, "the disk writer kept appending across the migration"
        before = after
        line = cli("lslparmigr", "-r", "lpar", "-m", dst, "--filter", "lpar_names=lpar1",
                   check=True).stdout.strip()
        assert "migration_state=Not Migrating" in line
        # the migration's folder says where the controller's time went, step by step
        record = json.loads((artifacts.folder(latest_id()) / "record.json").read_text())
        timeline = record["stats"]["timeline"]
        steps = [s["step"] for s in timeline]
        assert steps[0] == "validate" and steps[-1] == "MSPs and destination closed"
        assert {"hooks check", "hooks pre", "libvirt migration (migrateToURI3)",
                "hooks post"} <= set(steps)
        assert abs(sum(s["s"] for s in timeline) - record["stats"]["wall_s"]) < 0.02
    dirt = ch.run("cat /run/lpm-dirty.stat", check=True).stdout
    assert "achieved_mibps=" in dirt
    # a bridge that took the partition's NIC address cut the frames off from each other
    assert bridge_macs() == macs
    assert len(set(macs.values())) == len(macs)


def test_bad_input_is_refused_and_changes_nothing(lab):
    cases = [
        (["migrlpar", "-o", "m", "-m", "sys9", "-t", "sys2", "-p", "lpar1"], "HSCL8011"),
        (["migrlpar", "-o", "m", "-m", "sys1", "-t", "sys9", "-p", "lpar1"], "HSCL8011"),
        (["migrlpar", "-o", "m", "-m", "sys1", "-t", "sys2", "-p", "nosuch"], "HSCL8012"),
        (["migrlpar", "-o", "m", "-m", "sys2", "-t", "sys1", "-p", "lpar1"], "HSCL8012"),
        (["migrlpar", "-o", "m", "-m", "sys1", "-t", "sys1", "-p", "lpar1"], "HSCLL501"),
        (["lssyscfg", "-r", "lpar", "-m", "sys9"], "HSCL8011"),
        (["lslparmigr", "-r", "lpar", "-m", "nosys"], "HSCL8011"),
        (["migrlpar", "-o", "x", "-m", "sys1", "-t", "sys2", "-p", "lpar1"], "HSCL8001"),
        (["migrlpar", "-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1", "-i",
          "dest_msp_name=vios9"], "HSCLL553"),
        (["migrlpar", "-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1", "-i",
          "source_msp_name=vios2"], "HSCLL555"),
        (["migrlpar", "-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1", "-i",
          '"virtual_scsi_mappings=2/vios2/'], "HSCL8001"),
        (["migrlpar", "-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar1", "-i",
          "bogus=1"], "HSCLL420"),
    ]
    for argv, code in cases:
        cp = cli(*argv)
        assert cp.returncode != 0, argv
        assert code in cp.stderr, (argv, cp.stderr)
        assert cp.stdout == "", argv
    assert frames_of("lpar1") == ["sys1"]
    assert lpar_states("sys1")["lpar1"] == "Running"


def test_down_removes_everything(lab):
    lab_dir = lab.plan.dir
    cp = cli("lpmlab", "lab", "down", check=True)
    assert "removed" in cp.stderr
    assert netns.list_lab_namespaces() == []
    leftovers = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if str(lab_dir).encode() in cmd or b"msp_relay" in cmd:
                leftovers.append(cmd.replace(b"\0", b" ").decode())
    assert leftovers == []
    assert not lab_dir.exists()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not [ln for ln in links.splitlines() if any(n in ln for n in
                                                       (" labbr", " movbr", " sea0", " lpt"))]
    # without a lab, commands say so and exit non-zero
    cp = cli("lssyscfg", "-r", "sys")
    assert cp.returncode != 0 and "lpmlab lab up" in cp.stderr and cp.stdout == ""
    assert not lab_dir.exists()
