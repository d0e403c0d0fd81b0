"""The HMC ``-i "attr=value,..."`` / ``-f file`` attribute parser of ``migrlpar``.

Two layers:

* :func:`split_fields` is the tokenizer. It reads the text by the CSV rules the HMC uses (those
  of RFC 4180 and of Python's ``csv`` module with ``strict=True``): fields are separated by
  commas, a field holding a comma is written with the whole ``attr=value`` in double quotes, and
  a double quote inside a quoted field is doubled. A line break outside quotes separates fields
  too, so an ``-f`` file may spread the attributes over several lines. It is a small state
  machine rather than ``csv.reader`` because the user must be told *where* the text is broken
  and ``csv`` neither reports positions nor tells a quoted field from an unquoted one; the unit
  tests check it against ``csv.reader`` on random text.
* :func:`parse_attributes` checks names, values and combinations against the schema and returns
  a typed, frozen :class:`MigrationAttributes`.

Every problem is a :class:`~lpmlab.errors.UsageError` whose code is in :data:`CODES`: any input
string gives either a result or a UsageError, never another exception.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any, Literal

from lpmlab import codes
from lpmlab.errors import LpmlabError

# -- codes ------------------------------------------------------------------------------------

SYNTAX = "HSCL8001"        # the HMC's own code for bad command syntax
UNKNOWN = "HSCLL420"
NOT_ALLOWED = "HSCLL421"
BAD_VALUE = "HSCLL422"
BAD_ITEM = "HSCLL423"
EXCLUSIVE = "HSCLL424"
REPEATED = "HSCLL425"
NO_FILE = "HSCLL426"

# the codes this parser raises, with what each means (the registry holds their words)
CODES: dict[str, str] = {c: codes.spec(c).title for c in (SYNTAX, UNKNOWN, NOT_ALLOWED,
                                                          BAD_VALUE, BAD_ITEM, EXCLUSIVE,
                                                          REPEATED, NO_FILE)}

MAX_TEXT = 65536           # characters; far above any real command line, bounds the work
_WS = " \t\r\n"            # blanks ignored around names, values, list items and item parts
_LPAR_ID = (1, 1000)       # partition IDs (also VIOS and MSP IDs)
_SLOT = (2, 65535)         # virtual slots; 0 and 1 hold the virtual serial adapters
_POOL_ID = (0, 63)         # a managed system has at most 64 shared processor pools
_PERF = (1, 5)
_COUNT = (0, None)


# -- result types -----------------------------------------------------------------------------

def _opt(v: object) -> str:
    return "" if v is None else str(v)


@dataclass(frozen=True)
class AdapterMapping:
    """``client-slot/vios-name/vios-id[/vios-slot]``: the destination VIOS (by name, ID or
    both) and optionally its slot for the client adapter in ``client_slot``."""

    client_slot: int
    vios_name: str | None
    vios_id: int | None
    vios_slot: int | None = None

    def to_text(self) -> str:
        parts = [str(self.client_slot), _opt(self.vios_name), _opt(self.vios_id)]
        if self.vios_slot is not None:
            parts.append(str(self.vios_slot))
        return "/".join(parts)


@dataclass(frozen=True)
class VscsiMapping(AdapterMapping):
    """One item of ``virtual_scsi_mappings``."""


@dataclass(frozen=True)
class VfcMapping(AdapterMapping):
    """One item of ``virtual_fc_mappings`` (virtual Fibre Channel)."""


@dataclass(frozen=True)
class MspRef:
    """``msp-name/msp-id/[ipaddr]``: one mover service partition (any part may be empty)."""

    name: str | None
    id: int | None
    ipaddr: IPv4Address | None = None

    def to_text(self) -> str:
        return f"{_opt(self.name)}/{_opt(self.id)}/{_opt(self.ipaddr)}"


@dataclass(frozen=True)
class LparDestId:
    """``lpar-name/lpar-id/dest-id`` of ``multiple_dest_lpar_ids``."""

    lpar_name: str | None
    lpar_id: int | None
    dest_lpar_id: int

    def to_text(self) -> str:
        return f"{_opt(self.lpar_name)}/{_opt(self.lpar_id)}/{self.dest_lpar_id}"


@dataclass(frozen=True)
class LparVscsiMapping:
    """``lpar-name/lpar-id/client-slot/vios-name/vios-id[/vios-slot]``: one mapping of one
    partition in ``multiple_virtual_scsi_mappings``."""

    lpar_name: str | None
    lpar_id: int | None
    mapping: VscsiMapping

    def to_text(self) -> str:
        return f"{_opt(self.lpar_name)}/{_opt(self.lpar_id)}/{self.mapping.to_text()}"


@dataclass(frozen=True)
class LparPoolName:
    """``lpar-name/lpar-id/pool-name`` of ``multiple_shared_proc_pool_names``."""

    lpar_name: str | None
    lpar_id: int | None
    pool_name: str

    def to_text(self) -> str:
        return f"{_opt(self.lpar_name)}/{_opt(self.lpar_id)}/{self.pool_name}"


@dataclass(frozen=True)
class LparProfileName:
    """``lpar-name/lpar-id/profile-name`` of ``multiple_profile_names``."""

    lpar_name: str | None
    lpar_id: int | None
    profile_name: str

    def to_text(self) -> str:
        return f"{_opt(self.lpar_name)}/{_opt(self.lpar_id)}/{self.profile_name}"


@dataclass(frozen=True)
class MigrationAttributes:
    """What ``-i``/``-f`` said, typed. ``None`` = not given. ``raw`` keeps the text values."""

    dest_lpar_id: int | None = None
    virtual_scsi_mappings: list[VscsiMapping] | None = None
    virtual_fc_mappings: list[VfcMapping] | None = None
    source_msp_name: str | None = None
    source_msp_id: int | None = None
    source_msp_ipaddr: IPv4Address | None = None
    dest_msp_name: str | None = None
    dest_msp_id: int | None = None
    dest_msp_ipaddr: IPv4Address | None = None
    source_msps: list[MspRef] | None = None
    dest_msps: list[MspRef] | None = None
    shared_proc_pool_name: str | None = None
    shared_proc_pool_id: int | None = None
    concurr_migration_perf_level: int | None = None
    inactive_prof_policy: Literal["prof", "config"] | None = None
    num_active_migrations_configured: int | None = None
    multiple_dest_lpar_ids: list[LparDestId] | None = None
    multiple_virtual_scsi_mappings: list[LparVscsiMapping] | None = None
    multiple_shared_proc_pool_names: list[LparPoolName] | None = None
    multiple_profile_names: list[LparProfileName] | None = None
    raw: dict[str, str] = field(default_factory=dict)

    def given(self) -> dict[str, Any]:
        """The typed attributes that were given, in schema order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "raw" and getattr(self, f.name) is not None}

    def for_partition(self, name: str, lpar_id: int | None,
                      index: int = 0) -> tuple[MigrationAttributes, str | None]:
        """The attributes one partition of a several-partition command migrates with, and
        its profile name: its entries of the ``multiple_*`` lists become the single forms,
        and ``source_msps`` / ``dest_msps`` are dealt out in turn (partition ``index``)."""
        def mine(item: Any) -> bool:
            return ((item.lpar_name is None or item.lpar_name == name)
                    and (item.lpar_id is None or item.lpar_id == lpar_id))
        change: dict[str, Any] = {}
        dest = [d.dest_lpar_id for d in self.multiple_dest_lpar_ids or [] if mine(d)]
        if dest:
            change["dest_lpar_id"] = dest[0]
        maps = [m.mapping for m in self.multiple_virtual_scsi_mappings or [] if mine(m)]
        if maps:
            change["virtual_scsi_mappings"] = maps
        pools = [p.pool_name for p in self.multiple_shared_proc_pool_names or [] if mine(p)]
        if pools:
            change["shared_proc_pool_name"] = pools[0]
        for side in ("source", "dest"):
            refs: list[MspRef] | None = getattr(self, f"{side}_msps")
            if refs and getattr(self, f"{side}_msp_name") is None \
                    and getattr(self, f"{side}_msp_id") is None:
                ref = refs[index % len(refs)]
                change.update({f"{side}_msp_name": ref.name, f"{side}_msp_id": ref.id,
                               f"{side}_msp_ipaddr": ref.ipaddr})
        profile = next((p.profile_name for p in self.multiple_profile_names or []
                        if mine(p)), None)
        return dataclasses.replace(self, **change), profile


