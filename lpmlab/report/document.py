"""A migration's report document (JSON-ready) and its text table.

The document is what the JSON file holds and what the plots draw: the record's who/what,
the controls it ran with, a summary, the downtime window and every telemetry sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lpmlab.hmc.precopy import MIB, downtime_window, fmt_mib, fmt_rate, passes, summarize
from lpmlab.hmc.store import MigrationRecord

Doc = dict[str, Any]


def build(rec: MigrationRecord, samples: list[dict[str, Any]]) -> Doc:
    tele = rec.stats.get("telemetry") or {}
    controls = rec.stats.get("controls") or {}
    summary = summarize(samples, rec.stats.get("wall_s"))
    return {
        "id": rec.id, "partition": rec.partition, "source_sys": rec.source_sys,
        "dest_sys": rec.dest_sys, "migration_type": rec.migration_type,
        "state": rec.state, "result": rec.result, "error": rec.error,
        "command": rec.command, "started": rec.started, "ended": rec.ended,
        "source_msp": rec.source_msp, "dest_msp": rec.dest_msp,
        "label": f"{rec.id[:6]} {rec.partition} {controls_label(controls)}".strip(),
        "controls": controls, "summary": summary,
        "schedule_actions": tele.get("schedule_actions", []),
        "convergence_warning": tele.get("convergence_warning"),
        "downtime_window": downtime_window(samples),
        "passes": passes(samples),
        "guest": rec.stats.get("guest") or {},
        "samples": samples,
    }


def controls_label(c: dict[str, Any]) -> str:
    """A short legend text for the controls that were set (empty for plain pre-copy)."""
    parts = []
    if c.get("mover_bandwidth_mib"):
        parts.append(f"link {c['mover_bandwidth_mib']:g}MiB/s")
    if c.get("max_speed_mib"):
        parts.append(f"speed {c['max_speed_mib']}MiB/s")
    if c.get("max_downtime_ms"):
        parts.append(f"downtime {c['max_downtime_ms']}ms")
    if c.get("auto_converge"):
        parts.append("auto-converge")
    if c.get("postcopy"):
        parts.append("postcopy")
    if c.get("schedule") not in (None, "none", "postcopy-on-stall"):
        parts.append(c["schedule"])
    return " ".join(parts)


def _num(v: Any, fmt: str = "{}") -> str:
    return "-" if v is None else fmt.format(v)


def table(doc: Doc) -> str:
    """The summary and one row per pre-copy iteration (plus the completion)."""
    s = doc["summary"]
    lines = [
        f"migration {doc['id']}: {doc['partition']} {doc['source_sys']} -> {doc['dest_sys']}, "
        f"{doc['state']}" + (f" ({doc['error']})" if doc.get("error") else ""),
        f"  controls: {controls_label(doc['controls']) or 'none (plain pre-copy)'}",
        f"  total {_num(s.get('total_time_s'), '{:.2f}')} s, transfer job "
        f"{_num(s.get('transfer_s'), '{:.2f}')} s, downtime {_num(s.get('downtime_ms'))} ms, "
        f"{_num(s.get('iterations'))} iterations, {fmt_mib(s.get('bytes_sent'))} sent of "
        f"{fmt_mib(s.get('memory_total'))}, max throttle {s.get('max_throttle_pct') or 0} %",
    ]
    if doc.get("convergence_warning"):
        lines.append("  " + doc["convergence_warning"])
    for a in doc.get("schedule_actions", []):
        lines.append(f"  schedule at iteration {a['iteration']}: {a['action']}"
                     + (f" {a['value']}" if a.get("value") is not None else "")
                     + f" ({a['reason']})")
    g = doc.get("guest") or {}
    lines.append(f"  setup {_num(s.get('setup_time_ms'))} ms, pages sent: "
                 f"{_num(s.get('normal_pages'))} normal, {_num(s.get('zero_pages'))} zero")
    if g.get("passes"):
        lines.append(f"  the partition (its dirtier, over its working set): a pass took "
                     f"{_num(g.get('pass_ms_before'), '{:.0f}')} ms before the transfer, "
                     f"{_num(g.get('pass_ms_during'), '{:.0f}')} ms during it (slowdown "
                     f"{_num(g.get('slowdown'), '{:.2f}')}x), longest stall seen from inside "
                     f"{_num(g.get('max_stall_ms'), '{:.0f}')} ms")
    lines.append("  dirty rate: what each pass found dirty, divided by its length "
                 f"({PASS_NOTE}); ~ marks a pass under {SHORT_PASS_S:g} s; QEMU's own "
                 "figure (averaged over about a second) beside it")
    lines.append("")
    head = ("iter", "t (s)", "pass (s)", "sent", "remaining", "dirty rate", "QEMU's",
            "bandwidth", "exp. downtime", "throttle")
    by_iteration = {p["iteration"]: p for p in doc.get("passes") or []}
    rows = [head]
    for x in doc["samples"]:
        if x.get("kind") not in ("iteration", "completed"):
            continue
        p = by_iteration.get(x.get("iteration"), {}) if x["kind"] == "iteration" else {}
        rows.append((
            "done" if x["kind"] == "completed" else _num(x.get("iteration")),
            f"{x['t']:.3f}", _num(p.get("seconds"), "{:.3f}"),
            fmt_mib(p.get("sent_bytes")), fmt_mib(x.get("data_remaining")),
            _pass_rate(p), fmt_rate(p.get("qemu_dirty_rate_bps")),
            fmt_rate(x.get("bandwidth_bps")),
            (f"{x['downtime_ms']} ms (real)" if x["kind"] == "completed"
             and x.get("downtime_ms") is not None
             else _num(x.get("expected_downtime_ms"), "{} ms")),
            _num(x.get("throttle_pct"), "{} %")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


SHORT_PASS_S = 0.1  # ten of the dirtier's 10 ms steps: one step more or less is 10 %


def _pass_rate(p: dict[str, Any]) -> str:
    """A pass's derived dirty rate; ``~`` marks a pass too short to measure it well."""
    text = fmt_rate(p.get("dirty_rate_bps"))
    if p.get("dirty_rate_bps") is not None and (p.get("seconds") or 0) < SHORT_PASS_S:
        return "~" + text
    return text


PASS_NOTE = ("the bytes remaining after the sync that ended it, less those not yet sent "
             "before it")


def compare_table(docs: Sequence[Doc]) -> str:
    head = ("migration", "partition", "controls", "result", "total s", "downtime ms",
            "iterations", "sent MiB", "dirty MiB/s (mean of passes)")
    rows = [head]
    for d in docs:
        s = d["summary"]
        rows.append((d["id"], d["partition"], controls_label(d["controls"]) or "none",
                     d.get("result") or d["state"], _num(s.get("total_time_s"), "{:.2f}"),
                     _num(s.get("downtime_ms")), _num(s.get("iterations")),
                     _num(None if s.get("bytes_sent") is None else s["bytes_sent"] / MIB,
                          "{:.1f}"),
                     f"{(s.get('pass_dirty_rate_bps') or 0) / MIB:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                     for r in rows)
