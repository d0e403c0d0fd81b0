"""What the listings say during and after a fault: a frame in No Connection, a migration whose
controller died. The real Hmc and the real commands, with a fake libvirt connection (the
adapter boundary) whose frames can be killed or hung."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from lpmlab.adapter.connection import DomainInfo
from lpmlab.cli import common, lshwres, lslparmigr, lssyscfg, migrlpar
from lpmlab.errors import HypervisorError, LpmlabError
from lpmlab.fabric.plan import LabPlan
from lpmlab.hmc import snapshot, system
from lpmlab.hmc.store import RECOVERY_REQUIRED, MigrationRecord, needs_recovery
from lpmlab.topology import load


class FakeFrames:
    """The frames' libvirt daemons: each answers, is dead (refuses) or hung (never answers)."""

    def __init__(self) -> None:
        self.health: dict[str, str] = {"sys1": "up", "sys2": "up"}
        self.domains: dict[str, list[DomainInfo]] = {"sys1": [lpar("lpar1", "running")],
                                                     "sys2": []}
        self.release = threading.Event()  # lets a hung daemon's callers go at the end

    def connection(self, frame: str, uri: str, *, connect_timeout: float = 10.0) -> Any:
        frames = self

        class Conn:
            def ping(self) -> None:
                if frames.health[frame] == "hung":
                    frames.release.wait()
                if frames.health[frame] != "up":
                    raise HypervisorError(f"{frame}: libvirtd does not answer")

            def lab_domains(self) -> list[DomainInfo]:
                self.ping()
                return list(frames.domains[frame])

            def host_uuid(self) -> str:
                self.ping()
                return f"uuid-of-{frame}"

            @property
            def conn(self) -> Any:
                self.ping()
                return SimpleNamespace(getCapabilities=lambda: "<capabilities/>")

            def lookup(self, name: str) -> None:
                return None  # the snapshot falls back to the topology's sizes

            def close(self) -> None:
                pass

        return Conn()


def lpar(name: str, state: str) -> DomainInfo:
    return DomainInfo(name, f"uuid-{name}", state, True,
                      {"lpar_id": "2", "lpar_env": "aixlinux"}, state == "paused")


@pytest.fixture
def lab(tmp_path, monkeypatch):
    frames = FakeFrames()
    monkeypatch.setattr(system, "FrameConnection", frames.connection)
    hmc = system.Hmc(LabPlan.for_topology(load(), tmp_path),
                     SimpleNamespace(host_uuids={}, image={},
                                     qemu_versions={"sys1": [10, 0, 2], "sys2": [10, 0, 2]}))
    # the RMC probe goes to the partitions' SSH servers: not part of these listings
    monkeypatch.setattr(hmc, "rmc_states", lambda names: {})
    monkeypatch.setattr(system.Hmc, "open",
                        classmethod(lambda cls, lab_dir=None, console=None: hmc))
    yield SimpleNamespace(hmc=hmc, frames=frames)
    frames.release.set()


