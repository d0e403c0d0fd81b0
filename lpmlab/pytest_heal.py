"""Bring a lab partition back to a known good state before a test (the pytest plugin's
``lpmlab_partition`` fixture), whatever the last test left: an interrupted migration, a
shut-off partition, a partition on the other frame, a stopped disk writer.

It does what an administrator would, with the HMC's own commands: ``migrlpar -o r``
(``--force`` only where the failure says it is the way: a frame's hypervisor does not
answer, a post-copy was cut), ``chsysstate -o on`` with the partition's profile,
``migrlpar -o m`` back to its home frame. What it cannot heal fails the test at once (within
15 s of finding it) with the state it found, what it tried and the fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FAIL_WITHIN_S = 15.0
BOOT_DEADLINE_S = 150.0   # a partition whose console shows it booting gets this long
FORCE_CODES = ("HSCLL412", "HSCLL453")  # recovery says --force is the way


class CannotHeal(Exception):
    """The partition could not be brought to a good state; the message says why and how."""


@dataclass
class Found:
    copies: list[tuple[str, str]]          # (frame, libvirt state)
    unfinished: list[Any]                  # migration records not closed
    live: list[Any]                        # of those, with a controller still running

    def describe(self) -> str:
        where = ", ".join(f"{f} ({s})" for f, s in self.copies) or "no frame"
        recs = "; ".join(f"migration {r.id} {r.source_sys}->{r.dest_sys} {r.state}"
                         for r in self.unfinished) or "no unfinished migration"
        return f"defined on {where}; {recs}"


@dataclass
class Healer:
    run: Callable[..., Any]        # run an HMC command: (*argv) -> CompletedProcess
    lab: Any                       # lpmlab.fabric.lab.Lab
    partition: str
    go_home: bool = True
    actions: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def found(self) -> Found:
        from lpmlab.hmc.recovery import _unfinished
        from lpmlab.hmc.store import IN_PROGRESS_STATES, controller_alive
        from lpmlab.hmc.system import Hmc

        hmc = Hmc.open()
        try:
            copies = [(p.frame, p.info.state) for p in hmc.placements(self.partition)]
            unfinished = _unfinished(hmc, self.partition)
        finally:
            hmc.close()
        live = [r for r in unfinished if r.state in IN_PROGRESS_STATES and controller_alive(r)]
        return Found(copies, unfinished, live)

    def fail(self, found: Found, what: str, fix: str, evidence: str = "") -> CannotHeal:
        tried = "; ".join(self.actions) or "nothing yet"
        return CannotHeal(f"lpmlab could not bring {self.partition} to a good state: {what}\n"
                          f"  found: {found.describe()}\n  tried: {tried}\n  fix: {fix}"
                          + (f"\n  evidence:\n{evidence}" if evidence else ""))

    def heal(self) -> list[str]:
        """Heal; the actions taken (empty when the partition was fine)."""
        t0 = time.monotonic()
        self._clear_faults()
        found = self.found()
        if found.live:
            found = self._wait_live_end(found)
        if found.unfinished or len(found.copies) != 1 or \
                any(s not in ("running", "shutoff") for _, s in found.copies):
            found = self._recover(found)
        if not found.copies:
            raise self.fail(found, "it is defined on no managed system",
                            "re-create it with 'lpmlab lab up'")
        frame, state = found.copies[0]
        if state == "shutoff":
            self._cmd(found, "activated it", "chsysstate", "-m", frame, "-r", "lpar", "-n",
                      self.partition, "-o", "on")
        self._wait_ready(found)
        home = self.lab.plan.topology.partition(self.partition).frame
        if self.go_home and frame != home:
            self._cmd(found, f"migrated it home to {home}", "migrlpar", "-o", "m", "-m", frame,
                      "-t", home, "-p", self.partition, "--noprogress")
        self._disk_writer()
        self.seconds = time.monotonic() - t0
        return self.actions

    def _clear_faults(self) -> None:
        """Faults a test left armed or in force (lpmlab fault) are undone first: a cut link
        or a dead hypervisor would defeat every other step."""
        from lpmlab.fabric.faults import Ledger

        active = Ledger(self.lab.plan.dir).active()
        if not active:
            return
        cp = self.run("lpmlab", "fault", "clear")
        self.actions.append(f"cleared fault(s) {', '.join(e.id + ' ' + e.name for e in active)}"
                            f" (lpmlab fault clear: exit {cp.returncode})")

    def _cmd(self, found: Found, did: str, *argv: str) -> Any:
        cp = self.run(*argv)
        self.actions.append(f"{did} ({' '.join(argv)}: exit {cp.returncode})")
        if cp.returncode != 0:
            raise self.fail(found, f"{argv[0]} failed", "see the command's message; bring the "
                            "lab back with 'lpmlab lab down && lpmlab lab up' if nothing else "
                            "helps", evidence=cp.stderr.strip())
        return cp

    def _wait_live_end(self, found: Found) -> Found:
        """A migration whose controller still runs (a test left it going): let it end."""
        deadline = time.monotonic() + FAIL_WITHIN_S
        while found.live and time.monotonic() < deadline:
            time.sleep(0.5)
            found = self.found()
        if found.live:
            r = found.live[0]
            raise self.fail(found, f"migration {r.id} is still under way (controller pid "
                            f"{r.stats.get('controller_pid')})",
                            f"stop it with 'migrlpar -o s -m {r.source_sys} -p "
                            f"{self.partition}', or wait for it")
        return found

    def _recover(self, found: Found) -> Found:
        frame = (found.unfinished[0].source_sys if found.unfinished
                 else found.copies[0][0] if found.copies else None)
        if frame is None:
            return found
        argv = ("migrlpar", "-o", "r", "-m", frame, "-p", self.partition)
        cp = self.run(*argv)
        self.actions.append(f"recovered ({' '.join(argv)}: exit {cp.returncode})")
        if cp.returncode != 0 and any(c in cp.stderr for c in FORCE_CODES):
            cp = self.run(*argv, "--force")
            self.actions.append(f"recovered with --force: exit {cp.returncode}")
        if cp.returncode != 0:
            raise self.fail(self.found(), "migrlpar -o r failed", "read its message; "
                            "'lpmlab lab down && lpmlab lab up' starts over",
                            evidence=cp.stderr.strip())
        return self.found()

    def _wait_ready(self, found: Found) -> None:
        """Until its OS answers RMC: 15 s, or as long as its console shows it booting."""
        from lpmlab.errors import DeadlineError

        ch = self.lab.rmc(self.partition)
        try:
            t0 = time.monotonic()
            size = self._console_size()
            while True:
                try:
                    ch.wait_ready(5.0, evidence=lambda: "")
                    return
                except DeadlineError:
                    pass
                grown = self._console_size()
                booting = grown > size
                size = grown
                spent = time.monotonic() - t0
                if (not booting and spent >= FAIL_WITHIN_S) or spent >= BOOT_DEADLINE_S:
                    raise self.fail(found, f"its OS does not answer RMC after {spent:.0f} s",
                                    "look at its console ('lpmlab lab console "
                                    f"{self.partition}'); 'chsysstate -o shutdown --immed' then "
                                    "'-o on' boots it again",
                                    evidence=self.lab.console_tail(self.partition, 15))
        finally:
            ch.close()

    def _console_size(self) -> int:
        try:
            return self.lab.plan.partition(self.partition).console_log.stat().st_size
        except OSError:
            return 0

    def _disk_writer(self) -> None:
        """Start lpm-disk again when the partition's disk holds its records and it does not
        run (an activation or a boot from the disk stopped it)."""
        ch = self.lab.rmc(self.partition)
        try:
            running = ch.run("kill -0 $(cat /run/lpm-disk.pid 2>/dev/null) 2>/dev/null",
                             timeout=10).rc == 0
            if running:
                return
            verify = ch.run("lpm-disk verify /dev/sda", timeout=60)
            if verify.rc == 0 and "records=0 " not in verify.stdout + " ":
                ch.run("lpm-disk write /dev/sda --daemon", timeout=30, check=True)
                self.actions.append("restarted its disk writer (lpm-disk)")
        finally:
            ch.close()
