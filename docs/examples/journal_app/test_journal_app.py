"""Testing a migration-aware service against real live partition migrations.

Run from the repository (the lpmlab pytest plugin is registered when lpmlab is installed):

    .venv/bin/python -m pytest -q docs/examples/journal_app            # its own lab
    .venv/bin/python -m pytest -q --lpmlab-reuse docs/examples/journal_app  # a running one
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lpmlab.pytest_plugin import Hmc, LabHandle, MigrationOutcome, MobilePartition

pytestmark = pytest.mark.lpmlab  # needs the lab (root, QEMU): the plugin registers the mark

Migrate = Callable[..., MigrationOutcome]
HERE = Path(__file__).parent


@pytest.fixture
def lpmlab_hooks() -> dict[str, str]:
    return {"50-journal": (HERE / "hooks" / "50-journal").read_text()}


@pytest.fixture
def lpmlab_files() -> dict[str, str]:
    return {"/usr/local/bin/journald.sh": (HERE / "journald.sh").read_text()}


@pytest.fixture
def journal(mobile_partition: MobilePartition) -> Iterator[MobilePartition]:
    """The service running in the partition; stopped afterwards."""
    p = mobile_partition
    p.run("rm -rf /var/lib/journal /run/journal; chmod 755 /usr/local/bin/journald.sh; "
          "(setsid /usr/local/bin/journald.sh >/dev/null 2>&1 &)", check=True)
    time.sleep(1)
    yield p
    # the partition's busybox has no pkill; the service leaves its PID
    p.run("kill $(cat /run/journal/pid) && rm -rf /run/journal", check=True)


def lines(p: MobilePartition) -> list[tuple[int, int]]:
    out = p.run("cat /var/lib/journal/journal", check=True).stdout.split("\n")
    return [(int(ln.split()[0]), int(ln.split("gen=")[1])) for ln in out if ln.strip()]


def test_the_service_pauses_moves_and_registers_again(journal: MobilePartition,
                                                      migrate: Migrate) -> None:
    out = migrate()
    assert out.ok, out.stderr
    assert out.frame == out.dest
    assert "journal service ready to move" in out.hooks["check"][0].stdout
    assert out.hooks["pre"][0].stdout.startswith("paused at line")
    assert "registered as generation 2" in out.hooks["post"][0].stdout
    time.sleep(1)
    seen = lines(journal)
    numbers = [n for n, _ in seen]
    assert numbers == list(range(1, len(numbers) + 1)), "the journal lost or repeated lines"
    assert seen[-1][1] == 2, "lines written after the move carry the new registration"


def test_an_unhealthy_service_refuses_the_migration(journal: MobilePartition,
                                                    migrate: Migrate) -> None:
    home = journal.frame
    journal.run("echo 'disk quota exceeded' > /run/journal/broken", check=True)
    out = migrate()
    assert not out.ok and out.code == "HSCLL450"
    assert "journal service is unhealthy: disk quota exceeded" in out.stderr
    assert out.frame == home
    assert [h.hook for h in out.hooks["undocheck"]] == ["50-journal"]
    assert "pre" not in out.hooks
    assert journal.run("cat /run/journal/state").stdout.strip() == "running"


def test_a_stopped_migration_still_resumes_the_service(journal: MobilePartition, hmc: Hmc,
                                                       lpmlab_lab: LabHandle) -> None:
    lab = lpmlab_lab.ensure_up()
    home = journal.frame
    msp = next(v for v in lab.plan.all_vios() if v.vios.frame == home).mover_service()
    journal.run("lpm-dirty --rate 400 --wss 200 --daemon", check=True)
    msp.limit_bandwidth(40)  # cannot converge: there is time to stop it
    try:
        running = hmc.start_migration(journal.name)
        running.wait_transferring()
        assert running.stop().returncode == 0
        out = running.wait()
    finally:
        msp.limit_bandwidth(None)
        journal.run("killall lpm-dirty")
    assert out.code == "HSCLL408" and out.frame == home
    assert "registered as generation 2" in out.hooks["post"][0].stdout
    assert journal.run("cat /run/journal/state").stdout.strip() == "running"


# -- under faults (lpmlab fault): what the service does when the migration fails -----------

@pytest.mark.parametrize("fault,when,code", [
    # the mover link cut as the stream starts: nothing moves, the HMC gives up by itself
    ("mover-link-cut", "transferring", "HSCLL455"),
    # the destination's QEMU killed in the second pre-copy pass
    ("dest-qemu-killed", "pass:2", "HSCLL406"),
])
def test_a_failed_transfer_resumes_the_service_where_it_ran(journal: MobilePartition,
                                                            migrate: Migrate, fault: str,
                                                            when: str, code: str) -> None:
    home = journal.frame
    out = migrate(fault=fault, when=when, extra=("--stall-timeout", "8"))
    assert not out.ok and out.code == code, out.stderr
    assert out.fault is not None and out.fault["detail"].endswith(f"at {when}")
    # the partition never left: one copy, still running on the source frame
    assert out.copies == [(home, "running")] and out.frame == home
    # the pre hook paused the service; the post hook, run on the source after the failure,
    # resumed it under a new registration
    assert out.hooks["pre"][0].stdout.startswith("paused at line")
    assert "registered as generation 2" in out.hooks["post"][0].stdout
    assert journal.run("cat /run/journal/state").stdout.strip() == "running"
    time.sleep(1)
    numbers = [n for n, _ in lines(journal)]
    assert numbers == list(range(1, len(numbers) + 1)), "the journal lost or repeated lines"
    # and the lab was put back for the next migration: the same move now succeeds (and back)
    assert migrate().ok and migrate().ok
