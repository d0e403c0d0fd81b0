"""Foreign-architecture .debs through a private apt configuration.

Every apt option points at a directory of our own (sources, lists, cache, an empty dpkg status),
so the host's sources, its architectures and its package state stay untouched: no
``dpkg --add-architecture``, no chroot. The host's apt.conf still applies (proxies).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lpmlab.errors import ImageBuildError
from lpmlab.images import debversion
from lpmlab.log import progress

_APT_FIX = "check the mirror and proxy settings (apt-get update must reach the Debian archive)"


@dataclass(frozen=True)
class Deb:
    """A downloaded package file."""

    name: str
    version: str
    path: Path
    control: dict[str, str]


def _deb_filename(name: str, version: str, arch: str) -> str:
    # the name apt-get download gives the file (epoch colon escaped)
    return f"{name}_{version.replace(':', '%3a')}_{arch}.deb"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def deb_control(path: Path) -> dict[str, str]:
    """The control stanza of a .deb file."""
    proc = subprocess.run(["dpkg-deb", "-f", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageBuildError(f"{path.name} is not a readable .deb",
                              fix=f"delete {path} and build again", evidence=proc.stderr)
    return debversion.parse_control(proc.stdout)[0]


class PrivateApt:
    """apt-get/apt-cache for one Debian release (plus index aliases) and one architecture."""

    def __init__(self, root: Path, *, mirror: str, codename: str, arch: str,
                 components: list[str], keyring: Path, aliases: list[str] | None = None,
                 pool_pins: dict[str, tuple[str, str]] | None = None) -> None:
        self.root = root
        self.mirror = mirror
        self.codename = codename
        self.arch = arch
        self.components = components
        self.keyring = keyring
        self.dists = [codename, *(aliases or [])]
        self.pool_pins = dict(pool_pins or {})
        self.update_log = ""
        # set when the index could not be refreshed: then cached .debs are preferred
        self.offline = False

    # -- configuration --------------------------------------------------------------------

    @property
    def _sources(self) -> Path:
        return self.root / "sources.list"

    def options(self) -> list[str]:
        r = self.root
        opts = {
            "Dir::Etc::sourcelist": str(self._sources),
            "Dir::Etc::sourceparts": "-",
            "Dir::Etc::preferencesparts": "-",  # host pins must not steer our versions
            "Dir::Etc::preferences": str(r / "preferences"),
            "Dir::State::Lists": str(r / "lists"),
            "Dir::State::status": str(r / "status"),
            "Dir::Cache": str(r / "cache"),
            # the host may disable the binary cache (docker images do); ours makes lookups fast
            "Dir::Cache::pkgcache": "pkgcache.bin",
            "Dir::Cache::srcpkgcache": "",  # saves ~40 MB; our dpkg status never changes
            "APT::Architecture": self.arch,
            "APT::Architectures": self.arch,
            "APT::Sandbox::User": "root",  # files land in root-owned dirs; _apt cannot write
            "Acquire::Languages": "none",
            "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled": "false",
        }
        return [arg for k, v in opts.items() for arg in ("-o", f"{k}={v}")]

    def _write_config(self) -> None:
        for sub in ("lists/partial", "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "status").touch()
        (self.root / "preferences").touch()
        comps = " ".join(self.components)
        lines = [f"deb [arch={self.arch} signed-by={self.keyring}] {self.mirror} {d} {comps}"
                 for d in self.dists]
        self._sources.write_text("\n".join(lines) + "\n")

    def _run(self, tool: str, *args: str, cwd: Path | None = None,
             timeout: float = 900) -> subprocess.CompletedProcess[str]:
        cmd = [tool, *self.options(), *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout)
        except FileNotFoundError as exc:
            raise ImageBuildError(f"{tool} is not installed", fix="build on a Debian host") from exc
        except subprocess.TimeoutExpired as exc:
            raise ImageBuildError(f"{tool} {' '.join(args[:2])} did not finish in {timeout:.0f} s",
                                  fix=_APT_FIX) from exc

    # -- index ----------------------------------------------------------------------------

    def _release_codename(self, dist: str) -> str | None:
        lists = self.root / "lists"
        host = re.sub(r"^[a-z]+://", "", self.mirror).rstrip("/").replace("/", "_")
        for name in (f"{host}_dists_{dist}_InRelease", f"{host}_dists_{dist}_Release"):
            path = lists / name
            if path.exists():
                m = re.search(r"^Codename:\s*(\S+)", path.read_text(errors="replace"), re.M)
                return m.group(1) if m else None
        return None

    def update(self) -> None:
        """Fetch the indexes; keep old ones when offline; drop aliases of another release."""
        if not self.keyring.exists():
            raise ImageBuildError(f"archive keyring {self.keyring} is missing",
                                  fix="apt-get install debian-archive-keyring")
        self._write_config()
        # no retries: when the archive is unreachable the last index will do, without a wait
        proc = self._run("apt-get", "-q", "-o", "Acquire::Retries=0", "update")
        log = proc.stdout + proc.stderr
        self.offline = proc.returncode != 0 or bool(
            re.search(r"^(Err:|E:|W: Failed to fetch)", log, re.M))
        if self.offline:
            progress(f"images: could not refresh the Debian {self.codename} index; using the "
                     "one from the last build and preferring cached .debs")
        if self._release_codename(self.codename) is None:
            raise ImageBuildError(
                f"no package index for Debian {self.codename} ({self.arch}) from {self.mirror}",
                fix=_APT_FIX + "; the keyring must verify the release "
                    "(debian-archive-keyring from the host's release or newer)",
                evidence=log[-3000:],
            )
        foreign = [d for d in self.dists[1:] if self._release_codename(d) != self.codename]
        if foreign:
            # an alias that now names another release would bring in that release's packages
            self.dists = [d for d in self.dists if d not in foreign]
            self._write_config()
            self._run("apt-get", "-q", "update")
        self.update_log = log

    def versions(self, name: str) -> list[str]:
        """Every version of ``name`` the indexes list, newest first."""
        proc = self._run("apt-cache", "madison", name)
        rows = (line.split("|") for line in proc.stdout.splitlines())
        found = [r[1].strip() for r in rows if len(r) >= 3 and r[0].strip() == name]
        return debversion.newest_first(found)

    def record(self, name: str, version: str) -> dict[str, str]:
        proc = self._run("apt-cache", "show", f"{name}={version}")
        stanzas = debversion.parse_control(proc.stdout)
        if proc.returncode != 0 or not stanzas:
            raise ImageBuildError(f"apt-cache has no record of {name} {version}",
                                  evidence=proc.stderr)
        return stanzas[0]

    def names_matching(self, pattern: str) -> list[str]:
        """Package names in the index matching a regular expression."""
        rx = re.compile(pattern)
        proc = self._run("apt-cache", "pkgnames")
        return sorted(n for n in proc.stdout.split() if rx.search(n))

    # -- download -------------------------------------------------------------------------

    def fetch(self, name: str, debs: Path, *, versions: list[str] | None = None) -> Deb:
        """Download ``name`` into ``debs`` (reusing a verified copy), newest version first.

        Older versions are tried when the newest answers 404: mirrors and caching proxies can
        lag their own index. Offline, versions already in ``debs`` go first.
        """
        candidates = versions if versions is not None else self.versions(name)
        if not candidates:
            raise ImageBuildError(
                f"package {name} is not in Debian {self.codename} for {self.arch}",
                fix=f"check the package name in images/partition.toml ({self.codename})",
            )
        debs.mkdir(parents=True, exist_ok=True)
        if self.offline:
            cached = [v for v in candidates if (debs / _deb_filename(name, v, self.arch)).exists()]
            candidates = cached + [v for v in candidates if v not in cached]
        failures: list[str] = []
        for version in candidates:
            rec = self.record(name, version)
            target = debs / _deb_filename(name, version, self.arch)
            if target.exists() and _sha256(target) == rec.get("SHA256"):
                return Deb(name, version, target, deb_control(target))
            with tempfile.TemporaryDirectory(dir=debs, prefix=".dl-") as tmp:
                proc = self._run("apt-get", "-q", "download", f"{name}={version}", cwd=Path(tmp))
                got = list(Path(tmp).glob("*.deb"))
                if proc.returncode == 0 and len(got) == 1:
                    got[0].replace(target)
                    return Deb(name, version, target, deb_control(target))
                err = [line for line in (proc.stderr or proc.stdout).splitlines()
                       if line.startswith(("E:", "Err"))]
                failures.append(f"{version}: " + ("; ".join(err) or proc.stderr.strip()[-300:]))
        pinned = self._fetch_pinned(name, candidates[0], debs, failures)
        if pinned is not None:
            return pinned
        raise ImageBuildError(
            f"package {name} ({self.arch}, Debian {self.codename}) could not be downloaded",
            fix=f"the mirror {self.mirror} does not serve any listed version of {name}; "
                "check the mirror/proxy, or pin another suite in images/partition.toml",
            evidence="\n".join(failures),
        )


    def _fetch_pinned(self, name: str, listed: str, debs: Path,
                      failures: list[str]) -> Deb | None:
        """The recipe's pool pin of ``name``: a version no index lists any more, fetched from
        the pool folder of the listed one and accepted only with the recipe's SHA-256 (the
        index's signature cannot vouch for it)."""
        pin = self.pool_pins.get(name)
        if pin is None:
            return None
        version, sha = pin
        target = debs / _deb_filename(name, version, self.arch)
        if not (target.exists() and _sha256(target) == sha):
            folder = self.record(name, listed).get("Filename", "").rpartition("/")[0]
            base = f"{name}_{version.split(':', 1)[-1]}_{self.arch}.deb"
            url = f"{self.mirror.rstrip('/')}/{folder}/{urllib.parse.quote(base)}"
            part = target.with_name(target.name + ".part")
            debs.mkdir(parents=True, exist_ok=True)
            try:
                with urllib.request.urlopen(url, timeout=120) as resp, part.open("wb") as out:
                    shutil.copyfileobj(resp, out)
            except OSError as exc:
                failures.append(f"{version} (pool pin): {url}: {exc}")
                part.unlink(missing_ok=True)
                return None
            if _sha256(part) != sha:
                failures.append(f"{version} (pool pin): {url} does not have the recipe's "
                                f"SHA-256 {sha}")
                part.unlink(missing_ok=True)
                return None
            part.replace(target)
        control = deb_control(target)
        if (control.get("Package"), control.get("Version")) != (name, version):
            failures.append(f"{version} (pool pin): the file is {control.get('Package')} "
                            f"{control.get('Version')}")
            return None
        progress(f"images: {name} {listed} is not in the mirror's pool; using the recipe's "
                 f"pinned {version} (SHA-256 checked)")
        return Deb(name, version, target, control)


