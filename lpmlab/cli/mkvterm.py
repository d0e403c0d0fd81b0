"""mkvterm / rmvterm: a partition's virtual terminal (its vty console), HMC syntax.

``mkvterm -m sys -p name`` attaches the caller's terminal; ``~.`` at the start of a line
leaves. ``rmvterm -m sys -p name`` forces a held terminal closed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from lpmlab import codes
from lpmlab.cli.common import HmcArgumentParser, run, whole_number


def parser(prog: str) -> HmcArgumentParser:
    what = "Open" if prog == "mkvterm" else "Close"
    p = HmcArgumentParser(prog=prog, description=f"{what} a partition's virtual terminal.")
    p.add_argument("-m", dest="system", required=True, help="managed system")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("-p", dest="name", help="partition name")
    who.add_argument("--id", dest="lpar_id", type=whole_number, help="partition ID")
    return p


# what the HMC's mkvterm prints once the terminal is open (clients wait for the last line)
OPEN_BANNER = b"\r\n Open in progress \r\n\r\n Open Completed.\r\n"


def _target(prog: str, argv: Sequence[str]) -> tuple[str, str | None]:
    """(frame URI, partition name) of a partition named on the command line; the name is
    None for ``rmvterm`` of a partition that is not running (it has no terminal to close)."""
    from lpmlab.hmc.profiles import find_partition
    from lpmlab.hmc.system import Hmc

    args = parser(prog).parse_args(argv)
    hmc = Hmc.open()
    try:
        name = args.name
        if name is None:
            by_id = {r["lpar_id"]: r["name"] for r in hmc.lpar_records(args.system, rmc=False)}
            name = by_id.get(args.lpar_id, f"with ID {args.lpar_id}")
        args.system = hmc.frame_name(args.system)
        info = find_partition(hmc, args.system, name)
        if info.state not in ("running", "paused") and prog == "rmvterm":
            return hmc.plan.frame(args.system).uri, None
        if info.state not in ("running", "paused"):
            raise codes.error("HSCLL447", obj=name, sys=args.system)
        return hmc.plan.frame(args.system).uri, name
    finally:
        hmc.close()


def mkvterm(argv: Sequence[str]) -> int:
    from lpmlab.adapter.console import ConsoleSession
    from lpmlab.errors import HypervisorError

    uri, name = _target("mkvterm", argv)
    assert name is not None

    def opened() -> None:
        os.write(1, OPEN_BANNER)

    try:
        reason = ConsoleSession(uri, name).run(on_open=opened)
    except HypervisorError as exc:
        if "Active console session" in exc.message:
            raise codes.error("HSCLL446", obj=name, sys=argv_system(argv)) from exc
        raise
    print(f"\r\nmkvterm: {name}: {reason}", file=sys.stderr)
    return 0


def argv_system(argv: Sequence[str]) -> str:
    return parser("mkvterm").parse_args(argv).system


def rmvterm(argv: Sequence[str]) -> int:
    from lpmlab.adapter.console import force_close

    uri, name = _target("rmvterm", argv)
    if name is not None:
        force_close(uri, name)
    return 0


def cli_mkvterm() -> None:
    sys.exit(run(mkvterm))


def cli_rmvterm() -> None:
    sys.exit(run(rmvterm))
