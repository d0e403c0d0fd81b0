"""The HMC commands: name -> the function that runs one (``main(argv) -> exit status``).

One table for the console scripts, the restricted shell (what it lets a user run) and the
command server (what it runs for the shell). Standard library only: the shell imports it
outside the lab's venv.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

HMC_COMMANDS: dict[str, str] = {
    "lssyscfg": "lpmlab.cli.lssyscfg:main",
    "chsyscfg": "lpmlab.cli.chsyscfg:main",
    "chsysstate": "lpmlab.cli.chsysstate:main",
    "lslparmigr": "lpmlab.cli.lslparmigr:main",
    "migrlpar": "lpmlab.cli.migrlpar:main",
    "mkvterm": "lpmlab.cli.mkvterm:mkvterm",
    "rmvterm": "lpmlab.cli.mkvterm:rmvterm",
    "lsrefcode": "lpmlab.cli.lsrefcode:main",
    "diagrmc": "lpmlab.cli.diagrmc:main",
    "lshmc": "lpmlab.cli.lshmc:main",
    "lssysconn": "lpmlab.cli.lssysconn:main",
    "lshwres": "lpmlab.cli.lshwres:main",
    "mkauthkeys": "lpmlab.cli.mkauthkeys:main",
    "migrpeer": "lpmlab.cli.migrpeer:main",
}

Main = Callable[[Sequence[str]], "int | None"]


def is_hmc_command(name: str) -> bool:
    return name in HMC_COMMANDS


def main_of(name: str) -> Main:
    """The command's main function (imports its module)."""
    module, func = HMC_COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]


def preload() -> None:
    """Import every command's module (the command server does this once, before forking)."""
    for name in HMC_COMMANDS:
        main_of(name)
