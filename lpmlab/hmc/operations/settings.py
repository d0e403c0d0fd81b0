"""``migrlpar -o set``: a system's inactive profile policy, an MSP's migration settings.
Every value is checked before anything is written: an error changes nothing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from lpmlab.hmc import msp_settings
from lpmlab.hmc.attributes import MigrationAttributes
from lpmlab.hmc.system import Hmc


@dataclass
class SettingsOutcome:
    """What was set: managed system or MSP name -> its settings now."""

    resource: Literal["sys", "lpar"]
    settings: dict[str, dict[str, Any]]


class SetSettings:
    """``-o set -r sys [-m SYS]`` (every managed system without ``-m``) or
    ``-o set -r lpar -m SYS {-p VIOS | --id N}``."""

    def __init__(self, resource: Literal["sys", "lpar"], system: str | None,
                 attrs: MigrationAttributes, *, name: str | None = None,
                 lpar_id: int | None = None) -> None:
        self.resource, self.system, self.attrs = resource, system, attrs
        self.name, self.lpar_id = name, lpar_id

    def execute(self) -> SettingsOutcome:
        hmc = Hmc.open()
        try:
            if self.resource == "sys":
                # -m "" names no system (frame_name says so): it is not "every system"
                frames = ([hmc.require_frame(self.system).frame.name]
                          if self.system is not None
                          else [fp.frame.name for fp in hmc.frames()])
                msp_settings.set_sys(hmc.plan, frames, self.attrs)
                return SettingsOutcome("sys", {f: {"inactive_prof_policy": msp_settings
                                                   .inactive_prof_policy(hmc.plan.dir, f)}
                                               for f in frames})
            frame = hmc.frame_name(self.system)
            vios = msp_settings.vios_named(hmc.plan, frame, self.name, self.lpar_id)
            now = msp_settings.set_msp(hmc.plan, frame, self.attrs, name=vios.name)
            return SettingsOutcome("lpar", {vios.name: asdict(now)})
        finally:
            hmc.close()
