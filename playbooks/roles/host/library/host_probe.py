#!/usr/bin/python
"""Read, in one module call, everything host.yml decides on (read-only; never changes anything).

One call instead of a dozen stat/command tasks keeps a re-run on a prepared host quick.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import subprocess
import time
from collections.abc import Callable

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: host_probe
short_description: Read apt, dpkg, user and init state for lpmlab's host.yml
options:
  packages:
    description: Debian packages whose installed version to report.
    type: list
    elements: str
    default: []
  files:
    description: Small files whose content to return (absent ones map to null).
    type: list
    elements: str
    default: []
"""

LISTS = "/var/lib/apt/lists"
POLICY = "/usr/sbin/policy-rc.d"


def _run(argv: list[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              check=False)
    except OSError:
        return 127, ""
    return done.returncode, done.stdout


def _apt_source_files() -> list[str]:
    files = ["/etc/apt/sources.list"]
    parts = "/etc/apt/sources.list.d"
    if os.path.isdir(parts):
        files += [os.path.join(parts, f) for f in sorted(os.listdir(parts))
                  if f.endswith((".list", ".sources"))]
    return [f for f in files if os.path.isfile(f)]


def _files_naming(suite: str) -> list[str]:
    """Source files with an active (uncommented) line naming ``suite``."""
    pattern = re.compile(r"^[^#]*\b" + re.escape(suite) + r"\b", re.M)
    found = []
    for path in _apt_source_files():
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                if pattern.search(f.read()):
                    found.append(path)
        except OSError:
            continue
    return found


def _packages(names: list[str]) -> dict[str, dict[str, str]]:
    """name -> {version, status}; only packages dpkg knows (status 'ii' means installed)."""
    if not names:
        return {}
    _, out = _run(["dpkg-query", "-W", "-f=${Package} ${Version} ${db:Status-Abbrev}\n", *names])
    result: dict[str, dict[str, str]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            result[parts[0]] = {"version": parts[1], "status": parts[2]}
    return result


def _exists(lookup: Callable[[str], object], name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def _os_release() -> dict[str, str]:
    fields: dict[str, str] = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                fields[key.strip()] = value.strip().strip("'\"")
        break
    return fields


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "default": []},
            "files": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    lists = sorted(os.listdir(LISTS)) if os.path.isdir(LISTS) else []
    lists_age = int(time.time() - os.stat(LISTS).st_mtime) if os.path.isdir(LISTS) else 10**9
    policy_ours = "lpmlab host.yml" in (_read(POLICY) or "")
    rc, archs = _run(["dpkg", "--print-foreign-architectures"])
    module.exit_json(
        changed=False,
        os_release=_os_release(),
        files={path: _read(path) for path in module.params["files"]},
        keyring=os.path.isfile("/usr/share/keyrings/debian-archive-keyring.gpg"),
        backports_sources=_files_naming("bookworm-backports"),
        foreign_archs=archs.split() if rc == 0 else [],
        apt_lists=[n for n in lists if "_Packages" in n],
        apt_lists_age_s=lists_age,
        packages=_packages(module.params["packages"]),
        policy_rc_d_ours=policy_ours,
        # sd_booted(): systemd manages this host only when /run/systemd/system exists.
        systemd=os.path.isdir("/run/systemd/system"),
        user_libvirt_qemu=_exists(pwd.getpwnam, "libvirt-qemu"),
        group_libvirt_qemu=_exists(grp.getgrnam, "libvirt-qemu"),
    )


if __name__ == "__main__":
    main()
