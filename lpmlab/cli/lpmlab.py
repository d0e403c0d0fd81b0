"""lpmlab: the lab's own command (lifecycle, images, demo); HMC commands are separate."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from lpmlab.cli.common import HmcArgumentParser, run


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="lpmlab", description="Live Partition Mobility lab on KVM/libvirt")
    sub = p.add_subparsers(dest="group", required=True)
    lab = sub.add_parser("lab", help="bring the lab up or down, or show it")
    labsub = lab.add_subparsers(dest="verb", required=True)
    up = labsub.add_parser("up", help="create the lab (idempotent)")
    up.add_argument("-t", "--topology", help="topology YAML (default: the built-in lab)")
    labsub.add_parser("down", help="remove everything the lab created")
    st = labsub.add_parser("status", help="what runs where")
    st.add_argument("--json", action="store_true")
    con = labsub.add_parser("console", help="print the tail of a partition's console log")
    con.add_argument("partition")
    con.add_argument("-n", "--lines", type=int, default=40)
    part = sub.add_parser("partition", help="work inside a running partition")
    partsub = part.add_subparsers(dest="verb", required=True)
    push = partsub.add_parser("push", help="install local files (e.g. drmgr hooks) in a "
                              "running partition, over its RMC channel")
    push.add_argument("partition")
    push.add_argument("src", nargs="+", help="local file(s)")
    push.add_argument("dest", help="target path; a directory (ending in /) takes the files "
                      "by name, e.g. /etc/drmgr.d/pmig/")
    push.add_argument("--mode", default=None,
                      help="octal mode (default: the local file's, e.g. 755 for a hook)")
    wl = sub.add_parser("workload", help="set or read a partition's memory-dirtying workload "
                        "(lpm-dirty) over its RMC channel")
    wl.add_argument("partition")
    wl.add_argument("--rate", help="MiB/s to dirty; 0 = idle; max = as fast as it can")
    wl.add_argument("--wss", type=int, help="working set in MiB")
    wl.add_argument("--stop", action="store_true", help="stop the workload")
    wl.add_argument("--json", action="store_true", help="the reading as JSON on stdout")
    rep = sub.add_parser("report", help="a migration's pre-copy telemetry: table, JSON, PNG "
                         "and SVG plots, terminal plots (also after 'lab down')")
    rep.add_argument("migration", nargs="*",
                     help="migration ID (or prefix) or partition name (its latest migration); "
                          "default: the latest migration")
    rep.add_argument("--compare", action="store_true",
                     help="two or more migrations side by side (small multiples)")
    rep.add_argument("-o", "--output", help="folder for the JSON, PNG and SVG files (default: "
                     "the migration's own folder, <state>/migrations/ID; <state>/reports for "
                     "--compare)")
    rep.add_argument("--json", action="store_true", help="the report document on stdout")
    rep.add_argument("--no-plot", action="store_true", help="no PNG/SVG and no terminal plot")
    from lpmlab.cli.fault import add_parser as add_fault_parser

    add_fault_parser(sub)
    img = sub.add_parser("image", help="partition boot images")
    imgsub = img.add_subparsers(dest="verb", required=True)
    b = imgsub.add_parser("build", help="build (or reuse) the partition image")
    b.add_argument("--rebuild", action="store_true")
    demo = sub.add_parser("demo", help="lab up, migrate lpar1 there and back, print the results")
    demo.add_argument("-p", "--partition", default="lpar1")
    demo.add_argument("--dirty-rate", type=int, default=64, help="MiB/s the guest dirties")
    demo.add_argument("--wss", type=int, default=128, help="working set MiB")
    demo.add_argument("--json", action="store_true", help="results as JSON on stdout")
    comp = sub.add_parser("completion", help="print a shell completion script for lpmlab and "
                          "the HMC commands: source <(lpmlab completion bash)")
    comp.add_argument("shell", choices=["bash", "zsh"])
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    if args.group == "lab":
        from lpmlab.cli import lab

        return {"up": lab.up, "down": lab.down, "status": lab.status,
                "console": lab.console}[args.verb](args)
    if args.group == "partition":
        from lpmlab.cli import partition

        return partition.push(args)
    if args.group == "workload":
        from lpmlab.cli.workload import workload

        return workload(args)
    if args.group == "fault":
        from lpmlab.cli.fault import fault

        return fault(args)
    if args.group == "report":
        from lpmlab.cli.report import report

        return report(args)
    if args.group == "image":
        from lpmlab.images import ensure_partition_image

        img = ensure_partition_image(rebuild=args.rebuild)
        print(json.dumps({"digest": img.digest, "kernel": str(img.kernel),
                          "initrd": str(img.initrd), "kernel_version": img.kernel_version},
                         indent=2))
        return 0
    if args.group == "completion":
        from lpmlab.cli.completion import SHELLS

        sys.stdout.write(SHELLS[args.shell]())
        return 0
    if args.group == "demo":
        from lpmlab.cli.progress import MigrationProgress
        from lpmlab.demo import Demo

        return Demo(args.partition, args.dirty_rate, args.wss,
                    observer=MigrationProgress).run(as_json=args.json)
    return 2


def cli() -> None:
    sys.exit(run(main))
