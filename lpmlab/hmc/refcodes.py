"""Partition reference codes (``lsrefcode``): what a partition reports while it starts.

A PowerVM partition posts progress codes while its firmware and OS start (``CA00E...``) and,
once its OS runs, the OS's name (``Linux ppc64le``); clients poll them to follow an activation
(op-test waits for a code containing ``Linux``). In the lab the firmware is SLOF and the OS
the partition image: their console output says how far the current boot got, since the last
firmware banner (the console log is appended to across boots and migrations, so a migrated
partition keeps its code). The codes are lpmlab's mapping of those stages onto the HMC's
code style (docs/hmc-ssh.md); a code is recorded when this HMC first sees it, which gives
``lsrefcode -n`` its history and time stamps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from lpmlab.adapter.connection import DomainInfo

NOT_ACTIVATED = "00000000"
# (console marker, code) from the earliest stage of a boot to the last; the latest one found
# in the current boot is the partition's code
BOOT_STAGES: tuple[tuple[str, str], ...] = (
    ("QEMU Starting", "CA00E1F1"),           # partition firmware (SLOF) starts
    ("Booting from memory", "CA00E879"),     # firmware hands over to the OS loader
    ("Booting Linux via __start()", "CA000093"),  # the kernel takes over
    ("LPMLAB-READY", "Linux ppc64le"),       # the OS runs (the image's init is done)
)
FIRMWARE_START = BOOT_STAGES[0][0]
POWERING_ON = "CA000000"     # started, before the firmware prints anything
SHUTTING_DOWN = "D200A250"   # shutting down
FAILED = "B2008105"          # the partition crashed
OS_RUNNING = BOOT_STAGES[-1][1]
TAIL_BYTES = 512 * 1024


@dataclass(frozen=True)
class RefCode:
    refcode: str
    time_stamp: float
    stage: str  # what it means, for docs and -v


def boot_stage(console_log: Path) -> tuple[str, str]:
    """(code, marker) of how far the partition's current boot got, by its console log."""
    try:
        with console_log.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            text = f.read().decode(errors="replace")
    except OSError:
        return POWERING_ON, ""
    start = text.rfind(FIRMWARE_START)
    if start < 0:
        return POWERING_ON, ""
    current = text[start:]
    code, marker = POWERING_ON, ""
    for mark, stage_code in BOOT_STAGES:
        if mark in current:
            code, marker = stage_code, mark
    return code, marker


def current(info: DomainInfo, console_log: Path, rmc_active: bool | None = None) -> RefCode:
    """The partition's reference code now: from its state, its console and, when known,
    whether its OS answers RMC (an answering OS runs, whatever the console shows)."""
    now = time.time()
    if info.state == "shutoff":
        return RefCode(NOT_ACTIVATED, now, "not activated")
    if info.state == "crashed":
        return RefCode(FAILED, now, "the partition failed")
    if info.state == "shutdown":
        return RefCode(SHUTTING_DOWN, now, "shutting down")
    if rmc_active:
        return RefCode(OS_RUNNING, now, "the OS answers RMC")
    code, marker = boot_stage(console_log)
    return RefCode(code, now, f"console: {marker}" if marker else "powering on")
