"""The one exception root of lpmlab.

Library code raises these; only the command layer turns them into a message and an exit code.
Every error names the object it is about and, where there is one, the fix. A class's ``code``
is its family's generic code; a specific code is raised through the registry
(``lpmlab.codes.error``), which picks the class, so the exit code follows the code.
"""

from __future__ import annotations

from typing import Any


class LpmlabError(Exception):
    """Root of every lpmlab error. ``code`` is HSCL-style, ``exit_code`` what a command returns."""

    code: str = "LPM0001"
    exit_code: int = 1

    def __init__(self, message: str, *, fix: str | None = None, code: str | None = None,
                 evidence: str | None = None,
                 findings: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.evidence = evidence
        # the evidence as records, for --json (e.g. every finding of a refused validation)
        self.findings = list(findings or [])
        if code is not None:
            self.code = code

    def render(self) -> str:
        """The text a user sees: code, message, fix, then any evidence."""
        lines = [f"{self.code} {self.message}"]
        if self.fix:
            lines.append(f"Fix: {self.fix}")
        if self.evidence:
            lines.append("Evidence:")
            lines.extend("  " + line for line in self.evidence.rstrip().splitlines())
        return "\n".join(lines)


class UsageError(LpmlabError):
    """Bad command-line syntax or attribute values."""

    code = "HSCL8001"
    exit_code = 2


class TopologyError(LpmlabError):
    """The lab topology file is malformed or inconsistent."""

    code = "LPM1001"
    exit_code = 3


class NotFoundError(LpmlabError):
    """A managed system, partition or migration named by the user does not exist."""

    code = "HSCL8012"
    exit_code = 4


class LabNotRunningError(LpmlabError):
    """The command needs a running lab and there is none."""

    code = "LPM1002"
    exit_code = 5


class HostPrepError(LpmlabError):
    """The host cannot run the lab (packages missing or too old)."""

    code = "LPM1003"
    exit_code = 6


class PlaybookError(LpmlabError):
    """An Ansible playbook failed; ``evidence`` holds the failing task and its output."""

    code = "LPM1004"
    exit_code = 7


class ImageBuildError(LpmlabError):
    """The partition boot image could not be built."""

    code = "LPM1005"
    exit_code = 8


class FabricError(LpmlabError):
    """A namespace, bridge, daemon or target of the lab could not be created or reached."""

    code = "LPM1006"
    exit_code = 9


class HypervisorError(LpmlabError):
    """libvirt refused or failed an operation."""

    code = "LPM2001"
    exit_code = 10


class MigrationError(LpmlabError):
    """A partition migration failed or was refused."""

    code = "HSCLA000"
    exit_code = 11


class DeadlineError(LpmlabError):
    """A wait ran out of time; the message says what it waited for, ``evidence`` shows why."""

    code = "LPM1007"
    exit_code = 12


class RmcError(LpmlabError):
    """The RMC (SSH) channel to a partition OS is down or a remote command failed."""

    code = "HSCL2976"
    exit_code = 13


class AccessError(LpmlabError):
    """The HMC refused who is asking: a wrong user or password, a session that is not valid."""

    code = "HSCLR401"
    exit_code = 14
