"""SSH keys the lab generates: the controller's client key and each partition's host key.

paramiko cannot generate Ed25519 keys, so cryptography does it; both are kept in OpenSSH
format on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def ensure_keypair(path: Path, comment: str) -> tuple[Path, str]:
    """Create ``path`` (private, 0600) and ``path.pub`` once; return (path, public line)."""
    pub = path.with_suffix(".pub")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        priv_bytes = key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(priv_bytes)
        pub_line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                 serialization.PublicFormat.OpenSSH).decode()
        pub.write_text(f"{pub_line} {comment}\n")
    return path, pub.read_text().strip()


def ensure_password(path: Path, given: str | None) -> str:
    """An HMC user's password, kept in ``path`` (0600): ``given`` (the topology's), else the
    one generated at the first ``lab up``."""
    import secrets

    try:
        current = path.read_text().strip()
    except OSError:
        current = ""
    # letters and digits only: a password starting with '-' reads as an option to clients
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    want = given or current or "".join(secrets.choice(alphabet) for _ in range(12))
    if want != current:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(want + "\n")
    return want


def dropbear_host_key(path: Path) -> tuple[bytes, str]:
    """A partition's SSH host key, made once: (dropbear-format bytes, OpenSSH public line).

    The key is kept in OpenSSH format at ``path``; the partition's initrd gets it in
    dropbear's own format, and the controller pins the public half.
    """
    from lpmlab.images import dropbear_ed25519_key

    _, pub = ensure_keypair(path, "")
    return dropbear_ed25519_key(path.read_bytes()), " ".join(pub.split()[:2])
