"""Per-lab overlays: a second small initramfs archive appended to the cached base image.

Linux unpacks concatenated initramfs archives in order, later members replacing earlier ones,
so a lab's keys and files ride on top of the shared base without rebuilding it. libvirt points
a domain at one initrd file, hence ``combine`` writes base + overlay into a single file.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lpmlab.images import cpio

# Parents must carry the modes the base image gives them: the kernel re-applies a directory's
# mode when an archive lists it again, and dropbear refuses keys under loose directories.
_DIR_MODES = {"root": 0o700, "root/.ssh": 0o700, "tmp": 0o1777, "etc/dropbear": 0o755}


def write_overlay(files: Mapping[str, tuple[bytes, int]]) -> bytes:
    """A gzip'd newc archive holding ``files`` (image path -> (content, permission bits)).

    Parent directories are added with the base image's modes (0755 for new ones).
    """
    entries: dict[str, cpio.Entry] = {}
    for path, (data, mode) in files.items():
        entry = cpio.regular(path, data, mode & 0o7777)
        entries[entry.path] = entry
        parts = entry.path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            entries.setdefault(parent, cpio.directory(parent, _DIR_MODES.get(parent, 0o755)))
    return cpio.gzip_newc(cpio.tree(entries.values()))


def combine(base_initrd: Path, overlay: bytes, out: Path) -> None:
    """Write ``base_initrd`` followed by ``overlay`` into ``out`` (atomically, mode 0644)."""
    if overlay[:2] != b"\x1f\x8b" and overlay[:6] != cpio.NEWC_MAGIC:
        raise ValueError("overlay is neither a gzip'd nor a plain newc archive")
    base = base_initrd.read_bytes()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(base)
            f.write(b"\0" * (-len(base) % 4))  # archives start 4-byte aligned; zeros are skipped
            f.write(overlay)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def dropbear_ed25519_key(private_key: Any) -> bytes:
    """An Ed25519 host key in dropbear's own file format (what ``dropbear -r`` reads).

    dropbear does not read OpenSSH private key files; its format is the SSH wire encoding
    string "ssh-ed25519", string (32-byte seed || 32-byte public key) — no host tool needed.
    ``private_key``: a ``cryptography`` Ed25519PrivateKey, an OpenSSH/PEM private key file's
    bytes (unencrypted), or a raw 32-byte seed.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key: Any = private_key
    if isinstance(private_key, bytes | bytearray):
        raw = bytes(private_key)
        if len(raw) == 32:
            key = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
        elif raw.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----"):
            key = serialization.load_ssh_private_key(raw, password=None)
        else:
            key = serialization.load_pem_private_key(raw, password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError("dropbear_ed25519_key needs an Ed25519 private key")
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return _ssh_string(b"ssh-ed25519") + _ssh_string(seed + pub)
