"""lpmlab.fabric.vagrant: the hosts file the top-level Vagrantfile reads, `vagrant ssh-config`
parsing, the Vagrant key, the vagrant wrapper's errors, and the real `vagrant validate`
(Debian's vagrant + vagrant-libvirt; nothing connects to libvirt, no VM starts).

The validate tests need the packages vagrant and vagrant-libvirt (host.yml installs them);
they fail, not skip, without them.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from pathlib import Path

import pytest

from lpmlab.errors import DeadlineError, FabricError, HostPrepError, TopologyError
from lpmlab.fabric import box as B
from lpmlab.fabric import vagrant as V
from lpmlab.paths import repo_root

VAGRANTFILE = repo_root() / "Vagrantfile"

# `vagrant ssh-config` for two frames, as Vagrant 2.3.4's config.erb renders it (the blank
# line before IdentityFile is the template's), after a warning on the first line.
SSH_CONFIG = """\
==> vagrant: A new version of Vagrant is available: 9.9.9 (installed version: 2.3.4)!
Host sys1
  HostName 198.18.3.57
  User vagrant
  Port 22
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no

  IdentityFile /var/lib/lpmlab/box/vagrant_key
  IdentitiesOnly yes
  LogLevel FATAL

Host sys2
  HostName 198.18.3.212
  User vagrant
  Port 2222
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no

  IdentityFile "/srv/lab state/box/vagrant_key"
  IdentityFile /other/key
  IdentitiesOnly yes
  LogLevel FATAL

