"""``python -m lpmlab.images build [--rebuild]``: build or reuse the partition image.

Progress goes to stderr; the result is one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lpmlab.errors import LpmlabError
from lpmlab.images.cache import ensure_partition_image
from lpmlab.images.recipe import recipe_digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lpmlab.images",
                                     description="Build the lpmlab partition boot image.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the image, or reuse the cached one")
    build.add_argument("--rebuild", action="store_true",
                       help="build again even when the cache has this recipe's image")
    build.add_argument("--cache", type=Path, default=None,
                       help="cache directory (default: $LPMLAB_CACHE or /var/cache/lpmlab)")
    sub.add_parser("digest", help="print the recipe digest that names the image")
    args = parser.parse_args(argv)
    try:
        if args.command == "digest":
            print(recipe_digest())
            return 0
        image = ensure_partition_image(args.cache, rebuild=args.rebuild)
    except LpmlabError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    manifest = image.manifest()
    print(json.dumps({
        "digest": image.digest,
        "kernel": str(image.kernel),
        "initrd": str(image.initrd),
        "kernel_version": image.kernel_version,
        "manifest": str(image.directory / "manifest.json"),
        "sizes": manifest.get("sizes", {}),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
