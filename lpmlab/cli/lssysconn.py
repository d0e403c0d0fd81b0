"""lssysconn: the managed systems this HMC is connected to (``-r all``), HMC syntax."""

from __future__ import annotations

from collections.abc import Sequence

from lpmlab.cli.common import HmcArgumentParser, add_listing_options, emit_records, finish, run


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="lssysconn", description="List managed system connections.")
    p.add_argument("-r", dest="resource", required=True, choices=["all"])
    add_listing_options(p)
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        recs = []
        for fp in hmc.frames():
            f = fp.frame
            up = hmc.sys_record(fp)["state"] == "Operating"
            recs.append({"resource_type": "sys",
                         "type_model_serial_num": f"{f.type_model}*{f.serial_num}",
                         "sp": "primary", "sp_phys_loc": "unavailable",
                         "ipaddr": str(f.address), "alt_ipaddr": "unavailable",
                         "state": "Connected" if up else "No Connection",
                         "connection_error_code": "" if up else "Connecting  0000-0000-00000000"})
    finally:
        hmc.close()
    emit_records(recs, args.fields, args.header, args.json)
    return 0


def cli() -> None:
    finish(run(main))
