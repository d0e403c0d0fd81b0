"""lshmc: this HMC's version (-V), vital product data (-v) and network settings (-n).

The ``-V`` text has the layout of a real HMC's (clients read it line by line: ``Version:``,
``Release:``, ``Service Pack:`` as an integer, ``HMC Build level``, fix lines with `` - ``);
the level it claims is the HMC level lpmlab models, and the fix line names lpmlab itself.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from lpmlab import __version__
from lpmlab.cli.common import (
    HmcArgumentParser,
    add_json_option,
    emit,
    emit_json,
    emit_records,
    finish,
    run,
)
from lpmlab.errors import UsageError

HMC_VERSION, HMC_RELEASE, HMC_SERVICE_PACK = 10, 3, 1060
HMC_MACHINE_TYPE = "7063-CR2"


def version_text(build_level: str) -> str:
    base = f"V{HMC_VERSION}R{HMC_RELEASE}"
    return "\n".join([
        f'"version= Version: {HMC_VERSION}',
        f" Release: {HMC_RELEASE}",
        f" Service Pack: {HMC_SERVICE_PACK}",
        f"HMC Build level {build_level}",
        f"LPMLAB{__version__.replace('.', '')} - lpmlab {__version__} as HMC {base} "
        f"M{HMC_SERVICE_PACK}",
        f'","base_version={base}',
        '"'])


def version_record(build_level: str) -> dict[str, Any]:
    """-V for --json."""
    return {"version": HMC_VERSION, "release": HMC_RELEASE, "service_pack": HMC_SERVICE_PACK,
            "build_level": build_level, "base_version": f"V{HMC_VERSION}R{HMC_RELEASE}",
            "lpmlab_version": __version__}


def vpd_fields(hmc: Any) -> list[tuple[str, str]]:
    """The vital product data's keywords and values, in the HMC's order."""
    c = hmc.console.console
    return [
        ("FC", "????????"), ("VC", "20.0"),
        ("N2", time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(hmc.state.created))),
        ("FC", "????????"), ("DS", "Hardware Management Console"),
        ("TM", HMC_MACHINE_TYPE), ("SE", f"LPM{c.index + 1:04d}"), ("MN", "lpmlab"),
        ("PN", "N/A"), ("OS", "Embedded Operating Systems"), ("NA", str(c.address)),
        ("FW", f"IBM Version: {HMC_VERSION} Release: {HMC_RELEASE} Service Pack: "
               f"{HMC_SERVICE_PACK}"),
        ("RM", f"V{HMC_VERSION}R{HMC_RELEASE}.{HMC_SERVICE_PACK}.0")]


def vpd_text(hmc: Any) -> str:
    lines = [f"*{k} {v}" for k, v in vpd_fields(hmc)]
    return "\n".join(['"vpd=' + lines[0], *lines[1:], '"'])


def vpd_record(hmc: Any) -> dict[str, str]:
    """-v for --json: each keyword once (the repeated FC is one value)."""
    return dict(vpd_fields(hmc))


def network_record(hmc: Any) -> dict[str, Any]:
    c = hmc.console
    lab = hmc.topology.lab.subnet
    host_link = c.ns_end.split("/")[0]
    return {
        "hostname": c.name, "domain": f"{hmc.topology.name}.lpmlab",
        "ipaddr": [str(c.console.address), host_link],
        "networkmask": [str(lab.netmask), "255.255.255.252"],
        "gateway": "", "nameserver": "", "domainsuffix": "",
        "ssh": "enable", "remote_webui_access": "disable", "lpar_comm": str(c.console.address),
        "eth0": f"{c.console.address}/{lab.prefixlen}", "host0": c.ns_end,
    }


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="lshmc", description="List this HMC's settings.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("-V", dest="version", action="store_true", help="version")
    what.add_argument("-v", dest="vpd", action="store_true", help="vital product data")
    what.add_argument("-n", dest="network", action="store_true", help="network settings")
    p.add_argument("-F", dest="fields")
    p.add_argument("--header", action="store_true")
    add_json_option(p, "the same information")
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    if (args.fields or args.header) and not args.network:
        raise UsageError("-F and --header are only valid with -n", fix="drop them")
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        if args.version:
            level = time.strftime("%Y%m%d%H%M", time.gmtime(hmc.state.created))
            if args.json:
                emit_json(version_record(level))
            else:
                emit(version_text(level))
        elif args.vpd:
            if args.json:
                emit_json(vpd_record(hmc))
            else:
                emit(vpd_text(hmc))
        else:
            emit_records([network_record(hmc)], args.fields, args.header, args.json)
    finally:
        hmc.close()
    return 0


def cli() -> None:
    finish(run(main))
