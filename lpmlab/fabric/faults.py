"""Faults put into the lab on purpose: the ledger of what is armed or in force, and the real
actions on links, daemons, iSCSI targets and packet filters that cause and undo them.

The ledger (``<lab>/faults.json``) labels every fault with what it did and how to undo it, so
``lpmlab fault clear``, ``lpmlab lab up`` and ``lpmlab lab down`` can put the lab back and
``lpmlab lab status`` can show what is in force. Which fault means what in LPM terms, and
when it fires during a migration, is lpmlab.hmc.faults.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lpmlab.errors import FabricError
from lpmlab.fabric import netns
from lpmlab.fabric import plan as P
from lpmlab.fabric.msp import MOVER_IFACE

LEDGER = "faults.json"
ARMED, IN_FORCE, DONE = "armed", "in force", "done"
RMC_TABLE_PREFIX = "lpmlab_fault_rmc_"


@dataclass
class FaultEntry:
    """One fault asked for: what, where, when it fires and what it did."""

    id: str
    name: str
    target: dict[str, str]        # {"vios": ...} | {"frame": ...} | {"partition": ..., ...}
    when: str = "now"             # now | transferring | pass:N | switchover | phase:X
    arg: str | None = None        # mover-link-slow's rate
    partition: str | None = None  # an armed fault waits for a migration of this partition
    state: str = ARMED
    created: float = field(default_factory=time.time)
    injected: float | None = None
    migration: str | None = None  # the migration it fired in
    detail: str = ""              # what was done, in words
    acked_before: int | None = None  # the disk writer's last acknowledged record before it
    cleared: str = ""             # what undoing it did
    undo: list[dict[str, str]] = field(default_factory=list)  # fabric steps that undo it
    request: dict[str, Any] = field(default_factory=dict)     # target options of an armed one

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaultEntry:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class Ledger:
    """The faults of one lab, in a JSON file edited under an exclusive lock (a migration's
    controller, ``lpmlab fault`` and ``lab up`` may touch it at once)."""

    def __init__(self, lab_dir: Path) -> None:
        self.path = lab_dir / LEDGER
        self.lock_path = lab_dir / (LEDGER + ".lock")

    def entries(self) -> list[FaultEntry]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        return [FaultEntry.from_dict(d) for d in raw.get("faults", [])]

    def active(self) -> list[FaultEntry]:
        """Armed or in force (not done, not cleared)."""
        return [e for e in self.entries() if e.state in (ARMED, IN_FORCE)]

    @contextlib.contextmanager
    def edit(self) -> Iterator[list[FaultEntry]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self.entries()
            yield entries
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"faults": [asdict(e) for e in entries]}, indent=1))
            os.replace(tmp, self.path)

    def next_id(self, entries: list[FaultEntry]) -> str:
        numbers = [int(e.id[1:]) for e in entries if e.id[1:].isdigit()]
        return f"F{max(numbers, default=0) + 1}"


# -- the real actions ----------------------------------------------------------------------

def set_mover_link(vp: P.ViosPlan, up: bool) -> None:
    """The MSP's mover link down (the cable pulled) or up again."""
    netns.run_in(vp.ns, ["ip", "link", "set", MOVER_IFACE, "up" if up else "down"])


def set_forwarding(vp: P.ViosPlan, on: bool) -> None:
    """The VIOS's kernel forwarding, which carries every MSP hop, off or on again."""
    netns.run_in(vp.ns, ["sysctl", "-q", "-w", f"net.ipv4.ip_forward={1 if on else 0}"])


def kill_pidfile(path: Path, what: str, timeout: float = 10.0) -> int:
    """SIGKILL the process a pid file names and wait until it is gone; its pid."""
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError) as exc:
        raise FabricError(f"{what} is not running (pid file {path})",
                          fix="see 'lpmlab lab status'; 'lpmlab lab up' starts it") from exc
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        stat = _proc_state(pid)
        if stat in ("Z", "X", None):
            break
        time.sleep(0.02)
    return pid


def _proc_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def frame_daemon_pidfile(fp: P.FramePlan) -> Path:
    return fp.dir / "daemon.pid"


def qemu_pidfile(fp: P.FramePlan, partition: str) -> Path:
    """libvirt's pid file of a partition's QEMU on a frame (its /run/libvirt is the frame's
    run folder)."""
    return fp.dir / "run" / "qemu" / f"{partition}.pid"


def target_pidfile(vp: P.ViosPlan) -> Path:
    return vp.dir / "tgtd.pid"


def rmc_table(partition: str) -> str:
    return RMC_TABLE_PREFIX + partition.replace("-", "_")


def block_rmc(partition: str, address: str) -> None:
    """Drop what the HMC sends to the partition's RMC endpoint (every RMC session starts in
    the hub namespace): to the HMC its OS stops answering, established sessions too."""
    t = rmc_table(partition)
    rules = (f"table ip {t}\ndelete table ip {t}\ntable ip {t} {{\n"
             f"  chain out {{ type filter hook output priority 0; policy accept;\n"
             f"    ip daddr {address} tcp dport 22 counter drop comment \"lpmlab fault\"\n"
             f"  }}\n}}\n")
    _nft_hub("-f", "-", stdin=rules)


def unblock_rmc(partition: str) -> None:
    _nft_hub("delete", "table", "ip", rmc_table(partition), check=False)


def rmc_blocked(partition: str) -> bool:
    return _nft_hub("list", "table", "ip", rmc_table(partition), check=False).returncode == 0


