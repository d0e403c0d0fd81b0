"""pytest plugin: test migration-aware scripts against real live migrations.

Registered through the ``pytest11`` entry point, so installing lpmlab is enough. Fixtures
(each overridable by defining one of the same name in a conftest.py, the way
pytest-testinfra's are):

- ``lpmlab_topology``: the topology file of the lab (None: the built-in default).
- ``lpmlab_lab`` (session): the running lab, brought up if needed (``--lpmlab-reuse`` takes a
  running one as it is), taken down afterwards unless ``--lpmlab-keep``, or
  ``--lpmlab-keep-on-failure`` and a test failed.
- ``lpmlab_hmc`` (session): an HMC client running the real commands (``migrlpar``,
  ``lssyscfg``...).
- ``lpmlab_partition_name``, ``lpmlab_hooks``, ``lpmlab_files``: which partition a test gets
  and what is installed in it (hooks: name -> script text, put in /etc/drmgr.d/pmig/).
- ``lpmlab_partition``: that partition, healed first whatever the last test left (an
  interrupted migration recovered, a shut-off partition activated, and with
  ``--lpmlab-home``, the default, migrated back to its home frame; its disk writer
  restarted; see lpmlab.pytest_heal), running and answering, with the hooks and files
  installed (and removed afterwards).
- ``lpmlab_migrate``: ``lpmlab_migrate(dest=None, **options)`` -> ``MigrationOutcome``
  (phases, each hook's output and exit code, timings, bytes, final frame).
  ``lpmlab_migrate(fault="mover-link-cut", when="pass:2")`` arms a fault (``lpmlab fault``)
  for that migration; the outcome also says what the fault did, where the partition was
  right after, and how the lab was brought back (faults cleared, ``migrlpar -o r``).

The short names ``hmc``, ``mobile_partition`` and ``migrate`` are aliases of the last three.

docs/pytest-plugin.md has the reference and docs/examples/ a complete example.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lpmlab.hmc.hooks import HookRun
from lpmlab.hmc.store import MigrationRecord

BIN = Path(sys.executable).parent
HOOK_DIR = "/etc/drmgr.d/pmig"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lpmlab", "lpmlab live partition mobility lab")
    group.addoption("--lpmlab-reuse", action="store_true",
                    help="use the lab already running on this host as it is")
    group.addoption("--lpmlab-keep", action="store_true",
                    help="leave the lab running after the session")
    group.addoption("--lpmlab-keep-on-failure", action="store_true",
                    help="leave the lab running when a test failed (to debug it)")
    group.addoption("--lpmlab-topology", default=None,
                    help="topology file of the lab (default: the built-in one)")
    group.addoption("--lpmlab-home", action="store_true", default=True,
                    help="before each test, migrate the partition back to its home frame "
                         "(the default)")
    group.addoption("--lpmlab-no-home", dest="lpmlab_home", action="store_false",
                    help="leave the partition on whichever frame the last test left it")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lpmlab: the test uses the lpmlab lab (root, QEMU)")


# -- the HMC client ------------------------------------------------------------------------

@dataclass
class MigrationOutcome:
    """What one ``migrlpar -o m`` did, as a test wants to assert it."""

    partition: str
    source: str
    dest: str
    returncode: int
    stderr: str
    record: MigrationRecord | None
    frame: str | None  # where the partition is defined afterwards
    wall_s: float
    samples: list[dict[str, Any]] = field(default_factory=list)  # pre-copy telemetry
    # with a fault: its ledger entry, the copies right after, what brought the lab back
    fault: dict[str, Any] | None = None
    copies: list[tuple[str, str]] = field(default_factory=list)  # (frame, libvirt state)
    recovery: list[str] = field(default_factory=list)
    recovery_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def code(self) -> str | None:
        """The HSCL code of the failure, if any."""
        first = self.stderr.strip().split(None, 1)
        return first[0] if first and first[0].startswith("HSCL") else None

    @property
    def state(self) -> str | None:
        return self.record.state if self.record else None

    @property
    def phases(self) -> list[str]:
        return [p["phase"] for p in self.record.phases] if self.record else []

    @property
    def hooks(self) -> dict[str, list[HookRun]]:
        """phase -> the hooks that ran in it (name, rc, seconds, stdout, stderr, timed_out)."""
        out: dict[str, list[HookRun]] = {}
        for ph in (self.record.stats.get("hooks", []) if self.record else []):
            out[ph["phase"]] = [HookRun(**h) for h in ph["hooks"]]
        return out

    def hook_phase_seconds(self) -> dict[str, float]:
        return {ph["phase"]: ph["seconds"]
                for ph in (self.record.stats.get("hooks", []) if self.record else [])}

    @property
    def job(self) -> dict[str, Any]:
        return self.record.stats.get("job", {}) if self.record else {}

    @property
    def bytes_sent(self) -> int:
        return int(self.job.get("data_processed", 0))

    @property
    def precopy(self) -> dict[str, Any]:
        """The telemetry summary: iterations, downtime_ms, bytes_sent, max_throttle_pct..."""
        return self.record.stats.get("precopy", {}) if self.record else {}

    @property
    def convergence_warning(self) -> str | None:
        tele = self.record.stats.get("telemetry", {}) if self.record else {}
        return tele.get("convergence_warning")

    @property
    def downtime_ms(self) -> int | None:
        return self.job.get("downtime")


@dataclass
class RunningMigration:
    """A ``migrlpar -o m`` under way (``hmc.start_migration``): stop it or wait for it."""

    hmc: Hmc
    proc: subprocess.Popen
    partition: str
    source: str
    dest: str
    started: float
    t0: float = field(default_factory=time.monotonic)

    def wait_transferring(self, timeout: float = 60.0) -> None:
        """Until lslparmigr shows the transfer under way."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.hmc.migration_state(self.source, self.partition)
            if state == "Migration In Progress":
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"migrlpar ended before the transfer started: "
                                     f"{self.proc.stderr.read() if self.proc.stderr else ''}")
            time.sleep(0.1)
        last = self.hmc.migration_state(self.source, self.partition)
        raise AssertionError(f"the migration of {self.partition} did not reach "
                             f"'Migration In Progress' within {timeout:.0f} s (last state "
                             f"{last})")

    def stop(self) -> subprocess.CompletedProcess:
        return self.hmc.run("migrlpar", "-o", "s", "-m", self.source, "-p", self.partition)

    def wait(self, timeout: float = 600.0) -> MigrationOutcome:
        _, err = self.proc.communicate(timeout=timeout)
        return self.hmc.outcome(self.partition, self.source, self.dest, self.proc.returncode,
                                err, self.started, time.monotonic() - self.t0)


