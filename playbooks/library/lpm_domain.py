#!/usr/bin/python
"""Ansible module: a libvirt domain defined (persistent) and running on exactly one frame.

Idempotent across the lab: when the domain already exists on any of ``lab_uris`` (for example
because it was migrated), nothing is created, so a partition never exists twice.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: lpm_domain
short_description: Ensure an lpmlab partition (libvirt domain) is defined and running
options:
  name: {required: true, type: str}
  uri: {description: libvirt URI of the frame that should create it, required: true, type: str}
  lab_uris: {description: URIs of every frame of the lab, type: list, elements: str, default: []}
  xml: {description: domain XML (used only when the domain exists nowhere), type: str}
  state: {type: str, choices: [running, defined, absent], default: running}
"""

from ansible.module_utils.basic import AnsibleModule

try:
    import libvirt
except ImportError:  # reported by fail_json below
    libvirt = None


def lookup(uri: str, name: str):  # noqa: ANN201 - returns (conn, domain or None)
    conn = libvirt.open(uri)
    try:
        return conn, conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return conn, None
        raise


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "uri": {"type": "str", "required": True},
            "lab_uris": {"type": "list", "elements": "str", "default": []},
            "xml": {"type": "str"},
            "state": {"type": "str", "choices": ["running", "defined", "absent"],
                      "default": "running"},
        },
    )
    if libvirt is None:
        module.fail_json(msg="libvirt-python is not importable by this interpreter",
                         fix="run the playbook with the lpmlab venv's python")
    p = module.params
    name = p["name"]
    libvirt.registerErrorHandler(lambda *_: None, None)
    try:
        for uri in [u for u in p["lab_uris"] if u != p["uri"]]:
            _, dom = lookup(uri, name)
            if dom is not None:
                module.exit_json(changed=False, frame_uri=uri,
                                 msg=f"{name} already exists on {uri}; left where it is")
        conn, dom = lookup(p["uri"], name)
        changed = False
        if p["state"] == "absent":
            if dom is not None:
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
                changed = True
            module.exit_json(changed=changed)
        if dom is None:
            if not p["xml"]:
                module.fail_json(msg=f"{name} does not exist and no xml was given")
            dom = conn.defineXML(p["xml"])
            changed = True
        if p["state"] == "running" and not dom.isActive():
            dom.create()
            changed = True
        module.exit_json(changed=changed, frame_uri=p["uri"], uuid=dom.UUIDString())
    except libvirt.libvirtError as exc:
        module.fail_json(msg=f"libvirt: {exc}", uri=p["uri"])


if __name__ == "__main__":
    main()
