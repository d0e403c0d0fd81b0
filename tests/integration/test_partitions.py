"""Around a migration, on the real default lab: profiles, activation with a profile, the
three shutdowns, virtual terminals, and inactive migration with -n and inactive_prof_policy."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import BIN, cli

pytestmark = pytest.mark.integration


def state(frame: str, name: str = "lpar1") -> str | None:
    out = cli("lssyscfg", "-r", "lpar", "-m", frame, "-F", "name:state", check=True).stdout
    return dict(line.split(":", 1) for line in out.splitlines()).get(name)


def profile(frame: str, name: str) -> dict[str, str]:
    out = cli("lssyscfg", "-r", "prof", "-m", frame, "--filter",
              f"lpar_names=lpar1,profile_names={name}", "--json", check=True).stdout
    import json

    recs = json.loads(out)
    assert len(recs) == 1, recs
    return {k: str(v) for k, v in recs[0].items()}


def guest_size(lab) -> tuple[int, int]:
    """(processors, MemTotal MiB) as the partition's OS sees them."""
    ch = lab.rmc("lpar1")
    ch.wait_ready(120, evidence=lambda: lab.console_tail("lpar1"))
    out = ch.run("grep -c ^processor /proc/cpuinfo; grep MemTotal /proc/meminfo",
                 check=True).stdout.split()
    ch.close()
    return int(out[0]), int(out[2]) // 1024


def records(lab) -> int:
    res = lab.rmc("lpar1").run("lpm-disk verify /dev/sda", timeout=60)
    assert res.rc == 0 and "gaps=0 bad=0" in res.stdout, res.stdout + res.stderr
    return int(res.stdout.split("records=")[1].split()[0])


def test_profiles_are_listed_and_changed_only_when_valid(lab):
    before = profile("sys1", "default_profile")
    assert before["desired_mem"] == "512" and before["lpar_env"] == "aixlinux"
    bad = cli("chsyscfg", "-r", "prof", "-m", "sys1", "-i",
              "name=default_profile,lpar_name=lpar1,desired_mem=700")
    assert bad.returncode != 0 and "HSCLL422" in bad.stderr and "Fix:" in bad.stderr
    missing = cli("chsyscfg", "-r", "prof", "-m", "sys1", "-i",
                  "name=nosuch,lpar_name=lpar1,desired_mem=512")
    assert missing.returncode != 0 and "HSCLL440" in missing.stderr
    assert profile("sys1", "default_profile") == before
    cli("chsyscfg", "-r", "prof", "-m", "sys1", "-i",
        "name=default_profile,lpar_name=lpar1,desired_mem=768,max_mem=1024,desired_procs=2,"
        "max_procs=2", check=True)
    after = profile("sys1", "default_profile")
    assert (after["desired_mem"], after["max_mem"], after["desired_procs"]) == \
        ("768", "1024", "2")


def test_power_button_shutdown_and_activation_with_the_profile(lab):
    lab.rmc("lpar1").run("lpm-disk write /dev/sda --daemon", check=True)
    procs, mem = guest_size(lab)
    assert procs == 1 and mem <= 512  # as the lab brought it up
    written = records(lab)
    refused = cli("chsysstate", "-m", "sys1", "-r", "lpar", "-n", "lpar1", "-o", "on")
    assert refused.returncode != 0 and "HSCLL441" in refused.stderr
    cli("chsysstate", "-m", "sys1", "-r", "lpar", "-n", "lpar1", "-o", "shutdown",
        timeout=120, check=True)
    assert state("sys1") == "Not Activated"
    cli("chsysstate", "-m", "sys1", "-r", "lpar", "-n", "lpar1", "-o", "on", "-f",
        "default_profile", check=True)
    procs, mem = guest_size(lab)
    assert procs == 2 and 600 < mem <= 768  # the profile changed above, not the topology
    assert records(lab) >= written  # the orderly poweroff lost no acknowledged record


