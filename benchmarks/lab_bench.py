#!/usr/bin/env python3
"""The lab's speed and memory figures, measured on the default lab in one run (printed,
nothing asserted); targets of issues #2 and #14.

1. `lpmlab lab up` from cached images (after `lab down`), target <= 30 s.
2. `migrlpar -o v`: the command's wall time and the validation in-process, target <= 0.3 s.
3. Stream throughput through the MSPs vs a direct frame-to-frame stream (raw TCP).
4. `migrlpar -o m` against a plain libvirt-python migration of the same guest between the same
   frames, frame to frame and through the same MSP path, alternating, each a fresh process:
   where each one's wall time goes, and the ratios of wall time (<= 1.10), libvirt job time
   (<= 1.05), bytes sent and throughput (>= 0.9). `migrlpar` runs both as the local command
   and through the HMC's command server (what an SSH user runs: a fork, no interpreter
   start). Every migration starts SETTLE_S after the last one ended (see there).
5. Host memory of the idle lab beyond the guests' own RAM (PSS of every lab process), <= 1 GiB.

Run: make bench   (or .venv/bin/python benchmarks/lab_bench.py [--rounds N] [--skip-up])
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
# The plain call: the same flags as migrlpar (lpmlab.adapter.migration.LIVE_FLAGS), no
# destination XML; it prints where its own time went.
PLAIN_MIGRATE = r"""
import json, sys, time
t0 = time.monotonic()
import libvirt
t1 = time.monotonic()
src, dst_peer, migrate_uri, listen = sys.argv[1:5]
libvirt.registerErrorHandler(lambda *a: None, None)
conn = libvirt.open(src)
dom = conn.lookupByName("lpar1")
t2 = time.monotonic()
flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
         | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
dom.migrateToURI3(dst_peer, {libvirt.VIR_MIGRATE_PARAM_URI: migrate_uri,
                             libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: listen}, flags)
t3 = time.monotonic()
print(json.dumps({"import libvirt": t1 - t0, "connect, lookup": t2 - t1,
                  "libvirt migration (migrateToURI3)": t3 - t2}))
