"""Host preparation: run playbooks/host.yml, and a quick check that the host is ready.

``python -m lpmlab.hostprep`` prepares the host (root needed); ``--check`` only reports problems.
Bootstrap rule: the Makefile runs this before libvirt-python is installed (it compiles against
libvirt-dev, which host.yml installs), so it imports only the stdlib, ansible_runner (through
lpmlab.fabric.ansible) and lpmlab.errors/paths/log.
"""

from __future__ import annotations

import argparse
import glob
import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path

from lpmlab.errors import HostPrepError, LpmlabError
from lpmlab.fabric.ansible import PlaybookResult, run_playbook
from lpmlab.log import progress

MIN_QEMU = (10, 0)
MIN_LIBVIRT = (11, 0)
MIN_DEBIAN = 12
PREPARE_HINT = "run `make demo` or `python -m lpmlab.hostprep` as root first"

# Binary -> the Debian package that provides it (host.yml installs them all).
REQUIRED_BINARIES: dict[str, str] = {
    "qemu-system-ppc64": "qemu-system-ppc",
    "qemu-img": "qemu-utils",
    "libvirtd": "libvirt-daemon",
    "virsh": "libvirt-clients",
    "tgtd": "tgt",
    "tgtadm": "tgt",
    "powerpc64le-linux-gnu-gcc": "gcc-powerpc64le-linux-gnu",
    "gcc": "gcc",
    "pkg-config": "pkg-config",
    "ip": "iproute2",
    "tc": "iproute2",
    "nft": "nftables",
    "pgrep": "procps",
    "fuser": "psmisc",
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "sshpass": "sshpass",
    "openssl": "openssl",
}

# Files that a bare binary check would miss: what -> (glob, package).
REQUIRED_FILES: dict[str, tuple[str, str]] = {
    "QEMU iSCSI block driver": ("/usr/lib/*/qemu/block-iscsi.so", "qemu-block-extra"),
    "libvirt QEMU driver": (
        "/usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so",
        "libvirt-daemon-driver-qemu",
    ),
    "the system's python3 (the HMC restricted shell runs with it)": (
        "/usr/bin/python3", "python3"),
    "ppc64el C library for the cross compiler": (
        "/usr/powerpc64le-linux-gnu/include/stdio.h", "libc6-dev-ppc64el-cross",
    ),
}

# Where host binaries live even when the caller's PATH lacks the sbin directories.
_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
     "/sbin", "/bin"]
)