# -- tokenizer --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Field:
    text: str       # content: quotes removed, "" undone; blanks around an unquoted field removed
    start: int      # offset of the field's first non-blank character (its quote, if quoted)
    quoted: bool


_UNQUOTED = re.compile(r'[^,\r\n"]*')
_NAME_GUESS = re.compile(r'"?[ \t]*([^=,"\r\n]{1,40})=')


def _show(s: str, limit: int = 40) -> str:
    """A value for a message: repr() escapes control characters and lone surrogates, so the
    message can always be printed; long values are cut."""
    return repr(s if len(s) <= limit else s[:limit - 3] + "...")


def _safe(s: str) -> str:
    """``s`` as is when it prints cleanly and is short, else :func:`_show`."""
    return s if s.isprintable() and 0 < len(s) <= 40 else _show(s)


def _where(text: str, offset: int) -> str:
    before = text[:offset]
    last = max(before.rfind("\n"), before.rfind("\r"))
    col = offset - last
    if "\n" not in text and "\r" not in text:
        return f"column {col}"
    line = before.count("\n") + before.count("\r") - before.count("\r\n") + 1
    return f"line {line}, column {col}"


def _label(text: str, start: int) -> str:
    """'attribute NAME' for the field at ``start`` when its name can be made out."""
    m = _NAME_GUESS.match(text, start, start + 80)
    name = m.group(1).strip(_WS) if m else ""
    return f"attribute {_show(name)}" if name else "the field"


