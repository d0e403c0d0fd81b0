"""The steps of ``make box`` around images/box/build-box.sh: the SSH key the frame box
trusts, build-box.sh's package arguments (what host.yml would install on a frame) and adding
the built box to lpmlab's own Vagrant.

    python -m lpmlab.fabric.box ensure-key [DIR]   make DIR/vagrant_key(.pub) once
    python -m lpmlab.fabric.box box-args           build-box.sh's package arguments
    python -m lpmlab.fabric.box box-add FILE       vagrant box add --force
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from lpmlab.errors import LpmlabError
from lpmlab.fabric.keys import ensure_keypair
from lpmlab.fabric.vagrant import BOX_NAME, KEY_NAME, Vagrant
from lpmlab.paths import repo_root, state_root


def ensure_key(folder: Path) -> Path:
    """The SSH key pair the box trusts: ``folder/vagrant_key`` (0600, OpenSSH Ed25519) and
    ``vagrant_key.pub``, made once. Returns the private key's path."""
    path, _ = ensure_keypair(folder / KEY_NAME, "lpmlab-vagrant")
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # ssh ignores a key others can read
    return path


def box_build_args(defaults: Path | None = None) -> list[str]:
    """build-box.sh's package arguments: what host.yml would install on a frame (its role
    defaults), so host.yml finds a frame VM prepared, and the units it disables."""
    import yaml

    path = defaults or repo_root() / "playbooks" / "roles" / "host" / "defaults" / "main.yml"
    d = yaml.safe_load(path.read_text())
    return ["--backports-packages", " ".join(d["host_virt_packages"]),
            "--packages", " ".join(d["host_tool_packages"]),
            "--disable-units", " ".join(d["host_system_units"])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lpmlab.fabric.box",
                                     description="Steps of `make box`.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    key = sub.add_parser("ensure-key", help="make DIR/vagrant_key(.pub) once; print the path")
    key.add_argument("folder", type=Path, nargs="?")
    add = sub.add_parser("box-add", help=f"vagrant box add --force (as {BOX_NAME})")
    add.add_argument("file", type=Path)
    add.add_argument("--name", default=BOX_NAME)
    sub.add_parser("box-args", help="build-box.sh's package arguments, shell-quoted")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "ensure-key":
            print(ensure_key(args.folder or state_root() / "box"))
        elif args.cmd == "box-add":
            Vagrant().box_add(args.name, args.file)
        else:
            print(shlex.join(box_build_args()))
    except LpmlabError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
