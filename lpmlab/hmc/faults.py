"""``lpmlab fault``: named faults of LPM's moving parts, injected now or at a point of a
migration, and undone.

Each fault is real: a mover link set down or rate-limited, a VIOS's forwarding switched off,
a QEMU or libvirtd killed, an iSCSI target killed, the migrating controller killed, a drmgr
hook that never ends, the RMC path to the partition's OS black-holed. The catalogue is data
(``KINDS``); what a fault did and how to undo it is written to the lab's fault ledger
(lpmlab.fabric.faults) as data too, so ``fault clear``, ``lab up`` and ``lab down`` undo it
without knowing the catalogue.

``--when`` arms a fault instead: the next migration (of ``-p`` when given) claims it and
fires it at ``transferring`` (the stream has started), ``pass:N`` (pre-copy's Nth pass),
``switchover`` (the source paused for the last pass) or ``phase:check|pre|post`` (before that
drmgr hook phase). A fault armed for a migration that ends before its point is not injected
(its entry says so).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from dataclasses import dataclass
from typing import Any

from lpmlab import codes, log
from lpmlab.errors import FabricError, LpmlabError, RmcError
from lpmlab.fabric import faults as F
from lpmlab.fabric import plan as P
from lpmlab.hmc.store import MigrationRecord
from lpmlab.hmc.system import Hmc

_log = log.get("lpmlab.fault")

HANG_HOOK, HANG_MARK = F.HANG_HOOK, F.HANG_MARK
DISK_STAT = "/run/lpm-disk.stat"
POINTS = ("now", "transferring", "switchover", "phase:check", "phase:pre", "phase:post")
DEFAULT_OUTAGE_S = 10.0
PASS_RE = re.compile(r"^pass:([1-9][0-9]{0,3})$")


@dataclass(frozen=True)
class FaultKind:
    """One fault of the catalogue: what it breaks and whether it stays until cleared."""

    name: str
    summary: str
    scope: str            # what it targets: vios | frame | partition | migration
    lasting: bool = True  # stays in force until cleared (else a one-shot kill)
    arg: str | None = None  # the argument it takes (mover-link-slow's rate)


KINDS: dict[str, FaultKind] = {k.name: k for k in (
    FaultKind("mover-link-cut", "the source MSP's mover link goes down (the cable pulled)",
              "vios"),
    FaultKind("mover-link-slow", "the source MSP's mover link is limited to RATE MiB/s (tc "
              "tbf)", "vios", arg="RATE"),
    FaultKind("msp-path-broken", "the MSP's forwarding is removed on the source VIOS (--side "
              "dest: the destination's)", "vios"),
    FaultKind("dest-qemu-killed", "the destination frame's incoming QEMU is killed (SIGKILL)",
              "migration", lasting=False),
    FaultKind("dest-frame-down", "the destination frame's hypervisor (libvirtd) is killed",
              "frame"),
    FaultKind("source-frame-down", "the source frame's hypervisor (libvirtd) is killed",
              "frame"),
    FaultKind("vios-storage-down", "the iSCSI target of the VIOS serving the partition's disk "
              "is killed and restarted --for SECONDS later (default 10; 0: by 'fault clear' "
              "or 'lab up')", "vios"),
    FaultKind("controller-killed", "the HMC's migration controller (migrlpar) is killed "
              "(SIGKILL)", "migration", lasting=False),
    FaultKind("hook-hang", "a drmgr hook that never ends, in the phase of --when phase:X "
              "(default pre)", "partition"),
    FaultKind("partition-os-hang", "the partition's OS stops answering RMC (its RMC packets "
              "are dropped)", "partition"),
)}


@dataclass
class FaultRequest:
    """What ``lpmlab fault NAME`` was asked (the options that pick the target)."""

    name: str
    arg: str | None = None
    when: str = "now"
    partition: str | None = None
    vios: str | None = None
    frame: str | None = None
    side: str = "source"
    outage_s: float = DEFAULT_OUTAGE_S  # vios-storage-down: --for


def kind_of(name: str) -> FaultKind:
    if name not in KINDS:
        raise codes.error("LPM1020", obj=name, names=", ".join(KINDS))
    return KINDS[name]


def check_when(when: str) -> str:
    if when in POINTS or PASS_RE.match(when):
        return when
    raise codes.error("LPM1021", obj=when)


def check_request(req: FaultRequest) -> FaultKind:
    """Refuse what cannot work before anything changes."""
    kind = kind_of(req.name)
    check_when(req.when)
    if kind.arg and req.arg is None:
        raise codes.error("LPM1022", obj=req.name, detail=f"it needs {kind.arg} (MiB/s)")
    if not kind.arg and req.arg is not None:
        raise codes.error("LPM1022", obj=req.name, detail=f"it takes no argument ({req.arg})")
    if kind.arg:
        try:
            rate = float(req.arg or "")
        except ValueError:
            rate = 0.0
        if not 0.01 <= rate <= 100000:
            raise codes.error("LPM1022", obj=req.name,
                              detail=f"RATE {req.arg!r} is not a number of MiB/s from 0.01 "
                                     "to 100000")
    if not 0 <= req.outage_s <= 3600:
        raise codes.error("LPM1022", obj=req.name, detail=f"--for {req.outage_s:g}: 0 (until "
                                                          "cleared) to 3600 seconds")
    if req.side not in ("source", "dest"):
        raise codes.error("LPM1022", obj=req.name, detail=f"--side {req.side}: source or dest")
    if req.name == "hook-hang" and req.when not in ("now", "phase:check", "phase:pre",
                                                     "phase:post"):
        raise codes.error("LPM1022", obj=req.name,
                          detail=f"a hook hangs in a hook phase, not at {req.when}: use "
                                 "--when phase:check|pre|post")
    return kind


# -- targets -------------------------------------------------------------------------------

def _running_frame(hmc: Hmc, partition: str) -> str:
    copies = [p for p in hmc.placements(partition) if p.info.state == "running"]
    if len(copies) != 1:
        where = ", ".join(f"{p.frame} ({p.info.state})" for p in hmc.placements(partition))
        raise codes.error("LPM1023", obj=partition,
                          detail=f"it is not running in exactly one place ({where or 'nowhere'})")
    return copies[0].frame


def _other_frame(hmc: Hmc, frame: str) -> str:
    others = [fp.frame.name for fp in hmc.frames() if fp.frame.name != frame]
    if not others:
        raise codes.error("LPM1023", obj=frame, detail="the lab has no other frame")
    return others[0]


def _msp_of(hmc: Hmc, frame: str) -> str:
    for vp in hmc.vios_plans():
        if vp.vios.frame == frame and vp.vios.msp:
            return vp.vios.name
    raise codes.error("HSCLL404", obj=frame)


def default_partition(hmc: Hmc) -> str:
    """The migration under way if there is exactly one, else the lab's only mobile
    partition; otherwise the user must say."""
    live = [m for m in hmc.store.active()]
    if len({m.partition for m in live}) == 1:
        return live[0].partition
    names = [p.name for p in hmc.topology.partitions]
    if len(names) == 1:
        return names[0]
    raise codes.error("LPM1022", obj="-p", detail="the lab has several partitions: name one "
                                                  f"with -p ({', '.join(names)})")


def resolve(hmc: Hmc, req: FaultRequest, rec: MigrationRecord | None) -> dict[str, str]:
    """The lab object the fault hits: from the options, else the migration (``rec``), else
    where the partition runs now."""
    kind = kind_of(req.name)
    partition = req.partition or (rec.partition if rec else None) or default_partition(hmc)
    hmc.topology.partition(partition)  # KeyError -> an unknown partition, said by the caller
    if kind.scope == "partition":
        target = {"partition": partition}
        if req.name == "hook-hang":
            target["phase"] = req.when.split(":", 1)[1] if req.when.startswith("phase:") \
                else "pre"
        return target
    if kind.scope == "migration":
        if rec is None:
            raise codes.error("LPM1024", obj=req.name, lpar=partition)
        return {"partition": partition, "migration": rec.id, "frame": rec.dest_sys}
    if req.name == "source-frame-down" or req.name == "dest-frame-down":
        if req.frame:
            return {"frame": hmc.frame_name(req.frame)}
        here = rec.source_sys if rec else _running_frame(hmc, partition)
        if req.name == "source-frame-down":
            return {"frame": here}
        return {"frame": rec.dest_sys if rec else _other_frame(hmc, here)}
    # a VIOS: named, else the migration's MSP (or its source storage VIOS), else the running
    # frame's
    if req.vios:
        if req.vios not in {vp.vios.name for vp in hmc.vios_plans()}:
            raise codes.error("LPM1023", obj=req.vios, detail="this HMC has no such VIOS")
        return {"vios": req.vios, "partition": partition}
    here = rec.source_sys if rec else _running_frame(hmc, partition)
    if req.name == "vios-storage-down":
        return {"vios": hmc.storage_vios(here, partition).vios.name, "partition": partition}
    if req.side == "dest":
        there = rec.dest_sys if rec else _other_frame(hmc, here)
        return {"vios": (rec.dest_msp if rec and rec.dest_msp else _msp_of(hmc, there)),
                "partition": partition}
    return {"vios": (rec.source_msp if rec and rec.source_msp else _msp_of(hmc, here)),
            "partition": partition}


# -- injecting -----------------------------------------------------------------------------

Undo = dict[str, str]


def _vios(hmc: Hmc, target: dict[str, str]) -> P.ViosPlan:
    return hmc.plan.vios(target["vios"])


def inject(hmc: Hmc, entry: F.FaultEntry, *, in_controller: bool) -> tuple[str, list[Undo]]:
    """Do it; say what was done and how to undo it."""
    t, name = entry.target, entry.name
    if name == "mover-link-cut":
        F.set_mover_link(_vios(hmc, t), up=False)
        return (f"mover link of {t['vios']} set down",
                [{"action": "mover_link_up", "vios": t["vios"]}])
    if name == "mover-link-slow":
        mib = float(entry.arg or 0)
        mbit = max(1, round(mib * 1024 * 1024 * 8 / 1_000_000))
        _vios(hmc, t).mover_service().limit_bandwidth(mbit)
        return (f"mover link of {t['vios']} limited to {mib:g} MiB/s ({mbit} Mbit/s tbf)",
                [{"action": "uncap", "vios": t["vios"]}])
    if name == "msp-path-broken":
        F.set_forwarding(_vios(hmc, t), on=False)
        return (f"forwarding of {t['vios']} switched off",
                [{"action": "forwarding_on", "vios": t["vios"]}])
    if name in ("dest-frame-down", "source-frame-down"):
        fp = hmc.plan.frame(t["frame"])
        pid = F.kill_pidfile(F.frame_daemon_pidfile(fp), f"libvirtd of {t['frame']}")
        return (f"libvirtd of {t['frame']} (pid {pid}) killed",
                [{"action": "start_frame", "frame": t["frame"]}])
    if name == "vios-storage-down":
        vp = _vios(hmc, t)
        pid = F.kill_pidfile(F.target_pidfile(vp), f"iSCSI target of {vp.vios.name}")
        outage = float((entry.request or {}).get("outage_s", DEFAULT_OUTAGE_S))
        if outage:
            F.restart_target_later(hmc.plan.dir, vp.vios.name, outage, entry.id)
        return (f"iSCSI target (tgtd, pid {pid}) of {vp.vios.name} killed"
                + (f", restarted {outage:g} s later" if outage else ""),
                [{"action": "start_target", "vios": vp.vios.name}])
    if name == "dest-qemu-killed":
        # only an incoming copy: once it runs, the partition has moved and it is no fault
        # of a migration any more (it would kill the partition itself)
        if any(p.frame == t["frame"] and p.info.state == "running"
               for p in hmc.placements(t["partition"])):
            raise codes.error("LPM1024", obj=name, lpar=t["partition"])
        fp = hmc.plan.frame(t["frame"])
        pid = F.kill_pidfile(F.qemu_pidfile(fp, t["partition"]),
                             f"the incoming QEMU of {t['partition']} on {t['frame']}")
        return f"QEMU of {t['partition']} on {t['frame']} (pid {pid}) killed", []
    if name == "controller-killed":
        rec = hmc.store.get(t["migration"])
        pid = int((rec.stats.get("controller_pid") if rec else 0) or 0)
        if in_controller or pid == os.getpid():
            return f"migration controller (pid {os.getpid()}) killed itself", []
        if not pid:
            raise codes.error("LPM1024", obj=name, lpar=t["partition"])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return f"migration controller (pid {pid}) of {t['migration']} killed", []
    if name == "hook-hang":
        _install_hang_hook(hmc, t["partition"], t["phase"])
        return (f"hook {HANG_HOOK} of {t['partition']} hangs in the {t['phase']} phase",
                [{"action": "remove_hang_hook", "partition": t["partition"]}])
    if name == "partition-os-hang":
        addr = str(hmc.topology.partition(t["partition"]).address)
        F.block_rmc(t["partition"], addr)
        return (f"RMC of {t['partition']} ({addr}:22) dropped",
                [{"action": "unblock_rmc", "partition": t["partition"]}])
    raise AssertionError(name)


def _install_hang_hook(hmc: Hmc, partition: str, phase: str) -> None:
    script = (f"#!/bin/sh\n# lpmlab fault hook-hang: never ends in the {phase} phase\n"
              f"[ \"$PHASE\" = {phase} ] && exec sleep {HANG_MARK}\nexit 0\n")
    ch = hmc.rmc(partition)
    try:
        ch.run(f"mkdir -p /etc/drmgr.d/pmig && cat > {HANG_HOOK} <<'EOF'\n{script}EOF\n"
               f"chmod 755 {HANG_HOOK}", timeout=15, check=True)
    finally:
        ch.close()


def read_acked(hmc: Hmc, partition: str, timeout: float = 5.0,
               channel: Any = None) -> int | None:
    """The last record the partition's disk writer had acknowledged (its O_DSYNC write
    returned), or None when no writer runs or its OS does not answer. ``channel``: an RMC
    channel to reuse (else one is opened and closed)."""
    try:
        ch = channel or hmc.rmc(partition)
        try:
            res = ch.run(f"cat {DISK_STAT} 2>/dev/null", timeout=timeout)
        finally:
            if channel is None:
                ch.close()
    except (RmcError, FabricError):
        return None
    m = re.search(r"last_seq=(\d+)", res.stdout)
    return int(m.group(1)) if m else None


def inject_now(hmc: Hmc, req: FaultRequest) -> F.FaultEntry:
    """``lpmlab fault NAME`` without ``--when`` (or with ``--when now``)."""
    kind = check_request(req)
    partition = req.partition or default_partition(hmc)
    rec = hmc.active_migration(partition)
    target = resolve(hmc, FaultRequest(**{**req.__dict__, "partition": partition}), rec)
    ledger = F.Ledger(hmc.plan.dir)
    acked = read_acked(hmc, partition)
    with ledger.edit() as entries:
        entry = F.FaultEntry(ledger.next_id(entries), req.name, target, when="now",
                             arg=req.arg, partition=partition,
                             migration=rec.id if rec else None, acked_before=acked,
                             request={"outage_s": req.outage_s})
        detail, undo = inject(hmc, entry, in_controller=False)
        entry.detail, entry.injected = detail, time.time()
        entry.state = F.IN_FORCE if kind.lasting else F.DONE
        entry.undo = undo
        entries.append(entry)
    _log.info("fault injected", fault=entry.id, name=entry.name, detail=detail)
    return entry


def arm(hmc: Hmc, req: FaultRequest) -> F.FaultEntry:
    """``lpmlab fault NAME --when POINT``: the next migration fires it."""
    check_request(req)
    if req.partition:
        hmc.topology.partition(req.partition)
    ledger = F.Ledger(hmc.plan.dir)
    with ledger.edit() as entries:
        entry = F.FaultEntry(ledger.next_id(entries), req.name, {}, when=req.when, arg=req.arg,
                             partition=req.partition,
                             detail=f"armed for the next migration"
                                    f"{' of ' + req.partition if req.partition else ''}")
        entry.request = {"vios": req.vios, "frame": req.frame, "side": req.side,
                         "outage_s": req.outage_s}
        entries.append(entry)
    return entry


# -- undoing -------------------------------------------------------------------------------

def clear(hmc: Hmc, selectors: list[str]) -> list[F.FaultEntry]:
    """``lpmlab fault clear [ID|NAME ...]``: disarm the armed, undo the ones in force."""
    ledger = F.Ledger(hmc.plan.dir)
    done: list[F.FaultEntry] = []
    with ledger.edit() as entries:
        active = [e for e in entries if e.state in (F.ARMED, F.IN_FORCE)]
        chosen = [e for e in active if not selectors or e.id in selectors or e.name in selectors]
        unknown = [s for s in selectors if not any(s in (e.id, e.name) for e in active)]
        if unknown:
            raise codes.error("LPM1025", obj=", ".join(unknown),
                              active=", ".join(f"{e.id} {e.name}" for e in active) or "none")
        for e in chosen:
            if e.state == F.ARMED:
                e.state, e.cleared = F.DONE, "disarmed before it fired"
                done.append(e)
                continue
            did, failed = [], []
            for a in e.undo:
                try:
                    did.append(F.undo(hmc.plan, a))
                except LpmlabError as exc:
                    failed.append(f"{a['action']}: {exc.message}")
            e.cleared = "; ".join(did + [f"FAILED {f}" for f in failed]) or "nothing to undo"
            if not failed:
                e.state = F.DONE
            done.append(e)
    return done