_QUOTE_FIX = ("wrap the whole attr=value field in double quotes, e.g. "
              '"virtual_scsi_mappings=12/vios1/,13/vios2/",dest_msp_name=vios1 (in a shell: '
              '-i "\\"virtual_scsi_mappings=12/vios1/,13/vios2/\\",dest_msp_name=vios1"), '
              'and write a double quote inside it twice ("")')


def _error(code: str, message: str, fix: str) -> LpmlabError:
    """The registry's error for ``code`` (a UsageError), worded here."""
    return codes.error(code, detail=message, fix=fix)


def _syntax(message: str, fix: str = _QUOTE_FIX) -> LpmlabError:
    return _error(SYNTAX, message, fix)


def _quoted(text: str, i: int) -> tuple[int, str]:
    """Read the quoted field whose opening quote is at ``i``; return (end offset, content)."""
    parts: list[str] = []
    pos = i + 1
    while True:
        j = text.find('"', pos)
        if j < 0:
            raise _syntax(f"unterminated quote: the quoted field of {_label(text, i)} opened at "
                          f"{_where(text, i)} has no closing double quote")
        parts.append(text[pos:j])
        if text.startswith('""', j):    # a doubled quote is one literal quote
            parts.append('"')
            pos = j + 2
            continue
        end = j + 1
        break
    if end < len(text) and text[end] not in ",\r\n":
        raise _syntax(f"text {_show(text[end:end + 20])} after the closing quote of "
                      f"{_label(text, i)} at {_where(text, end)}; a comma must follow it",
                      fix="close the quote at the end of the whole attr=value field and write "
                          'a double quote inside it twice ("")')
    return end, "".join(parts)


