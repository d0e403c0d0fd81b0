"""The initramfs container format: newc ("070701") cpio, written and read in pure Python.

Pure Python so the host needs no ``cpio`` package, and deterministic (fixed mtime, inode numbers
in path order) so the same inputs give the same archive bytes.
"""

from __future__ import annotations

import gzip
import stat
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

NEWC_MAGIC = b"070701"
TRAILER = "TRAILER!!!"
_HEADER_LEN = 110


@dataclass(frozen=True)
class Entry:
    """One archive member. ``path`` has no leading slash; ``mode`` includes the type bits."""

    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)
    uid: int = 0
    gid: int = 0

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)


def directory(path: str, perm: int = 0o755) -> Entry:
    return Entry(_norm(path), stat.S_IFDIR | perm)


def regular(path: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(_norm(path), stat.S_IFREG | perm, data)


def symlink(path: str, target: str) -> Entry:
    return Entry(_norm(path), stat.S_IFLNK | 0o777, target.encode())


def chardev(path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(_norm(path), stat.S_IFCHR | perm, rdev=(major, minor))


def _norm(path: str) -> str:
    norm = path.strip("/")
    if not norm or any(part in ("", ".", "..") for part in norm.split("/")):
        raise ValueError(f"bad archive path: {path!r}")
    return norm


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _header(ino: int, entry: Entry, name: bytes, nlink: int) -> bytes:
    fields = (
        ino, entry.mode, entry.uid, entry.gid, nlink, 0,  # mtime 0: reproducible archives
        len(entry.data), 0, 0, entry.rdev[0], entry.rdev[1], len(name) + 1, 0,
    )
    return NEWC_MAGIC + b"".join(b"%08X" % f for f in fields)


def newc_archive(entries: Iterable[Entry]) -> bytes:
    """An uncompressed newc archive of ``entries`` in the order given, with its trailer."""
    out = bytearray()
    for ino, entry in enumerate(entries, start=1):
        if entry.is_dir and entry.data:
            raise ValueError(f"directory {entry.path} cannot carry data")
        name = entry.path.encode()
        out += _header(ino, entry, name, 2 if entry.is_dir else 1)
        out += name + b"\0" + _pad4(_HEADER_LEN + len(name) + 1)
        out += entry.data + _pad4(len(entry.data))
    trailer = Entry(TRAILER, 0)
    out += _header(0, trailer, TRAILER.encode(), 1)
    out += TRAILER.encode() + b"\0" + _pad4(_HEADER_LEN + len(TRAILER) + 1)
    return bytes(out)


def gzip_newc(entries: Iterable[Entry]) -> bytes:
    """A gzip'd newc archive, the form the kernel unpacks as an initramfs (mtime 0 in gzip too)."""
    return gzip.compress(newc_archive(entries), compresslevel=9, mtime=0)


def tree(entries: Iterable[Entry]) -> list[Entry]:
    """Entries with missing parent directories added, sorted so every parent comes first.

    The kernel creates members in archive order and does not create parents itself.
    Later duplicates of a path replace earlier ones.
    """
    by_path: dict[str, Entry] = {}
    for entry in entries:
        by_path[entry.path] = entry
    for path in list(by_path):
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            by_path.setdefault(parent, directory(parent))
    return [by_path[p] for p in sorted(by_path)]


def read_newc(data: bytes) -> list[Entry]:
    """Parse uncompressed newc archives (several may follow each other, zero padding between).

    Used by the tests and by ``combine`` checks; it is strict so a malformed archive fails here
    rather than silently in the guest kernel.
    """
    entries: list[Entry] = []
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # padding between concatenated archives
            pos += 1
            continue
        if data[pos:pos + 6] != NEWC_MAGIC:
            raise ValueError(f"no newc header at offset {pos}")
        fields = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, uid, gid, size = fields[1], fields[2], fields[3], fields[6]
        rdev = (fields[9], fields[10])
        namesize = fields[11]
        name_start = pos + _HEADER_LEN
        name = data[name_start:name_start + namesize - 1].decode()
        pos = name_start + namesize
        pos += -pos % 4
        body = data[pos:pos + size]
        if len(body) != size:
            raise ValueError(f"truncated member {name!r}")
        pos += size
        pos += -pos % 4
        if name == TRAILER:
            continue
        entries.append(Entry(name, mode, body, rdev, uid, gid))
    return entries


def read_initrd(data: bytes) -> list[Entry]:
    """All members of an initrd made of concatenated (gzip'd or plain) newc archives."""
    entries: list[Entry] = []
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            pos += 1
            continue
        if data[pos:pos + 2] == b"\x1f\x8b":
            dec = zlib.decompressobj(wbits=31)
            plain = dec.decompress(data[pos:])
            if not dec.eof:
                raise ValueError(f"truncated gzip member at offset {pos}")
            entries += read_newc(plain)
            pos = len(data) - len(dec.unused_data)
        else:
            raise ValueError(f"unknown initrd member at offset {pos} (only gzip is written)")
    return entries
