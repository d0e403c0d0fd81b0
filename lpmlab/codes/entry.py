"""One entry of the code registry (see :mod:`lpmlab.codes`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lpmlab.errors import LpmlabError

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Code:
    """A message code: what it means, how it reads, how to fix it, what it raises.

    ``message`` and ``fix`` are ``str.format`` templates. A code whose sites word their own
    text (the generic code of an exception class, the attribute parser's families) has the
    template ``{detail}`` / ``{fix}``: the code still decides the class and so the exit code.
    ``severity`` matters to validation, where a check may also report a code as a warning.
    """

    code: str
    error: type[LpmlabError]
    family: str
    title: str
    message: str
    fix: str
    severity: Severity = "error"
    # the REST API's HTTP status for it (0: the status of its class)
    http_status: int = 0

    @property
    def exit_code(self) -> int:
        return self.error.exit_code
