"""``lpmlab lab up|down|status|console``: thin functions over lpmlab.fabric.lab."""

from __future__ import annotations

import argparse
import json

from lpmlab import log, paths, topology
from lpmlab.fabric import plan as P
from lpmlab.fabric.lab import Lab, load_state, teardown


def up(args: argparse.Namespace) -> int:
    topo = topology.load(args.topology)
    report = Lab(P.LabPlan.for_topology(topo)).up()
    log.progress("lab up: stage times")
    for s in report.stages:
        log.progress(f"  {s.name:<32} {s.seconds:6.1f}s")
    log.progress(f"  {'total':<32} {report.total:6.1f}s")
    return 0


def down(_args: argparse.Namespace) -> int:
    removed = teardown(paths.lab_dir())
    log.progress(f"lab down: removed {len(removed)} object(s)")
    for r in removed:
        log.progress(f"  {r}")
    return 0


def status(args: argparse.Namespace) -> int:
    plan, _state = load_state()
    st = Lab(plan).status()
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"lab {st['lab']} ({st['dir']})")
    for name, f in st["frames"].items():
        doms = ", ".join(f"{d}:{s}" for d, s in f.get("domains", {}).items()) or "-"
        print(f"  frame {name}: libvirtd {f['libvirtd']}; partitions {doms}")
        print(f"    libvirt over TLS (lab network): {f['tls_uri']}")
    for name, v in st["vios"].items():
        msp = f"; msp {v['msp']} ({v.get('msp_bytes', 0)} bytes carried)" if "msp" in v else ""
        print(f"  vios {name}: namespace {'up' if v['namespace'] else 'missing'}{msp}")
    for name, h in st["hmcs"].items():
        print(f"  hmc {name} (manages {', '.join(h['frames'])}): {h['ssh']}  password: "
              f"{h['password'] or '(not set)'}; sshd {h['sshd']}, command server "
              f"{h['command_server']}")
        print(f"    REST API {h['rest_api']}: {h['rest_url']}  (CA: {h['ca_file']})")
    for f in st.get("faults", []):
        target = ",".join(f"{k}={v}" for k, v in f["target"].items()) or "-"
        print(f"  fault {f['id']} {f['name']} [{f['state']}] when={f['when']} {target}: "
              f"{f['detail']}")
    return 0


def console(args: argparse.Namespace) -> int:
    plan, _state = load_state()
    print(Lab(plan).console_tail(args.partition, args.lines))
    return 0
