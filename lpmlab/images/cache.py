"""Content-addressed cache of built partition images.

Layout: ``<cache>/images/partition-<digest16>/{vmlinux,initrd.gz,manifest.json}``. A build goes
to a scratch dir beside it and is renamed into place, so a half-written image is never seen;
manifest.json is written last and marks the entry complete. A cache hit reads a dozen small
files to compute the digest and touches no network.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lpmlab.errors import ImageBuildError
from lpmlab.images.build import INITRD_FILE, KERNEL_FILE, MANIFEST_FILE, Workspace, build
from lpmlab.images.recipe import Recipe, recipe_digest
from lpmlab.log import progress
from lpmlab.paths import cache_dir


@dataclass(frozen=True)
class PartitionImage:
    """A built boot image. ``digest`` is the 16-hex-digit name of the cache entry."""

    digest: str
    kernel: Path
    initrd: Path
    kernel_version: str

    @property
    def directory(self) -> Path:
        return self.kernel.parent

    def manifest(self) -> dict[str, Any]:
        """Package versions, modules, sizes and build time recorded at build."""
        data: dict[str, Any] = json.loads((self.directory / MANIFEST_FILE).read_text())
        return data


def _entry_dir(cache: Path, digest: str) -> Path:
    return cache / "images" / f"partition-{digest[:16]}"


def _load(entry: Path, digest: str) -> PartitionImage | None:
    """The cached image in ``entry`` if it is complete and really built from ``digest``."""
    try:
        manifest = json.loads((entry / MANIFEST_FILE).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    kernel = entry / manifest.get("kernel", KERNEL_FILE)
    initrd = entry / manifest.get("initrd", INITRD_FILE)
    if manifest.get("digest") != digest or not kernel.is_file() or not initrd.is_file():
        return None
    return PartitionImage(digest[:16], kernel, initrd, str(manifest["kernel_version"]))


@contextmanager
def _build_lock(images: Path) -> Iterator[None]:
    # one builder at a time: two would download the same .debs and race on apt's lists
    images.mkdir(parents=True, exist_ok=True)
    with open(images / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_stale_scratch(images: Path) -> None:
    # under the lock, any scratch dir left is from a build that died
    for stale in images.glob(".build-*"):
        shutil.rmtree(stale, ignore_errors=True)


def ensure_partition_image(cache: Path | None = None, *, rebuild: bool = False) -> PartitionImage:
    """The partition image for the current recipe: from the cache, or built (and cached) now."""
    root = cache or cache_dir()
    digest = recipe_digest()
    entry = _entry_dir(root, digest)
    if not rebuild and (hit := _load(entry, digest)):
        return hit
    images = entry.parent
    try:
        with _build_lock(images):
            if not rebuild and (hit := _load(entry, digest)):
                return hit  # another process built it while we waited
            _remove_stale_scratch(images)
            progress(f"images: building partition-{digest[:16]} into {images}")
            work = Path(tempfile.mkdtemp(prefix=f".build-{digest[:16]}-", dir=images))
            try:
                out = work / "out"
                result = build(Recipe.load(), Workspace(root, work), out, digest)
                (out / MANIFEST_FILE).write_text(json.dumps(result.manifest, indent=2) + "\n")
                _swap_in(out, entry, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    except PermissionError as exc:
        raise ImageBuildError(
            f"cannot write the image cache {root}: {exc.strerror}",
            fix="run as root or set LPMLAB_CACHE to a writable directory") from exc
    image = _load(entry, digest)
    if image is None:
        raise ImageBuildError(f"the built image in {entry} is incomplete",
                              fix=f"delete {entry} and build again")
    progress(f"images: partition-{digest[:16]} ready ({result.manifest['build_seconds']} s)")
    return image


def _swap_in(out: Path, entry: Path, work: Path) -> None:
    """Rename the finished build into place (replacing an older build of the same digest)."""
    os.chmod(out, 0o755)  # mkdtemp made the scratch dir 0700
    if entry.exists():
        old = work / "replaced"
        entry.rename(old)
    out.rename(entry)