def _records(text: str) -> list[list[_Field]]:
    """CSV records (lines) of fields. Leading blanks of a field are skipped, so a quoted field
    may be indented; a quote anywhere else in an unquoted field is refused (csv would take it
    literally, but it is nearly always a quoting mistake)."""
    records: list[list[_Field]] = []
    record: list[_Field] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        start = i
        if i < n and text[i] == '"':
            i, content = _quoted(text, i)
            record.append(_Field(content, start, True))
        else:
            m = _UNQUOTED.match(text, i)
            j = m.end() if m else i
            if j < n and text[j] == '"':
                fix = _QUOTE_FIX
                if j > i and text[j - 1] == "=":    # the value was quoted, not the field
                    name = _safe(text[i:j - 1].strip(_WS))
                    fix = (f'quote the whole field, not only the value: "{name}=a,b" '
                           f'instead of {name}="a,b"')
                raise _syntax(f"double quote inside the unquoted field of {_label(text, i)} at "
                              f"{_where(text, j)}", fix=fix)
            record.append(_Field(text[i:j].rstrip(" \t"), start, False))
            i = j
        if i >= n:
            records.append(record)
            return records
        if text[i] == ",":
            i += 1
            continue
        i += 2 if text.startswith("\r\n", i) else 1    # a line break ends the record
        records.append(record)
        record = []
        if i >= n:
            return records


def split_fields(text: str) -> list[tuple[str, str]]:
    """``attr=value,...`` (one or several lines) -> [(attr, value), ...] in order.

    Blanks around names and values are dropped. Blank lines and a comma at the end of a line
    are accepted (handy in -f files); any other empty field is an error, as are a field without
    '=', an empty name and an attribute given twice.
    """
    if len(text) > MAX_TEXT:
        raise _syntax(f"the attribute text has {len(text)} characters; at most {MAX_TEXT} are "
                      "accepted", fix="migrate fewer partitions per migrlpar command")
    pairs: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    prev_unquoted_list: str | None = None
    for record in _records(text):
        if len(record) == 1 and not record[0].quoted and not record[0].text:
            continue                                    # blank line
        for k, f in enumerate(record):
            if not f.quoted and not f.text:
                if k == len(record) - 1:
                    continue                            # comma at the end of a line
                raise _syntax(f"empty attribute at {_where(text, f.start)} (a leading comma or "
                              "two commas in a row)", fix="remove the extra comma")
            name, eq, value = f.text.partition("=")
            name, value = name.strip(_WS), value.strip(_WS)
            if not eq:
                fix = "write every attribute as attr=value, separated by commas"
                if prev_unquoted_list and not f.quoted:
                    fix = (f"{prev_unquoted_list} takes a comma list, so quote the whole field: "
                           f'"{prev_unquoted_list}=a,b"')
                raise _syntax(f"{_show(f.text)} at {_where(text, f.start)} has no '=' "
                              "(expected attr=value)", fix=fix)
            if not name:
                raise _syntax(f"empty attribute name before '=' at {_where(text, f.start)}",
                              fix="write every attribute as attr=value")
            if name in seen:
                raise _syntax(f"attribute {_show(name)} is given twice (at "
                              f"{_where(text, seen[name])} and {_where(text, f.start)})",
                              fix=f"give {_safe(name)} once")
            seen[name] = f.start
            pairs.append((name, value))
            spec = _SCHEMA.get(name)
            prev_unquoted_list = name if spec and spec.item and not f.quoted else None
    return pairs


# -- value parsers ----------------------------------------------------------------------------

class _Bad(Exception):
    """A value or list item is wrong; the caller adds the attribute, item and code."""


_DIGITS = re.compile(r"[0-9]+")   # ASCII only: int() would also take '١٢' and '1_0'


def _int(text: str, what: str, bounds: tuple[int, int | None]) -> int:
    lo, hi = bounds
    want = f"a whole number from {lo} to {hi}" if hi is not None else f"a whole number >= {lo}"
    if not text:
        raise _Bad(f"{what} is empty; expected {want}")
    if not _DIGITS.fullmatch(text):
        raise _Bad(f"{what} {_show(text)} is not {want}")
    if len(text.lstrip("0")) > 10 or not (lo <= int(text) and (hi is None or int(text) <= hi)):
        raise _Bad(f"{what} {_show(text)} is out of range; expected {want}")
    return int(text)


