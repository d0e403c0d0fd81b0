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


def dropbear_host_key(path: Path) -> tuple[bytes, str]:
    """A partition's SSH host key in dropbear's format, made once with the host's dropbearkey.

    Returns the key file's bytes (for the partition's initrd) and the OpenSSH public line
    (so the controller can pin it).
    """
    import subprocess

    from lpmlab.errors import FabricError

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        cp = subprocess.run(["dropbearkey", "-t", "ed25519", "-f", str(path)],
                            capture_output=True, text=True)
        if cp.returncode != 0:
            raise FabricError(f"dropbearkey could not create {path}", evidence=cp.stderr,
                              fix="install the host package dropbear-bin (make host)")
    cp = subprocess.run(["dropbearkey", "-y", "-f", str(path)], capture_output=True, text=True)
    pub = next((ln for ln in cp.stdout.splitlines() if ln.startswith("ssh-")), "")
    if not pub:
        raise FabricError(f"cannot read the public half of {path}", evidence=cp.stderr)
    return path.read_bytes(), pub
