"""The partition image recipe (images/partition.toml) and the content digest that names a build."""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lpmlab.errors import ImageBuildError
from lpmlab.paths import images_src_dir

# Bump when the layout of the cache entry changes without any input file changing.
FORMAT_VERSION = "1"
RECIPE_FILE = "partition.toml"


def builder_dir() -> Path:
    """The Python sources of this builder; they are recipe inputs too."""
    return Path(__file__).resolve().parent


@dataclass(frozen=True)
class Suite:
    codename: str
    aliases: list[str]
    # name -> (version, sha256): a version the mirror's pool still serves though no index
    # lists it any more (a caching mirror whose pool lags its index by a point release)
    pool_pins: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    src_dir: Path
    raw: dict[str, Any]

    @classmethod
    def load(cls, src_dir: Path | None = None) -> Recipe:
        src = src_dir or images_src_dir()
        path = src / RECIPE_FILE
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ImageBuildError(f"image recipe {path} is missing",
                                  fix="run from a complete lpmlab checkout") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ImageBuildError(f"image recipe {path} is not valid TOML: {exc}",
                                  fix=f"correct {path}") from exc
        return cls(src, raw)

    def _get(self, *keys: str) -> Any:
        node: Any = self.raw
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                raise ImageBuildError(f"image recipe has no [{'.'.join(keys)}]",
                                      fix=f"add it to {self.src_dir / RECIPE_FILE}")
            node = node[key]
        return node

    @property
    def name(self) -> str:
        return str(self._get("name"))

    @property
    def arch(self) -> str:
        return str(self._get("arch"))

    @property
    def triplet(self) -> str:
        return str(self._get("triplet"))

    @property
    def mirror(self) -> str:
        return str(self._get("mirror"))

    @property
    def components(self) -> list[str]:
        return list(self._get("components"))

    @property
    def keyring(self) -> Path:
        return Path(self._get("keyring"))

    def suite(self, role: str) -> Suite:
        section = self.raw.get(role, {})
        pins: dict[str, tuple[str, str]] = {}
        for name, pin in section.get("pool_pins", {}).items():
            if not (isinstance(pin, list) and len(pin) == 2
                    and re.fullmatch(r"[0-9a-f]{64}", str(pin[1]))):
                raise ImageBuildError(
                    f"[{role}.pool_pins] {name} must be [\"VERSION\", \"SHA256\"]",
                    fix=f"correct {self.src_dir / RECIPE_FILE}")
            pins[str(name)] = (str(pin[0]), str(pin[1]))
        return Suite(str(self._get(role, "codename")),
                     list(section.get("index_aliases", [])), pins)

    @property
    def packages(self) -> list[str]:
        return list(self._get("userland", "packages"))

    @property
    def kernel_metapackage(self) -> str:
        return str(self._get("kernel", "metapackage"))

    @property
    def kernel_pattern(self) -> str:
        return str(self._get("kernel", "image_pattern"))

    @property
    def modules(self) -> list[str]:
        return list(self._get("kernel", "modules"))

    @property
    def binaries(self) -> list[str]:
        return list(self._get("files", "binaries"))

    @property
    def copies(self) -> list[tuple[str, Path, int]]:
        """(image path, source file, mode) for files copied from the repository."""
        return [(str(dst), self.src_dir / str(src), int(mode))
                for dst, src, mode in self._get("files", "copy")]

    @property
    def dirs(self) -> list[tuple[str, int]]:
        """(image path, mode) of empty directories the image provides; optional in the recipe."""
        return [(str(path), int(mode))
                for path, mode in self.raw.get("files", {}).get("dirs", {}).items()]

    @property
    def programs(self) -> dict[str, Path]:
        return {name: self.src_dir / str(src)
                for name, src in self._get("programs", "sources").items()}

    @property
    def cc(self) -> str:
        return str(self._get("programs", "cc"))

    @property
    def strip(self) -> str:
        return str(self._get("programs", "strip"))

    @property
    def cflags(self) -> list[str]:
        return list(self._get("programs", "cflags"))

    def input_files(self) -> list[Path]:
        """Every repository file the image is made from (the recipe's own references)."""
        files = [self.src_dir / RECIPE_FILE]
        files += [src for _dst, src, _mode in self.copies]
        files += list(self.programs.values())
        # headers the C sources include from their own folder
        files += sorted({h for src in self.programs.values() for h in src.parent.glob("*.h")})
        return files


def recipe_digest(src_dir: Path | None = None, builders: Path | None = None) -> str:
    """sha256 over every recipe input: the recipe (packages, suites, kernel rule, modules),
    the files it copies, the C sources, and the builder's own Python sources.

    Only content counts (not mtimes); files in images/ the recipe does not use do not count.
    """
    recipe = Recipe.load(src_dir)
    builders = builders or builder_dir()
    h = hashlib.sha256(f"lpmlab-image-format {FORMAT_VERSION}\n".encode())
    inputs = [(f"images/{p.relative_to(recipe.src_dir).as_posix()}", p)
              for p in recipe.input_files()]
    inputs += [(f"builder/{p.name}", p) for p in sorted(builders.glob("*.py"))]
    for label, path in sorted(inputs):
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ImageBuildError(f"image input {path} is missing",
                                  fix=f"restore it or remove it from {RECIPE_FILE}") from exc
        h.update(f"{label}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()
