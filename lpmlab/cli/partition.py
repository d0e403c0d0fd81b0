"""``lpmlab partition push``: install local files in a running partition (hooks, apps)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lpmlab.cli.common import unknown_partition
from lpmlab.errors import UsageError


def push(args: argparse.Namespace) -> int:
    from lpmlab.fabric.lab import Lab, load_state
    from lpmlab.rmc.files import push_files

    srcs = [Path(s) for s in args.src]
    for s in srcs:
        if not s.is_file():
            raise UsageError(f"{s} is not a readable file",
                             fix="name existing local files to push")
    to_dir = args.dest.endswith("/")
    if len(srcs) > 1 and not to_dir:
        raise UsageError("several files go to a directory", fix="end the target with '/'")
    if not args.dest.startswith("/"):
        raise UsageError(f"{args.dest}: the target must be an absolute path",
                         fix="e.g. /etc/drmgr.d/pmig/")
    try:
        mode_override = int(args.mode, 8) if args.mode else None
    except ValueError:
        raise UsageError(f"--mode {args.mode}: not an octal mode", fix="e.g. --mode 755") \
            from None
    files: dict[str, tuple[str | bytes, int]] = {}
    for s in srcs:
        target = args.dest + s.name if to_dir else args.dest
        files[target] = (s.read_bytes(), mode_override or (s.stat().st_mode & 0o7777))
    plan, state = load_state()
    lab = Lab(plan)
    try:
        plan.partition(args.partition)
    except KeyError:
        raise unknown_partition(args.partition) from None
    ch = lab.rmc(args.partition, state)
    try:
        push_files(ch, files)
    finally:
        ch.close()
    for target in files:
        print(f"{args.partition}:{target}", file=sys.stderr)
    return 0