def run(main: Any, *argv: str, capsys: Any) -> tuple[int, str, str]:
    rc = common.run(main, list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def dead_pid() -> int:
    """The PID of a process that has ended (a killed migrlpar's controller_pid)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def record(hmc: system.Hmc, *, pid: int, state: str = "Migration In Progress",
           **stats: Any) -> MigrationRecord:
    rec = MigrationRecord("lpar1", "sys1", "sys2", state=state, source_msp="vios1",
                          dest_msp="vios2", stats={"controller_pid": pid, **stats})
    hmc.store.save(rec)
    return rec


# -- a managed system in No Connection ---------------------------------------------------------
def test_a_dead_frame_is_listed_in_no_connection_without_its_free_memory(lab, capsys):
    lab.frames.health["sys1"] = "dead"
    rc, out, _err = run(lssyscfg.main, "-r", "sys", "-F", "name,state", capsys=capsys)
    assert rc == 0 and out.splitlines() == ["sys1,No Connection", "sys2,Operating"]
    rc, out, _err = run(lssyscfg.main, "-r", "sys", "--json", capsys=capsys)
    by_name = {r["name"]: r for r in json.loads(out)}
    assert by_name["sys1"]["state"] == "No Connection"
    assert "curr_avail_sys_mem" not in by_name["sys1"]
    assert by_name["sys2"]["curr_avail_sys_mem"] == by_name["sys2"]["installed_sys_mem"]


@pytest.mark.parametrize("main,argv", [
    (lssyscfg.main, ["-r", "lpar", "-m", "sys1"]),
    (lssyscfg.main, ["-r", "lpar", "-m", "sys1", "-F", "name,state"]),
    (lssyscfg.main, ["-r", "prof", "-m", "sys1"]),
    (lslparmigr.main, ["-r", "lpar", "-m", "sys1"]),
    (lslparmigr.main, ["-r", "sys", "-m", "sys1"]),
    (lslparmigr.main, ["-r", "msp", "-m", "sys2", "-t", "sys1"]),
    (lshwres.main, ["-r", "mem", "-m", "sys1", "--level", "sys"]),
])
def test_a_listing_inside_a_dead_frame_is_refused_not_empty(lab, capsys, main, argv):
    lab.frames.health["sys1"] = "dead"
    rc, out, err = run(main, *argv, capsys=capsys)
    assert rc == 9 and out == ""
    first, fix = err.splitlines()[:2]
    assert first.startswith("HSCLL430 Managed system sys1 is in state No Connection")
    assert "'lpmlab lab up'" in fix and "migrlpar -o r -m sys1" in fix and "--force" in fix


def test_the_refusal_names_the_migration_it_left_unfinished(lab, capsys):
    lab.frames.health["sys1"] = "dead"
    rec = record(lab.hmc, pid=dead_pid())
    rc, out, err = run(lssyscfg.main, "-r", "lpar", "-m", "sys1", "--json", capsys=capsys)
    assert rc == 9
    error = json.loads(out)["error"]
    assert error["code"] == "HSCLL430" and error["exit_code"] == 9
    assert f"migration sys1 -> sys2 ({rec.id}) is unfinished" in error["message"]
    assert "'migrlpar -o r -m sys1 -p lpar1 --force'" in error["fix"]


def test_a_hung_daemon_costs_a_bounded_probe(lab, monkeypatch, capsys):
    monkeypatch.setattr(system.Hmc, "FRAME_PROBE_S", 0.2)
    lab.frames.health["sys2"] = "hung"
    t0 = time.monotonic()
    rc, out, _err = run(lssyscfg.main, "-r", "sys", "-F", "name:state", capsys=capsys)
    assert time.monotonic() - t0 < 3
    assert rc == 0 and out.splitlines() == ["sys1:Operating", "sys2:No Connection"]


def test_migrlpar_names_the_dead_frame_and_recovery_still_runs(lab, monkeypatch, capsys):
    # the VIOS namespaces and the mover network are the fabric's: none here
    monkeypatch.setattr(snapshot, "_vios", lambda hmc: {})
    monkeypatch.setattr(snapshot, "_mover_reachable", lambda hmc, src, dst: {})
    lab.frames.health["sys1"] = "dead"
    rc, out, err = run(migrlpar.main, "-o", "v", "-m", "sys1", "-t", "sys2", "-p", "lpar1",
                       capsys=capsys)
    assert rc == 11 and out == "", err
    assert err.startswith("HSCLL502 The managed system sys1 is in state No Connection")
    assert "HSCL8012" not in err  # its partitions are unknown, not missing
    rc, _out, err = run(migrlpar.main, "-o", "s", "-m", "sys1", "-p", "lpar1", capsys=capsys)
    assert rc == 9 and err.startswith("HSCLL430 Managed system sys1")
    # -o r reaches the recovery (which restarts the frame with --force) instead of a refusal
    reached = []
    monkeypatch.setattr("lpmlab.hmc.recovery.recover",
                        lambda hmc, name, source, force: reached.append((name, source, force))
                        or SimpleNamespace(partition=name, frame=source, actions=[],
                                           seconds=0.0))
    rc, _out, err = run(migrlpar.main, "-o", "r", "-m", "sys1", "-p", "lpar1", "--force",
                        capsys=capsys)
    assert reached == [("lpar1", "sys1", True)] and rc == 0, err


def test_a_frame_that_dies_after_the_probe_is_refused_and_stays_unseen(lab):
    hmc = lab.hmc
    assert hmc.frame_state("sys1") == "Operating"
    lab.frames.health["sys1"] = "dead"
    rec = hmc.sys_record(hmc.plan.frame("sys1"))
    assert rec["state"] == "No Connection" and "curr_avail_sys_mem" not in rec
    with pytest.raises(LpmlabError) as exc:
        hmc.domains_on("sys1")
    assert exc.value.code == "HSCLL430" and exc.value.exit_code == 9
    assert hmc.unseen_frames() == ["sys1"]
    assert hmc.placements("lpar1") == []  # what can be seen: the caller asks unseen_frames


def test_a_partition_whose_frame_is_dark_may_be_there(lab, capsys):
    record(lab.hmc, pid=dead_pid())
    lab.frames.health["sys1"] = "dead"
    for main, argv in ((lssyscfg.main, ["-r", "lpar", "-m", "sys2"]),
                       (lslparmigr.main, ["-r", "lpar", "-m", "sys2"])):
        rc, out, err = run(main, *argv, "--filter", "lpar_names=lpar1", capsys=capsys)
        assert rc == 4 and out == ""
        assert err.splitlines()[0] == (
            "HSCL8012 The partition lpar1 was not found on managed system sys2. It may be on "
            "sys1, which is in state No Connection: the HMC cannot see its partitions (bring "
            "it back with 'lpmlab lab up').")
        assert "Evidence:" in err and "lpar1 sys1 -> sys2" in err
    rc, _out, err = run(lssyscfg.main, "-r", "lpar", "-m", "sys2", "--filter", "lpar_ids=2",
                        capsys=capsys)
    assert rc == 4 and "with ID 2" in err and "It may be on sys1" in err


def test_a_partition_missing_everywhere_seen_says_so_plainly(lab, capsys):
    rc, _out, err = run(lslparmigr.main, "-r", "lpar", "-m", "sys2", "--filter",
                        "lpar_names=lpar1", capsys=capsys)
    assert rc == 4
    assert err.splitlines()[0] == ("HSCL8012 The partition lpar1 was not found on managed "
                                   "system sys2. It is on sys1.")


# -- a migration whose controller died -----------------------------------------------------------
def lpar1_rows(capsys: Any) -> dict[str, list[str]]:
    """lpar1's state in each frame's lssyscfg -r lpar -F name,state."""
    out = {}
    for frame in ("sys1", "sys2"):
        rc, text, err = run(lssyscfg.main, "-r", "lpar", "-m", frame, "-F", "name,state",
                            capsys=capsys)
        assert rc == 0, err
        out[frame] = [line.split(",", 1)[1] for line in text.splitlines()
                      if line.startswith("lpar1,")]
    return out


def interrupted(lab: Any) -> MigrationRecord:
    """The source copy runs, the destination's incoming copy is paused (libvirt)."""
    lab.frames.domains["sys2"] = [lpar("lpar1", "paused")]
    return record(lab.hmc, pid=dead_pid())


def test_a_killed_controller_shows_migrating_on_both_frames_never_running_twice(lab, capsys):
    interrupted(lab)
    assert lpar1_rows(capsys) == {"sys1": ["Migrating - Running"],
                                  "sys2": ["Migrating - Running"]}
    for frame in ("sys1", "sys2"):
        rc, out, _err = run(lslparmigr.main, "-r", "lpar", "-m", frame, "-F",
                            "name,migration_state,source_sys_name,dest_sys_name",
                            capsys=capsys)
        assert rc == 0 and out.splitlines() == [f"lpar1,{RECOVERY_REQUIRED},sys1,sys2"]
        rc, out, _err = run(lslparmigr.main, "-r", "sys", "-m", frame, "-F",
                            "num_active_migrations_in_progress", capsys=capsys)
        assert out.strip() == "1"
    rc, out, _err = run(lssyscfg.main, "-r", "sys", "--json", capsys=capsys)
    assert [r["num_active_migrations_in_progress"] for r in json.loads(out)] == [1, 1]
    rc, out, _err = run(lssyscfg.main, "-r", "lpar", "-m", "sys2", "--json", capsys=capsys)
    assert [r["state"] for r in json.loads(out) if r["name"] == "lpar1"] == \
        ["Migrating - Running"]


def test_a_live_migration_keeps_its_own_state(lab, capsys):
    lab.frames.domains["sys2"] = [lpar("lpar1", "paused")]
    record(lab.hmc, pid=os.getpid())
    rc, out, _err = run(lslparmigr.main, "-r", "lpar", "-m", "sys1", "-F",
                        "migration_state", capsys=capsys)
    assert out.strip() == "Migration In Progress"
    assert lpar1_rows(capsys)["sys2"] == ["Migrating - Running"]


def test_after_recovery_one_copy_runs_and_nothing_migrates(lab, capsys):
    rec = interrupted(lab)
    # what migrlpar -o r leaves: the incoming copy removed, the record closed
    lab.frames.domains["sys2"] = []
    rec.state, rec.stats["recovered"] = "Migration Recovered", True
    lab.hmc.store.save(rec)
    assert lpar1_rows(capsys) == {"sys1": ["Running"], "sys2": []}
    rc, out, _err = run(lslparmigr.main, "-r", "lpar", "-m", "sys1", "-F",
                        "name,migration_state", capsys=capsys)
    assert out.splitlines() == ["lpar1,Not Migrating"]
    rc, out, _err = run(lssyscfg.main, "-r", "sys", "-F", "num_active_migrations_in_progress",
                        capsys=capsys)
    assert out.split() == ["0", "0"]


@pytest.mark.parametrize("state,stats,needed", [
    ("Migration In Progress", {"controller_pid": "DEAD"}, True),
    ("Migration Starting", {"controller_pid": "DEAD"}, True),
    ("Migration In Progress", {"controller_pid": "SELF"}, False),
    ("Migration Failed", {"hmc_error": "HSCLL414 The migration of ..."}, True),
    ("Migration Failed", {"postcopy_failed": {"sys1": "x", "sys2": "y"}}, True),
    ("Migration Failed", {"hmc_error": "HSCLL406 The migration ... stayed"}, False),
    ("Migration Failed", {"hmc_error": "HSCLL414 ...", "recovered": True}, False),
    ("Migration Complete", {"controller_pid": "DEAD"}, False),
])
def test_which_records_wait_for_recovery(state, stats, needed):
    pids = {"DEAD": dead_pid(), "SELF": os.getpid()}
    stats = {k: pids.get(v, v) if isinstance(v, str) else v for k, v in stats.items()}
    assert needs_recovery(MigrationRecord("lpar1", "sys1", "sys2", state=state,
                                          stats=stats)) is needed
