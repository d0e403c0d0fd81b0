"""migrpeer: what one HMC asks another during a remote migration (``migrlpar --ip``).

``migrpeer OP PAYLOAD`` with PAYLOAD base64url-encoded JSON; the answer is JSON on stdout,
an error the usual ``CODE message`` on stderr. The source HMC runs it over SSH as the HMC
user, with key trust set up by ``mkauthkeys``; see lpmlab.hmc.remote for the operations.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence

from lpmlab.cli.common import HmcArgumentParser, finish, run
from lpmlab.errors import UsageError


def parser() -> HmcArgumentParser:
    p = HmcArgumentParser(prog="migrpeer", description="HMC-to-HMC side of remote migration "
                          "(run by the source HMC).")
    p.add_argument("op", help="ping, pubkey, snapshot, prepare, complete, placement, remove, "
                              "recover")
    p.add_argument("payload", nargs="?", default="", help="base64url JSON")
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    try:
        payload = json.loads(base64.urlsafe_b64decode(args.payload.encode()) or b"{}")
    except (ValueError, binascii.Error) as exc:
        raise UsageError("migrpeer: the payload is not base64url JSON",
                         fix="it is written by the source HMC, not by hand") from exc
    if not isinstance(payload, dict):
        raise UsageError("migrpeer: the payload must be a JSON object")
    from lpmlab.hmc import remote
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    try:
        answer = remote.run(hmc, args.op, payload)
    finally:
        hmc.close()
    print(json.dumps(answer))
    return 0


def cli() -> None:
    finish(run(main))
