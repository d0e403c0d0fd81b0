"""Builder helpers that need no network: versions, dependency fields, ELF, module order."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lpmlab.errors import ImageBuildError
from lpmlab.images import debversion, kmod
from lpmlab.images.build import busybox_applets, image_path
from lpmlab.images.elf import Elf


@pytest.mark.parametrize(("a", "b", "sign"), [
    ("1.0", "1.0", 0),
    ("1.0~rc1", "1.0", -1),
    ("1:0.9", "2.0", 1),
    ("2.41-12+deb13u5", "2.41-12+deb13u4", 1),
    ("6.12.95-1~bpo12+1", "6.1.176-1", 1),
    ("1.0a", "1.0+", -1),
    ("1.00", "1.0", 0),
])
def test_debian_version_order(a: str, b: str, sign: int) -> None:
    c = debversion.compare(a, b)
    assert (c > 0) - (c < 0) == sign


def test_parse_depends() -> None:
    groups = debversion.parse_depends(
        "libc6 (>= 2.38), libcrypt1 (>= 1:4.1.0), debconf | debconf-2.0, zlib1g:any [amd64]")
    assert [[r.name for r in g] for g in groups] == [
        ["libc6"], ["libcrypt1"], ["debconf", "debconf-2.0"], ["zlib1g"]]
    assert groups[0][0].satisfied_by("2.41-12+deb13u4")
    assert not groups[0][0].satisfied_by("2.36-9")
    assert str(groups[1][0]) == "libcrypt1 (>= 1:4.1.0)"


def test_image_path_merges_usr() -> None:
    assert image_path("/lib64/ld64.so.2") == "usr/lib64/ld64.so.2"
    assert image_path("lib/modules/x") == "usr/lib/modules/x"
    assert image_path("usr/sbin/dropbear") == "usr/sbin/dropbear"
    assert image_path("etc/passwd") == "etc/passwd"


def test_busybox_applet_table() -> None:
    names = ["[", "[[", "cttyhack", "hostname", "init", "insmod", "ip", "mount", "sh", "usleep"]
    blob = b"junk\0" + b"\0".join(n.encode() for n in names) + b"\0\0\x01\x02more"
    assert busybox_applets(blob) == names
    with pytest.raises(ImageBuildError):
        busybox_applets(b"[\0[[\0sh\0\0")  # lacks the applets /init needs


def test_elf_reads_the_loader_and_libraries_of_this_python() -> None:
    elf = Elf.read(Path(sys.executable).resolve())
    assert elf.interpreter is None or elf.interpreter.startswith("/")
    if elf.interpreter:
        assert any(lib.startswith("libc.so") or lib.startswith("libpython") for lib in elf.needed)


def _fake_module(tmp: Path, rel: str, name: str, depends: str) -> None:
    """A relocatable object with a .modinfo section, as a .ko has."""
    src = tmp / f"{name}.c"
    src.write_text(
        f'__attribute__((section(".modinfo"), used)) static const char a[] = "name={name}";\n'
        f'__attribute__((section(".modinfo"), used)) static const char b[] = '
        f'"depends={depends}";\n')
    out = tmp / "mods" / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-c", "-o", str(out), str(src)], check=True)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to make fake modules")
def test_module_order_follows_depends(tmp_path: Path) -> None:
    _fake_module(tmp_path, "kernel/drivers/scsi/sd_mod.ko", "sd_mod", "t10-pi")
    _fake_module(tmp_path, "kernel/block/t10-pi.ko", "t10_pi", "crc-t10dif,crc64")
    _fake_module(tmp_path, "kernel/lib/crc-t10dif.ko", "crc_t10dif", "crct10dif_common")
    _fake_module(tmp_path, "kernel/crypto/crct10dif_common.ko", "crct10dif_common", "")
    _fake_module(tmp_path, "kernel/drivers/net/ibmveth.ko", "ibmveth", "")
    moddir = tmp_path / "mods"
    (moddir / "modules.builtin").write_text("kernel/lib/crc64.ko\n")
    mods = kmod.resolve(moddir, ["ibmveth", "sd_mod"])
    assert mods.load_order == [
        "kernel/drivers/net/ibmveth.ko",
        "kernel/crypto/crct10dif_common.ko",
        "kernel/lib/crc-t10dif.ko",
        "kernel/block/t10-pi.ko",
        "kernel/drivers/scsi/sd_mod.ko",
    ]
    assert mods.builtin == ["crc64"]
    with pytest.raises(ImageBuildError, match="no_such_mod"):
        kmod.resolve(moddir, ["no_such_mod"])


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to make fake modules")
def test_module_cycle_is_reported(tmp_path: Path) -> None:
    _fake_module(tmp_path, "kernel/a.ko", "a", "b")
    _fake_module(tmp_path, "kernel/b.ko", "b", "a")
    with pytest.raises(ImageBuildError, match="cycle"):
        kmod.resolve(tmp_path / "mods", ["a"])


def _deb(tmp: Path, name: str, version: str) -> Path:
    root = tmp / f"src-{name}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: ppc64el\n"
        "Maintainer: t <t@t>\nDescription: t\n")
    out = tmp / f"{name}.deb"
    subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(root), str(out)], check=True,
                   capture_output=True)
    return out


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_a_pool_pin_is_taken_only_with_its_sha256(tmp_path: Path) -> None:
    import hashlib

    from lpmlab.images.apt import PrivateApt

    pool = tmp_path / "mirror" / "pool" / "main" / "z" / "zlib"
    pool.mkdir(parents=True)
    deb = _deb(tmp_path, "zlib1g", "1:1.3-1+b1")
    shutil.copy(deb, pool / "zlib1g_1.3-1+b1_ppc64el.deb")  # no epoch in pool names
    sha = hashlib.sha256(deb.read_bytes()).hexdigest()

    def apt(pin_sha: str) -> PrivateApt:
        a = PrivateApt(tmp_path / "apt", mirror=f"file://{tmp_path}/mirror", codename="trixie",
                       arch="ppc64el", components=["main"], keyring=tmp_path / "k",
                       pool_pins={"zlib1g": ("1:1.3-1+b1", pin_sha)})
        a.record = lambda name, version: {  # type: ignore[method-assign]
            "Filename": "pool/main/z/zlib/zlib1g_1.3-1+deb13u1_ppc64el.deb"}
        return a

    failures: list[str] = []
    assert apt("0" * 64)._fetch_pinned("zlib1g", "1:1.3-1+deb13u1", tmp_path / "debs",
                                        failures) is None
    assert "does not have the recipe's SHA-256" in failures[0]
    assert not list((tmp_path / "debs").glob("*.deb"))  # nothing kept that failed the check
    got = apt(sha)._fetch_pinned("zlib1g", "1:1.3-1+deb13u1", tmp_path / "debs", [])
    assert got is not None and got.version == "1:1.3-1+b1"
    assert got.path.name == "zlib1g_1%3a1.3-1+b1_ppc64el.deb"
    assert apt(sha)._fetch_pinned("libc6", "2.41", tmp_path / "debs", []) is None  # no pin


def test_a_malformed_pool_pin_is_refused(tmp_path: Path) -> None:
    from lpmlab.images.recipe import Recipe

    recipe = Recipe(tmp_path, {"userland": {"codename": "trixie",
                                             "pool_pins": {"libc6": ["2.41"]}}})
    with pytest.raises(ImageBuildError, match="pool_pins"):
        recipe.suite("userland")
