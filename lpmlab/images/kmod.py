"""Kernel module selection: which .ko files to load, in which order, read from the modules.

Debian's kernel package ships no modules.dep (depmod runs in its postinst), so the order comes
from each module's own ``depends=`` in .modinfo; modules built into the kernel are skipped.
"""

from __future__ import annotations

import gzip
import lzma
from dataclasses import dataclass
from pathlib import Path

from lpmlab.errors import ImageBuildError
from lpmlab.images.elf import Elf

_SUFFIXES = (".ko", ".ko.xz", ".ko.gz")


def _modname(filename: str) -> str:
    for suffix in _SUFFIXES:
        if filename.endswith(suffix):
            filename = filename[: -len(suffix)]
            break
    return filename.replace("-", "_")  # the kernel treats - and _ in module names alike


def read_module(path: Path) -> bytes:
    """A module's bytes, decompressed (busybox insmod is not relied on to decompress)."""
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    return data


@dataclass(frozen=True)
class ModuleSet:
    """Modules to insmod, dependencies first.

    ``load_order`` holds paths relative to the modules dir (always ``.ko``, decompressed);
    ``files`` maps each of them to the file in the kernel package.
    """

    load_order: list[str]
    files: dict[str, Path]
    builtin: list[str]


def resolve(moddir: Path, wanted: list[str]) -> ModuleSet:
    """Resolve ``wanted`` module names and their dependencies under ``moddir`` (lib/modules/V)."""
    index: dict[str, Path] = {}
    for path in sorted((moddir / "kernel").rglob("*.ko*")):
        index.setdefault(_modname(path.name), path)
    builtin: set[str] = set()
    builtin_list = moddir / "modules.builtin"
    if builtin_list.exists():
        builtin = {_modname(line.rsplit("/", 1)[-1])
                   for line in builtin_list.read_text().split() if line}

    order: list[str] = []
    files: dict[str, Path] = {}
    done: set[str] = set()
    skipped: list[str] = []
    visiting: list[str] = []

    def visit(name: str, wanted_by: str | None) -> None:
        key = _modname(name)
        if key in done or key in skipped:
            return
        if key in visiting:
            cycle = " -> ".join([*visiting, key])
            raise ImageBuildError(f"kernel module dependency cycle: {cycle}")
        path = index.get(key)
        if path is None:
            if key in builtin:
                skipped.append(key)
                return
            by = f" (needed by {wanted_by})" if wanted_by else ""
            raise ImageBuildError(
                f"kernel module {name}{by} is neither a module nor built into this kernel",
                fix="fix [kernel].modules in images/partition.toml or choose another kernel",
                evidence=f"looked under {moddir}/kernel and in modules.builtin",
            )
        visiting.append(key)
        info = Elf(read_module(path)).modinfo()
        for deps in info.get("depends", []):
            for dep in filter(None, deps.split(",")):
                visit(dep, key)
        visiting.pop()
        rel = path.relative_to(moddir).as_posix()
        for suffix in (".xz", ".gz"):
            rel = rel.removesuffix(suffix)
        done.add(key)
        files[rel] = path
        order.append(rel)

    for name in wanted:
        visit(name, None)
    return ModuleSet(order, files, skipped)