def _nft_hub(*args: str, stdin: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    cp = subprocess.run(["ip", "netns", "exec", P.HUB_NS, "nft", *args], input=stdin,
                        capture_output=True, text=True, timeout=10)
    if check and cp.returncode != 0:
        raise FabricError(f"nft {' '.join(args)} failed in {P.HUB_NS}",
                          evidence=cp.stderr.strip(), fix="check the lab with "
                          "'lpmlab lab status'; 'lpmlab lab up' rebuilds the hub")
    return cp


def restart_target_later(lab_dir: Path, vios: str, seconds: float, fault_id: str) -> None:
    """A detached process that starts the VIOS's iSCSI target again after ``seconds`` (its
    command line names the lab folder, so ``lab down`` ends it with the lab)."""
    import sys

    subprocess.Popen([sys.executable, "-m", "lpmlab.fabric.faults", "restart-target",
                      str(lab_dir), vios, str(seconds), fault_id],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)


def _restart_target_main(lab_dir: Path, vios: str, seconds: float, fault_id: str) -> None:
    from lpmlab.fabric.lab import load_state, pidfile_alive

    time.sleep(seconds)
    plan, _state = load_state(lab_dir)
    ledger = Ledger(lab_dir)
    if not any(e.id == fault_id and e.state == IN_FORCE for e in ledger.entries()):
        return  # cleared meanwhile
    if not pidfile_alive(target_pidfile(plan.vios(vios))):
        undo(plan, {"action": "start_target", "vios": vios})
    with ledger.edit() as entries:
        for e in entries:
            if e.id == fault_id and e.state == IN_FORCE:
                e.state, e.cleared = DONE, f"iSCSI target of {vios} restarted after {seconds:g} s"


def forget(lab_dir: Path) -> None:
    """``lab down`` removed everything a fault touched: the ledger goes with it."""
    for name in (LEDGER, LEDGER + ".lock"):
        with contextlib.suppress(OSError):
            (lab_dir / name).unlink()


HANG_HOOK = "/etc/drmgr.d/pmig/00-lpmlab-fault-hang"
HANG_MARK = "987654321"  # the hanging hook's sleep, found again by its argument


def undo(plan: P.LabPlan, action: dict[str, str]) -> str:
    """One step of a fault's undo list (data, written when the fault was injected); what it
    did. Raises FabricError (RmcError for a hook) when it cannot."""
    from lpmlab.fabric.lab import Lab

    kind = action["action"]
    if kind == "mover_link_up":
        set_mover_link(plan.vios(action["vios"]), up=True)
        return f"mover link of {action['vios']} up"
    if kind == "uncap":
        plan.vios(action["vios"]).mover_service().limit_bandwidth(None)
        return f"mover link of {action['vios']} uncapped"
    if kind == "forwarding_on":
        set_forwarding(plan.vios(action["vios"]), on=True)
        return f"forwarding of {action['vios']} on"
    if kind == "start_frame":
        Lab(plan).reprovision(limit=action["frame"], tags="hypervisor")
        return f"libvirtd of {action['frame']} started"
    if kind == "start_target":
        Lab(plan).reprovision(limit=action["vios"])
        return f"iSCSI target of {action['vios']} started"
    if kind == "unblock_rmc":
        unblock_rmc(action["partition"])
        return f"RMC of {action['partition']} answers again"
    if kind == "remove_hang_hook":
        ch = Lab(plan).rmc(action["partition"])
        # the pattern matches the hook's sleep but not this command's own text (the shell
        # running it found itself and was killed, ending the command with -1)
        pattern = f"{HANG_MARK[:-1]}[{HANG_MARK[-1]}]"
        try:
            ch.run(f"rm -f {HANG_HOOK}; for p in /proc/[0-9]*; do "
                   f"[ \"${{p#/proc/}}\" = \"$$\" ] && continue; "
                   f"grep -qs '{pattern}' $p/cmdline && kill -9 ${{p#/proc/}}; done; true",
                   timeout=15, check=True)
        finally:
            ch.close()
        return f"hanging hook of {action['partition']} removed"
    raise FabricError(f"unknown undo step {kind!r} in the fault ledger",
                      fix="'lpmlab lab up' rebuilds the lab whatever the ledger says")


def undo_all(plan: P.LabPlan, *, why: str, skip: frozenset[str] = frozenset()) -> list[str]:
    """Undo every fault in force (``lab up``); steps in ``skip`` are done by the caller
    anyway. Returns what was done; failures are reported, not raised."""
    ledger = Ledger(plan.dir)
    if not ledger.path.exists():
        return []
    with ledger.edit() as entries:
        active = [e for e in entries if e.state in (ARMED, IN_FORCE)]
        steps = [(e, a) for e in active if e.state == IN_FORCE for a in e.undo]
        # the RMC path of every partition first: removing a hook needs it
        steps.sort(key=lambda ea: ea[1]["action"] == "remove_hang_hook")
        did: dict[str, list[str]] = {e.id: [] for e in active}
        for e, a in steps:
            if a["action"] in skip:
                did[e.id].append(f"{a['action']} by {why}")
                continue
            try:
                did[e.id].append(undo(plan, a))
            except Exception as exc:  # noqa: BLE001 - one fault must not stop the rest
                did[e.id].append(f"{a['action']} failed: {exc}")
        for e in active:
            e.state, e.cleared = DONE, f"{why}: " + ("; ".join(did[e.id]) or "disarmed")
    return [f"fault {e.id} {e.name}: {e.cleared}" for e in active]


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 6 and sys.argv[1] == "restart-target":
        _restart_target_main(Path(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5])