_NOT_IN_NAMES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _name(text: str, what: str) -> str:
    if not text:
        raise _Bad(f"{what} is empty")
    for c in text:
        # ',' and '/' separate list items and parts; control, format and line-separator
        # characters are never part of an HMC name
        if c in ',"/' or unicodedata.category(c) in _NOT_IN_NAMES:
            raise _Bad(f"{what} {_show(text)} contains the character {_show(c)}")
    return text


def _ipv4(text: str, what: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise _Bad(f"{what} {_show(text)} is not an IPv4 address (a.b.c.d)") from None


def _choice(text: str, what: str, choices: tuple[str, ...]) -> str:
    if text not in choices:
        raise _Bad(f"{what} {_show(text)} is not one of {', '.join(choices)}")
    return text


def _maybe(text: str, parse: Callable[[str, str], Any], what: str) -> Any:
    return None if text == "" else parse(text, what)


def _parts(parts: list[str], *counts: int) -> None:
    if len(parts) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise _Bad(f"has {len(parts)} '/'-separated parts, expected {want}")


def _lpar_ref(name: str, ident: str, what: str = "partition") -> tuple[str | None, int | None]:
    n = _maybe(name, _name, f"{what} name")
    i = _maybe(ident, lambda t, w: _int(t, w, _LPAR_ID), f"{what} ID")
    if n is None and i is None:
        raise _Bad(f"gives neither the {what} name nor its ID")
    return n, i


def _mapping(cls: type[AdapterMapping], parts: list[str]) -> AdapterMapping:
    _parts(parts, 3, 4)
    slot = _int(parts[0], "client slot", _SLOT)
    vios_name, vios_id = _lpar_ref(parts[1], parts[2], "VIOS")
    vios_slot = _maybe(parts[3], lambda t, w: _int(t, w, _SLOT), "VIOS slot") \
        if len(parts) == 4 else None
    return cls(slot, vios_name, vios_id, vios_slot)


def _msp(parts: list[str]) -> MspRef:
    _parts(parts, 3)
    name = _maybe(parts[0], _name, "MSP name")
    ident = _maybe(parts[1], lambda t, w: _int(t, w, _LPAR_ID), "MSP ID")
    ip = _maybe(parts[2], _ipv4, "MSP address")
    if name is None and ident is None and ip is None:
        raise _Bad("gives neither the MSP name, nor its ID, nor its address")
    return MspRef(name, ident, ip)


def _dest_id(parts: list[str]) -> LparDestId:
    _parts(parts, 3)
    name, ident = _lpar_ref(parts[0], parts[1])
    return LparDestId(name, ident, _int(parts[2], "destination partition ID", _LPAR_ID))


def _lpar_mapping(parts: list[str]) -> LparVscsiMapping:
    _parts(parts, 5, 6)
    name, ident = _lpar_ref(parts[0], parts[1])
    mapping = _mapping(VscsiMapping, parts[2:])
    assert isinstance(mapping, VscsiMapping)
    return LparVscsiMapping(name, ident, mapping)


def _lpar_pool(parts: list[str]) -> LparPoolName:
    _parts(parts, 3)
    name, ident = _lpar_ref(parts[0], parts[1])
    return LparPoolName(name, ident, _name(parts[2], "pool name"))


def _lpar_profile(parts: list[str]) -> LparProfileName:
    _parts(parts, 3)
    name, ident = _lpar_ref(parts[0], parts[1])
    return LparProfileName(name, ident, _name(parts[2], "profile name"))


# Identities that must not repeat within one list: each item yields keys such as
# ("client slot", 12); a key seen twice is an error. Tuples, not strings, so that a partition
# named "ID 4" is not taken for the partition with ID 4.
_Key = tuple[Any, ...]


def _lpar_keys(name: str | None, ident: int | None, *more: Any) -> list[_Key]:
    keys: list[_Key] = [("partition", name, *more)] if name is not None else []
    return keys + ([("partition ID", ident, *more)] if ident is not None else [])


def _mapping_keys(m: Any) -> list[_Key]:
    return [("client slot", m.client_slot)]


def _msp_keys(m: Any) -> list[_Key]:
    keys: list[_Key] = [("MSP", m.name)] if m.name is not None else []
    return keys + ([("MSP ID", m.id)] if m.id is not None else [])


def _dest_keys(d: Any) -> list[_Key]:
    return _lpar_keys(d.lpar_name, d.lpar_id) + [("destination ID", d.dest_lpar_id)]


def _lpar_mapping_keys(m: Any) -> list[_Key]:
    return _lpar_keys(m.lpar_name, m.lpar_id, "client slot", m.mapping.client_slot)


def _lpar_item_keys(p: Any) -> list[_Key]:
    return _lpar_keys(p.lpar_name, p.lpar_id)


# -- schema -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    form: str                                           # for messages and docs
    example: str
    scalar: Callable[[str, str], Any] | None = None     # (value, what) -> typed value
    item: Callable[[list[str]], Any] | None = None      # '/'-parts of one list item -> item
    keys: Callable[[Any], list[_Key]] | None = None     # identities unique in the list


def _ranged(bounds: tuple[int, int | None]) -> Callable[[str, str], int]:
    return lambda t, w: _int(t, w, bounds)


_MAPPING_FORM = "client-slot/vios-name/vios-id[/vios-slot],..."
_MSP_FORM = "msp-name/msp-id/[ipaddr],..."

_SCHEMA: dict[str, _Spec] = {
    "dest_lpar_id": _Spec("partition ID 1..1000", "5", scalar=_ranged(_LPAR_ID)),
    "virtual_scsi_mappings": _Spec(_MAPPING_FORM, '"virtual_scsi_mappings=12/vios1/,13//2"',
                                   item=lambda p: _mapping(VscsiMapping, p),
                                   keys=_mapping_keys),
    "virtual_fc_mappings": _Spec(_MAPPING_FORM, '"virtual_fc_mappings=30/vios1/,31//2/40"',
                                 item=lambda p: _mapping(VfcMapping, p), keys=_mapping_keys),
    "source_msp_name": _Spec("VIOS name", "vios1", scalar=_name),
    "source_msp_id": _Spec("VIOS partition ID 1..1000", "1", scalar=_ranged(_LPAR_ID)),
    "source_msp_ipaddr": _Spec("IPv4 address", "10.1.0.11", scalar=_ipv4),
    "dest_msp_name": _Spec("VIOS name", "vios3", scalar=_name),
    "dest_msp_id": _Spec("VIOS partition ID 1..1000", "1", scalar=_ranged(_LPAR_ID)),
    "dest_msp_ipaddr": _Spec("IPv4 address", "10.2.0.11", scalar=_ipv4),
    "source_msps": _Spec(_MSP_FORM, '"source_msps=vios1/1/,vios2//10.1.0.12"', item=_msp,
                         keys=_msp_keys),
    "dest_msps": _Spec(_MSP_FORM, '"dest_msps=vios3/1/,//10.2.0.12"', item=_msp,
                       keys=_msp_keys),
    "shared_proc_pool_name": _Spec("pool name", "DefaultPool", scalar=_name),
    "shared_proc_pool_id": _Spec("pool ID 0..63", "0", scalar=_ranged(_POOL_ID)),
    "concurr_migration_perf_level": _Spec("1..5", "3", scalar=_ranged(_PERF)),
    "inactive_prof_policy": _Spec("prof|config", "config",
                                  scalar=lambda t, w: _choice(t, w, ("prof", "config"))),
    "num_active_migrations_configured": _Spec("whole number >= 0", "4",
                                              scalar=_ranged(_COUNT)),
    "multiple_dest_lpar_ids": _Spec("lpar-name/lpar-id/dest-id,...",
                                    '"multiple_dest_lpar_ids=lp1//7,/9/8"', item=_dest_id,
                                    keys=_dest_keys),
    "multiple_virtual_scsi_mappings": _Spec(
        "lpar-name/lpar-id/client-slot/vios-name/vios-id[/vios-slot],...",
        '"multiple_virtual_scsi_mappings=lp1//12/vios3/,lp2//12//2/20"', item=_lpar_mapping,
        keys=_lpar_mapping_keys),
    "multiple_shared_proc_pool_names": _Spec("lpar-name/lpar-id/pool-name,...",
                                             '"multiple_shared_proc_pool_names=lp1//pool1,'
                                             '/9/DefaultPool"',
                                             item=_lpar_pool, keys=_lpar_item_keys),
    "multiple_profile_names": _Spec("lpar-name/lpar-id/profile-name,...",
                                    '"multiple_profile_names=lp1//migprof,/9/default"',
                                    item=_lpar_profile, keys=_lpar_item_keys),
}

ATTRIBUTES: tuple[str, ...] = tuple(_SCHEMA)
LIST_ATTRIBUTES: frozenset[str] = frozenset(n for n, s in _SCHEMA.items() if s.item)
# What each migrlpar operation accepts (pass as ``allowed``).
SET_SYS_ATTRIBUTES: frozenset[str] = frozenset({"inactive_prof_policy"})
SET_LPAR_ATTRIBUTES: frozenset[str] = frozenset({"num_active_migrations_configured",
                                                 "concurr_migration_perf_level"})
SET_ATTRIBUTES: frozenset[str] = SET_SYS_ATTRIBUTES | SET_LPAR_ATTRIBUTES
MIGRATE_ATTRIBUTES: frozenset[str] = frozenset(ATTRIBUTES) - {"num_active_migrations_configured"}

_SINGLE = frozenset({"dest_lpar_id", "virtual_scsi_mappings", "virtual_fc_mappings",
                     "shared_proc_pool_name", "shared_proc_pool_id"})
_MULTIPLE = frozenset(n for n in ATTRIBUTES if n.startswith("multiple_"))
_EXCLUSIVE: tuple[tuple[frozenset[str], frozenset[str]], ...] = (
    (frozenset({"shared_proc_pool_name"}), frozenset({"shared_proc_pool_id"})),
    (frozenset({"source_msps"}),
     frozenset({"source_msp_name", "source_msp_id", "source_msp_ipaddr"})),
    (frozenset({"dest_msps"}), frozenset({"dest_msp_name", "dest_msp_id", "dest_msp_ipaddr"})),
    (_SINGLE, _MULTIPLE),   # one partition's attributes, or several partitions', not both
)


def _value_fix(name: str, spec: _Spec) -> str:
    example = spec.example if spec.example.startswith('"') else f"{name}={spec.example}"
    return f"give {name} as {spec.form}, e.g. {example}"


def _parse_value(name: str, value: str, spec: _Spec) -> Any:
    if not value:
        raise _error(BAD_VALUE, f"attribute {name} has an empty value", fix=_value_fix(name, spec))
    if spec.scalar is not None:
        try:
            return spec.scalar(value, "value")
        except _Bad as e:
            raise _error(BAD_VALUE, f"attribute {name}: {e}", fix=_value_fix(name, spec)) from None
    assert spec.item is not None and spec.keys is not None
    items: list[Any] = []
    seen: dict[_Key, int] = {}
    for k, text in enumerate(value.split(","), 1):
        text = text.strip(_WS)
        try:
            if not text:
                raise _Bad("is empty (a stray comma?)")
            item = spec.item([p.strip(_WS) for p in text.split("/")])
        except _Bad as e:
            raise _error(BAD_ITEM, f"attribute {name}, item {k} {_show(text)}: {e}",
                         fix=_value_fix(name, spec)) from None
        for key in spec.keys(item):
            if key in seen:
                label = " ".join(str(x) for x in key)
                raise _error(REPEATED, f"attribute {name}: items {seen[key]} and {k} both give "
                             f"{label}", fix="give each once")
            seen[key] = k
        items.append(item)
    return items


def _listing(names: Collection[str]) -> str:
    return ", ".join(n for n in ATTRIBUTES if n in names)


def parse_attributes(text: str, *, allowed: Collection[str] | None = None) -> MigrationAttributes:
    """Parse ``-i`` text (or an ``-f`` file's text) into :class:`MigrationAttributes`.

    ``allowed`` restricts the names for an operation (e.g. :data:`SET_ATTRIBUTES` for
    ``-o set``); naming another known attribute is HSCLL421. Raises only UsageError.
    """
    valid: Collection[str] = ATTRIBUTES
    if allowed is not None:
        wrong = set(allowed) - set(ATTRIBUTES)
        if wrong:   # a bug in the caller, not a user error
            raise ValueError(f"unknown attribute names in allowed: {sorted(wrong)}")
        valid = frozenset(allowed)
    pairs = split_fields(text)
    for name, _ in pairs:
        if name not in _SCHEMA:
            close = difflib.get_close_matches(name, list(valid), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise _error(UNKNOWN, f"unknown attribute {_show(name)}",
                         fix=f"{hint}valid attributes here: {_listing(valid)}")
        if name not in valid:
            raise _error(NOT_ALLOWED, f"attribute {name} is not valid for this operation",
                         fix=f"valid attributes here: {_listing(valid)}")
    values = {name: _parse_value(name, value, _SCHEMA[name]) for name, value in pairs}
    order = list(values)
    for left, right in _EXCLUSIVE:
        a = [n for n in order if n in left]
        b = [n for n in order if n in right]
        if a and b:
            first, second = sorted((a[0], b[0]), key=order.index)
            raise _error(EXCLUSIVE, f"attributes {first} and {second} cannot be used together",
                         fix=f"give {first} or {second}, not both")
    return MigrationAttributes(**values, raw=dict(pairs))


# -- rendering and files ----------------------------------------------------------------------

def _render(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_render(v) for v in value)
    to_text = getattr(value, "to_text", None)
    return to_text() if callable(to_text) else str(value)


def format_attributes(attrs: MigrationAttributes | Mapping[str, Any]) -> str:
    """The HMC text for typed attributes (what the program receives after the shell), with a
    field quoted when it holds a comma, quote or line break. ``None`` values are left out.
    ``parse_attributes(format_attributes(a))`` gives back ``a``'s values."""
    items = attrs.given() if isinstance(attrs, MigrationAttributes) else attrs
    out: list[str] = []
    for name, value in items.items():
        if value is None:
            continue
        f = f"{name}={_render(value)}"
        if any(c in f for c in ',"\r\n'):
            f = '"' + f.replace('"', '""') + '"'
        out.append(f)
    return ",".join(out)


def read_attribute_file(path: str | os.PathLike[str]) -> str:
    """The text of an ``-f`` file (UTF-8, a BOM is dropped). Missing, unreadable, too big or
    not text -> UsageError naming the path."""
    shown = _show(os.fspath(path), 200)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_TEXT * 4 + 1)    # UTF-8 takes at most 4 bytes a character
    except (OSError, ValueError) as e:          # ValueError: a NUL in the path
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise _error(NO_FILE, f"cannot read the attribute file {shown}: {reason}",
                     fix="give -f the path of a readable text file") from None
    if len(data) > MAX_TEXT * 4:
        raise _syntax(f"the attribute file {shown} is larger than {MAX_TEXT * 4} bytes",
                      fix="migrate fewer partitions per migrlpar command")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _error(NO_FILE, f"the attribute file {shown} is not UTF-8 text (byte {e.start})",
                     fix="save the file as UTF-8 (plain ASCII is fine)") from None
