"""chsyscfg: change partition (and VIOS) settings (msp, time_ref, migration_disabled) and
partition profiles (memory, processors, processor compatibility mode)."""

from __future__ import annotations

from collections.abc import Sequence

from lpmlab.cli.common import HmcArgumentParser, add_json_option, emit_json, finish, run
from lpmlab.hmc.attributes import read_attribute_file, split_fields


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="chsyscfg", description="Change partition settings.")
    p.add_argument("-r", dest="resource", required=True, choices=["lpar", "prof"],
                   help="lpar: partition/VIOS settings; prof: a partition profile")
    p.add_argument("-m", dest="system", required=True, help="managed system")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("-i", dest="attrs", help='e.g. "name=vios1,msp=1"')
    src.add_argument("-f", dest="attr_file", help="file holding the attributes")
    add_json_option(p, "what was changed")
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    # "is not None": -f "" names a file too (an unreadable one), it is not "no -f"
    fields = split_fields(read_attribute_file(args.attr_file) if args.attr_file is not None
                          else args.attrs)
    from lpmlab.hmc.config import change_lpar
    from lpmlab.hmc.profiles import change_profile
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        args.system = hmc.frame_name(args.system)
        if args.resource == "prof":
            changed = change_profile(hmc, args.system, fields).as_attrs()
        else:
            changed = change_lpar(hmc, args.system, fields)
    finally:
        hmc.close()
    if args.json:
        emit_json({"managed_system": args.system, "resource": args.resource, **changed})
    return 0


def cli() -> None:
    finish(run(main))
