"""What every partition operation of migrlpar shares: the request, which partitions it names,
one thread per partition, and the outcome with each partition's result or error."""

from __future__ import annotations

import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lpmlab import codes
from lpmlab.errors import LpmlabError
from lpmlab.hmc.attributes import MigrationAttributes
from lpmlab.hmc.hooks import DEFAULT_WAIT_MINUTES
from lpmlab.hmc.precopy import Controls, TelemetryObserver
from lpmlab.hmc.system import Hmc

DEFAULT_DETAIL_LEVEL = 1


@dataclass(frozen=True)
class MigrlparRequest:
    """A partition operation as migrlpar was asked it (syntax already checked)."""

    op: str                                  # m, v, s or r
    system: str                              # -m, a name or TYPE-MODEL*SERIAL
    target: str | None = None                # -t
    names: tuple[str, ...] = ()              # -p
    ids: tuple[str, ...] = ()                # --id
    all: bool = False                        # --all
    attrs: MigrationAttributes = field(default_factory=MigrationAttributes)
    profile: str | None = None               # -n
    overrides: Mapping[str, int] = field(default_factory=dict)
    wait_minutes: int = DEFAULT_WAIT_MINUTES
    detail_level: int = DEFAULT_DETAIL_LEVEL
    controls: Controls = field(default_factory=Controls)
    observer: TelemetryObserver | None = None
    remote_ip: str | None = None             # --ip
    remote_user: str | None = None           # -u
    force: bool = False
    steps: int | None = None                 # --steps 1 (all) / 2 (failed): collect them


@dataclass
class PartitionOutcome:
    """One partition's result (the operation's own: see each operation) or its error."""

    name: str
    error: LpmlabError | None = None
    result: Any = None


@dataclass
class MigrlparOutcome:
    """Every partition's outcome in the order they were named, and the resolved systems."""

    system: str
    target: str | None
    partitions: list[PartitionOutcome]
    started: float
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> list[PartitionOutcome]:
        return [o for o in self.partitions if o.error is not None]

    @property
    def partial(self) -> bool:
        """Some partitions succeeded and some failed (the HMC's exit status 100)."""
        return 0 < len(self.failed) < len(self.partitions)


class PartitionOperation(ABC):
    """Resolve the partitions a request names, act on each in its own thread (with its own
    HMC connections: threads share nothing), and collect every outcome."""

    #: which records' steps ``--steps`` shows: only those this command began or ended
    steps_since_start = False

    def __init__(self, request: MigrlparRequest) -> None:
        self.request = request
        self.system = request.system
        self.target = request.target
        self.remote: tuple[str, str] | None = None
        self.names: list[str] = []

    # -- the partitions ------------------------------------------------------------------
    def resolve(self) -> list[str]:
        """The managed systems by name (``-m``/``-t`` may be TYPE-MODEL*SERIAL), the remote
        HMC (``--ip``), and the partitions named (``--id`` by ID, ``--all`` every one)."""
        req = self.request
        hmc = Hmc.open()
        try:
            self.system = hmc.frame_name(req.system)
            if req.remote_ip and req.op in ("m", "v"):
                from lpmlab.hmc.remote_hmc import resolve
                from lpmlab.topology import HMC_USER

                # the destination is the remote HMC's: it says what -t names
                self.remote = (resolve(hmc.topology, req.remote_ip),
                               req.remote_user or HMC_USER)
            elif req.target:
                self.target = hmc.frame_name(req.target)
            return self._names(hmc)
        finally:
            hmc.close()

    def _names(self, hmc: Hmc) -> list[str]:
        req = self.request
        if not (req.all or req.ids):
            # named: the operation looks them up (-o r must run while -m is No Connection)
            return [n for n in req.names if n]
        recs = [r for r in hmc.lpar_records(self.system, rmc=False)
                if r["lpar_env"] != "vioserver"]
        if req.all:
            return [r["name"] for r in recs]
        if req.ids:
            by_id = {str(r["lpar_id"]): r["name"] for r in recs}
            for i in req.ids:
                if i not in by_id:
                    raise codes.error("HSCL8012", obj=f"with ID {i}", sys=self.system)
            return [by_id[i] for i in req.ids]
        return [n for n in req.names if n]

    def check(self, names: list[str]) -> None:  # noqa: B027 - most operations check nothing
        """Refuse the whole command before any partition is touched."""

    # -- running -------------------------------------------------------------------------
    def execute(self) -> MigrlparOutcome:
        names = self.resolve()
        if not names:
            raise codes.error("HSCL8012", obj="to act on", sys=self.system)
        self.check(names)
        self.names = names
        started = time.time()
        outcomes: dict[str, PartitionOutcome] = {}

        def guarded(name: str) -> None:
            try:
                outcomes[name] = self.one(name)
            except Exception as exc:  # a bug must not lose the other partitions' outcomes
                outcomes[name] = PartitionOutcome(name, LpmlabError(
                    f"internal error while handling {name}: {exc!r}",
                    evidence=traceback.format_exc()))

        threads = [threading.Thread(target=guarded, args=(n,), name=f"migrlpar-{n}")
                   for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        steps = self._steps(started) if self.request.steps else []
        return MigrlparOutcome(self.system, self.target, [outcomes[n] for n in names],
                               started, steps)

    def one(self, name: str) -> PartitionOutcome:
        hmc = Hmc.open()
        try:
            return PartitionOutcome(name, result=self.act(hmc, name))
        except LpmlabError as exc:
            return PartitionOutcome(name, exc)
        finally:
            hmc.close()

    @abstractmethod
    def act(self, hmc: Hmc, name: str) -> Any:
        """The operation on one partition; its result goes into the partition's outcome."""

    def _steps(self, started: float) -> list[dict[str, Any]]:
        """``--steps``: each partition's latest migration record's steps; for an operation
        that starts migrations, only a record this command made or closed (a refused
        validation makes none)."""
        from lpmlab.hmc import steps

        since = started if self.steps_since_start else None
        hmc = Hmc.open()
        try:
            out: list[dict[str, Any]] = []
            for name in self.names:
                latest = hmc.store.latest(name, 1)
                if latest and (since is None
                               or max(latest[0].started, latest[0].ended or 0.0) >= since):
                    out += steps.step_records(latest[0],
                                              failed_only=self.request.steps == 2)
            return out
        finally:
            hmc.close()
