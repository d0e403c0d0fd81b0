"""The initramfs writer, overlays and the recipe digest: no root, no network, fast."""

from __future__ import annotations

import gzip
import shutil
import stat
import struct
from pathlib import Path

import pytest

from lpmlab.images import combine, cpio, dropbear_ed25519_key, recipe_digest, write_overlay
from lpmlab.images.recipe import builder_dir
from lpmlab.paths import images_src_dir


def sample_entries() -> list[cpio.Entry]:
    return [
        cpio.directory("etc"),
        cpio.regular("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        cpio.regular("init", b"#!/bin/sh\necho hi\n", 0o755),
        cpio.regular("odd", b"abc"),  # forces data padding
        cpio.regular("empty", b""),
        cpio.symlink("bin", "usr/bin"),
        cpio.chardev("dev/console", 5, 1),
        cpio.directory("tmp", 0o1777),
    ]


def test_newc_round_trip() -> None:
    entries = sample_entries()
    data = cpio.newc_archive(entries)
    assert data.startswith(cpio.NEWC_MAGIC)
    assert len(data) % 4 == 0
    assert b"TRAILER!!!" in data
    assert cpio.read_newc(data) == entries


def test_newc_header_fields_are_as_the_kernel_reads_them() -> None:
    data = cpio.newc_archive([cpio.regular("a", b"xyz", 0o640)])
    fields = [int(data[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
    ino, mode, uid, gid, nlink, mtime, size = fields[:7]
    namesize = fields[11]
    assert ino == 1 and nlink == 1 and mtime == 0 and uid == gid == 0
    assert mode == stat.S_IFREG | 0o640
    assert size == 3
    assert namesize == 2  # "a" plus NUL
    # header (110) + name (2) padded to 112, then the data
    assert data[112:115] == b"xyz"


def test_archives_are_reproducible() -> None:
    assert cpio.gzip_newc(sample_entries()) == cpio.gzip_newc(sample_entries())


def test_tree_adds_parents_before_children() -> None:
    entries = cpio.tree([cpio.regular("usr/lib/x/y.ko", b"k"), cpio.regular("etc/a", b"a")])
    paths = [e.path for e in entries]
    assert paths == ["etc", "etc/a", "usr", "usr/lib", "usr/lib/x", "usr/lib/x/y.ko"]
    assert all(e.is_dir for e in entries if e.path in ("usr", "usr/lib", "etc"))


def test_bad_paths_are_refused() -> None:
    for bad in ("", "/", "a/../b", "a//b"):
        with pytest.raises(ValueError):
            cpio.regular(bad, b"")


def test_overlay_carries_files_and_strict_parent_modes() -> None:
    blob = write_overlay({
        "/root/.ssh/authorized_keys": (b"ssh-ed25519 AAAA test\n", 0o600),
        "/etc/drmgr.d/pmig/10-check": (b"#!/bin/sh\nexit 0\n", 0o755),
    })
    assert blob[:2] == b"\x1f\x8b"
    by_path = {e.path: e for e in cpio.read_newc(gzip.decompress(blob))}
    assert by_path["root"].mode == stat.S_IFDIR | 0o700
    assert by_path["root/.ssh"].mode == stat.S_IFDIR | 0o700
    assert by_path["root/.ssh/authorized_keys"].mode == stat.S_IFREG | 0o600
    assert by_path["etc/drmgr.d/pmig"].mode == stat.S_IFDIR | 0o755
    assert by_path["etc/drmgr.d/pmig/10-check"].data.startswith(b"#!/bin/sh")


def test_combine_concatenates_base_and_overlay(tmp_path: Path) -> None:
    base = tmp_path / "base.gz"
    base.write_bytes(cpio.gzip_newc(cpio.tree([cpio.regular("etc/motd", b"base\n")])))
    overlay = write_overlay({"/etc/motd": (b"lab\n", 0o644)})
    out = tmp_path / "lab" / "initrd.gz"
    combine(base, overlay, out)
    data = out.read_bytes()
    assert data.startswith(base.read_bytes())
    assert data.endswith(overlay)
    motd = [e.data for e in cpio.read_initrd(data) if e.path == "etc/motd"]
    assert motd == [b"base\n", b"lab\n"]  # the kernel keeps the last one
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_combine_rejects_garbage(tmp_path: Path) -> None:
    base = tmp_path / "base.gz"
    base.write_bytes(cpio.gzip_newc([]))
    with pytest.raises(ValueError):
        combine(base, b"not an archive", tmp_path / "out")


def test_dropbear_host_key_format() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    blob = dropbear_ed25519_key(key)
    (n,) = struct.unpack(">I", blob[:4])
    assert blob[4:4 + n] == b"ssh-ed25519"
    (m,) = struct.unpack(">I", blob[4 + n:8 + n])
    body = blob[8 + n:]
    assert m == 64 and len(body) == 64
    raw = serialization.Encoding.Raw
    assert body[:32] == key.private_bytes(raw, serialization.PrivateFormat.Raw,
                                          serialization.NoEncryption())
    assert body[32:] == key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    # the same key given as an OpenSSH private key file or as a raw seed
    openssh = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    assert dropbear_ed25519_key(openssh) == blob
    assert dropbear_ed25519_key(body[:32]) == blob


# -- the recipe digest -----------------------------------------------------------------------

@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    images = tmp_path / "images"
    builders = tmp_path / "builder"
    shutil.copytree(images_src_dir(), images)
    shutil.copytree(builder_dir(), builders, ignore=shutil.ignore_patterns("__pycache__"))
    return images, builders


def test_digest_is_stable(inputs: tuple[Path, Path]) -> None:
    images, builders = inputs
    first = recipe_digest(images, builders)
    assert len(first) == 64
    assert recipe_digest(images, builders) == first
    # the copy has the same content as the checkout, so the same digest
    assert recipe_digest() == first


def test_digest_ignores_mtime_and_unused_files(inputs: tuple[Path, Path]) -> None:
    images, builders = inputs
    before = recipe_digest(images, builders)
    init = images / "init"
    init.write_bytes(init.read_bytes())
    (images / "NOTES.txt").write_text("not an input\n")
    (builders / "__pycache__").mkdir()
    (builders / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert recipe_digest(images, builders) == before


@pytest.mark.parametrize("changed", [
    "init", "partition.toml", "src/lpm-disk.c", "src/lpm-dirty.c", "rootfs/inittab",
    "builder:build.py",
])
def test_digest_changes_with_every_input(inputs: tuple[Path, Path], changed: str) -> None:
    images, builders = inputs
    before = recipe_digest(images, builders)
    path = builders / changed.split(":", 1)[1] if changed.startswith("builder:") \
        else images / changed
    path.write_bytes(path.read_bytes() + b"\n# changed\n")
    assert recipe_digest(images, builders) != before


def test_digest_changes_with_the_kernel_rule(inputs: tuple[Path, Path]) -> None:
    images, builders = inputs
    before = recipe_digest(images, builders)
    recipe = images / "partition.toml"
    recipe.write_text(recipe.read_text().replace('codename = "bookworm"',
                                                 'codename = "bookworm-backports"'))
    assert recipe_digest(images, builders) != before
