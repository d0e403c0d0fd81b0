"""mkauthkeys: SSH key trust for this HMC's user and between HMCs (HMC syntax).

- ``mkauthkeys -a "KEY"`` / ``--add``: accept a public key for logins as the HMC user;
  ``-r "KEY"`` or ``-r user@host`` / ``--remove``: stop accepting it.
- ``mkauthkeys --ip HMC [-u USER] [--passwd PW] [-g]``: log on to the remote HMC as USER with
  the password (asked for on a terminal when not given) and leave this HMC's key there, so
  that ``migrlpar --ip HMC`` can ask it without a password; ``-g`` also takes the remote
  HMC's key here (trust both ways).
- ``mkauthkeys --test --ip HMC [-u USER]``: exit 0 when key authentication to the remote HMC
  works, else ``HSCL3653``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from lpmlab import codes
from lpmlab.cli.common import (
    HmcArgumentParser,
    add_json_option,
    emit_json,
    finish,
    read_secret,
    run,
)
from lpmlab.errors import UsageError
from lpmlab.topology import HMC_USER


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="mkauthkeys", description="Manage SSH key authentication.")
    what = p.add_mutually_exclusive_group()
    what.add_argument("-a", "--add", dest="add", metavar="KEY", help="accept this public key")
    what.add_argument("-r", "--remove", dest="remove", metavar="KEY|USER@HOST",
                      help="stop accepting this key (or the keys with this comment)")
    what.add_argument("--test", action="store_true",
                      help="with --ip: check key authentication to the remote HMC")
    p.add_argument("--ip", dest="ip", help="the remote HMC (its address or lab name)")
    p.add_argument("-u", dest="user", help=f"user on the remote HMC (default {HMC_USER})")
    p.add_argument("--passwd", dest="password", help="that user's password")
    p.add_argument("-g", dest="both", action="store_true",
                   help="with --ip: trust both ways (the remote HMC's key accepted here too)")
    p.add_argument("-t", dest="key_type", choices=["rsa", "dsa", "ecdsa", "ed25519"],
                   help="key type of this HMC's key (the lab's HMCs use ed25519)")
    add_json_option(p, "what was done")
    return p


def _joined(argv: Sequence[str]) -> list[str]:
    """``--passwd PW`` as ``--passwd=PW``: a password may start with '-', which argparse
    would take for an option."""
    out, it = [], iter(argv)
    for a in it:
        out.append(f"--passwd={next(it, '')}" if a == "--passwd" else a)
    return out


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(_joined(argv))
    if (args.add or args.remove) and (args.ip or args.both or args.password):
        raise UsageError("-a and -r change this HMC's own keys: they take no --ip, --passwd "
                         "or -g", fix="run them without those options")
    if not (args.add or args.remove or args.ip):
        raise UsageError("mkauthkeys needs -a, -r or --ip",
                         fix='e.g. mkauthkeys --ip hmc2 -u hscroot, or mkauthkeys -a "KEY"')
    if args.test and (args.password or args.both):
        raise UsageError("--test takes no --passwd or -g", fix="drop them")
    if args.key_type not in (None, "ed25519"):
        raise UsageError(f"-t {args.key_type}: the lab's HMCs have ed25519 keys",
                         fix="drop -t, or write -t ed25519")
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        done = _act(args, hmc)
    finally:
        hmc.close()
    if args.json:
        emit_json({"hmc": hmc.console.name, **done})
    return 0


def _act(args: argparse.Namespace, hmc: Any) -> dict[str, Any]:
    """Do what the options ask; what was done, for --json."""
    from lpmlab.hmc import authkeys
    from lpmlab.hmc.remote_hmc import resolve

    console = hmc.console
    if args.add:
        if args.user not in (None, console.console.user):
            raise codes.error("HSCL350B", obj=console.name, user=args.user,
                              hmc_user=console.console.user)
        return {"added": authkeys.add(console, args.add)}
    if args.remove:
        return {"removed": authkeys.remove(console, args.remove)}
    address = resolve(hmc.topology, args.ip)
    user = args.user or HMC_USER
    if args.test:
        authkeys.test(console, address, user)
        return {"remote_hmc": address, "user": user, "key_authentication": True}
    password = args.password
    if password is None:
        password = read_secret(f"Enter the password for user {user} on the remote host "
                               f"{args.ip}: ")
    return {"remote_hmc": address, "user": user,
            "done": authkeys.exchange(console, address, user, password, args.both)}


def cli() -> None:
    finish(run(main))
