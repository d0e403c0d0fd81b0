"""``lpmlab report``: a migration's pre-copy telemetry as a table, JSON, a PNG and a
terminal plot; ``--compare`` overlays several migrations."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lpmlab import codes
from lpmlab.cli.common import emit
from lpmlab.errors import UsageError


def _load(hmc: Any, refs: list[str]) -> list[dict[str, Any]]:
    """Each migration's report document: from the HMC's records, else from its artifact
    folder (kept after ``lab down``)."""
    from lpmlab.hmc import artifacts
    from lpmlab.report.document import build

    docs = []
    for ref in refs or [""]:
        rec, samples = None, []
        if hmc is not None:
            if ref:
                rec = hmc.store.find(ref)
            else:
                latest = hmc.store.latest(None, 1)
                rec = latest[0] if latest else None
            if rec is not None:
                samples = hmc.store.samples(rec.id)
        if rec is None:
            kept = artifacts.load(ref)
            if kept is not None:
                rec, samples = kept
        if rec is None:
            raise codes.error("LPM1011", obj=ref or "at all", folder=artifacts.root())
        docs.append(build(rec, samples))
    return docs


def report(args: argparse.Namespace) -> int:
    from lpmlab import paths
    from lpmlab.errors import LabNotRunningError
    from lpmlab.hmc import artifacts
    from lpmlab.report import document, plot, termplot

    if args.compare and len(args.migration) < 2:
        raise UsageError("--compare needs two or more migrations",
                         fix="e.g. lpmlab report --compare ID1 ID2 (IDs or partition names)")
    if not args.compare and len(args.migration) > 1:
        raise UsageError("one migration per report", fix="add --compare to overlay several")
    hmc = None
    try:
        from lpmlab.hmc.system import Hmc

        hmc = Hmc.open()
    except LabNotRunningError:
        pass  # the lab is down: its migrations' folders remain
    try:
        docs = _load(hmc, args.migration)
    finally:
        if hmc is not None:
            hmc.close()
    if args.output:
        out_dir = Path(args.output)
    elif args.compare:
        out_dir = paths.state_root() / "reports"
    else:
        out_dir = artifacts.folder(docs[0]["id"])
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = ("compare-" + "-".join(d["id"][:6] for d in docs)) if args.compare else \
        (docs[0]["id"] if args.output else "report")
    data = {"migrations": docs} if args.compare else docs[0]
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    plots = [] if args.no_plot else plot.render(docs, out_dir / stem)
    if args.json:
        emit(json.dumps(data))
    else:
        text = document.compare_table(docs) if args.compare else document.table(docs[0])
        if not args.no_plot:
            text += "\n\n" + termplot.render_terminal(docs)
        emit(text)
    print(f"wrote {', '.join(str(p) for p in [json_path, *plots])}", file=sys.stderr)
    return 0
