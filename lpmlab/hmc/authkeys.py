"""SSH key trust of an HMC (``mkauthkeys``): the keys its user accepts, and key exchange with
another HMC so that a remote migration can ask it without a password.

The HMC user's authorized keys are a file of the HMC's /etc/ssh (root-owned: sshd's
StrictModes accepts it, the user cannot edit it but through this command). This HMC's own
key, which it presents to other HMCs, is its ``keys/id_ed25519``.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from lpmlab import codes
from lpmlab.atomic import replace_file
from lpmlab.errors import UsageError
from lpmlab.fabric import plan as P
from lpmlab.hmc.remote_hmc import RemoteHmc

KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
             "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
             "sk-ecdsa-sha2-nistp256@openssh.com")

# the wire fields of each type's blob: its name, then the key (RFC 4253, 5656, 8709; PROTOCOL.u2f)
KEY_FIELDS = {"ssh-ed25519": 2, "ssh-rsa": 3, "ecdsa-sha2-nistp256": 3,
              "ecdsa-sha2-nistp384": 3, "ecdsa-sha2-nistp521": 3,
              "sk-ssh-ed25519@openssh.com": 3, "sk-ecdsa-sha2-nistp256@openssh.com": 4}


@dataclass(frozen=True)
class AuthorizedKey:
    kind: str
    blob: str
    comment: str = ""

    def line(self) -> str:
        return " ".join(x for x in (self.kind, self.blob, self.comment) if x)


def parse_key(text: str) -> AuthorizedKey:
    """An OpenSSH public key line, checked: a known type whose base64 blob says that type."""
    parts = text.strip().split(None, 2)
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise codes.error("HSCLL475", detail=f"not an SSH public key: {text.strip()[:60]!r}",
                          fix="give the whole line of a .pub file, e.g. \"ssh-ed25519 AAAA... "
                              "user@host\" (quoted)")
    try:
        fields = _wire_fields(base64.b64decode(parts[1], validate=True))
        embedded = fields[0].decode()
    except (binascii.Error, ValueError, IndexError) as exc:
        raise codes.error("HSCLL475", detail="the key's base64 part is damaged",
                          fix="copy the .pub line again, whole") from exc
    if embedded != parts[0]:
        raise codes.error("HSCLL475", detail=f"the key says {parts[0]} but holds a {embedded} "
                          "key", fix="copy the .pub line again, whole")
    # a blob that only names its type (or is cut short) holds no key: sshd would never match it
    if len(fields) != KEY_FIELDS[embedded] or (embedded.endswith("ed25519") and
                                              len(fields[1]) != 32):
        raise codes.error("HSCLL475", detail=f"the {embedded} key is incomplete (cut short?)",
                          fix="copy the .pub line again, whole")
    return AuthorizedKey(parts[0], parts[1], parts[2] if len(parts) > 2 else "")


def _wire_fields(raw: bytes) -> list[bytes]:
    """The length-prefixed strings of an SSH public key blob (ValueError: not such a blob)."""
    out, pos = [], 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise ValueError("a length is cut short")
        (n,) = struct.unpack(">I", raw[pos:pos + 4])
        if pos + 4 + n > len(raw):
            raise ValueError("a field is cut short")
        out.append(raw[pos + 4:pos + 4 + n])
        pos += 4 + n
    return out


def read(console: P.ConsolePlan) -> list[AuthorizedKey]:
    try:
        text = console.authorized_keys.read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            try:
                out.append(parse_key(line))
            except UsageError:
                continue
    return out


def _write(console: P.ConsolePlan, keys: list[AuthorizedKey]) -> None:
    replace_file(console.authorized_keys, "".join(k.line() + "\n" for k in keys))


def add(console: P.ConsolePlan, text: str) -> bool:
    """Accept the key for the HMC user; False when it was accepted already."""
    key = parse_key(text)
    keys = read(console)
    if any(k.blob == key.blob for k in keys):
        return False
    _write(console, [*keys, key])
    return True


def remove(console: P.ConsolePlan, what: str) -> int:
    """Remove the key given (a key line) or the keys whose comment is ``what``
    (``user@host``); how many went."""
    keys = read(console)
    try:
        blob = parse_key(what).blob
        kept = [k for k in keys if k.blob != blob]
    except UsageError:
        kept = [k for k in keys if k.comment != what.strip()]
    gone = len(keys) - len(kept)
    if not gone:
        raise codes.error("HSCLL476", obj=console.name, key=what.strip()[:60])
    _write(console, kept)
    return gone


def own_key(console: P.ConsolePlan) -> str:
    return console.key.with_suffix(".pub").read_text().strip()


def exchange(console: P.ConsolePlan, address: str, user: str, password: str,
             both_ways: bool) -> list[str]:
    """``mkauthkeys --ip``: log on to the remote HMC with the password and leave this HMC's
    key there (``both_ways``: and take the remote HMC's key here); what was done."""
    done = []
    with RemoteHmc(console, address, user) as remote:
        remote.connect(password=password)
        res = remote.run(["mkauthkeys", "-a", own_key(console)])
        if res.rc != 0:
            raise codes.error("HSCLL472", obj=address,
                              detail=f"it did not accept this HMC's key: {res.stderr.strip()}")
        done.append(f"{console.name}'s key accepted by {user}@{address}")
        if both_ways:
            theirs = remote.call("pubkey")
            add(console, theirs["key"])
            done.append(f"{user}@{address}'s key ({theirs.get('hmc')}) accepted here")
    return done


def test(console: P.ConsolePlan, address: str, user: str) -> None:
    """``mkauthkeys --test``: key authentication to the remote HMC works (else HSCL3653)."""
    with RemoteHmc(console, address, user) as remote:
        remote.connect()
        remote.call("ping")
