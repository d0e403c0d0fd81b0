#!/usr/bin/python
"""Ansible module: an HMC endpoint's files — its folders, sshd host keys, the HMC's own key,
the HMC user's authorized keys, a copy of the restricted shell's modules, and the user
database its sshd sees (passwd, group, shadow) — in one step.

The sshd of an HMC runs in a private mount namespace where the user database replaces the
host's /etc/passwd, /etc/group and /etc/shadow: root (which may not log in), the sshd
privilege-separation user, nobody and the HMC user, whose login shell is the HMC restricted
shell. The host's own user database is never changed. The HMC user's uid is the first one
from 30000 up that the host does not use, so no host account shares it.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: lpm_hmc_endpoint
short_description: the files of an HMC endpoint (keys, shell copy, private user database)
options:
  dir: {description: the HMC's state folder, required: true, type: path}
  etc_dir: {description: its sshd's /etc/ssh, required: true, type: path}
  home_dir: {description: its sshd's /home, required: true, type: path}
  run_dir: {description: the command server's socket folder, required: true, type: path}
  shell_src: {description: the lpmlab package folder, required: true, type: path}
  shell_files: {description: the shell's modules (paths in the package), type: list,
                elements: str, required: true}
  hostname: {description: the HMC's name (key comments), required: true, type: str}
  user: {description: the HMC user (hscroot), required: true, type: str}
  home: {required: true, type: str}
  shell: {description: login shell (the restricted HMC shell), required: true, type: str}
  password_file: {description: file holding the user's password, required: true, type: path}
  gecos: {type: str, default: HMC super administrator}
"""

import filecmp
import os
import shutil
import subprocess

from ansible.module_utils.basic import AnsibleModule

FIRST_UID = 30000
SYSTEM_USERS = ("root", "sshd", "nobody")
SYSTEM_GROUPS = ("root", "nogroup")


def read_db(path: str) -> list[list[str]]:
    try:
        with open(path) as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip()]
    except OSError:
        return []


def free_id(used: set[int], wanted: int | None) -> int:
    if wanted is not None and wanted not in used:
        return wanted
    n = FIRST_UID
    while n in used:
        n += 1
    return n


def sha512_crypt(password: str, salt: str | None) -> str:
    argv = ["openssl", "passwd", "-6", "-stdin"] + (["-salt", salt] if salt else [])
    cp = subprocess.run(argv, input=password, capture_output=True, text=True)
    if cp.returncode != 0:
        raise RuntimeError(cp.stderr.strip() or "openssl passwd failed")
    return cp.stdout.strip()


def write(path: str, lines: list[str], mode: int) -> bool:
    text = "".join(line + "\n" for line in lines)
    try:
        with open(path) as f:
            if f.read() == text and (os.stat(path).st_mode & 0o777) == mode:
                return False
    except OSError:
        pass
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def folders(p: dict) -> bool:
    changed = False
    for path, mode in ((p["dir"], 0o755), (p["etc_dir"], 0o755),
                       (os.path.join(p["etc_dir"], "authorized_keys"), 0o755),
                       (os.path.join(p["home_dir"], p["user"]), 0o755), (p["run_dir"], 0o755),
                       (os.path.join(p["dir"], "empty"), 0o755),
                       (os.path.join(p["dir"], "accounts"), 0o755),
                       (os.path.join(p["dir"], "keys"), 0o700)):
        if not os.path.isdir(path):
            os.makedirs(path)
            changed = True
        os.chmod(path, mode)
    return changed


def keys(p: dict) -> bool:
    """sshd's host keys and the HMC's own key, each made once."""
    changed = False
    wanted = [(os.path.join(p["etc_dir"], f"ssh_host_{t}_key"), t, p["hostname"])
              for t in ("ed25519", "ecdsa", "rsa")]
    wanted.append((os.path.join(p["dir"], "keys", "id_ed25519"), "ed25519",
                   f"{p['user']}@{p['hostname']}"))
    for path, kind, comment in wanted:
        if os.path.exists(path):
            continue
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", path],
                       check=True, capture_output=True)
        changed = True
    authorized = os.path.join(p["etc_dir"], "authorized_keys", p["user"])
    if not os.path.exists(authorized):
        write(authorized, [], 0o644)  # mkauthkeys fills it
        changed = True
    return changed


