"""lsrefcode: the reference codes of a managed system or of its partitions (HMC syntax).

``lsrefcode -r lpar -m S [--filter "lpar_names=L"] [-n N] [-F refcode]``: per partition its
latest code (``Linux ppc64le`` once its OS runs, ``CA00E...`` while it boots, ``00000000``
when not activated), or its last N codes, newest first.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from lpmlab.cli.common import (
    HmcArgumentParser,
    add_listing_options,
    emit_listing,
    finish,
    run,
    whole_number,
)
from lpmlab.errors import UsageError

# -n's largest value: more than the history holds, and within SQLite's integers
MAX_NUMBER = 1000
WORDS = {f"word{i}": "00000000" for i in range(2, 10)}


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="lsrefcode", description="List reference codes.")
    p.add_argument("-r", dest="resource", required=True, choices=["sys", "lpar"])
    p.add_argument("-m", dest="system", required=True, help="managed system")
    p.add_argument("-s", dest="service_processor", choices=["p", "s"],
                   help="service processor (the lab's frames have one: both are the same)")
    p.add_argument("-n", dest="number", type=whole_number, default=1,
                   help="how many codes per partition, newest first (default 1)")
    add_listing_options(p, filter_help='"lpar_names=a,b" or "lpar_ids=1,2"')
    return p


def stamp(t: float) -> str:
    """The HMC's time_stamp form: MM/DD/YYYY HH:MM:SS (local time)."""
    return time.strftime("%m/%d/%Y %H:%M:%S", time.localtime(t))


def lpar_refcodes(hmc: Any, frame: str, number: int) -> list[dict[str, Any]]:
    from lpmlab.fabric.lab import pidfile_alive
    from lpmlab.hmc import refcodes

    out: list[dict[str, Any]] = []
    for vp in hmc.vios_plans():
        if vp.vios.frame != frame:
            continue
        running = pidfile_alive(vp.dir / "tgtd.pid")
        # a VIOS posts no OS code (as AIX, it leaves it blank) once it runs
        code = "" if running else refcodes.NOT_ACTIVATED
        hmc.store.note_refcode(vp.vios.name, frame, code, time.time())
        for code, t in hmc.store.refcodes(vp.vios.name, number):
            out.append({"lpar_name": vp.vios.name, "lpar_id": vp.vios.lpar_id,
                        "time_stamp": stamp(t), "refcode": code, **WORDS,
                        "fru_call_out_loc_codes": ""})
    infos = hmc.domains_on(frame)
    booting = [i.name for i in infos if i.state == "running"
               and refcodes.boot_stage(hmc.plan.partition(i.name).console_log)[0]
               != refcodes.OS_RUNNING]
    answering = hmc.rmc_states(booting) if booting else {}
    for info in infos:
        now = refcodes.current(info, hmc.plan.partition(info.name).console_log,
                               answering.get(info.name))
        hmc.store.note_refcode(info.name, frame, now.refcode, now.time_stamp)
        lpar_id = int(info.metadata.get("lpar_id", 0))
        for code, t in hmc.store.refcodes(info.name, number):
            out.append({"lpar_name": info.name, "lpar_id": lpar_id, "time_stamp": stamp(t),
                        "refcode": code, **WORDS, "fru_call_out_loc_codes": ""})
    out.sort(key=lambda r: r["lpar_id"])
    return out


def sys_refcodes(hmc: Any, frame: str) -> list[dict[str, Any]]:
    rec = hmc.sys_record(hmc.require_frame(frame))
    # an operating system posts no code; one the HMC cannot reach shows its connection code
    code = "" if rec["state"] == "Operating" else "A7003000"
    # kept as the frame's history, so a code keeps the time it was first seen
    t = hmc.store.note_refcode(f"sys:{frame}", frame, code, time.time())
    return [{"sys_name": frame, "time_stamp": stamp(t), "refcode": code, **WORDS,
             "fru_call_out_loc_codes": ""}]


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    if not 1 <= args.number <= MAX_NUMBER:
        raise UsageError(f"-n {args.number}: give 1 to {MAX_NUMBER} codes per partition",
                         fix="write -n 1 (the latest)")
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        args.system = hmc.frame_name(args.system)
        if args.resource == "sys":
            if args.filter:
                raise UsageError("--filter is only valid with -r lpar", fix="drop --filter")
            recs = sys_refcodes(hmc, args.system)
        else:
            recs = lpar_refcodes(hmc, args.system, args.number)
    finally:
        hmc.close()
    emit_listing(recs, args, ["lpar_names", "lpar_ids"], args.system)
    return 0


def cli() -> None:
    finish(run(main))
