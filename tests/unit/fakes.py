"""Fakes shared by the unit tests of the HMC commands (at the lab boundary only)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from lpmlab.adapter.connection import DomainInfo
from lpmlab.fabric.plan import LabPlan
from lpmlab.hmc.system import Hmc


class FakeFrames:
    """The part of Hmc every command uses first: the plan and the HMC's managed systems
    (the real lookup: names, TYPE-MODEL*SERIAL, HSCL8011)."""

    frames = Hmc.frames
    manages = Hmc.manages
    vios_plans = Hmc.vios_plans
    frame_name = Hmc.frame_name
    require_frame = Hmc.require_frame
    require_connected = Hmc.require_connected
    connected_frame = Hmc.connected_frame
    unseen_frames = Hmc.unseen_frames
    no_connection = Hmc.no_connection
    # frames whose libvirtd does not answer (No Connection): none unless a test says so
    dark: frozenset[str] = frozenset()

    def __init__(self, plan: LabPlan) -> None:
        self.plan = plan
        self.topology = plan.topology
        self.console = plan.console()

    def frame_state(self, frame: str, *, refresh: bool = False) -> str:
        return "No Connection" if frame in self.dark else "Operating"

    def migrations_on(self, frame: str) -> list[Any]:
        return []


class LabHmc(FakeFrames):
    """Hmc over the default topology: every partition defined (running) where the topology
    puts it, every VIOS running; nothing migrating. The lookups are Hmc's own."""

    placements = Hmc.placements
    state = SimpleNamespace(created=1_700_000_000.0, host_uuids={}, qemu_versions={},
                            image={})
    locate = Hmc.locate
    not_found = Hmc.not_found
    domain = Hmc.domain

    def domains_on(self, frame: str) -> list[DomainInfo]:
        return [DomainInfo(p.name, "", "running", True,
                           {"lpar_id": str(p.lpar_id), "lpar_env": "aixlinux"}, False)
                for p in self.topology.partitions_on(frame)]

    def lpar_records(self, frame: str, *, rmc: bool = True) -> list[dict[str, Any]]:
        frame = self.frame_name(frame)
        recs = [{"name": v.name, "lpar_id": v.lpar_id, "lpar_env": "vioserver",
                 "state": "Running", "rmc_ipaddr": str(v.address)}
                for v in self.topology.vios_on(frame)]
        return recs + [{"name": p.name, "lpar_id": p.lpar_id, "lpar_env": "aixlinux",
                        "state": "Running", "rmc_ipaddr": str(p.address)}
                       for p in self.topology.partitions_on(frame)]

    def active_migration(self, partition: str) -> None:
        return None

    def migration_of(self, partition: str) -> None:
        return None

    def close(self) -> None:
        pass