def shell_copy(p: dict) -> bool:
    """The shell runs as the HMC user, who may not read the lab's venv: a copy of its
    modules lives in the HMC's /etc/ssh."""
    changed = False
    root = os.path.join(p["etc_dir"], "lpmlab-shell", "lpmlab")
    for rel in p["shell_files"]:
        src, dst = os.path.join(p["shell_src"], rel), os.path.join(root, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.exists(dst) and filecmp.cmp(src, dst, shallow=False):
            continue
        shutil.copyfile(src, dst + ".tmp")
        os.chmod(dst + ".tmp", 0o644)
        os.replace(dst + ".tmp", dst)
        changed = True
    return changed


def main() -> None:
    module = AnsibleModule(argument_spec={
        "dir": {"type": "path", "required": True},
        "etc_dir": {"type": "path", "required": True},
        "home_dir": {"type": "path", "required": True},
        "run_dir": {"type": "path", "required": True},
        "shell_src": {"type": "path", "required": True},
        "shell_files": {"type": "list", "elements": "str", "required": True},
        "hostname": {"type": "str", "required": True},
        "user": {"type": "str", "required": True},
        "home": {"type": "str", "required": True},
        "shell": {"type": "str", "required": True},
        "password_file": {"type": "path", "required": True, "no_log": False},
        "gecos": {"type": "str", "default": "HMC super administrator"},
    })
    p = module.params
    try:
        changed = folders(p) | keys(p) | shell_copy(p)
    except (OSError, subprocess.CalledProcessError) as exc:
        module.fail_json(msg=f"cannot make the HMC endpoint's files in {p['dir']}: {exc}",
                         stderr=getattr(exc, "stderr", b"").decode(errors="replace")
                         if isinstance(getattr(exc, "stderr", None), bytes) else "")
    accounts = os.path.join(p["dir"], "accounts")
    host_passwd, host_group = read_db("/etc/passwd"), read_db("/etc/group")
    mine_passwd = {e[0]: e for e in read_db(os.path.join(accounts, "passwd"))}
    mine_shadow = {e[0]: e for e in read_db(os.path.join(accounts, "shadow"))}
    used_uids = {int(e[2]) for e in host_passwd if len(e) > 2 and e[2].isdigit()}
    used_gids = {int(e[2]) for e in host_group if len(e) > 2 and e[2].isdigit()}
    old = mine_passwd.get(p["user"])
    uid = free_id(used_uids, int(old[2]) if old else None)
    gid = free_id(used_gids, int(old[3]) if old else uid)
    passwd = [":".join(e) for e in host_passwd if e[0] in SYSTEM_USERS and e[0] != p["user"]]
    passwd.append(f"{p['user']}:x:{uid}:{gid}:{p['gecos']}:{p['home']}:{p['shell']}")
    group = [":".join(e) for e in host_group if e[0] in SYSTEM_GROUPS]
    group.append(f"{p['user']}:x:{gid}:")
    try:
        with open(p["password_file"]) as f:
            password = f.read().strip()
    except OSError as exc:
        module.fail_json(msg=f"cannot read the HMC password file {p['password_file']}: {exc}")
    try:
        # keep the hash while the password is unchanged (its salt would change each time)
        kept = mine_shadow.get(p["user"])
        digest = None
        if kept and kept[1].startswith("$6$"):
            salt = kept[1].split("$")[2]
            if sha512_crypt(password, salt) == kept[1]:
                digest = kept[1]
        digest = digest or sha512_crypt(password, None)
    except (OSError, RuntimeError) as exc:
        module.fail_json(msg=f"cannot hash the HMC password (openssl): {exc}")
    # root and the system users have no password: they cannot log in with one
    shadow = [f"{u}:*:19000:0:99999:7:::" for u in SYSTEM_USERS if u != p["user"]]
    shadow.append(f"{p['user']}:{digest}:19000:0:99999:7:::")
    changed |= write(os.path.join(accounts, "passwd"), passwd, 0o644)
    changed |= write(os.path.join(accounts, "group"), group, 0o644)
    changed |= write(os.path.join(accounts, "shadow"), shadow, 0o600)
    module.exit_json(changed=changed, uid=uid, gid=gid)


if __name__ == "__main__":
    main()
