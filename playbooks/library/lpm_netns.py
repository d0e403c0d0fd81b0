#!/usr/bin/python
"""Ansible module: a network namespace with loopback up and optional bridges inside it."""

from __future__ import annotations

DOCUMENTATION = r"""
module: lpm_netns
short_description: Ensure a network namespace (and bridges in it) exists
options:
  name: {description: namespace name, required: true, type: str}
  bridges:
    description: bridges to create inside, each {name, address (CIDR, optional)}
    type: list
    elements: dict
    default: []
  state: {type: str, choices: [present, absent], default: present}
"""

import os
import subprocess

from ansible.module_utils.basic import AnsibleModule


def ip(module: AnsibleModule, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cp = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and cp.returncode != 0:
        module.fail_json(msg=f"ip {' '.join(args)} failed", stderr=cp.stderr)
    return cp


def link_exists(module: AnsibleModule, ns: str, ifname: str) -> bool:
    return ip(module, "-n", ns, "link", "show", ifname, check=False).returncode == 0


def ensure_address(module: AnsibleModule, ns: str, ifname: str, cidr: str) -> bool:
    out = ip(module, "-n", ns, "-o", "addr", "show", "dev", ifname).stdout
    if f" {cidr} " in out:
        return False
    ip(module, "-n", ns, "addr", "add", cidr, "dev", ifname)
    return True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "bridges": {"type": "list", "elements": "dict", "default": []},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        supports_check_mode=False,
    )
    name = module.params["name"]
    changed = False
    present = os.path.exists(f"/run/netns/{name}")
    if module.params["state"] == "absent":
        if present:
            ip(module, "netns", "delete", name)
            changed = True
        module.exit_json(changed=changed)
    if not present:
        ip(module, "netns", "add", name)
        changed = True
    ip(module, "-n", name, "link", "set", "lo", "up")
    for br in module.params["bridges"]:
        brname = br["name"]
        if not link_exists(module, name, brname):
            # Forward-delay 0: guests must talk at once after boot and after a migration.
            ip(module, "-n", name, "link", "add", brname, "type", "bridge",
               "forward_delay", "0", "stp_state", "0")
            changed = True
        if br.get("address"):
            changed |= ensure_address(module, name, brname, br["address"])
        ip(module, "-n", name, "link", "set", brname, "up")
    module.exit_json(changed=changed, namespace=name)


if __name__ == "__main__":
    main()
