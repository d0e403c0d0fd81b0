"""HMC record output: ``attr=value,...`` lines, ``-F`` value lists, ``--header``, ``--filter``.

A value holding a comma (or a quote) is quoted the HMC way, which is CSV quoting: the whole
``attr=value`` field wrapped in double quotes, inner quotes doubled. The csv module does it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lpmlab.errors import UsageError

Record = Mapping[str, Any]


def _text(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (list, tuple)):
        return ",".join(_text(i) for i in v)
    return str(v)


def _quote(field: str, delimiter: str) -> str:
    """CSV-style quoting that also works for a delimiter of several characters."""
    if delimiter in field or '"' in field or "\n" in field:
        return '"' + field.replace('"', '""') + '"'
    return field


def _csv_line(fields: Sequence[str], delimiter: str = ",") -> str:
    return delimiter.join(_quote(f, delimiter) for f in fields)


def format_record(record: Record) -> str:
    """One ``attr=value,...`` line."""
    return _csv_line([f"{k}={_text(v)}" for k, v in record.items()])


_FIELD_SPLIT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)")


def parse_field_spec(spec: str) -> tuple[list[str], str]:
    """``-F name:state`` -> (["name", "state"], ":"). The delimiter is what stands between."""
    parts = _FIELD_SPLIT.split(spec)
    names = [p for i, p in enumerate(parts) if i % 2 == 1]
    seps = {p for i, p in enumerate(parts) if i % 2 == 0 and 0 < i < len(parts) - 1}
    if not names or parts[0] or parts[-1]:
        raise UsageError(f"invalid -F attribute list {spec!r}",
                         fix="write attribute names separated by one delimiter, e.g. -F name,state")
    if len(seps) > 1:
        raise UsageError(f"-F {spec!r} mixes delimiters {sorted(seps)}",
                         fix="use the same delimiter between all attribute names")
    return names, (seps.pop() if seps else ",")


def format_values(record: Record, names: Sequence[str], delimiter: str) -> str:
    """The ``-F`` form: only values, in order; a value holding the delimiter is quoted."""
    vals = [_text(record.get(n)) if n in record else "" for n in names]
    return _csv_line(vals, delimiter)


def render(records: Iterable[Record], fields: str | None = None, header: bool = False) -> str:
    """All records as the HMC prints them (no trailing newline; empty string for none)."""
    recs = list(records)
    if fields is None:
        if header:
            raise UsageError("--header is only valid with -F",
                             fix="add -F with the attribute names, or drop --header")
        return "\n".join(format_record(r) for r in recs)
    names, delim = parse_field_spec(fields)
    lines = [delim.join(names)] if header else []
    lines += [format_values(r, names, delim) for r in recs]
    return "\n".join(lines)


def select(recs: list[dict[str, Any]], flt: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """Records matching a parsed --filter: any of the names, and any of the IDs.

    ``lpar_names`` matches a profile record's ``lpar_name``; ``profile_names`` its name."""
    names = set(flt.get("lpar_names", []) + flt.get("names", []))
    ids = set(flt.get("lpar_ids", []))
    profiles = set(flt.get("profile_names", []))
    return [r for r in recs if (not names or r.get("lpar_name", r.get("name")) in names)
            and (not ids or str(r.get("lpar_id")) in ids)
            and (not profiles or r.get("name") in profiles)]


def parse_filter(text: str, allowed: Sequence[str]) -> dict[str, list[str]]:
    """``--filter "lpar_names=a,b"`` (or ``"\\"lpar_names=a,b\\",..."``) -> {name: [values]}."""
    out: dict[str, list[str]] = {}
    if "\n" in text or "\r" in text:
        raise UsageError(f"--filter {text!r} holds a line break",
                         fix='write the filter on one line, e.g. --filter "lpar_names=a,b"')
    try:
        fields = next(csv.reader([text], skipinitialspace=False, strict=True), [])
    except csv.Error as exc:  # an unterminated quote, a quote after text
        raise UsageError(f"invalid --filter {text!r}: {exc}",
                         fix='quote the whole filter field, e.g. --filter '
                             '"\\"lpar_names=a,b\\",lpar_ids=2"') from None
    key: str | None = None
    for f in fields:
        if "=" in f and f.split("=", 1)[0] in allowed:
            key, val = f.split("=", 1)
            out.setdefault(key, [])
            # a quoted field ("lpar_names=a,b") carries the whole list
            out[key].extend(v for v in val.split(",") if v)
        elif "=" in f:
            raise UsageError(f"unknown filter {f.split('=', 1)[0]!r}",
                             fix=f"valid filters: {', '.join(allowed)}")
        elif key is not None and f:
            out[key].append(f)  # "lpar_names=a,b" unquoted: b continues the previous list
        else:
            raise UsageError(f"invalid --filter {text!r}",
                             fix="write --filter \"lpar_names=name1,name2\"")
    for key, values in out.items():
        if not values:  # an empty list would select everything, not nothing
            raise UsageError(f"--filter {key}= names nothing",
                             fix=f"give {key} at least one value, e.g. {key}=a,b, or drop it")
    return out
