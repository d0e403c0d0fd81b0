#!/usr/bin/env python3
"""Issue #2 targets, measured on the default lab in one run (figures printed, nothing asserted).

1. `lpmlab lab up` from cached images (after `lab down`), target <= 60 s.
2. `migrlpar -o m` wall time vs a plain libvirt-python migrate of the same guest between the
   same frames, alternating, each as a fresh process (both pay interpreter start-up), and the
   in-process figures; target ratio <= 1.05.
3. Stream throughput through the MSPs vs a direct frame-to-frame stream (raw TCP and
   migration bytes per second of job time); target >= 0.8.
4. Host memory of the idle lab beyond the guests' own RAM (PSS of every lab process), <= 1 GiB.

Run: make bench   (or .venv/bin/python benchmarks/lab_bench.py [--rounds N])
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
PLAIN_MIGRATE = r"""
import sys, time, libvirt
src, dst_peer, dst_addr, port = sys.argv[1:5]
libvirt.registerErrorHandler(lambda *a: None, None)
conn = libvirt.open(src)
dom = conn.lookupByName("lpar1")
flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
         | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
t0 = time.monotonic()
dom.migrateToURI3(dst_peer, {libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{dst_addr}:{port}",
                             libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: dst_addr}, flags)
print(time.monotonic() - t0)
"""


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kw)


def lab_up_time() -> float:
    run([str(BIN / "lpmlab"), "lab", "down"])
    t0 = time.monotonic()
    run([str(BIN / "lpmlab"), "lab", "up"], timeout=900)
    return time.monotonic() - t0


def where(hmc: object) -> str:
    return [p.frame for p in hmc.placements("lpar1")][0]  # type: ignore[attr-defined]


def last_job(hmc: object) -> dict:
    rec = hmc.store.latest("lpar1", 1)[0]  # type: ignore[attr-defined]
    return rec.stats.get("job", {})


def completed(hmc: object, frame: str) -> dict:
    from lpmlab.adapter.migration import completed_stats

    dom = hmc.conn(frame).lookup("lpar1")  # type: ignore[attr-defined]
    return completed_stats(dom) if dom else {}


def migrations(rounds: int) -> dict:
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    frames = [f.name for f in hmc.topology.frames]
    from lpmlab.demo import set_dirty_workload
    from lpmlab.fabric.lab import Lab

    rmc = Lab(hmc.plan).rmc("lpar1")
    set_dirty_workload(rmc, 64, 192)
    rmc.close()
    time.sleep(3)
    res: dict[str, list[float]] = {"migrlpar_wall": [], "plain_wall": [],
                                   "migrlpar_bps": [], "plain_bps": []}
    # The first migrations after boot are slow for both kinds (cold destination): not measured.
    for _ in range(2):
        src = where(hmc)
        run([str(BIN / "migrlpar"), "-o", "m", "-m", src, "-t",
             next(f for f in frames if f != src), "-p", "lpar1"])
    for i in range(rounds):
        for kind in ("migrlpar", "plain") if i % 2 == 0 else ("plain", "migrlpar"):
            src = where(hmc)
            dst = next(f for f in frames if f != src)
            t0 = time.monotonic()
            if kind == "migrlpar":
                run([str(BIN / "migrlpar"), "-o", "m", "-m", src, "-t", dst, "-p", "lpar1"])
                wall = time.monotonic() - t0
                job = last_job(hmc)
            else:
                fp, dp = hmc.plan.frame(src), hmc.plan.frame(dst)
                run([sys.executable, "-c", PLAIN_MIGRATE, fp.uri, dp.peer_uri,
                     str(dp.frame.address), str(dp.frame.migration_ports[0] + 40)])
                wall = time.monotonic() - t0
                job = completed(hmc, dst)
            res[f"{kind}_wall"].append(wall)
            if job.get("time_elapsed"):
                res[f"{kind}_bps"].append(job["data_processed"] / (job["time_elapsed"] / 1000))
            print(f"  round {i + 1} {kind:<8} {src}->{dst} wall {wall:.2f}s job "
                  f"{job.get('time_elapsed')} ms, {job.get('data_processed', 0) / 2**20:.0f} MiB,"
                  f" downtime {job.get('downtime')} ms", file=sys.stderr)
    hmc.close()
    return res


STREAM = r"""
import socket, sys, time
mode, host, port, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if mode == "sink":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(1); print("ready", flush=True)
    c, _ = s.accept(); n = 0
    while True:
        b = c.recv(1 << 20)
        if not b: break
        n += len(b)
    print(n)
else:
    c = socket.create_connection((host, port)); buf = b"x" * (1 << 20); t0 = time.monotonic()
    for _ in range(size): c.sendall(buf)
    c.close(); print(time.monotonic() - t0)
