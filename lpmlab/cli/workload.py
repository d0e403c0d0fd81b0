"""``lpmlab workload``: set or read a partition's memory-dirtying workload over RMC."""

from __future__ import annotations

import argparse
import json

from lpmlab.cli.common import emit, unknown_partition
from lpmlab.errors import UsageError


def workload(args: argparse.Namespace) -> int:
    from lpmlab.hmc.system import Hmc
    from lpmlab.hmc.workload import Workload, parse_rate

    rate = parse_rate(args.rate) if args.rate is not None else None
    if args.stop and (rate is not None or args.wss is not None):
        raise UsageError("--stop takes no --rate or --wss", fix="give --stop alone")
    hmc = Hmc.open()
    try:
        try:
            hmc.topology.partition(args.partition)
        except KeyError:
            raise unknown_partition(args.partition) from None
        ch = hmc.rmc(args.partition)
        try:
            w = Workload(ch)
            if args.stop:
                state = w.stop()
            elif rate is not None or args.wss is not None:
                state = w.set(rate, args.wss)
            else:
                state = w.read()
        finally:
            ch.close()
    finally:
        hmc.close()
    emit(json.dumps(state.as_dict()) if args.json else state.render(args.partition))
    return 0