"""
# migrlpar handed to the HMC's command server, as the HMC's restricted shell hands it (a
# client that imports nothing but the wire module; the server forks a child per command)
SERVER_CLIENT = r"""
import sys
from lpmlab.cli import cmdwire
sys.exit(cmdwire.run(sys.argv[1], sys.argv[2:], "hscroot", 0, 1, 2))
"""
KINDS = ("migrlpar", "migrlpar_server", "plain", "plain_msp")
LABEL = {"migrlpar": "migrlpar -o m", "plain": "plain libvirt-python, frame to frame",
         "migrlpar_server": "migrlpar -o m through the HMC's command server",
         "plain_msp": "plain libvirt-python through the MSPs"}
# A migration that starts right after the guest arrived is quicker (the guest, on a fresh
# QEMU, dirties less at first: fewer pages re-sent, an earlier switchover). Back to back,
# the plain call's return leg got that bonus and migrlpar's, started after its post hooks,
# did not: 12 plain migrations back to back took 716 ms of job time (median), 12 with 3 s
# between them 1068 ms (docs/performance.md). Every kind waits the same before it starts.
SETTLE_S = 3.0


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


def validations(n: int = 7) -> tuple[float, float]:
    """Median seconds of ``migrlpar -o v`` as a command (a fresh process: interpreter,
    imports) and of the same validation in this process (what the HMC's command server's
    forked child pays)."""
    import contextlib
    import io

    from lpmlab.cli import migrlpar
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    src = where(hmc)
    hmc.close()
    argv = ["-o", "v", "-m", src, "-t", "sys2" if src == "sys1" else "sys1", "-p", "lpar1"]
    cli, inproc = [], []
    for _ in range(n):
        t0 = time.monotonic()
        run([str(BIN / "migrlpar"), *argv])
        cli.append(time.monotonic() - t0)
        t0 = time.monotonic()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            migrlpar.main(argv)
        inproc.append(time.monotonic() - t0)
    return statistics.median(cli), statistics.median(inproc)


def plain_migrate(hmc: object, src: str, dst: str, via_msps: bool) -> dict:
    """One plain libvirt-python migration as a fresh process; with ``via_msps`` the stream
    takes migrlpar's path (source frame -> source MSP -> mover network -> destination MSP ->
    destination frame), through hops set up as migrlpar sets them."""
    from lpmlab.fabric.msp import LAB_IFACE, MOVER_IFACE, Hop

    plan = hmc.plan  # type: ignore[attr-defined]
    fp, dp = plan.frame(src), plan.frame(dst)
    port = dp.frame.migration_ports[0] + 40
    dst_addr = str(dp.frame.address)
    migrate_uri = f"tcp://{dst_addr}:{port}"
    msps = []
    if via_msps:
        sv = next(v for v in plan.all_vios() if v.vios.frame == src and v.vios.msp)
        dv = next(v for v in plan.all_vios() if v.vios.frame == dst and v.vios.msp)
        a, b = sv.vios, dv.vios
        msps = [dv.mover_service(), sv.mover_service()]
        msps[0].forward(Hop("bench", MOVER_IFACE, (str(b.mover_address), port), LAB_IFACE,
                            str(b.address), (dst_addr, port)))
        msps[1].forward(Hop("bench", LAB_IFACE, (str(a.address), port), MOVER_IFACE,
                            str(a.mover_address), (str(b.mover_address), port)))
        migrate_uri = f"tcp://{a.address}:{port}"
    try:
        out = run([sys.executable, "-c", PLAIN_MIGRATE, fp.uri, dp.peer_uri, migrate_uri,
                   dst_addr]).stdout
    finally:
        for m in msps:
            m.close("bench")
    return json.loads(out)


def one_migration(hmc: object, kind: str, src: str, dst: str,
                  sock: Path) -> tuple[float, dict, dict]:
    """lpar1 from ``src`` to ``dst`` the ``kind`` way: its wall time, libvirt job statistics
    and the steps of its wall time (migrlpar's record's timeline; the plain script's own)."""
    t0 = time.monotonic()
    if kind.startswith("migrlpar"):
        argv = ["-o", "m", "-m", src, "-t", dst, "-p", "lpar1"]
        if kind == "migrlpar":
            run([str(BIN / "migrlpar"), *argv])
        else:
            run([sys.executable, "-c", SERVER_CLIENT, str(sock), "migrlpar", *argv])
        wall = time.monotonic() - t0
        rec = hmc.store.latest("lpar1", 1)[0]  # type: ignore[attr-defined]
        steps = {s["step"]: s["s"] for s in rec.stats.get("timeline", [])}
        first = ("process start, imports, resolve, output" if kind == "migrlpar"
                 else "client start, fork, resolve, output")
        return wall, rec.stats.get("job", {}), {first: wall - rec.stats["wall_s"], **steps}
    steps = plain_migrate(hmc, src, dst, via_msps=kind == "plain_msp")
    wall = time.monotonic() - t0
    return wall, completed(hmc, dst), {"process start, output": wall - sum(steps.values()),
                                       **steps}


def migrations(rounds: int) -> dict:
    """Alternating rounds of the four kinds (one_migration), each there and back."""
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open()
    frames = [f.name for f in hmc.topology.frames]
    sock = hmc.plan.console(hmc.console.name).socket  # type: ignore[attr-defined]
    from lpmlab.demo import set_dirty_workload
    from lpmlab.fabric.lab import Lab

    rmc = Lab(hmc.plan).rmc("lpar1")
    set_dirty_workload(rmc, 64, 192)
    rmc.close()
    time.sleep(3)
    res: dict[str, list] = {f"{k}_{x}": [] for k in KINDS
                            for x in ("wall", "bps", "job_s", "bytes", "downtime", "steps")}
    # The first migrations after boot are slow for both kinds (cold destination): not measured.
    for _ in range(2):
        src = where(hmc)
        run([str(BIN / "migrlpar"), "-o", "m", "-m", src, "-t",
             next(f for f in frames if f != src), "-p", "lpar1"])
    for i in range(rounds):
        # each kind there and back in every round: both directions alike (they differ here)
        n = len(KINDS)
        order = [k for k in KINDS[i % n:] + KINDS[:i % n] for _ in range(2)]
        for kind in order:
            src = where(hmc)
            dst = next(f for f in frames if f != src)
            time.sleep(SETTLE_S)
            wall, job, steps = one_migration(hmc, kind, src, dst, sock)
            res[f"{kind}_wall"].append(wall)
            res[f"{kind}_steps"].append(steps)
            if job.get("time_elapsed"):
                res[f"{kind}_job_s"].append(job["time_elapsed"] / 1000)
                res[f"{kind}_bytes"].append(job["data_processed"])
                res[f"{kind}_downtime"].append(job.get("downtime"))
                res[f"{kind}_bps"].append(job["data_processed"] / (job["time_elapsed"] / 1000))
            print(f"  round {i + 1} {kind:<15} {src}->{dst} wall {wall:.2f}s job "
                  f"{job.get('time_elapsed')} ms, {job.get('data_processed', 0) / 2**20:.0f} MiB,"
                  f" downtime {job.get('downtime')} ms", file=sys.stderr)
    hmc.close()
    return res


def print_breakdown(m: dict) -> None:
    """Median seconds of each step of each kind's wall time."""
    for kind in KINDS:
        steps = m[f"{kind}_steps"]
        if not steps:
            continue
        print(f"\n{LABEL[kind]}: where the wall time goes (median s of {len(steps)} "
              "migrations)")
        for name in steps[0]:
            vals = [s.get(name, 0.0) for s in steps]
            print(f"  {name:<58} {statistics.median(vals):7.3f}")
        print(f"  {'wall':<58} {statistics.median(m[f'{kind}_wall']):7.3f}")


def print_ratios(m: dict) -> None:
    med = {k: {x: statistics.median(m[f"{k}_{x}"]) for x in ("wall", "job_s", "bytes", "bps")}
           for k in KINDS if m[f"{k}_job_s"]}
    if "migrlpar" not in med:
        return
    g = med["migrlpar"]
    print(f"\n{'figure (medians)':<34} {'migrlpar':>9} {'plain':>9} {'ratio':>6} "
          f"{'plain/MSP':>10} {'ratio':>6}  target")
    rows = [("wall time, s", "wall", 1, "<= 1.10"), ("libvirt job time, s", "job_s", 1,
                                                     "<= 1.05"),
            ("bytes sent, MiB", "bytes", 2**20, "explain"),
            ("throughput (bytes/job time), MiB/s", "bps", 2**20, ">= 0.9 (direct)")]
    for label, x, unit, target in rows:
        p, q = med.get("plain", {}).get(x), med.get("plain_msp", {}).get(x)
        cells = [f"{g[x] / unit:9.2f}"]
        for v in (p, q):
            cells += [f"{v / unit:9.2f}", f"{g[x] / v:6.2f}"] if v else ["        -", "     -"]
        print(f"{label:<34} {cells[0]} {cells[1]} {cells[2]} {cells[3]:>10} {cells[4]}  "
              f"{target}")
    srv = med.get("migrlpar_server")
    if srv:
        cells = ", ".join(f"{x} {g2:.2f} s, ratio {srv['wall'] / g2:.2f}"
                          for x, g2 in (("plain", med.get("plain", {}).get("wall")),
                                        ("plain/MSP", med.get("plain_msp", {}).get("wall")))
                          if g2)
        print(f"{'wall, through the command server':<34} {srv['wall']:9.2f}  against {cells}")
    # the spread says how much of a ratio is this machine's noise
    for label, x in (("wall time, s", "wall"), ("libvirt job time, s", "job_s")):
        ranges = ", ".join(f"{k} {min(m[f'{k}_{x}']):.2f}-{max(m[f'{k}_{x}']):.2f}"
                           for k in KINDS if m[f"{k}_{x}"])
        print(f"  range of {label}: {ranges}")


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
    ap.add_argument("--rounds", type=int, default=4,
                    help="rounds of the four kinds, each migrating there and back")
    ap.add_argument("--skip-up", action="store_true", help="reuse the running lab")
    args = ap.parse_args()
    out: dict = {}
    if not args.skip_up:
        out["lab_up_s"] = lab_up_time()
        print(f"lab up from cached images: {out['lab_up_s']:.1f} s (target <= 30)")
    cli_v, inproc_v = validations()
    out.update(validate_cli_s=cli_v, validate_in_process_s=inproc_v)
    print(f"migrlpar -o v (idle lpar1, medians): the command {cli_v:.3f} s, the validation "
          f"in-process {inproc_v:.3f} s (target <= 0.3)")
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
    print_breakdown(m)
    print_ratios(m)
    print(json.dumps(out, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
