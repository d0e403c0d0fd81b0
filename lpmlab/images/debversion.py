"""Debian version ordering and dependency fields, enough to pick and check .deb versions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cmp_to_key


def _order(c: str) -> int:
    # dpkg's lexical order: '~' sorts before everything, even the end of the string;
    # letters sort before non-letters.
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _cmp_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split(v: str) -> tuple[int, str, str]:
    epoch, _, rest = v.partition(":") if ":" in v else ("0", "", v)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
    return int(epoch or 0), upstream, revision


def compare(a: str, b: str) -> int:
    """Negative, zero or positive as version ``a`` sorts before, equal to or after ``b``."""
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    if ea != eb:
        return ea - eb
    return _cmp_part(ua, ub) or _cmp_part(ra, rb)


def newest_first(versions: list[str]) -> list[str]:
    return sorted(set(versions), key=cmp_to_key(compare), reverse=True)


@dataclass(frozen=True)
class Relation:
    """One alternative of a dependency: ``name (op version)``."""

    name: str
    op: str | None = None
    version: str | None = None

    def satisfied_by(self, version: str) -> bool:
        if self.op is None or self.version is None:
            return True
        c = compare(version, self.version)
        return {
            ">=": c >= 0, "<=": c <= 0, "=": c == 0, ">>": c > 0, "<<": c < 0,
            ">": c >= 0, "<": c <= 0,  # obsolete spellings, as dpkg reads them
        }[self.op]

    def __str__(self) -> str:
        return f"{self.name} ({self.op} {self.version})" if self.op else self.name


_REL = re.compile(
    r"^\s*([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?"  # name, optional :arch qualifier
    r"\s*(?:\(\s*([<>=]+)\s*([^)\s]+)\s*\))?"  # optional (op version)
)


def parse_depends(field: str) -> list[list[Relation]]:
    """``Depends:`` text as AND-groups of OR-alternatives (architecture lists are dropped)."""
    groups: list[list[Relation]] = []
    for group in field.split(","):
        alts: list[Relation] = []
        for alt in group.split("|"):
            alt = re.sub(r"\[[^\]]*\]|<[^>]*>", "", alt)
            m = _REL.match(alt)
            if m:
                alts.append(Relation(m.group(1), m.group(2), m.group(3)))
        if alts:
            groups.append(alts)
    return groups


def parse_control(text: str) -> list[dict[str, str]]:
    """RFC-822 style stanzas (``apt-cache show``, ``dpkg-deb -f``) as dicts."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, ""
        elif line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas
