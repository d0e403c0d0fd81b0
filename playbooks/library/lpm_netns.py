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

import hashlib
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


def bridge_mac(ns: str, brname: str) -> str:
    """A fixed, locally administered MAC for a bridge.

    Without one a Linux bridge takes the lowest MAC among its ports, so it changes when a
    guest's tap joins; a frame's bridge then took the MAC of the migrating partition's NIC
    (which is also on the other frame) and the frames stopped reaching each other.
    """
    digest = hashlib.sha256(f"{ns}/{brname}".encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def link_mac(module: AnsibleModule, ns: str, ifname: str) -> str:
    return ip(module, "-n", ns, "-br", "link", "show", "dev", ifname).stdout.split()[2]


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
        mac = bridge_mac(name, brname)
        if not link_exists(module, name, brname):
            # Forward-delay 0: guests must talk at once after boot and after a migration.
            ip(module, "-n", name, "link", "add", brname, "address", mac, "type", "bridge",
               "forward_delay", "0", "stp_state", "0")
            changed = True
        elif link_mac(module, name, brname) != mac:
            ip(module, "-n", name, "link", "set", brname, "address", mac)
            changed = True
        if br.get("address"):
            changed |= ensure_address(module, name, brname, br["address"])
        ip(module, "-n", name, "link", "set", brname, "up")
    module.exit_json(changed=changed, namespace=name)


if __name__ == "__main__":
    main()