def resolve_closure(apt: PrivateApt, roots: list[str], debs: Path) -> dict[str, Deb]:
    """Download ``roots`` and everything they Depend/Pre-Depend on (first alternative apt knows).

    Dependencies are read from the control file of the version actually downloaded, then all
    version constraints are checked across the set.
    """
    chosen: dict[str, Deb] = {}
    queue = list(roots)
    while queue:
        name = queue.pop(0)
        if name in chosen:
            continue
        deb = apt.fetch(name, debs)
        chosen[name] = deb
        for group in _dep_groups(deb.control):
            pick = next((rel for rel in group if rel.name in chosen or apt.versions(rel.name)),
                        None)
            if pick is None:
                raise ImageBuildError(
                    f"{name} depends on {' | '.join(map(str, group))}, which Debian "
                    f"{apt.codename} does not have for {apt.arch}")
            queue.append(pick.name)
    _check_constraints(chosen)
    return chosen


def _dep_groups(control: dict[str, str]) -> list[list[debversion.Relation]]:
    text = ", ".join(filter(None, (control.get("Pre-Depends"), control.get("Depends"))))
    return debversion.parse_depends(text) if text else []


def _check_constraints(chosen: dict[str, Deb]) -> None:
    problems = []
    for deb in chosen.values():
        for group in _dep_groups(deb.control):
            if not any(rel.name in chosen and rel.satisfied_by(chosen[rel.name].version)
                       for rel in group):
                have = ", ".join(f"{r.name} {chosen[r.name].version}"
                                 for r in group if r.name in chosen)
                problems.append(f"{deb.name} {deb.version} needs "
                                f"{' | '.join(map(str, group))}; have {have or 'nothing'}")
    if problems:
        raise ImageBuildError(
            "the downloadable package versions do not fit together",
            fix="the mirror serves an older version than its index lists; try again later "
                "or use another mirror (recipe key `mirror`)",
            evidence="\n".join(problems),
        )


def extract(deb: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageBuildError(f"cannot unpack {deb.name}", fix=f"delete {deb} and build again",
                              evidence=proc.stderr)


def which_or_fail(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ImageBuildError(f"{tool} is not installed", fix=f"apt-get install {package}")
    return path
