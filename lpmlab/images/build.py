"""Build the partition boot image: fetch .debs, unpack, cross-compile, assemble the initramfs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cmp_to_key
from pathlib import Path
from typing import Any

from lpmlab.errors import ImageBuildError
from lpmlab.images import cpio, debversion
from lpmlab.images.apt import Deb, PrivateApt, extract, resolve_closure, which_or_fail
from lpmlab.images.elf import Elf, NotElfError
from lpmlab.images.kmod import read_module, resolve
from lpmlab.images.recipe import Recipe
from lpmlab.log import progress

EM_PPC64 = 21
KERNEL_FILE = "vmlinux"
INITRD_FILE = "initrd.gz"
MANIFEST_FILE = "manifest.json"
_USRMERGED = ("bin", "sbin", "lib", "lib64")
# Applets the kernel itself runs by path: orderly_poweroff() runs /sbin/poweroff when the
# hypervisor asks for a shutdown (pseries EPOW, libvirt `shutdown`). No /sbin/modprobe on
# purpose: without modules.dep it could only fail, once per request_module().
_SBIN_APPLETS = ("poweroff", "reboot", "halt")
STAGES = 6


@contextmanager
def stage(number: int, what: str) -> Iterator[None]:
    """Progress lines around one build stage, with its duration."""
    progress(f"images: [{number}/{STAGES}] {what} ...")
    start = time.monotonic()
    yield
    progress(f"images: [{number}/{STAGES}] {what}: done in {time.monotonic() - start:.1f} s")


@dataclass
class Workspace:
    """Where a build keeps its state: shared apt indexes and .debs, and a scratch dir."""

    cache: Path
    work: Path

    @property
    def debs(self) -> Path:
        return self.cache / "debs"

    def apt_root(self, codename: str, arch: str) -> Path:
        return self.cache / "apt" / f"{codename}-{arch}"


@dataclass
class Result:
    kernel_version: str
    manifest: dict[str, Any] = field(default_factory=dict)


def _apt(recipe: Recipe, ws: Workspace, role: str) -> PrivateApt:
    suite = recipe.suite(role)
    return PrivateApt(ws.apt_root(suite.codename, recipe.arch), mirror=recipe.mirror,
                      codename=suite.codename, arch=recipe.arch, components=recipe.components,
                      keyring=recipe.keyring, aliases=suite.aliases,
                      pool_pins=suite.pool_pins)


def fetch_kernel(apt: PrivateApt, recipe: Recipe, debs: Path) -> Deb:
    """The kernel image package: the metapackage's choice first, then others, newest first."""
    pattern = re.compile(recipe.kernel_pattern)
    preferred: list[str] = []
    meta_versions = apt.versions(recipe.kernel_metapackage)
    if meta_versions:
        rec = apt.record(recipe.kernel_metapackage, meta_versions[0])
        preferred = [rel.name for group in debversion.parse_depends(rec.get("Depends", ""))
                     for rel in group if pattern.search(rel.name)]
    others = [n for n in apt.names_matching(recipe.kernel_pattern) if n not in preferred]
    newest = {n: (apt.versions(n) or ["0"])[0] for n in others}
    others.sort(key=lambda n: cmp_to_key(debversion.compare)(newest[n]), reverse=True)
    tried: list[str] = []
    for name in preferred + others:
        try:
            return apt.fetch(name, debs)
        except ImageBuildError as exc:
            tried.append(f"{name}: {exc.message}\n{exc.evidence or ''}".strip())
    raise ImageBuildError(
        f"no kernel package matching {recipe.kernel_pattern} could be downloaded from "
        f"Debian {apt.codename} ({apt.arch})",
        fix="set [kernel].codename in images/partition.toml to a suite whose ppc64el kernel "
            "the mirror serves (bookworm and bookworm-backports are known to work)",
        evidence="\n".join(tried) or "no such package in the index",
    )


# -- userland files ----------------------------------------------------------------------------

def image_path(rel: str) -> str:
    """Where a package path lands in the merged-/usr image (lib/x -> usr/lib/x)."""
    rel = rel.strip("/")
    head = rel.split("/", 1)[0]
    return f"usr/{rel}" if head in _USRMERGED else rel


