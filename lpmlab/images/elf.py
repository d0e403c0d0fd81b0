"""Just enough ELF reading for the image: a binary's loader and libraries, a module's .modinfo.

Reading these ourselves means the host needs neither a ppc64el ``ldd`` nor ``modinfo`` (kmod).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

_PT_INTERP = 3
_SHT_DYNAMIC = 6
_DT_NEEDED = 1


class NotElfError(ValueError):
    pass


@dataclass(frozen=True)
class _Section:
    name: str
    type: int
    offset: int
    size: int
    link: int


class Elf:
    """A parsed ELF file (32/64-bit, either byte order), kept in memory."""

    def __init__(self, data: bytes) -> None:
        if data[:4] != b"\x7fELF":
            raise NotElfError("not an ELF file")
        self.data = data
        self.is64 = data[4] == 2
        self.endian = "<" if data[5] == 1 else ">"
        if self.is64:
            (self.e_machine,) = struct.unpack_from(self.endian + "H", data, 18)
            phoff, shoff = struct.unpack_from(self.endian + "QQ", data, 32)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(
                self.endian + "HHHHH", data, 54)
        else:
            (self.e_machine,) = struct.unpack_from(self.endian + "H", data, 18)
            phoff, shoff = struct.unpack_from(self.endian + "II", data, 28)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(
                self.endian + "HHHHH", data, 42)
        self._phdrs = [self._phdr(phoff + i * phentsize) for i in range(phnum)]
        raw = [self._shdr(shoff + i * shentsize) for i in range(shnum)] if shoff else []
        names = raw[shstrndx] if raw and shstrndx < len(raw) else None
        self.sections: list[_Section] = []
        for name_off, typ, off, size, link in raw:
            name = self._cstr(names[2] + name_off) if names else ""
            self.sections.append(_Section(name, typ, off, size, link))

    @classmethod
    def read(cls, path: Path) -> Elf:
        return cls(path.read_bytes())

    def _phdr(self, off: int) -> tuple[int, int, int]:
        if self.is64:
            p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from(
                self.endian + "IIQQQQ", self.data, off)
        else:
            p_type, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from(
                self.endian + "IIIII", self.data, off)
        return p_type, p_offset, p_filesz

    def _shdr(self, off: int) -> tuple[int, int, int, int, int]:
        if self.is64:
            name, typ, _flags, _addr, offset, size, link = struct.unpack_from(
                self.endian + "IIQQQQI", self.data, off)
        else:
            name, typ, _flags, _addr, offset, size, link = struct.unpack_from(
                self.endian + "IIIIIII", self.data, off)
        return name, typ, offset, size, link

    def _cstr(self, off: int) -> str:
        end = self.data.index(b"\0", off)
        return self.data[off:end].decode("utf-8", "replace")

    def section(self, name: str) -> bytes | None:
        for s in self.sections:
            if s.name == name:
                return self.data[s.offset:s.offset + s.size]
        return None

    @property
    def interpreter(self) -> str | None:
        """The dynamic loader (PT_INTERP), or None for a static binary."""
        for p_type, off, size in self._phdrs:
            if p_type == _PT_INTERP:
                return self.data[off:off + size].rstrip(b"\0").decode()
        return None

    @property
    def needed(self) -> list[str]:
        """DT_NEEDED library names, in order."""
        out: list[str] = []
        fmt = self.endian + ("qQ" if self.is64 else "iI")
        step = struct.calcsize(fmt)
        for s in self.sections:
            if s.type != _SHT_DYNAMIC:
                continue
            strtab = self.sections[s.link]
            for off in range(s.offset, s.offset + s.size, step):
                tag, val = struct.unpack_from(fmt, self.data, off)
                if tag == 0:
                    break
                if tag == _DT_NEEDED:
                    out.append(self._cstr(strtab.offset + val))
        return out

    def modinfo(self) -> dict[str, list[str]]:
        """A kernel module's .modinfo section: ``key=value`` strings, values grouped by key."""
        raw = self.section(".modinfo")
        if raw is None:
            raise NotElfError("no .modinfo section (not a kernel module)")
        info: dict[str, list[str]] = {}
        for item in raw.split(b"\0"):
            if b"=" in item:
                key, _, value = item.decode("utf-8", "replace").partition("=")
                info.setdefault(key, []).append(value)
        return info
