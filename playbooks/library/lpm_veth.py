#!/usr/bin/python
"""Ansible module: a veth pair joining two namespaces, each end optionally on a bridge."""

from __future__ import annotations

DOCUMENTATION = r"""
module: lpm_veth
short_description: Ensure a veth pair between two network namespaces
options:
  ns: {description: namespace of this end, required: true, type: str}
  ifname: {description: name of this end, required: true, type: str}
  address: {description: CIDR for this end, type: str}
  master: {description: bridge in ns to enslave this end to, type: str}
  peer_ns: {description: namespace of the other end ("" is the host's own), required: true,
            type: str}
  peer_ifname: {description: name of the other end, required: true, type: str}
  peer_master: {description: bridge in peer_ns for the other end, type: str}
  peer_address: {description: CIDR for the other end, type: str}
"""

import os
import subprocess

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "ns": {"type": "str", "required": True},
            "ifname": {"type": "str", "required": True},
            "address": {"type": "str"},
            "master": {"type": "str"},
            "peer_ns": {"type": "str", "required": True},
            "peer_ifname": {"type": "str", "required": True},
            "peer_master": {"type": "str"},
            "peer_address": {"type": "str"},
        },
    )
    p = module.params

    def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        cp = subprocess.run(["ip", *args], capture_output=True, text=True)
        if check and cp.returncode != 0:
            module.fail_json(msg=f"ip {' '.join(args)} failed", stderr=cp.stderr)
        return cp

    def in_ns(ns: str) -> list[str]:
        return ["-n", ns] if ns else []  # "": the host's own namespace

    def ensure_address(ns: str, ifname: str, cidr: str) -> bool:
        out = ip(*in_ns(ns), "-o", "addr", "show", "dev", ifname).stdout
        if f" {cidr} " in out:
            return False
        ip(*in_ns(ns), "addr", "add", cidr, "dev", ifname)
        return True

    changed = False
    if ip("-n", p["ns"], "link", "show", p["ifname"], check=False).returncode != 0:
        # Create both ends in the root namespace under temporary names, then move them:
        # the final names may clash with interfaces of the root namespace.
        tmp_a, tmp_b = f"lpt{os.getpid()}a", f"lpt{os.getpid()}b"
        ip("link", "del", tmp_a, check=False)
        ip("link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        ip("link", "set", tmp_a, "netns", p["ns"], "name", p["ifname"])
        if p["peer_ns"]:
            ip("link", "set", tmp_b, "netns", p["peer_ns"], "name", p["peer_ifname"])
        else:
            ip("link", "del", p["peer_ifname"], check=False)  # a leftover of an older lab
            ip("link", "set", tmp_b, "name", p["peer_ifname"])
        changed = True
    if p["master"]:
        ip("-n", p["ns"], "link", "set", p["ifname"], "master", p["master"])
    if p["peer_master"]:
        ip(*in_ns(p["peer_ns"]), "link", "set", p["peer_ifname"], "master", p["peer_master"])
    if p["address"]:
        changed |= ensure_address(p["ns"], p["ifname"], p["address"])
    if p["peer_address"]:
        changed |= ensure_address(p["peer_ns"], p["peer_ifname"], p["peer_address"])
    ip("-n", p["ns"], "link", "set", p["ifname"], "up")
    ip(*in_ns(p["peer_ns"]), "link", "set", p["peer_ifname"], "up")
    module.exit_json(changed=changed)


if __name__ == "__main__":
    main()
