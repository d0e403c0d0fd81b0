"""Fakes shared by the unit tests of the HMC commands (at the lab boundary only)."""

from __future__ import annotations

from typing import Any

from lpmlab.errors import NotFoundError
from lpmlab.fabric.plan import LabPlan


class FakeFrames:
    """The part of Hmc every command uses first: the plan and frame lookup (HSCL8011)."""

    def __init__(self, plan: LabPlan) -> None:
        self.plan = plan
        self.topology = plan.topology

    def require_frame(self, name: str | None) -> Any:
        try:
            return self.plan.frame(name or "")
        except KeyError:
            raise NotFoundError(f"The managed system {name} was not found.",
                                code="HSCL8011") from None