"""


def vagrantfile_default_hosts() -> dict:
    """DEFAULT_HOSTS as the Vagrantfile spells it (its <<~'HOSTS' heredoc)."""
    m = re.search(r"<<~'HOSTS'\)\n(.*?)\n\s*HOSTS\n", VAGRANTFILE.read_text(), re.S)
    assert m, "DEFAULT_HOSTS heredoc not found in the Vagrantfile"
    return json.loads(m.group(1))


# -- hosts file -------------------------------------------------------------------------------
def test_render_hosts_gives_the_document_the_vagrantfile_reads():
    doc = V.render_hosts()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["box"] == "lpmlab/debian12" and doc["box_url"] is None
    assert doc["networks"] == {
        "mgmt": {"name": "lpmlab-mgmt", "subnet": "198.18.3.0/24", "mode": "nat"},
        "lab": {"name": "lpmlab-lab", "host_ip": "198.18.0.1", "netmask": "255.255.255.0"},
        "mover": {"name": "lpmlab-mover"},
    }
    assert doc["frames"][1] == {
        "name": "sys2", "index": 2, "lab_ip": "198.18.0.12", "mover_ip": "198.18.1.12",
        "memory_mb": 3072, "cpus": 1, "mgmt_mac": "52:54:00:18:03:02",
        "lab_mac": "52:54:00:18:00:02", "mover_mac": "52:54:00:18:01:02"}
    assert [f["name"] for f in doc["frames"]] == ["sys1", "sys2"]


def test_the_vagrantfile_default_is_the_default_lab():
    assert vagrantfile_default_hosts() == V.render_hosts()


def test_render_hosts_takes_frames_networks_and_a_box_file(tmp_path):
    frames = [V.VagrantFrame("alpha", 10, "10.9.0.20", "10.9.5.20", memory_mb=2048, cpus=2)]
    nets = V.VagrantNetworks(mgmt_subnet="10.9.3.0/24", lab_host_ip="10.9.0.1/23",
                             lab_name="other-lab")
    doc = V.render_hosts(frames, nets, box="me/box", box_url=tmp_path / "x.box")
    assert doc["box_url"] == f"file://{tmp_path}/x.box"
    assert doc["networks"]["lab"] == {"name": "other-lab", "host_ip": "10.9.0.1",
                                      "netmask": "255.255.254.0"}
    assert doc["frames"][0]["lab_mac"] == "52:54:00:18:00:0a"
    assert doc["frames"][0]["memory_mb"] == 2048 and doc["frames"][0]["cpus"] == 2


@pytest.mark.parametrize("frames, nets, words", [
    ([], None, "no frames"),
    ([V.VagrantFrame("sys1", 1, "198.18.0.11", "198.18.1.11"),
      V.VagrantFrame("sys1", 2, "198.18.0.12", "198.18.1.12")], None, "share the name sys1"),
    ([V.VagrantFrame("sys1", 1, "198.18.0.11", "198.18.1.11"),
      V.VagrantFrame("sys2", 1, "198.18.0.12", "198.18.1.12")], None, "share the index 1"),
    ([V.VagrantFrame("sys1", 1, "198.18.5.11", "198.18.1.11")], None, "not a free address"),
    ([V.VagrantFrame("sys1", 1, "198.18.0.1", "198.18.1.11")], None, "not a free address"),
    ([V.VagrantFrame("sys1", 0, "198.18.0.11", "198.18.1.11")], None, "outside 1..254"),
    ([V.VagrantFrame("Sys_1", 1, "198.18.0.11", "198.18.1.11")], None, "not a host name"),
    ([V.VagrantFrame("sys1", 1, "198.18.0.11", "198.18.1.11", memory_mb=512)], None, "1024"),
    (list(V.DEFAULT_FRAMES), V.VagrantNetworks(mgmt_subnet="198.18.0.0/16"), "overlaps"),
    (list(V.DEFAULT_FRAMES), V.VagrantNetworks(lab_host_ip="198.18.0.1"), "prefix"),
])
def test_render_hosts_refuses_what_vagrant_libvirt_would_get_wrong(frames, nets, words):
    with pytest.raises(TopologyError, match=words):
        V.render_hosts(frames, nets)


def test_write_hosts_writes_the_rendered_document(tmp_path):
    path = V.write_hosts(tmp_path / "vagrant" / "hosts.json", box_url="file:///x.box")
    assert json.loads(path.read_text()) == V.render_hosts(box_url="file:///x.box")
    assert [p.name for p in path.parent.iterdir()] == ["hosts.json"]


# -- ssh-config -------------------------------------------------------------------------------
def test_parse_ssh_config_reads_every_host_block():
    hosts = V.parse_ssh_config(SSH_CONFIG)
    assert hosts == {
        "sys1": V.SshHost("sys1", "198.18.3.57", 22, "vagrant",
                          Path("/var/lib/lpmlab/box/vagrant_key")),
        "sys2": V.SshHost("sys2", "198.18.3.212", 2222, "vagrant",
                          Path("/srv/lab state/box/vagrant_key")),
    }


def test_parse_ssh_config_takes_key_equals_value_and_any_case():
    hosts = V.parse_ssh_config("host f1\n hostname=10.0.0.5\n USER = root\n")
    assert hosts["f1"] == V.SshHost("f1", "10.0.0.5", 22, "root", None)


def test_parse_ssh_config_refuses_a_host_without_an_address():
    with pytest.raises(FabricError, match="no hostname for sys2") as info:
        V.parse_ssh_config("Host sys2\n  User vagrant\n  Port 22\n")
    assert "vagrant status sys2" in (info.value.fix or "")


def test_ansible_vars_log_in_over_ssh_and_become_root():
    host = V.parse_ssh_config(SSH_CONFIG)["sys2"]
    assert host.ansible_vars() == {
        "ansible_connection": "ssh",
        "ansible_host": "198.18.3.212",
        "ansible_port": 2222,
        "ansible_user": "vagrant",
        "ansible_ssh_private_key_file": "/srv/lab state/box/vagrant_key",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_become": True,
        "ansible_python_interpreter": "/usr/bin/python3",
    }


# -- key --------------------------------------------------------------------------------------
def test_ensure_key_makes_a_private_ed25519_key_once(tmp_path):
    key = B.ensure_key(tmp_path / "box")
    assert key == tmp_path / "box" / "vagrant_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    pub = key.with_name("vagrant_key.pub").read_text()
    assert pub.startswith("ssh-ed25519 ") and pub.strip().endswith("lpmlab-vagrant")
    before = key.read_bytes()
    key.chmod(0o644)
    assert B.ensure_key(tmp_path / "box") == key
    assert key.read_bytes() == before and stat.S_IMODE(key.stat().st_mode) == 0o600


# -- the vagrant command line -----------------------------------------------------------------
def test_vagrant_runs_with_the_labs_own_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VAGRANT_VAGRANTFILE", "Other")
    hosts = tmp_path / "hosts.json"
    env = V.Vagrant(hosts, state=tmp_path / "state").env()
    assert {k: env[k] for k in env if k.startswith(("VAGRANT", "LPMLAB", "LIBVIRT"))} == {
        "VAGRANT_HOME": f"{tmp_path}/state/vagrant.d",
        "VAGRANT_DOTFILE_PATH": f"{tmp_path}/state/vagrant/machines",
        "VAGRANT_CWD": str(repo_root()),
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1",
        "VAGRANT_DEFAULT_PROVIDER": "libvirt",
        "VAGRANT_NO_COLOR": "1",
        "LIBVIRT_DEFAULT_URI": "qemu:///system",
        "LPMLAB_HOME": f"{tmp_path}/state",
        "LPMLAB_SSH_KEY": f"{tmp_path}/state/box/vagrant_key",
        "LPMLAB_VAGRANT_HOSTS": str(hosts),
    }


def fake_vagrant(folder: Path, body: str) -> None:
    """A `vagrant` on PATH that runs ``body`` (sh)."""
    folder.mkdir(exist_ok=True)
    exe = folder / "vagrant"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(0o755)


def test_a_failing_vagrant_call_names_the_command_its_output_and_the_fix(tmp_path, monkeypatch):
    fake_vagrant(tmp_path / "bin", "echo 'Bringing machine sys1 up...'\n"
                 "for i in $(seq 1 40); do echo \"noise $i\" >&2; done\n"
                 "echo \"The box 'lpmlab/debian12' could not be found or\" >&2\n"
                 "echo 'could not be accessed in the remote catalog.' >&2\nexit 1\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    vg = V.Vagrant(state=tmp_path / "state")
    with pytest.raises(FabricError) as info:
        vg.up(["sys1"])
    err = info.value
    assert err.message == "`vagrant up --provider libvirt --no-provision sys1` failed (exit 1)"
    assert "make box" in (err.fix or "") and "vagrant/vagrant-up.log" in (err.fix or "")
    lines = (err.evidence or "").splitlines()
    assert len(lines) == 25 and lines[-1] == "could not be accessed in the remote catalog."
    log = (tmp_path / "state" / "vagrant" / "vagrant-up.log").read_text()
    assert "noise 1\n" in log and "Bringing machine sys1 up" in log


def test_a_vagrant_call_past_its_deadline_is_stopped_with_everything_it_started(
        tmp_path, monkeypatch):
    pidfile = tmp_path / "child.pid"
    fake_vagrant(tmp_path / "bin", f"echo waiting for sys1 to boot\nsleep 300 &\n"
                 f"echo $! >{pidfile}\nwait\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    start = time.monotonic()
    with pytest.raises(DeadlineError) as info:
        V.Vagrant(state=tmp_path / "state").ssh_config(timeout=1)
    assert time.monotonic() - start < 10
    assert info.value.message == "`vagrant ssh-config` did not finish within 1 s"
    assert info.value.evidence == "waiting for sys1 to boot"
    assert "vagrant up" in (info.value.fix or "")
    child = int(pidfile.read_text())
    for _ in range(50):
        if not Path(f"/proc/{child}").exists():
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists(), "the process vagrant started still runs"


def test_vagrant_missing_says_what_to_install(tmp_path):
    with pytest.raises(HostPrepError, match="not installed") as info:
        V.Vagrant(state=tmp_path, executable="lpmlab-no-such-vagrant").validate()
    assert "apt-get install --no-install-recommends vagrant vagrant-libvirt" in info.value.fix


def test_a_missing_box_file_is_refused_before_vagrant_runs(tmp_path):
    with pytest.raises(FabricError, match="does not exist"):
        V.Vagrant(state=tmp_path).box_add("lpmlab/debian12", tmp_path / "none.box")


# -- the real vagrant validate ----------------------------------------------------------------
@pytest.fixture
def real_vagrant(tmp_path):
    """vagrant on this host with a throw-away VAGRANT_HOME; libvirt's test driver (validate
    connects to nothing; the URI is only parsed). The key is where the Vagrantfile looks by
    default (<LPMLAB_HOME>/box/vagrant_key)."""
    state = tmp_path / "state"
    B.ensure_key(state / "box")
    return state


def test_vagrant_validates_the_vagrantfile_default(real_vagrant):
    V.Vagrant(state=real_vagrant, libvirt_uri="test:///default").validate()


def test_vagrant_validates_a_rendered_hosts_file(real_vagrant, tmp_path):
    frames = [V.VagrantFrame(f"frame{i}", i, f"198.18.0.{20 + i}", f"198.18.1.{20 + i}",
                             memory_mb=2048) for i in range(1, 4)]
    hosts = V.write_hosts(tmp_path / "hosts.json", frames, box_url=tmp_path / "x.box")
    V.Vagrant(hosts, state=real_vagrant, libvirt_uri="test:///default").validate()


def test_vagrant_validate_reports_vagrant_libvirts_own_checks(real_vagrant, tmp_path):
    doc = V.render_hosts()
    doc["frames"][0]["lab_mac"] = "52:54:00:18:00:zz"
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps(doc))
    with pytest.raises(FabricError, match="vagrant validate") as info:
        V.Vagrant(hosts, state=real_vagrant, libvirt_uri="test:///default").validate()
    assert "52:54:00:18:00:zz" in (info.value.evidence or "")


def test_a_missing_hosts_file_is_refused_before_vagrant_runs(tmp_path):
    with pytest.raises(FabricError, match="hosts file .* does not exist"):
        V.Vagrant(tmp_path / "hosts.json", state=tmp_path).validate()
