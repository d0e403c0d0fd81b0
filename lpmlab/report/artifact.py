"""Draw the report of one migration's artifact folder: report.json, report.png, report.svg.

``python -m lpmlab.report.artifact FOLDER`` (started detached when a migration is saved, so
the command that migrated does not wait for matplotlib).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lpmlab.hmc.store import MigrationRecord


def draw(folder: Path) -> list[Path]:
    from lpmlab.report.document import build
    from lpmlab.report.plot import render

    data = json.loads((folder / "record.json").read_text())
    data.pop("hmc", None)
    samples = json.loads((folder / "samples.json").read_text())
    doc = build(MigrationRecord(**data), samples)
    (folder / "report.json").write_text(json.dumps(doc, indent=1) + "\n")
    return [folder / "report.json", *render(doc, folder / "report")]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m lpmlab.report.artifact FOLDER", file=sys.stderr)
        return 2
    draw(Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
