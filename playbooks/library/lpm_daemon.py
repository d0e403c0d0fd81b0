#!/usr/bin/python
"""Ansible module: a long-running daemon inside a network namespace, with private bind mounts.

Idempotent through a pid file: a live process with the recorded pid and command is left alone.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: lpm_daemon
short_description: Start or stop a daemon inside a network (and private mount) namespace
options:
  name: {description: label used in messages, required: true, type: str}
  ns: {description: network namespace, required: true, type: str}
  argv: {description: command line, required: true, type: list, elements: str}
  pidfile: {required: true, type: path}
  logfile: {required: true, type: path}
  bind_mounts:
    description: >-
      mounts made privately, in order, before exec: {src, dst} binds a folder or a file,
      {tmpfs: dst} mounts an empty tmpfs, {mkdir: dst} makes a folder (e.g. inside a tmpfs)
    type: list
    elements: dict
    default: []
  env: {description: extra environment, type: dict, default: {}}
  wait_path: {description: file (socket) that appears when the daemon is ready, type: path}
  wait_cmd: {description: command (argv, run in ns) that succeeds when ready, type: list,
             elements: str}
  timeout: {type: float, default: 30}
  state: {type: str, choices: [started, stopped], default: started}
"""

import os
import shlex
import signal
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule


def alive(pidfile: str, argv0: str) -> int:
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")
    except (OSError, ValueError):
        return 0
    return pid if any(os.path.basename(argv0).encode() in c for c in cmdline) else 0


def tail(path: str, n: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "ns": {"type": "str", "required": True},
            "argv": {"type": "list", "elements": "str", "required": True},
            "pidfile": {"type": "path", "required": True},
            "logfile": {"type": "path", "required": True},
            "bind_mounts": {"type": "list", "elements": "dict", "default": []},
            "env": {"type": "dict", "default": {}},
            "wait_path": {"type": "path"},
            "wait_cmd": {"type": "list", "elements": "str"},
            "timeout": {"type": "float", "default": 30.0},
            "state": {"type": "str", "choices": ["started", "stopped"], "default": "started"},
        },
    )
    p = module.params
    pid = alive(p["pidfile"], p["argv"][0])
    if p["state"] == "stopped":
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + p["timeout"]
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                time.sleep(0.1)
        module.exit_json(changed=bool(pid))
    if pid:
        module.exit_json(changed=False, pid=pid)

    script = []
    for m in p["bind_mounts"]:
        if "tmpfs" in m:
            script.append(f"mount -t tmpfs -o mode=0755 tmpfs {shlex.quote(m['tmpfs'])}")
            continue
        if "mkdir" in m:
            script.append(f"mkdir -p {shlex.quote(m['mkdir'])}")
            continue
        src, dst = shlex.quote(m["src"]), shlex.quote(m["dst"])
        if os.path.isfile(m["src"]):
            script.append(f"mount --bind {src} {dst}")
            continue
        os.makedirs(m["src"], exist_ok=True)
        script.append(f"mkdir -p {dst} && mount --bind {src} {dst}")
    script.append('exec "$@"')
    env = dict(os.environ, **{k: str(v) for k, v in p["env"].items()})
    os.makedirs(os.path.dirname(p["logfile"]), exist_ok=True)
    with open(p["logfile"], "ab") as log:
        # `ip netns exec` gives the child a private mount namespace, so the bind mounts
        # are seen by this daemon (and its children) only.
        proc = subprocess.Popen(
            ["ip", "netns", "exec", p["ns"], "sh", "-c", " && ".join(script), p["name"],
             *p["argv"]],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True,
            close_fds=True,
        )
    with open(p["pidfile"], "w") as f:
        f.write(f"{proc.pid}\n")
    deadline = time.monotonic() + p["timeout"]
    while True:
        if proc.poll() is not None:
            module.fail_json(msg=f"{p['name']} exited with status {proc.returncode} at start",
                             log_tail=tail(p["logfile"]))
        ready = True
        if p["wait_path"]:
            ready = os.path.exists(p["wait_path"])
        if ready and p["wait_cmd"]:
            ready = subprocess.run(["ip", "netns", "exec", p["ns"], *p["wait_cmd"]],
                                   capture_output=True).returncode == 0
        if ready:
            break
        if time.monotonic() > deadline:
            module.fail_json(msg=f"{p['name']} did not become ready within {p['timeout']} s "
                             f"(waited for {p['wait_path'] or p['wait_cmd']})",
                             log_tail=tail(p["logfile"]))
        time.sleep(0.1)
    module.exit_json(changed=True, pid=proc.pid)


if __name__ == "__main__":
    main()
