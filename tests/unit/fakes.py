"""Fakes shared by the unit tests of the HMC commands (at the lab boundary only)."""

from __future__ import annotations

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

    def __init__(self, plan: LabPlan) -> None:
        self.plan = plan
        self.topology = plan.topology
        self.console = plan.console()