class Rootfs:
    """Collects initramfs entries from an unpacked package tree, following ELF dependencies."""

    def __init__(self, tree: Path, triplet: str) -> None:
        self.tree = tree
        self.entries: dict[str, cpio.Entry] = {}
        self.lib_dirs = [f"usr/lib/{triplet}", f"lib/{triplet}", "usr/lib64", "lib64",
                         "usr/lib", "lib"]
        self._elf_done: set[str] = set()

    def add(self, entry: cpio.Entry) -> None:
        self.entries[entry.path] = entry

    def _locate(self, rel: str) -> str | None:
        for cand in (rel.strip("/"), image_path(rel)):
            if os.path.lexists(self.tree / cand):
                return cand
        return None

    def add_from_tree(self, rel: str, *, why: str) -> str:
        """Copy ``rel`` (following and copying symlinks) and return the final regular file."""
        for _ in range(40):
            found = self._locate(rel)
            if found is None:
                raise ImageBuildError(f"{rel} ({why}) is in none of the unpacked packages",
                                      fix="add the package that ships it to [userland].packages")
            path = self.tree / found
            if path.is_symlink():
                target = os.readlink(path)
                self.add(cpio.symlink(image_path(found), target))
                base = "" if target.startswith("/") else os.path.dirname(found)
                rel = os.path.normpath(os.path.join(base, target.lstrip("/")))
                continue
            mode = path.stat().st_mode & 0o7777
            self.add(cpio.regular(image_path(found), path.read_bytes(), mode))
            return found
        raise ImageBuildError(f"symlink loop at {rel} ({why})")

    def add_binary(self, rel: str, *, why: str) -> None:
        """A binary plus its loader and every shared library it needs, transitively."""
        final = self.add_from_tree(rel, why=why)
        if final in self._elf_done:
            return
        self._elf_done.add(final)
        try:
            elf = Elf((self.tree / final).read_bytes())
        except NotElfError:
            return
        if elf.interpreter:
            self.add_binary(elf.interpreter, why=f"loader of {final}")
        for lib in elf.needed:
            where = next((d for d in self.lib_dirs if self._locate(f"{d}/{lib}")), None)
            if where is None:
                raise ImageBuildError(
                    f"{final} needs {lib}, which no unpacked package provides",
                    fix="the package's Depends should bring it; add the library's package "
                        "to [userland].packages in images/partition.toml")
            self.add_binary(f"{where}/{lib}", why=f"needed by {final}")


def busybox_applets(binary: bytes) -> list[str]:
    """Applet names from busybox's packed, sorted name table ("[\\0[[\\0acpid\\0...")."""
    start = binary.find(b"[\0[[\0")
    if start < 0:
        raise ImageBuildError("cannot find the applet table in busybox",
                              fix="use Debian's busybox-static (built with the test applets)")
    names: list[str] = []
    pos = start
    while True:
        end = binary.index(b"\0", pos)
        name = binary[pos:end]
        if not name or not re.fullmatch(rb"[a-z0-9_.\[-]+", name) or (
                names and name.decode() <= names[-1]):
            break
        names.append(name.decode())
        pos = end + 1
    required = {"sh", "mount", "insmod", "ip", "init", "cttyhack", "usleep", "hostname"}
    missing = required - set(names)
    if missing:
        raise ImageBuildError(f"busybox lacks applets the image needs: {sorted(missing)}",
                              evidence=f"found {len(names)} applets")
    return names


def base_layout() -> list[cpio.Entry]:
    """Directories, merged-/usr links and the device node the kernel needs before /init."""
    entries = [cpio.directory(d) for d in (
        "usr", "usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc", "etc/dropbear",
        "etc/lpmlab", "dev", "proc", "sys", "run", "mnt", "var", "var/lock", "var/log")]
    entries += [cpio.symlink(d, f"usr/{d}") for d in _USRMERGED]
    entries += [
        cpio.directory("tmp", 0o1777),
        cpio.directory("root", 0o700),
        cpio.directory("root/.ssh", 0o700),
        cpio.symlink("var/run", "../run"),
        cpio.symlink("var/tmp", "../tmp"),
        # the kernel opens /dev/console for /init before anything is mounted
        cpio.chardev("dev/console", 5, 1, 0o600),
    ]
    return entries


# -- programs ----------------------------------------------------------------------------------