"""


def stream(src_ns: str, dst_ns: str, listen: str, connect: str, port: int, mib: int) -> float:
    sink = subprocess.Popen(["ip", "netns", "exec", dst_ns, sys.executable, "-c", STREAM, "sink",
                             listen, str(port), "0"], stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None
    sink.stdout.readline()
    t0 = time.monotonic()
    run(["ip", "netns", "exec", src_ns, sys.executable, "-c", STREAM, "send", connect,
         str(port), str(mib)])
    got = int(sink.stdout.readline())
    sink.wait()
    dt = time.monotonic() - t0
    assert got == mib << 20, got
    return (mib << 20) / dt


def relay_throughput(mib: int = 1024, rounds: int = 3) -> tuple[float, float]:
    """Median MiB/s of a raw TCP stream sys1 -> sys2, direct and through both MSPs, alternating."""
    pairs = [relay_once(mib) for _ in range(rounds)]
    return (statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs))


def relay_once(mib: int) -> tuple[float, float]:
    from lpmlab.fabric.lab import load_state
    from lpmlab.fabric.msp import LAB_IFACE, MOVER_IFACE, Hop

    plan, _ = load_state()
    s, d = plan.frame("sys1"), plan.frame("sys2")
    v1, v2 = plan.vios("vios1"), plan.vios("vios2")
    port = d.frame.migration_ports[1]
    direct = stream(s.ns, d.ns, str(d.frame.address), str(d.frame.address), port, mib)
    m1, m2 = v1.mover_service(), v2.mover_service()
    a1, a2 = v1.vios, v2.vios
    m2.forward(Hop("bench", MOVER_IFACE, (str(a2.mover_address), port), LAB_IFACE,
                   str(a2.address), (str(d.frame.address), port)))
    m1.forward(Hop("bench", LAB_IFACE, (str(a1.address), port), MOVER_IFACE,
                   str(a1.mover_address), (str(a2.mover_address), port)))
    try:
        relayed = stream(s.ns, d.ns, str(d.frame.address), str(a1.address), port, mib)
    finally:
        m1.close("bench")
        m2.close("bench")
    return direct, relayed


def lab_memory() -> tuple[float, float, float]:
    """(PSS of lab processes other than QEMU, PSS of QEMU, guests' configured RAM), in MiB.

    A QEMU's PSS holds the guest RAM it has touched, so only its excess over the configured RAM
    is certainly overhead; the figure printed is an upper bound of what lies beyond the guests.
    """
    from lpmlab.fabric import netns
    from lpmlab.fabric.lab import load_state

    plan, _ = load_state()
    pids = set()
    for ns in netns.list_lab_namespaces():
        pids.update(netns.pids_in(ns))
    other = qemu = 0
    for pid in pids:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    if comm.startswith("qemu"):
                        qemu += int(line.split()[1])
                    else:
                        other += int(line.split()[1])
        except OSError:
            continue
    guest = sum(p.memory_mb for p in plan.topology.partitions)
    return other / 1024, qemu / 1024, guest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--skip-up", action="store_true", help="reuse the running lab")
    args = ap.parse_args()
    out: dict = {}
    if not args.skip_up:
        out["lab_up_s"] = lab_up_time()
        print(f"lab up from cached images: {out['lab_up_s']:.1f} s (target <= 60)")
    other, qemu, guest = lab_memory()
    out.update(idle_lab_other_pss_mib=other, idle_lab_qemu_pss_mib=qemu, guest_ram_mib=guest)
    print(f"idle lab memory (PSS): libvirtd/tgtd/relays {other:.0f} MiB, QEMU {qemu:.0f} MiB "
          f"for {guest} MiB of guest RAM; beyond the guests' RAM at most "
          f"{other + max(0.0, qemu - guest):.0f} MiB, all lab processes {other + qemu:.0f} MiB "
          "(target <= 1024 beyond)")
    direct, relayed = relay_throughput()
    out["stream_direct_mibps"], out["stream_relayed_mibps"] = direct / 2**20, relayed / 2**20
    print(f"raw stream sys1->sys2: direct {direct / 2**20:.0f} MiB/s, through MSPs "
          f"{relayed / 2**20:.0f} MiB/s, ratio {relayed / direct:.2f} (target >= 0.8)")
    m = migrations(args.rounds)
    out.update(m)
    mw, pw = statistics.median(m["migrlpar_wall"]), statistics.median(m["plain_wall"])
    print(f"migration wall (median of {args.rounds}, alternating): migrlpar {mw:.2f} s, plain "
          f"libvirt-python {pw:.2f} s, ratio {mw / pw:.3f} (target <= 1.05)")
    if m["migrlpar_bps"] and m["plain_bps"]:
        mb, pb = statistics.median(m["migrlpar_bps"]), statistics.median(m["plain_bps"])
        print(f"migration throughput (bytes / job time): through MSPs {mb / 2**20:.0f} MiB/s, "
              f"direct {pb / 2**20:.0f} MiB/s, ratio {mb / pb:.2f} (target >= 0.8)")
    print(json.dumps(out, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
