"""A migration's folder outlives the lab (record, samples, its log as JSON lines, failure
evidence, notes of a stop), is rotated, and is found again by ID or partition; the
controller's structured log stays off stderr unless --debug asks for it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from lpmlab import log
from lpmlab.hmc import artifacts
from lpmlab.hmc.store import MigrationRecord


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LPMLAB_HOME", str(tmp_path))
    monkeypatch.delenv("LPMLAB_DEBUG", raising=False)
    monkeypatch.delenv("LPMLAB_KEEP_MIGRATIONS", raising=False)
    return tmp_path


def record(partition: str = "lpar1", result: str | None = "success", **kw: object
           ) -> MigrationRecord:
    rec = MigrationRecord(partition, "sys1", "sys2", result=result, **kw)  # type: ignore[arg-type]
    rec.stats["job"] = {"downtime": 87}
    return rec


def test_the_folder_holds_the_record_and_samples_and_is_found_again(state: Path) -> None:
    rec = record()
    d = artifacts.save(rec, [{"t": 0.1, "kind": "iteration", "iteration": 1}], hmc="hmc1",
                       render=False)
    assert d == state / "migrations" / rec.id
    assert json.loads((d / "record.json").read_text())["hmc"] == "hmc1"
    assert not (d / "error.txt").exists() and not (d / "console.txt").exists()
    for ref in (rec.id, rec.id[:6], "lpar1"):
        got = artifacts.load(ref)
        assert got is not None
        assert got[0].id == rec.id and got[0].stats["job"]["downtime"] == 87
        assert got[1] == [{"t": 0.1, "kind": "iteration", "iteration": 1}]
    assert artifacts.load("lpar9") is None


def test_a_failure_keeps_the_error_and_the_console_tail() -> None:
    rec = record(result="failed", error="internal error: stream reset")
    rec.stats["hmc_error"] = "HSCLL406 The migration of lpar1 failed ..."
    d = artifacts.save(rec, [], console_tail="[  12.3] ibmveth: link down", render=False)
    told = (d / "error.txt").read_text()
    assert told.startswith("HSCLL406") and "stream reset" in told
    assert "ibmveth" in (d / "console.txt").read_text()


def test_the_newest_partitions_migration_is_the_one_found_by_name() -> None:
    old = record(started=time.time() - 100)
    new = record(started=time.time())
    artifacts.save(old, [], render=False)
    artifacts.save(new, [], render=False)
    got = artifacts.load("lpar1")
    assert got is not None and got[0].id == new.id


def test_only_the_newest_folders_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LPMLAB_KEEP_MIGRATIONS", "3")
    ids = []
    for i in range(5):
        rec = record()
        d = artifacts.save(rec, [], render=False)
        os.utime(d, (1000 + i, 1000 + i))  # the folder's age, oldest first
        ids.append(rec.id)
    artifacts.rotate()
    kept = sorted(p.name for p in artifacts.root().iterdir())
    assert kept == sorted(ids[2:])


def test_a_stop_leaves_a_note() -> None:
    rec = record()
    artifacts.save(rec, [], render=False)
    path = artifacts.note(rec.id, "stop", {"partition": "lpar1"})
    assert path.parent == artifacts.folder(rec.id) and path.name.startswith("stop-")
    assert json.loads(path.read_text()) == {"partition": "lpar1"}


def test_a_migrations_log_goes_to_its_folder_and_stderr_stays_quiet(
        capsys: pytest.CaptureFixture[str]) -> None:
    log.configure()
    rec = record()
    log.bind_migration(rec.id, artifacts.folder(rec.id))
    try:
        rec.phase("validate", seconds=0.4)
        log.get("lpmlab.libvirt").debug("libvirt call", call="migrateToURI3", seconds=2.1)
    finally:
        log.unbind_migration(rec.id)
    log.get("lpmlab.migration").info("after the migration")  # not in its log
    lines = [json.loads(x) for x in (artifacts.folder(rec.id) / "log.jsonl").read_text()
             .splitlines()]
    assert [x["event"] for x in lines] == ["phase", "libvirt call"]
    assert lines[0]["phase"] == "validate" and lines[0]["migration"] == rec.id
    assert lines[1]["level"] == "debug" and lines[1]["call"] == "migrateToURI3"
    assert capsys.readouterr().err == ""  # a successful command is silent, as the HMC's


def test_debug_puts_every_event_on_stderr_without_colour(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    log.configure(verbose=log.debug_wanted(["-o", "m", "--debug"]))
    try:
        log.get("lpmlab.migration").info("phase", phase="transfer")
        err = capsys.readouterr().err
        assert "phase" in err and "transfer" in err and "\x1b" not in err
    finally:
        log.configure()


@pytest.mark.parametrize(("env", "colour"), [({"NO_COLOR": ""}, True), ({"NO_COLOR": "1"}, False),
                                             ({"TERM": "dumb"}, False)])
def test_colour_follows_no_color_and_dumb_terminals(monkeypatch: pytest.MonkeyPatch,
                                                     env: dict[str, str], colour: bool) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert log.colour_wanted(Tty()) is colour


def test_report_reads_a_kept_migration_when_no_lab_is_up(state: Path) -> None:
    import subprocess
    import sys

    samples = json.loads((Path(__file__).parent / "data" / "precopy-demo-64mibs.json")
                         .read_text())["samples"]
    rec = record()
    artifacts.save(rec, samples, render=False)
    assert not (state / "lab").exists()
    cp = subprocess.run([sys.executable, "-c", "from lpmlab.cli.lpmlab import cli; cli()",
                         "report", "lpar1", "--json"], capture_output=True, text=True,
                        env={**os.environ, "LPMLAB_HOME": str(state)}, timeout=120)
    assert cp.returncode == 0, cp.stderr
    doc = json.loads(cp.stdout)
    assert doc["id"] == rec.id and len(doc["samples"]) == len(samples)
    assert [p["iteration"] for p in doc["passes"]] == [1, 2, 3, 4]
    d = artifacts.folder(rec.id)
    assert {"report.json", "report.png", "report.svg"} <= {p.name for p in d.iterdir()}
    assert (d / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