class Hmc:
    """The lab's HMC, driven through its real commands, as an administrator's script would."""

    def run(self, *argv: str, timeout: float = 900, check: bool = False
            ) -> subprocess.CompletedProcess:
        cp = subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                            timeout=timeout)
        if check and cp.returncode != 0:
            raise AssertionError(f"{shlex.join(argv)} exited {cp.returncode}:\n{cp.stderr}")
        return cp

    def fault(self, name: str, *args: str, when: str = "now", partition: str | None = None,
              **options: str | float) -> dict[str, Any]:
        """``lpmlab fault NAME ARGS --when WHEN``: its ledger entry (``options`` become
        ``--vios``, ``--side``, ``--for`` ... flags)."""
        argv = ["lpmlab", "fault", name, *args, "--when", when, "--json"]
        if partition:
            argv += ["-p", partition]
        for key, value in options.items():
            argv += [f"--{key.rstrip('_').replace('_', '-')}", str(value)]
        return json.loads(self.run(*argv, check=True).stdout)[0]

    def fault_entry(self, fid: str) -> dict[str, Any] | None:
        from lpmlab.fabric.faults import Ledger
        from lpmlab.paths import lab_dir

        return next((asdict(e) for e in Ledger(lab_dir()).entries() if e.id == fid), None)

    def clear_faults(self) -> subprocess.CompletedProcess:
        return self.run("lpmlab", "fault", "clear", check=True)

    def copies(self, partition: str) -> list[tuple[str, str]]:
        from lpmlab.hmc.system import Hmc as Controller

        c = Controller.open()
        try:
            return [(p.frame, p.info.state) for p in c.placements(partition)]
        finally:
            c.close()

    def where(self, partition: str) -> list[str]:
        """Every frame the partition is defined on (exactly one, when all is well)."""
        from lpmlab.hmc.system import Hmc as Controller

        c = Controller.open()
        try:
            return [p.frame for p in c.placements(partition)]
        finally:
            c.close()

    def migration_state(self, frame: str, partition: str) -> str | None:
        cp = self.run("lslparmigr", "-r", "lpar", "-m", frame, "--filter",
                      f"lpar_names={partition}", "-F", "migration_state")
        return cp.stdout.strip() or None

    def latest_record(self, partition: str, since: float) -> MigrationRecord | None:
        return self._latest(partition, since)[0]

    def _latest(self, partition: str, since: float
                ) -> tuple[MigrationRecord | None, list[dict[str, Any]]]:
        """The partition's migration record since ``since`` and its telemetry samples."""
        from lpmlab.hmc.system import Hmc as Controller

        c = Controller.open()
        try:
            recs = [r for r in c.store.latest(partition, 5) if r.started >= since - 1]
            return (recs[0], c.store.samples(recs[0].id)) if recs else (None, [])
        finally:
            c.close()

    def outcome(self, partition: str, source: str, dest: str, rc: int, stderr: str,
                started: float, wall_s: float) -> MigrationOutcome:
        where = self.where(partition)
        rec, samples = self._latest(partition, started)
        return MigrationOutcome(partition, source, dest, rc, stderr, rec,
                                where[0] if len(where) == 1 else None, wall_s, samples)

    def _argv(self, partition: str, source: str, dest: str, attrs: str | None,
              wait_minutes: int | None, extra: tuple[str, ...]) -> list[str]:
        # no live progress: the outcome carries the samples
        argv = ["migrlpar", "-o", "m", "-m", source, "-t", dest, "-p", partition, "--noprogress"]
        if attrs:
            argv += ["-i", attrs]
        if wait_minutes is not None:
            argv += ["-w", str(wait_minutes)]
        return [*argv, *extra]

    def migrate(self, partition: str, dest: str | None = None, *, attrs: str | None = None,
                wait_minutes: int | None = None, extra: tuple[str, ...] = (),
                fault: str | None = None, when: str = "transferring",
                fault_args: tuple[str, ...] = (), fault_options: dict[str, Any] | None = None
                ) -> MigrationOutcome:
        """``migrlpar -o m`` of ``partition`` from where it is to ``dest`` (default: the
        other frame of a two-frame lab); with ``fault``, that fault armed for ``when``."""
        source, dest = self._route(partition, dest)
        entry = (self.fault(fault, *fault_args, when=when, partition=partition,
                            **(fault_options or {})) if fault else None)
        started, t0 = time.time(), time.monotonic()
        cp = self.run(*self._argv(partition, source, dest, attrs, wait_minutes, extra))
        out = self.outcome(partition, source, dest, cp.returncode, cp.stderr, started,
                           time.monotonic() - t0)
        if entry is not None:
            out.fault = self.fault_entry(entry["id"])
            out.copies = self.copies(partition)
        return out

    def start_migration(self, partition: str, dest: str | None = None, *,
                        attrs: str | None = None, wait_minutes: int | None = None,
                        extra: tuple[str, ...] = ()) -> RunningMigration:
        source, dest = self._route(partition, dest)
        argv = self._argv(partition, source, dest, attrs, wait_minutes, extra)
        proc = subprocess.Popen([str(BIN / argv[0]), *argv[1:]], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        return RunningMigration(self, proc, partition, source, dest, time.time())

    def _route(self, partition: str, dest: str | None) -> tuple[str, str]:
        where = self.where(partition)
        if len(where) != 1:
            raise AssertionError(f"{partition} is defined on {where or 'no frame'}, not in "
                                 "exactly one place")
        source = where[0]
        if dest is None:
            frames = self.run("lssyscfg", "-r", "sys", "-F", "name", check=True).stdout.split()
            others = [f for f in frames if f != source]
            if len(others) != 1:
                raise AssertionError(f"name the destination: frames {frames}")
            dest = others[0]
        return source, dest


# -- the partition -------------------------------------------------------------------------

@dataclass
class MobilePartition:
    """A running partition with the test's hooks and files installed."""

    name: str
    lab: Any
    hmc: Hmc
    installed: list[str] = field(default_factory=list)

    @property
    def frame(self) -> str:
        where = self.hmc.where(self.name)
        assert len(where) == 1, f"{self.name} is defined on {where}"
        return where[0]

    def run(self, command: str, timeout: float = 60, check: bool = False) -> Any:
        """A command in the partition's OS (over the RMC channel): rc, stdout, stderr."""
        ch = self.lab.rmc(self.name)
        try:
            return ch.run(command, timeout=timeout, check=check)
        finally:
            ch.close()

    def push(self, path: str, content: str | bytes, mode: int = 0o644) -> None:
        """Write ``content`` to ``path`` in the partition (parents created)."""
        push_files(self.lab, self.name, {path: (content, mode)})
        self.installed.append(path)

    def wait_ready(self, timeout: float = 180) -> None:
        ch = self.lab.rmc(self.name)
        try:
            ch.wait_ready(timeout, evidence=lambda: self.lab.console_tail(self.name))
        finally:
            ch.close()


def push_files(lab: Any, partition: str, files: dict[str, tuple[str | bytes, int]]) -> None:
    """Install files in a running partition over its RMC channel (one connection)."""
    from lpmlab.rmc.files import push_files as push

    ch = lab.rmc(partition)
    try:
        push(ch, files)
    finally:
        ch.close()


# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def lpmlab_topology(request: pytest.FixtureRequest) -> str | None:
    """The topology file the lab is built from; override to use your own."""
    return request.config.getoption("--lpmlab-topology")


@dataclass
class LabHandle:
    """The session's lab; ``ensure_up()`` brings it (back) up when it is not running."""

    topology: str | None
    reuse: bool
    brought_up: bool = False

    def ensure_up(self) -> Any:
        from lpmlab.errors import LabNotRunningError
        from lpmlab.fabric.lab import Lab, load_state

        try:
            plan, _ = load_state()
            wanted = None
            if self.topology:
                from lpmlab import topology

                wanted = topology.load(self.topology).name
            if self.reuse or wanted in (None, plan.topology.name):
                return Lab(plan)
        except LabNotRunningError:
            pass
        argv = [str(BIN / "lpmlab"), "lab", "up", *(["-t", self.topology] if self.topology
                                                      else [])]
        if not self.reuse:
            subprocess.run([str(BIN / "lpmlab"), "lab", "down"], capture_output=True)
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        if cp.returncode != 0:
            pytest.fail(f"lpmlab lab up failed:\n{cp.stderr[-4000:]}", pytrace=False)
        self.brought_up = True
        plan, _ = load_state()
        return Lab(plan)


@pytest.fixture(scope="session")
def lpmlab_lab(request: pytest.FixtureRequest, lpmlab_topology: str | None
               ) -> Iterator[LabHandle]:
    import os

    if os.geteuid() != 0:
        pytest.skip("the lpmlab lab needs root (namespaces, libvirtd, tgtd)")
    handle = LabHandle(lpmlab_topology, request.config.getoption("--lpmlab-reuse"))
    handle.ensure_up()
    yield handle
    keep = request.config.getoption("--lpmlab-keep") or (
        request.config.getoption("--lpmlab-keep-on-failure")
        and request.session.testsfailed > 0)
    if handle.brought_up and not keep:
        subprocess.run([str(BIN / "lpmlab"), "lab", "down"], capture_output=True)


@pytest.fixture(scope="session")
def lpmlab_hmc(lpmlab_lab: LabHandle) -> Hmc:
    return Hmc()


@pytest.fixture(scope="session")
def hmc(lpmlab_hmc: Hmc) -> Hmc:
    """Alias of ``lpmlab_hmc``."""
    return lpmlab_hmc


@pytest.fixture
def lpmlab_partition_name() -> str:
    """The partition a test migrates; override to pick another one of your topology."""
    return "lpar1"


@pytest.fixture
def lpmlab_hooks() -> dict[str, str]:
    """Hooks to install: file name in /etc/drmgr.d/pmig -> script text. Override it."""
    return {}


@pytest.fixture
def lpmlab_files() -> dict[str, str | bytes]:
    """Other files to install: absolute path in the partition -> content. Override it."""
    return {}


@pytest.fixture
def lpmlab_partition(request: pytest.FixtureRequest, lpmlab_lab: LabHandle, lpmlab_hmc: Hmc,
                     lpmlab_partition_name: str, lpmlab_hooks: dict[str, str],
                     lpmlab_files: dict[str, str | bytes]) -> Iterator[MobilePartition]:
    from lpmlab.pytest_heal import CannotHeal, Healer

    hmc = lpmlab_hmc
    lab = lpmlab_lab.ensure_up()
    part = MobilePartition(lpmlab_partition_name, lab, hmc)
    healer = Healer(hmc.run, lab, part.name, go_home=request.config.getoption("lpmlab_home"))
    try:
        actions = healer.heal()
    except CannotHeal as exc:
        pytest.fail(str(exc), pytrace=False)
    if actions:
        request.node.add_report_section("setup", "lpmlab", f"healed {part.name} in "
                                        f"{healer.seconds:.1f} s: " + "; ".join(actions))
    # a test starts from an empty hook directory: hooks of an earlier test do not leak in
    part.run(f"rm -rf {HOOK_DIR}; mkdir -p {HOOK_DIR}", check=True)
    files: dict[str, tuple[str | bytes, int]] = {
        f"{HOOK_DIR}/{name}": (text, 0o755) for name, text in lpmlab_hooks.items()}
    files.update({path: (content, 0o644) for path, content in lpmlab_files.items()})
    if files:
        push_files(lab, part.name, files)
        part.installed.extend(files)
    yield part
    from lpmlab.errors import LpmlabError

    if len(hmc.where(part.name)) == 1:
        # a test that left it without an answering OS leaves it to the next test's healing
        with contextlib.suppress(LpmlabError):
            part.run(f"rm -rf {HOOK_DIR}; mkdir -p {HOOK_DIR}")


@pytest.fixture
def mobile_partition(lpmlab_partition: MobilePartition) -> MobilePartition:
    """Alias of ``lpmlab_partition``."""
    return lpmlab_partition


@pytest.fixture
def lpmlab_migrate(lpmlab_partition: MobilePartition, lpmlab_hmc: Hmc
                   ) -> Callable[..., MigrationOutcome]:
    """``lpmlab_migrate(dest=None, attrs=None, wait_minutes=None, fault=None,
    when="transferring")`` the test's partition. After a fault the lab is brought back the
    way an administrator would (faults cleared, ``migrlpar -o r``, ``--force`` only where
    the error asks for it) so the test can go on; the outcome says what that took."""
    from lpmlab.pytest_heal import CannotHeal, Healer

    def _migrate(dest: str | None = None, **kw: Any) -> MigrationOutcome:
        out = lpmlab_hmc.migrate(lpmlab_partition.name, dest, **kw)
        if kw.get("fault"):
            healer = Healer(lpmlab_hmc.run, lpmlab_partition.lab, lpmlab_partition.name,
                            go_home=False)
            try:
                out.recovery = healer.heal()
            except CannotHeal as exc:
                pytest.fail(f"after fault {kw['fault']}: {exc}", pytrace=False)
            out.recovery_s = healer.seconds
        return out
    return _migrate


@pytest.fixture
def migrate(lpmlab_migrate: Callable[..., MigrationOutcome]) -> Callable[..., MigrationOutcome]:
    """Alias of ``lpmlab_migrate``."""
    return lpmlab_migrate
