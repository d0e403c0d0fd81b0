"""``lpmlab report``: a migration's pre-copy telemetry as a table, JSON, a PNG and a
terminal plot; ``--compare`` overlays several migrations."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lpmlab.cli.common import emit
from lpmlab.errors import UsageError


def _load(hmc: Any, refs: list[str]) -> list[dict[str, Any]]:
    from lpmlab.report.document import build

    docs = []
    for ref in refs or [""]:
        if ref:
            rec = hmc.store.find(ref)
        else:
            latest = hmc.store.latest(None, 1)
            rec = latest[0] if latest else None
        if rec is None:
            raise UsageError(f"no migration {ref or 'at all'} in the HMC's records",
                             code="HSCL8012",
                             fix="give a migration ID or a partition name (the latest of its "
                                 "migrations); list them with 'lslparmigr -r lpar -m sys1' or "
                                 "see the ID printed by 'migrlpar -o m -v'")
        docs.append(build(rec, hmc.store.samples(rec.id)))
    return docs


def report(args: argparse.Namespace) -> int:
    from lpmlab.hmc.system import Hmc
    from lpmlab.report import document, plot, termplot

    if args.compare and len(args.migration) < 2:
        raise UsageError("--compare needs two or more migrations",
                         fix="e.g. lpmlab report --compare ID1 ID2 (IDs or partition names)")
    if not args.compare and len(args.migration) > 1:
        raise UsageError("one migration per report", fix="add --compare to overlay several")
    hmc = Hmc.open()
    try:
        docs = _load(hmc, args.migration)
        out_dir = Path(args.output) if args.output else hmc.plan.dir / "reports"
    finally:
        hmc.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = ("compare-" + "-".join(d["id"][:6] for d in docs)) if args.compare else docs[0]["id"]
    data = {"migrations": docs} if args.compare else docs[0]
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    png_path = None if args.no_plot else plot.render_png(docs, out_dir / f"{stem}.png")
    if args.json:
        emit(json.dumps(data))
    else:
        text = document.compare_table(docs) if args.compare else document.table(docs[0])
        if not args.no_plot:
            text += "\n\n" + termplot.render_terminal(docs)
        emit(text)
    print(f"wrote {json_path}" + (f" and {png_path}" if png_path else ""), file=sys.stderr)
    return 0