_QEMU_RE = re.compile(r"QEMU emulator version (\d+)\.(\d+)(?:\.(\d+))?")
_LIBVIRT_RE = re.compile(r"\(libvirt\)\s+(\d+)\.(\d+)(?:\.(\d+))?")
_PLAIN_VERSION_RE = re.compile(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?\s*$")


def _version(match: re.Match[str] | None) -> tuple[int, ...] | None:
    if match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def parse_qemu_version(text: str) -> tuple[int, ...] | None:
    """``QEMU emulator version 10.0.2 (Debian ...)`` -> (10, 0, 2); None if unrecognised."""
    return _version(_QEMU_RE.search(text))


def parse_libvirt_version(text: str) -> tuple[int, ...] | None:
    """``libvirtd (libvirt) 11.3.0`` (or a bare ``11.3.0`` from pkg-config) -> (11, 3, 0)."""
    return _version(_LIBVIRT_RE.search(text) or _PLAIN_VERSION_RE.search(text))


def qemu_version_problem(text: str) -> str | None:
    """A problem sentence for ``qemu-system-ppc64 --version`` output, or None when it is fine."""
    found = parse_qemu_version(text)
    if found is None:
        return f"cannot read the QEMU version from {text.strip()[:80]!r}"
    if found < MIN_QEMU:
        return (f"QEMU {_dotted(found)} is too old: lpmlab needs QEMU >= {_dotted(MIN_QEMU)} "
                "(QEMU 7.2 freezes pseries guests after live migration under TCG); "
                "on Debian 12 take it from bookworm-backports")
    return None


def libvirt_version_problem(text: str, what: str = "libvirt") -> str | None:
    """A problem sentence for ``libvirtd --version`` output, or None when it is fine."""
    found = parse_libvirt_version(text)
    if found is None:
        return f"cannot read the {what} version from {text.strip()[:80]!r}"
    if found < MIN_LIBVIRT:
        return (f"{what} {_dotted(found)} is too old: lpmlab needs >= {_dotted(MIN_LIBVIRT)}; "
                "on Debian 12 take it from bookworm-backports")
    return None


def os_release_problem(text: str) -> str | None:
    """A problem sentence for the contents of /etc/os-release, or None for Debian >= 12."""
    fields = dict(
        (key, value.strip().strip('"'))
        for key, _, value in (line.partition("=") for line in text.splitlines())
        if key
    )
    name = fields.get("PRETTY_NAME") or fields.get("ID", "an unknown system")
    if fields.get("ID") != "debian":
        return f"this host runs {name}; lpmlab supports Debian 12 (bookworm) and 13 (trixie)"
    version = fields.get("VERSION_ID", "")
    if not version.isdigit() or int(version) < MIN_DEBIAN:
        return f"this host runs {name}; lpmlab needs Debian 12 (bookworm) or 13 (trixie)"
    return None


def _which(binary: str) -> str | None:
    return shutil.which(binary, path=_SEARCH_PATH)


def _output(argv: list[str]) -> str:
    """stdout+stderr of a short command; empty when it cannot run."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout + done.stderr


def check_host() -> list[str]:
    """Problems that stop the lab from running on this host (empty list: ready). No Ansible."""
    problems: list[str] = []
    try:
        os_problem = os_release_problem(Path("/etc/os-release").read_text())
    except OSError:
        os_problem = "cannot read /etc/os-release; lpmlab supports Debian 12 and 13"
    if os_problem:
        problems.append(os_problem)

    missing = [f"{b} (package {pkg})" for b, pkg in REQUIRED_BINARIES.items() if not _which(b)]
    if missing:
        problems.append("missing programs: " + ", ".join(missing))
    for what, (pattern, pkg) in REQUIRED_FILES.items():
        if not glob.glob(pattern):
            problems.append(f"{what} missing (package {pkg})")

    qemu = _which("qemu-system-ppc64")
    if qemu and (problem := qemu_version_problem(_output([qemu, "--version"]))):
        problems.append(problem)
    libvirtd = _which("libvirtd")
    if libvirtd and (problem := libvirt_version_problem(_output([libvirtd, "--version"]))):
        problems.append(problem)
    if pkg_config := _which("pkg-config"):
        dev = _output([pkg_config, "--modversion", "libvirt"])
        if parse_libvirt_version(dev) is None:
            problems.append("libvirt development files missing (package libvirt-dev); "
                            "libvirt-python cannot be built")
        elif problem := libvirt_version_problem(dev, "libvirt-dev"):
            problems.append(problem)

    return problems + _account_problems()


def _account_problems() -> list[str]:
    problems = []
    try:
        pwd.getpwnam("libvirt-qemu")
    except KeyError:
        problems.append("user libvirt-qemu does not exist (libvirtd needs it to start QEMU)")
    try:
        grp.getgrnam("libvirt-qemu")
    except KeyError:
        problems.append("group libvirt-qemu does not exist (libvirtd needs it to start QEMU)")
    return problems


def require_host() -> None:
    """Raise HostPrepError naming every problem when the host is not ready for the lab."""
    problems = check_host()
    if problems:
        raise HostPrepError(
            "this host is not prepared for lpmlab",
            fix=PREPARE_HINT,
            evidence="\n".join(f"- {p}" for p in problems),
        )


def prepare_host(*, artifacts: Path | None = None) -> PlaybookResult:
    """Run playbooks/host.yml on this machine, then check the result without Ansible."""
    if os.geteuid() != 0:
        raise HostPrepError("host preparation installs packages and needs root",
                            fix="run it as root: sudo python -m lpmlab.hostprep")
    result = run_playbook("host.yml", label="host", artifacts=artifacts)
    problems = check_host()
    if problems:
        raise HostPrepError(
            "host.yml finished but the host is still not ready",
            fix=f"read the run's output in {result.artifact_dir / 'stdout'} and fix the "
                "problems below, then run python -m lpmlab.hostprep again",
            evidence="\n".join(f"- {p}" for p in problems),
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lpmlab.hostprep",
        description="Prepare this Debian 12/13 host for lpmlab (runs playbooks/host.yml).",
    )
    parser.add_argument("--check", action="store_true",
                        help="only report what is missing or too old; change nothing")
    parser.add_argument("--artifacts", type=Path, default=None,
                        help="folder for the run's artifacts (default: under LPMLAB_HOME/runs)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            require_host()
            progress("host is ready for lpmlab")
            return 0
        result = prepare_host(artifacts=args.artifacts)
    except LpmlabError as err:
        print(err.render(), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("host preparation interrupted", file=sys.stderr)
        return 130
    slowest = sorted(result.task_durations, key=lambda t: t[2], reverse=True)[:3]
    progress(f"host prepared in {result.duration_s:.1f}s; slowest: "
             + ", ".join(f"{task} {secs:.1f}s" for _, task, secs in slowest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
