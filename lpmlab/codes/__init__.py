"""The one registry of lpmlab's message codes.

Each code is defined once (in one of the tables below) with its message and fix templates, the
exception class it raises and, for validation, what its check looks at and its severity. The
class decides the exit code, so a code exits the same way from the HMC core and from every
command. Codes the HMC documents keep its numbers (HSCL8001, HSCL8012, HSCL3653, HSCLA319,
...); lpmlab's own are HSCLLnnn (HMC work) and LPMnnnn (the lab). docs/hmc.md lists the exit
code of each family.

Layers: this package sits next to :mod:`lpmlab.errors`, under every other layer.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from lpmlab.codes import commands, lab, migration, rest, validation
from lpmlab.codes.entry import Code, Severity
from lpmlab.errors import LpmlabError

__all__ = ["ALL", "REGISTRY", "Code", "Severity", "error", "family", "fields", "spec", "text"]

# Every table's entries, in order; REGISTRY keeps the last of a duplicate, so a test compares
# the two (a code defined twice would silently take one table's words).
ALL: tuple[Code, ...] = (*lab.CODES, *commands.CODES, *migration.CODES, *validation.CODES,
                         *rest.CODES)
REGISTRY: dict[str, Code] = {c.code: c for c in ALL}

# Placeholders a template may leave out: optional suffixes (" It is on sys2.", a hint).
OPTIONAL = ("where", "hint")


def spec(code: str) -> Code:
    """The registry entry of ``code`` (KeyError for a code that is not in the registry)."""
    return REGISTRY[code]


def fields(code: str) -> set[str]:
    """The placeholder names of the code's message and fix templates."""
    c = spec(code)
    return {name for tpl in (c.message, c.fix)
            for _lit, name, _spec, _conv in string.Formatter().parse(tpl) if name}


def text(code: str, **kw: object) -> tuple[str, str]:
    """The code's message and fix with ``kw`` filled in."""
    c = spec(code)
    values: dict[str, object] = {**dict.fromkeys(OPTIONAL, ""), **kw}
    return c.message.format(**values), c.fix.format(**values)


def error(code: str, *, evidence: str | None = None, **kw: object) -> LpmlabError:
    """The error the code raises: its class, its message and fix filled from ``kw``."""
    message, fix = text(code, **kw)
    return spec(code).error(message, fix=fix or None, code=code, evidence=evidence)


def family(name: str) -> Mapping[str, Code]:
    """The codes of one family (``validation``, ``commands``, ``migration``, ``lab``,
    ``rest``)."""
    return {c.code: c for c in ALL if c.family == name}
