#!/usr/bin/python
"""Ansible module: an iSCSI target with one LUN on a running tgtd, open to all initiators."""

from __future__ import annotations

DOCUMENTATION = r"""
module: lpm_iscsi_target
short_description: Ensure a tgtd target (tid, iqn) serves a backing file as LUN 1
options:
  control_port: {required: true, type: int}
  tid: {required: true, type: int}
  iqn: {required: true, type: str}
  backing: {required: true, type: path}
"""

import subprocess

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(argument_spec={
        "control_port": {"type": "int", "required": True},
        "tid": {"type": "int", "required": True},
        "iqn": {"type": "str", "required": True},
        "backing": {"type": "path", "required": True},
    })
    p = module.params
    base = ["tgtadm", "-C", str(p["control_port"]), "--lld", "iscsi"]

    def tgtadm(*args: str) -> str:
        cp = subprocess.run([*base, *args], capture_output=True, text=True)
        if cp.returncode != 0:
            module.fail_json(msg=f"tgtadm {' '.join(args)} failed", stderr=cp.stderr)
        return cp.stdout

    shown = tgtadm("--op", "show", "--mode", "target")
    if f"Target {p['tid']}: {p['iqn']}" in shown:
        module.exit_json(changed=False)
    tid = str(p["tid"])
    tgtadm("--op", "new", "--mode", "target", "--tid", tid, "-T", p["iqn"])
    # Buffered I/O (no bsoflags=direct): every VIOS serving this file shares the host page
    # cache, so the LUN stays coherent when the destination VIOS takes over.
    tgtadm("--op", "new", "--mode", "logicalunit", "--tid", tid, "--lun", "1",
           "-b", p["backing"])
    tgtadm("--op", "bind", "--mode", "target", "--tid", tid, "-I", "ALL")
    module.exit_json(changed=True)


if __name__ == "__main__":
    main()
