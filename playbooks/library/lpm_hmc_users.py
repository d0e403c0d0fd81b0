#!/usr/bin/python
"""Ansible module: the user database an HMC endpoint's sshd sees (passwd, group, shadow).

The sshd of an HMC runs in a private mount namespace where these files replace the host's
/etc/passwd, /etc/group and /etc/shadow: they hold root (which may not log in), the sshd
privilege-separation user, nobody and the HMC user, whose login shell is the HMC restricted
shell. The host's own user database is never changed. The HMC user's uid is the first one
from 30000 up that the host does not use, so no host account shares it.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: lpm_hmc_users
short_description: passwd, group and shadow files for an HMC endpoint's private namespace
options:
  dir: {description: folder to write passwd, group and shadow into, required: true, type: path}
  user: {description: the HMC user (hscroot), required: true, type: str}
  home: {required: true, type: str}
  shell: {description: login shell (the restricted HMC shell), required: true, type: str}
  password_file: {description: file holding the user's password, required: true, type: path}
  gecos: {type: str, default: HMC super administrator}
"""

import os
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


def main() -> None:
    module = AnsibleModule(argument_spec={
        "dir": {"type": "path", "required": True},
        "user": {"type": "str", "required": True},
        "home": {"type": "str", "required": True},
        "shell": {"type": "str", "required": True},
        "password_file": {"type": "path", "required": True, "no_log": False},
        "gecos": {"type": "str", "default": "HMC super administrator"},
    })
    p = module.params
    os.makedirs(p["dir"], exist_ok=True)
    host_passwd, host_group = read_db("/etc/passwd"), read_db("/etc/group")
    mine_passwd = {e[0]: e for e in read_db(os.path.join(p["dir"], "passwd"))}
    mine_shadow = {e[0]: e for e in read_db(os.path.join(p["dir"], "shadow"))}
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
    changed = write(os.path.join(p["dir"], "passwd"), passwd, 0o644)
    changed |= write(os.path.join(p["dir"], "group"), group, 0o644)
    changed |= write(os.path.join(p["dir"], "shadow"), shadow, 0o600)
    module.exit_json(changed=changed, uid=uid, gid=gid)


if __name__ == "__main__":
    main()