def test_os_and_immediate_shutdown(lab):
    cli("chsysstate", "-m", "sys1", "-r", "lpar", "-n", "lpar1", "-o", "osshutdown",
        timeout=120, check=True)
    assert state("sys1") == "Not Activated"
    again = cli("chsysstate", "-m", "sys1", "-r", "lpar", "-n", "lpar1", "-o", "shutdown")
    assert again.returncode != 0 and "HSCLL444" in again.stderr
    cli("chsysstate", "-m", "sys1", "-r", "lpar", "-n", "lpar1", "-o", "on", check=True)
    guest_size(lab)
    cli("chsysstate", "-m", "sys1", "-r", "lpar", "-n", "lpar1", "-o", "shutdown", "--immed",
        check=True)
    assert state("sys1") == "Not Activated"
    cli("chsysstate", "-m", "sys1", "-r", "lpar", "-n", "lpar1", "-o", "on", check=True)
    guest_size(lab)


def test_virtual_terminal_runs_commands_and_is_held_by_one_user(lab):
    guest_size(lab)
    cp = subprocess.run([str(BIN / "mkvterm"), "-m", "sys1", "-p", "lpar1"],
                        input="\necho vterm-$((6*7))\n", capture_output=True, text=True,
                        timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert "vterm-42" in cp.stdout
    holder = subprocess.Popen(["bash", "-c", f"sleep 60 | {BIN / 'mkvterm'} -m sys1 -p lpar1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        import time

        time.sleep(3)
        second = cli("mkvterm", "-m", "sys1", "-p", "lpar1")
        assert second.returncode != 0 and "HSCLL446" in second.stderr
        assert "rmvterm" in second.stderr
        cli("rmvterm", "-m", "sys1", "-p", "lpar1", check=True)
        time.sleep(1)
        third = subprocess.run([str(BIN / "mkvterm"), "-m", "sys1", "-p", "lpar1"],
                               input="\necho again\n", capture_output=True, text=True,
                               timeout=60)
        assert third.returncode == 0 and "again" in third.stdout, third.stderr
    finally:
        holder.kill()
        holder.wait()


def test_inactive_migration_moves_definition_and_profiles(lab):
    cli("chsysstate", "-m", "sys1", "-r", "lpar", "-n", "lpar1", "-o", "shutdown", "--immed",
        check=True)
    cp = cli("migrlpar", "-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1", "-n", "migprof",
             "-i", "dest_lpar_id=7")
    assert cp.returncode == 0, cp.stderr
    assert state("sys1") is None and state("sys2") == "Not Activated"
    out = cli("lssyscfg", "-r", "lpar", "-m", "sys2", "-F", "name,lpar_id,curr_profile",
              check=True).stdout
    assert "lpar1,7,migprof" in out.split()
    # -n with the config policy saved the configuration it moved with as migprof
    assert profile("sys2", "migprof")["desired_mem"] == "768"
    assert profile("sys2", "default_profile")["desired_mem"] == "768"
    cli("chsyscfg", "-r", "prof", "-m", "sys2", "-i",
        "name=migprof,lpar_name=lpar1,min_mem=256,desired_mem=512,min_procs=1,"
        "desired_procs=1", check=True)
    # back, sized by the profile this time
    cp = cli("migrlpar", "-o", "m", "-m", "sys2", "-t", "sys1", "-p", "lpar1", "-n", "migprof",
             "-i", "inactive_prof_policy=prof")
    assert cp.returncode == 0, cp.stderr
    assert state("sys2") is None and state("sys1") == "Not Activated"
    cli("chsysstate", "-m", "sys1", "-r", "lpar", "-n", "lpar1", "-o", "on", check=True)
    procs, mem = guest_size(lab)
    assert procs == 1 and mem <= 512
    written = records(lab)
    assert written > 0


def test_active_migration_saves_the_current_configuration_as_the_n_profile(lab):
    guest_size(lab)
    cp = cli("migrlpar", "-o", "m", "-m", "sys1", "-t", "sys2", "-p", "lpar1", "-n", "afterlpm")
    assert cp.returncode == 0, cp.stderr
    prof = profile("sys2", "afterlpm")
    assert (prof["desired_mem"], prof["desired_procs"]) == ("512", "1")
    out = cli("lssyscfg", "-r", "lpar", "-m", "sys2", "-F", "name,curr_profile",
              check=True).stdout
    assert "lpar1,afterlpm" in out.split()
    # every profile moved with it
    names = cli("lssyscfg", "-r", "prof", "-m", "sys2", "-F", "name", check=True).stdout.split()
    assert sorted(names) == ["afterlpm", "default_profile", "migprof"]