def compile_programs(recipe: Recipe, out: Path) -> dict[str, Path]:
    cc = which_or_fail(recipe.cc, "gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross")
    strip = which_or_fail(recipe.strip, "binutils-powerpc64le-linux-gnu")
    out.mkdir(parents=True, exist_ok=True)
    built: dict[str, Path] = {}
    for name, src in recipe.programs.items():
        dst = out / name
        proc = subprocess.run([cc, *recipe.cflags, "-o", str(dst), str(src)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageBuildError(f"cross-compiling {src.name} failed",
                                  fix=f"fix {src} (or install libc6-dev-ppc64el-cross)",
                                  evidence=proc.stderr[-3000:])
        subprocess.run([strip, str(dst)], check=True, capture_output=True)
        elf = Elf(dst.read_bytes())
        if elf.e_machine != EM_PPC64 or elf.interpreter is not None:
            raise ImageBuildError(f"{name} is not a static ppc64 binary",
                                  fix=f"keep -static in [programs].cflags; check {recipe.cc}")
        built[name] = dst
    return built


def compiler_version(cc: str) -> str:
    proc = subprocess.run([cc, "--version"], capture_output=True, text=True)
    return proc.stdout.splitlines()[0] if proc.returncode == 0 and proc.stdout else "unknown"


# -- the build ---------------------------------------------------------------------------------

def _kernel_files(tree: Path, package: str) -> tuple[str, Path, Path]:
    """(kernel version, kernel image, modules dir) inside an unpacked linux-image package."""
    for mods in (tree / "lib/modules", tree / "usr/lib/modules"):
        if mods.is_dir():
            versions = sorted(p.name for p in mods.iterdir() if (p / "kernel").is_dir())
            if len(versions) == 1:
                kver = versions[0]
                for name in (f"vmlinux-{kver}", f"vmlinuz-{kver}"):
                    if (tree / "boot" / name).exists():
                        return kver, tree / "boot" / name, mods / kver
    raise ImageBuildError(f"{package} has no boot/vmlinux-* with a matching modules dir",
                          fix="choose another kernel package rule in images/partition.toml")


def build(recipe: Recipe, ws: Workspace, out: Path, digest: str) -> Result:
    """Build the image into ``out`` (kernel, initrd, manifest). ``ws.work`` is scratch space."""
    t0 = time.monotonic()
    which_or_fail("dpkg-deb", "dpkg")
    which_or_fail("apt-get", "apt")
    user_apt, kern_apt = _apt(recipe, ws, "userland"), _apt(recipe, ws, "kernel")

    with stage(1, f"package indexes ({user_apt.codename}, {kern_apt.codename}, {recipe.arch})"):
        user_apt.update()
        kern_apt.update()
    with stage(2, "downloading packages (reused from the .deb cache when present)"):
        userland = resolve_closure(user_apt, recipe.packages, ws.debs)
        kernel_deb = fetch_kernel(kern_apt, recipe, ws.debs)
        for deb in [*userland.values(), kernel_deb]:
            progress(f"images:   {deb.name} {deb.version}")
    with stage(3, "unpacking packages"):
        user_tree, kern_tree = ws.work / "userland", ws.work / "kernel"
        for deb in userland.values():
            extract(deb.path, user_tree)
        extract(kernel_deb.path, kern_tree)
        kver, kernel_image, moddir = _kernel_files(kern_tree, kernel_deb.name)
    with stage(4, "cross-compiling " + ", ".join(recipe.programs)):
        programs = compile_programs(recipe, ws.work / "programs")
    with stage(5, "assembling the initramfs"):
        root = Rootfs(user_tree, recipe.triplet)
        for entry in base_layout():
            root.add(entry)
        for rel in recipe.binaries:
            root.add_binary(rel, why="listed in [files].binaries")
        busybox = root.entries.get("usr/bin/busybox")
        if busybox is None:
            raise ImageBuildError("usr/bin/busybox is not in [files].binaries",
                                  fix="the image's shell, init and tools are busybox applets")
        applets = busybox_applets(busybox.data)
        for applet in applets:
            link = f"usr/bin/{applet}"
            if applet != "busybox" and link not in root.entries:
                root.add(cpio.symlink(link, "busybox"))
            if applet in _SBIN_APPLETS:
                root.add(cpio.symlink(f"usr/sbin/{applet}", "../bin/busybox"))
        mods = resolve(moddir, recipe.modules)
        for rel in mods.load_order:
            root.add(cpio.regular(f"usr/lib/modules/{kver}/{rel}", read_module(mods.files[rel])))
        root.add(cpio.regular("etc/lpmlab/modules", "".join(f"{m}\n" for m in mods.load_order)
                              .encode()))
        for name, path in programs.items():
            root.add(cpio.regular(f"usr/bin/{name}", path.read_bytes(), 0o755))
        for dst, src, mode in recipe.copies:
            root.add(cpio.regular(dst, src.read_bytes(), mode))
        for path, mode in recipe.dirs:
            root.add(cpio.directory(path, mode))
        root.add(cpio.regular("etc/lpmlab/image", (
            f"name={recipe.name}\ndigest={digest}\nkernel={kver}\n").encode()))
        entries = cpio.tree(root.entries.values())
        initrd = cpio.gzip_newc(entries)
    with stage(6, "writing kernel, initrd and manifest"):
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kernel_image, out / KERNEL_FILE)
        (out / INITRD_FILE).write_bytes(initrd)
        manifest: dict[str, Any] = {
            "name": recipe.name,
            "digest": digest,
            "arch": recipe.arch,
            "kernel_version": kver,
            "kernel": KERNEL_FILE,
            "initrd": INITRD_FILE,
            "kernel_package": {"name": kernel_deb.name, "version": kernel_deb.version,
                               "suite": kern_apt.codename},
            "packages": {d.name: d.version for d in sorted(userland.values(),
                                                             key=lambda d: d.name)},
            "userland_suite": user_apt.codename,
            "modules": mods.load_order,
            "modules_builtin": mods.builtin,
            "busybox_applets": len(applets),
            "programs": sorted(programs),
            "compiler": compiler_version(recipe.cc),
            "initrd_entries": len(entries),
            "sizes": {"kernel": (out / KERNEL_FILE).stat().st_size, "initrd": len(initrd),
                      "initrd_uncompressed": sum(len(e.data) for e in entries)},
            "build_seconds": round(time.monotonic() - t0, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    return Result(kver, manifest)
