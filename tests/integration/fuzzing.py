"""Bad input for every HMC command, by construction (issue 11), and how to run it fast.

Shared by ``tests/integration/test_fuzz_commands.py`` (a few hundred commands in the suite)
and ``benchmarks/fuzz_bench.py`` (thousands). Three parts:

* **Strategies** (hypothesis): :func:`commands` draws one HMC command line that a correct HMC
  refuses, with the reason (``Command.poison``). Every command starts from a well-formed one
  for the lab's own names and gets at least one defect that must make it fail: an unknown or
  foreign option, a missing or conflicting one, a wrong ``-o``/``-r``, an unknown name, a bad
  ID, a malformed ``-i``/``--filter``/``-F``. Whatever else is drawn around it stays valid or
  is bad too, so no draw can migrate, shut down or change anything.
* **A runner**: :class:`CommandServer` starts the HMC's own command server
  (``lpmlab.cli.cmdserver``, the process behind the SSH endpoint) on a private socket and runs
  each command through it: a fork of an interpreter that has imported every command, running
  the console script's ``main`` through ``common.run`` with the caller's descriptors. That is
  what a user's command runs, without an interpreter start per command.
* **A state probe**: :class:`StateProbe`, a separate process that keeps libvirt connections
  open (libvirt's event thread must never be forked, so neither this process nor the server
  touches libvirt) and answers what must not change: every domain of every frame with its
  state (so every placement), the number of migration records, and (``full``) each domain's
  persistent XML, the lab's settings and the HMC's authorized keys.

Run as a script (``python fuzzing.py --probe LAB_DIR HMC``) it is the probe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# -- what every refusal must look like ---------------------------------------------------------

# the project's codes: the HMC's HSCLxxxx, lpmlab's HSCLLnnn and LPMnnnn (lpmlab.codes)
CODE_RE = re.compile(r"\b(HSCL[0-9A-Z]{4,5}|LPM\d{4})\b")
PARTIAL = 100  # migrlpar: some partitions failed


@dataclass(frozen=True)
class Command:
    """One command line and why a correct HMC refuses it."""

    argv: tuple[str, ...]
    poison: str

    @property
    def name(self) -> str:
        return self.argv[0]

    def __str__(self) -> str:
        import shlex

        return shlex.join(self.argv)


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    hung: bool = False


def problems(result: Result) -> list[str]:
    """What is wrong with how a command refused bad input (empty: refused properly)."""
    from lpmlab import codes

    out = []
    if result.hung:
        out.append("hung")
    if "Traceback" in result.stdout or "Traceback" in result.stderr:
        out.append("traceback")
    if result.rc == 0:
        out.append("exit 0")
    known = [c for c in CODE_RE.findall(result.stderr) if c in codes.REGISTRY]
    if not known:
        out.append("missing code")
    elif result.rc not in (0, PARTIAL) and codes.spec(known[0]).exit_code != result.rc:
        out.append(f"exit {result.rc} is not {known[0]}'s {codes.spec(known[0]).exit_code}")
    return out


# -- the lab's names ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Lpar:
    name: str
    frame: str
    lpar_id: int
    profiles: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabNames:
    """The names and IDs of the lab the commands run against (valid ones: a command is
    well-formed before its defect is added)."""

    frames: tuple[str, ...]
    aliases: dict[str, str]          # TYPE-MODEL*SERIAL -> frame name
    partitions: tuple[Lpar, ...]
    vios: tuple[Lpar, ...]
    hmcs: tuple[str, ...]
    addresses: dict[str, str]        # partition or VIOS name -> its RMC address
    lmb_mb: int = 256

    @classmethod
    def from_topology(cls, topo: Any) -> LabNames:
        return cls(
            frames=tuple(f.name for f in topo.frames),
            aliases={f"{f.type_model}*{f.serial_num}": f.name for f in topo.frames},
            partitions=tuple(Lpar(p.name, p.frame, p.lpar_id,
                                  tuple(pr.name for pr in p.profiles) or ("default_profile",))
                             for p in topo.partitions),
            vios=tuple(Lpar(v.name, v.frame, v.lpar_id) for v in topo.vios),
            hmcs=tuple(c.name for c in topo.hmcs),
            addresses={**{p.name: str(p.address) for p in topo.partitions},
                       **{v.name: str(v.address) for v in topo.vios}},
            lmb_mb=min(f.lmb_size_mb for f in topo.frames))

    @property
    def known(self) -> frozenset[str]:
        """Every name a command could resolve to something (compared stripped and folded)."""
        words = {*self.frames, *self.aliases, *self.hmcs,
                 *(p.name for p in self.partitions), *(v.name for v in self.vios),
                 *(pr for p in self.partitions for pr in p.profiles), "default_profile"}
        return frozenset(w.casefold() for w in words)

    def unknown(self, text: str) -> bool:
        """No part of ``text`` (split as the commands split lists) names anything."""
        parts = re.split(r"[,/=]", text) + [text]
        return not any(p.strip().casefold() in self.known for p in parts)

    def ids_on(self, frame: str) -> set[int]:
        return {p.lpar_id for p in (*self.partitions, *self.vios) if p.frame == frame}

    def other_frame(self, frame: str) -> str:
        return next(f for f in self.frames if f != frame)

    def alias_of(self, frame: str) -> str:
        return next(a for a, f in self.aliases.items() if f == frame)


# -- text --------------------------------------------------------------------------------------

# NUL cannot be in an argv; lone surrogates cannot be encoded for one
_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
WEIRD = ("", " ", ",", '"', '""', "'", "\\", "=", "a=b", "é", "名前", "\u202e", "😀", "\t",
         "line\nbreak", "%s%n", "${HOME}", "$(id)", "*", "..", "../../etc/passwd", "-", "--",
         "x" * 300, "9" * 40)


def junk() -> st.SearchStrategy[str]:
    """Any text, with the classics weighted in."""
    return st.one_of(st.sampled_from(WEIRD), st.text(_CHARS, max_size=24),
                     st.text("abcxyz019_-., \"'=", min_size=1, max_size=12))


def unknown_name(names: LabNames) -> st.SearchStrategy[str]:
    """A name that names nothing in the lab (not even part of it, in any case)."""
    near = st.sampled_from([*(n + "x" for n in names.frames), "lpar", "lpar99", "vios",
                            "sys", "SYS9", "nosuch", "hmc9", "lpar1 lpar2", "lpar_1"])
    return st.one_of(near, junk()).filter(names.unknown)


BAD_IDS = ("0", "-1", "-2", "1001", "65536", "9" * 30, "abc", "", " ", "1.5", "1e3",
           "0x2", "2,", ",2", " 2", "2 ", "+2", "\u0662", "\uff12", "1_0", "٢٢", "two")


def bad_id(names: LabNames, frame: str) -> st.SearchStrategy[str]:
    """A partition ID that is no partition of ``frame``: malformed, out of range, or unused.
    (Not ASCII digits is malformed: ' 2', '+2' and '٢' are not IDs.)"""
    used = names.ids_on(frame)
    unused = st.integers(1, 1000).filter(lambda i: i not in used).map(str)
    return st.one_of(st.sampled_from(BAD_IDS), unused, junk().filter(
        lambda s: not (s.isascii() and s.isdigit() and int(s) in used)))


BAD_FIELD_SPECS = ("", ",", ",name", "name,", "name,state:lpar_id", "名前", "name state;x",
                   "1name", "name,,state:x", " name")
BAD_OPTIONS = ("--bogus", "-Z", "--no-such-option", "-Q1", "--json=yes", "--debug=1",
               "--header=1", "---m")


def foreign(names: LabNames, cmd: str) -> st.SearchStrategy[list[str]]:
    """An option another HMC command takes and ``cmd`` does not (with a value if it needs
    one)."""
    table = option_table()
    mine = table[cmd]
    theirs = sorted({(o, v) for other, opts in table.items() if other != cmd
                     for o, v in opts.items()
                     if o not in mine and not any(m.startswith(o) for m in mine)})
    return st.sampled_from(theirs).map(lambda ov: [ov[0], names.frames[0]] if ov[1]
                                       else [ov[0]])


_OPTIONS: dict[str, dict[str, bool]] = {}


def option_table() -> dict[str, dict[str, bool]]:
    """Each HMC command's option strings -> whether the option takes a value."""
    if not _OPTIONS:
        import importlib

        from lpmlab.cli import registry

        for name, target in registry.HMC_COMMANDS.items():
            if name == "migrpeer":
                continue
            module = importlib.import_module(target.split(":")[0])
            p = module.parser(name) if name in ("mkvterm", "rmvterm") else module.parser()
            _OPTIONS[name] = {o: a.nargs != 0 for a in p._actions for o in a.option_strings}
    return _OPTIONS


# -- building command lines --------------------------------------------------------------------

Pairs = list[list[str]]  # [option, value] or [flag]


@st.composite
def _line(draw: st.DrawFn, cmd: str, pairs: Pairs, poison: str) -> Command:
    """The command with its options in any order (order must not matter to argparse)."""
    order = draw(st.permutations(pairs))
    return Command((cmd, *(t for p in order for t in p)), poison)


def _without(pairs: Pairs, opt: str) -> Pairs:
    return [p for p in pairs if p[0] != opt]


def _with(pairs: Pairs, opt: str, value: str | None) -> Pairs:
    return [*_without(pairs, opt), [opt] if value is None else [opt, value]]


@st.composite
def generic(draw: st.DrawFn, names: LabNames, cmd: str, pairs: Pairs,
            required: Sequence[str] = (), choices: dict[str, Sequence[str]] | None = None,
            ) -> Command:
    """Defects any command has: an unknown or foreign option, a stray argument, a missing
    required option, a value outside an option's choices."""
    kinds = ["unknown option", "foreign option", "stray argument"]
    if required:
        kinds.append("missing required option")
    if choices:
        kinds.append("bad choice")
    kind = draw(st.sampled_from(kinds))
    if kind == "unknown option":
        pairs = [*pairs, [draw(st.sampled_from(BAD_OPTIONS))]]
    elif kind == "foreign option":
        pairs = [*pairs, draw(foreign(names, cmd))]
    elif kind == "missing required option":
        pairs = _without(pairs, draw(st.sampled_from(list(required))))
    elif kind == "bad choice":
        assert choices
        opt = draw(st.sampled_from(sorted(choices)))
        pairs = _with(pairs, opt, draw(junk().filter(lambda s, o=opt: s not in choices[o])))
    line = draw(_line(cmd, pairs, kind))
    if kind == "stray argument":
        # at the end: after an option's value, where nothing takes it
        stray = draw(junk().filter(lambda s: not s.startswith("-")).map(lambda s: "x" + s))
        line = Command((*line.argv, stray), kind)
    return line


def listing_defects(names: LabNames, cmd: str, pairs: Pairs, filters: Sequence[str],
                    lpar_filter: bool) -> st.SearchStrategy[Command]:
    """The -F/--header/--filter defects of a listing: a malformed -F, --header without -F,
    a malformed or unknown filter, and (``lpar_filter``) one naming no partition there."""
    out = [
        st.sampled_from(BAD_FIELD_SPECS).flatmap(
            lambda f: _line(cmd, _with(pairs, "-F", f), "malformed -F")),
        _line(cmd, _with(_without(pairs, "-F"), "--header", None), "--header without -F"),
    ]
    if "--filter" in option_table()[cmd]:
        bad_filters = st.one_of(
            st.sampled_from(["lpar1", "bogus=1", "names", "=x", "lpar_names", ",",
                             '"lpar_names=a', "lpar_names=a,lpar_ids=1,nope=2"]),
            junk().filter(lambda s: "=" not in s and s.strip(",") != ""),
            *([st.sampled_from([f"{f}=" for f in filters])] if filters else []),
            st.tuples(unknown_name(names).filter(lambda s: "=" not in s and s not in filters),
                      junk()).map(lambda kv: f"{kv[0]}={kv[1]}"))
        out.append(bad_filters.flatmap(
            lambda f: _line(cmd, _with(pairs, "--filter", f), "malformed --filter")))
        if lpar_filter:
            frame = dict(pairs).get("-m", names.frames[0])
            who = st.one_of(
                unknown_name(names).filter(lambda s: s.strip(",")).map(
                    lambda n: f'"lpar_names={n}"' if "," in n else f"lpar_names={n}"),
                bad_id(names, frame).filter(lambda s: s.strip(", ") and not any(
                    x.strip().isascii() and x.strip().isdigit()
                    and int(x) in names.ids_on(frame) for x in s.split(","))).map(
                    lambda i: f'"lpar_ids={i}"' if "," in i else f"lpar_ids={i}"))
            out.append(who.flatmap(
                lambda f: _line(cmd, _with(pairs, "--filter", f), "filter names no partition")))
    return st.one_of(out)


def unknown_system(names: LabNames, cmd: str, pairs: Pairs,
                   opt: str = "-m") -> st.SearchStrategy[Command]:
    return unknown_name(names).flatmap(
        lambda s: _line(cmd, _with(pairs, opt, s), f"unknown managed system {opt}"))


# -- the commands ------------------------------------------------------------------------------

def lssyscfg(names: LabNames) -> st.SearchStrategy[Command]:
    frame = names.partitions[0].frame
    sys_ = [["-r", "sys"]]
    lpar = [["-r", "lpar"], ["-m", frame]]
    prof = [["-r", "prof"], ["-m", frame]]
    return st.one_of(
        generic(names, "lssyscfg", lpar, ["-r"], {"-r": ("sys", "lpar", "prof")}),
        st.sampled_from([sys_, lpar, prof]).flatmap(
            lambda b: unknown_system(names, "lssyscfg", b)),
        _line("lssyscfg", [["-r", "lpar"]], "-r lpar without -m"),
        _line("lssyscfg", [["-r", "prof"]], "-r prof without -m"),
        listing_defects(names, "lssyscfg", lpar, ["lpar_names", "lpar_ids"], True),
        listing_defects(names, "lssyscfg", prof, ["lpar_names", "lpar_ids", "profile_names"],
                        True),
        listing_defects(names, "lssyscfg", sys_, ["names"], False),
    )


def lslparmigr(names: LabNames) -> st.SearchStrategy[Command]:
    p = names.partitions[0]
    src, dst = p.frame, names.other_frame(p.frame)
    cmd = "lslparmigr"
    one = f"lpar_names={p.name}"
    bases = {
        "sys": [["-r", "sys"], ["-m", src]],
        "lpar": [["-r", "lpar"], ["-m", src]],
        "msp": [["-r", "msp"], ["-m", src], ["-t", dst]],
        "mem": [["-r", "mem"], ["-m", src], ["-t", dst], ["--filter", one]],
        "procpool": [["-r", "procpool"], ["-m", src], ["-t", dst], ["--filter", one]],
        "virtualio": [["-r", "virtualio"], ["-m", src], ["-t", dst], ["--filter", one]],
        "mc": [["-r", "mc"]],
    }
    res = st.sampled_from(sorted(bases))
    part = st.sampled_from(["mem", "procpool", "virtualio"])
    bad_ip = st.sampled_from(["1.2.3", "256.1.1.1", "8.8.8.8", "10.0.0.1", "::1", "hmc9",
                              "198.18.0.2.1", ""])
    return st.one_of(
        res.flatmap(lambda r: generic(names, cmd, bases[r], ["-r"],
                                      {"-r": ("sys", "lpar", "msp", "mem", "procpool",
                                              "virtualio", "mc")})),
        res.filter(lambda r: r != "mc").flatmap(
            lambda r: _line(cmd, _without(bases[r], "-m"), f"-r {r} without -m")),
        res.filter(lambda r: r != "mc").flatmap(
            lambda r: unknown_system(names, cmd, bases[r])),
        st.sampled_from(["msp", "mem", "virtualio"]).flatmap(
            lambda r: unknown_system(names, cmd, bases[r], "-t")),
        st.sampled_from(["sys", "lpar", "mc"]).flatmap(
            lambda r: _line(cmd, _with(bases[r], "-t", dst), f"-t with -r {r}")),
        st.sampled_from(["sys", "msp", "mc"]).flatmap(
            lambda r: _line(cmd, _with(bases[r], "--filter", one), f"--filter with -r {r}")),
        part.flatmap(lambda r: _line(cmd, _without(bases[r], "-t"), f"-r {r} without -t")),
        part.flatmap(lambda r: _line(cmd, _without(bases[r], "--filter"),
                                     f"-r {r} without a partition")),
        st.sampled_from(["lpar", "mem"]).flatmap(
            lambda r: _line(cmd, _with(bases[r], "--filter",
                                       f"lpar_names={p.name},lpar_ids={p.lpar_id}"),
                            "lpar_names and lpar_ids together")),
        st.sampled_from(["sys", "lpar", "mc"]).flatmap(
            lambda r: _line(cmd, _with(bases[r], "--ip", names.hmcs[0]),
                            f"--ip with -r {r}")),
        bad_ip.flatmap(lambda ip: _line(cmd, _with(bases["msp"], "--ip", ip),
                                        "--ip names no HMC of the lab")),
        _line(cmd, _with(bases["msp"], "-u", "hscroot"), "-u without --ip"),
        listing_defects(names, cmd, bases["lpar"], ["lpar_names", "lpar_ids"], True),
        part.flatmap(lambda r: listing_defects(names, cmd, bases[r],
                                               ["lpar_names", "lpar_ids"], True)),
        listing_defects(names, cmd, bases["sys"], [], False),
    )


def lssysconn(names: LabNames) -> st.SearchStrategy[Command]:
    base = [["-r", "all"]]
    return st.one_of(generic(names, "lssysconn", base, ["-r"], {"-r": ("all",)}),
                     listing_defects(names, "lssysconn", base, [], False))


def lshmc(names: LabNames) -> st.SearchStrategy[Command]:
    what = st.sampled_from(["-V", "-v", "-n"])
    return st.one_of(
        what.flatmap(lambda w: generic(names, "lshmc", [[w]])),
        _line("lshmc", [], "none of -V, -v, -n"),
        st.lists(what, min_size=2, max_size=3, unique=True).flatmap(
            lambda ws: _line("lshmc", [[w] for w in ws], "-V, -v, -n together")),
        st.tuples(st.sampled_from(["-V", "-v"]), st.sampled_from([["-F", "name"],
                                                                  ["--header"]])).flatmap(
            lambda t: _line("lshmc", [[t[0]], t[1]], f"{t[1][0]} with {t[0]}")),
        listing_defects(names, "lshmc", [["-n"]], [], False),
    )


def lshwres(names: LabNames) -> st.SearchStrategy[Command]:
    frame = names.partitions[0].frame
    cmd = "lshwres"
    mem = [["-r", "mem"], ["-m", frame], ["--level", "sys"]]
    proc = [["-r", "proc"], ["-m", frame], ["--level", "lpar"]]
    vio = [["-r", "virtualio"], ["--rsubtype", "scsi"], ["-m", frame], ["--level", "lpar"]]
    base = st.sampled_from([mem, proc, vio])
    return st.one_of(
        base.flatmap(lambda b: generic(names, cmd, b, ["-r", "-m"], {
            "-r": ("mem", "proc", "virtualio"), "--level": ("sys", "lpar")})),
        _line(cmd, _with(vio, "--rsubtype", "bogus"), "bad --rsubtype"),
        st.sampled_from([mem, proc]).flatmap(
            lambda b: _line(cmd, _without(b, "--level"), "no --level")),
        _line(cmd, _without(vio, "--rsubtype"), "-r virtualio without --rsubtype"),
        st.sampled_from([mem, proc]).flatmap(
            lambda b: _line(cmd, _with(b, "--rsubtype", "eth"), "--rsubtype with mem/proc")),
        _line(cmd, _with(_with(proc, "--level", "sys"), "--filter", "lpar_ids=2"),
              "--level sys with --filter"),
        _line(cmd, _with(vio, "--level", "sys"), "--level sys with virtual I/O"),
        base.flatmap(lambda b: unknown_system(names, cmd, b)),
        listing_defects(names, cmd, proc, ["lpar_names", "lpar_ids"], True),
        listing_defects(names, cmd, vio, ["lpar_names", "lpar_ids"], True),
    )


def lsrefcode(names: LabNames) -> st.SearchStrategy[Command]:
    frame = names.partitions[0].frame
    cmd = "lsrefcode"
    sys_ = [["-r", "sys"], ["-m", frame]]
    lpar = [["-r", "lpar"], ["-m", frame]]
    base = st.sampled_from([sys_, lpar])
    bad_n = st.one_of(st.sampled_from(["0", "-1", "-99", "9" * 25, "1e9", "abc", "", "1.0",
                                       "\u0663", "10000001"]),
                      junk().filter(lambda s: not (s.isascii() and s.isdigit()
                                                   and 1 <= int(s) <= 1000)))
    return st.one_of(
        base.flatmap(lambda b: generic(names, cmd, b, ["-r", "-m"],
                                       {"-r": ("sys", "lpar"), "-s": ("p", "s")})),
        st.tuples(base, bad_n).flatmap(lambda t: _line(cmd, _with(t[0], "-n", t[1]),
                                                       "bad -n")),
        base.flatmap(lambda b: unknown_system(names, cmd, b)),
        _line(cmd, _with(sys_, "--filter", "lpar_ids=1"), "--filter with -r sys"),
        listing_defects(names, cmd, lpar, ["lpar_names", "lpar_ids"], True),
    )


def chsysstate(names: LabNames) -> st.SearchStrategy[Command]:
    p = names.partitions[0]
    cmd = "chsysstate"
    # -o on of a running partition: refused by its state; everything else by a defect
    on = [["-m", p.frame], ["-r", "lpar"], ["-n", p.name], ["-o", "on"]]
    stop = st.sampled_from(["shutdown", "osshutdown"]).map(
        lambda o: [["-m", p.frame], ["-r", "lpar"], ["-n", p.name], ["-o", o]])
    return st.one_of(
        _line(cmd, on, "-o on of a running partition"),
        generic(names, cmd, on, ["-m", "-r", "-o", "-n"],
                {"-r": ("lpar",), "-o": ("on", "shutdown", "osshutdown")}),
        st.tuples(stop, unknown_name(names)).flatmap(
            lambda t: _line(cmd, _with(t[0], "-n", t[1]), "unknown partition")),
        stop.flatmap(lambda b: unknown_system(names, cmd, b)),
        bad_id(names, p.frame).flatmap(
            lambda i: _line(cmd, _with(_without(on, "-n"), "--id", i), "bad --id")),
        _line(cmd, _with(on, "--id", str(p.lpar_id)), "-n and --id together"),
        stop.flatmap(lambda b: _line(cmd, _with(b, "-f", p.profiles[0]),
                                     "-f without -o on")),
        st.sampled_from(["on", "osshutdown"]).flatmap(
            lambda o: _line(cmd, _with(_with(on, "-o", o), "--immed", None),
                            "--immed without -o shutdown")),
        _line(cmd, _with(on, "--restart", None), "--restart with -o on"),
        unknown_name(names).flatmap(
            lambda f: _line(cmd, _with(on, "-f", f), "-o on of a running partition, "
                            "unknown profile")),
        st.sampled_from(names.vios).flatmap(
            lambda v: _line(cmd, [["-m", v.frame], ["-r", "lpar"], ["-n", v.name],
                                  ["-o", "on"]], "-o on of a running VIOS")),
        stop.flatmap(lambda b: _line(cmd, _with(b, "-m", names.other_frame(p.frame)),
                                     "partition not on that managed system")),
    )


def _vterm(prog: str) -> Callable[[LabNames], st.SearchStrategy[Command]]:
    def strategy(names: LabNames) -> st.SearchStrategy[Command]:
        p = names.partitions[0]
        base = [["-m", p.frame], ["-p", p.name]]  # well-formed and valid: always spoilt
        return st.one_of(
            generic(names, prog, base, ["-m", "-p"]),
            unknown_system(names, prog, base),
            unknown_name(names).flatmap(
                lambda n: _line(prog, _with(base, "-p", n), "unknown partition")),
            bad_id(names, p.frame).flatmap(
                lambda i: _line(prog, _with(_without(base, "-p"), "--id", i), "bad --id")),
            _line(prog, _with(base, "--id", str(p.lpar_id)), "-p and --id together"),
            st.sampled_from(names.vios).flatmap(
                lambda v: _line(prog, [["-m", v.frame], ["-p", v.name]],
                                "a VIOS has no terminal here")),
            _line(prog, _with(base, "-m", names.other_frame(p.frame)),
                  "partition not on that managed system"),
        )
    return strategy


def diagrmc(names: LabNames) -> st.SearchStrategy[Command]:
    p = names.partitions[0]
    cmd = "diagrmc"
    base = [["-m", p.frame], ["-p", p.name]]
    # (an empty --ip is no --ip)
    wrong_ip = st.one_of(st.sampled_from(["1.2.3.4", "198.18.0.250", "x", "::1",
                                          "198.18.0.101.1"]), junk()).filter(
        lambda s: s != "" and s != names.addresses[p.name])
    return st.one_of(
        generic(names, cmd, base),
        st.sampled_from([["-p", p.name], ["--id", str(p.lpar_id)],
                         ["--ip", names.addresses[p.name]]]).flatmap(
            lambda o: _line(cmd, [o], f"{o[0]} without -m")),
        _line(cmd, [["-m", p.frame]], "-m without a partition"),
        unknown_system(names, cmd, base),
        unknown_name(names).flatmap(
            lambda n: _line(cmd, _with(base, "-p", n), "unknown partition")),
        st.sampled_from(names.vios).flatmap(
            lambda v: _line(cmd, [["-m", v.frame], ["-p", v.name]], "a VIOS, not a client")),
        bad_id(names, p.frame).flatmap(
            lambda i: _line(cmd, _with(_without(base, "-p"), "--id", i), "bad --id")),
        wrong_ip.flatmap(lambda ip: _line(cmd, _with(base, "--ip", ip),
                                          "--ip not the partition's")),
        _line(cmd, _with(base, "--id", str(p.lpar_id)), "-p and --id together"),
    )


def mkauthkeys(names: LabNames) -> st.SearchStrategy[Command]:
    cmd = "mkauthkeys"
    hmc = names.hmcs[0]
    not_a_key = st.one_of(
        st.sampled_from(["ssh-ed25519", "ssh-ed25519 AAAA", "ssh-rsa !!!! x@y",
                         "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== broken", "AAAA", "ssh-dss",
                         "x" * 2000]),
        junk().filter(lambda s: s.strip() != "")).filter(lambda s: not s.startswith("-"))
    bad_ip = st.sampled_from(["1.2.3", "256.0.0.1", "8.8.8.8", "127.0.0.1", "hmc9", "x",
                              "198.18.0.2/24", "::1"])
    return st.one_of(
        generic(names, cmd, [["--test"], ["--ip", hmc]],
                choices={"-t": ("rsa", "dsa", "ecdsa", "ed25519")}),
        _line(cmd, [], "nothing to do"),
        _line(cmd, [["-u", "hscroot"]], "nothing to do"),
        _line(cmd, [["--test"]], "--test without --ip"),
        not_a_key.flatmap(lambda k: _line(cmd, [["-a", k]], "not a public key")),
        unknown_name(names).filter(lambda s: s.strip() and not s.startswith("-")).flatmap(
            lambda k: _line(cmd, [["-r", "nosuch-" + k]], "no such key to remove")),
        not_a_key.flatmap(lambda k: _line(cmd, [["-a", k], ["-r", k]], "-a and -r together")),
        st.sampled_from([["--ip", hmc], ["--passwd", "pw"], ["-g"]]).flatmap(
            lambda o: _line(cmd, [["-a", "ssh-ed25519 AAAA"], o], f"-a with {o[0]}")),
        st.sampled_from([["--passwd", "pw"], ["-g"]]).flatmap(
            lambda o: _line(cmd, [["--test"], ["--ip", hmc], o], f"--test with {o[0]}")),
        st.sampled_from(["rsa", "dsa", "ecdsa"]).flatmap(
            lambda t: _line(cmd, [["--test"], ["--ip", hmc], ["-t", t]],
                            "a key type the lab's HMCs do not have")),
        bad_ip.flatmap(lambda ip: _line(cmd, [["--test"], ["--ip", ip]],
                                        "--ip names no HMC of the lab")),
        unknown_name(names).filter(lambda s: s.strip() and not s.startswith("-")).flatmap(
            lambda u: _line(cmd, [["-a", "ssh-ed25519 AAAA x"], ["-u", "u" + u]],
                            "another HMC user's keys")),
    )


# -- chsyscfg and migrlpar -i ------------------------------------------------------------------

def _field(name: str, value: str) -> str:
    """One attr=value field, quoted the HMC way when it needs it."""
    f = f"{name}={value}"
    if any(c in f for c in ',"\n\r'):
        return '"' + f.replace('"', '""') + '"'
    return f


SYNTAX_ERRORS = ('"dest_msp_name=vios1', 'dest_msp_name="vios1"', "a=1,,b=2", ",a=1",
                 "dest_msp_name", "=1", "a=1,a=2", '"a=1"x', 'x"y=1', " = ", "=", ",",
                 "\n=\n", '"', '""', '"a=1""', "a=1\n\nb")


def _ints_out_of(lo: int, hi: int | None) -> st.SearchStrategy[str]:
    bad = ["", "abc", "1.5", "-1", str(lo - 1), "1e3", "\u0663", "0x1", "+1", "9" * 30, " "]
    if hi is not None:
        bad += [str(hi + 1), str(hi * 1000)]
    return st.sampled_from(bad)


def bad_attributes(names: LabNames, good: Sequence[str],
                   bad: Sequence[st.SearchStrategy[str]]) -> st.SearchStrategy[str]:
    """An -i text with at least one field that must be refused, among valid ones."""
    return st.tuples(st.lists(st.sampled_from(list(good)), max_size=3, unique=True),
                     st.one_of(list(bad))).flatmap(
        lambda t: st.permutations([*t[0], t[1]])).map(",".join)


def migrate_attributes(names: LabNames, src: str, dst: str) -> st.SearchStrategy[str]:
    from lpmlab.hmc.attributes import ATTRIBUTES

    v_src = next(v for v in names.vios if v.frame == src)
    v_dst = next(v for v in names.vios if v.frame == dst)
    good = [f"source_msp_name={v_src.name}", f"dest_msp_name={v_dst.name}",
            f"source_msp_id={v_src.lpar_id}", "concurr_migration_perf_level=3",
            f'"virtual_scsi_mappings=2/{v_dst.name}/"']
    ids = ("dest_lpar_id", "source_msp_id", "dest_msp_id")
    msp_names = ("source_msp_name", "dest_msp_name", "shared_proc_pool_name")
    # items that are wrong whatever the lab: bad slot, ID, address or number of parts
    bad_items = {
        "virtual_scsi_mappings": ["1/vios1/", "a/b/c/d/e", "12", "12/vios1/x", "//",
                                  "70000/vios1/", "12/vi,os/", "12/vios1/0", "x/y/"],
        "virtual_fc_mappings": ["0/vios1/", "12/vios1/1/1", "12//", "12/vios1/1/99999"],
        "source_msps": ["a/b/c/d", "vios1/x/", "vios1/1/1.2.3", "vios1/0/", "12",
                        "vios1/1/::1", "//"],
        "dest_msps": ["a/b/c/d", "vios2/1001/", "vios2//300.1.1.1", "12", "//"],
    }
    bad = [
        # unknown attribute names
        st.tuples(junk().filter(lambda s: s.strip() not in ATTRIBUTES and "=" not in s),
                  st.sampled_from(["1", "vios1", ""])).map(lambda kv: _field(*kv)),
        # out-of-range and malformed numbers
        st.tuples(st.sampled_from(ids), _ints_out_of(1, 1000)).map(lambda kv: _field(*kv)),
        _ints_out_of(1, 5).map(lambda v: _field("concurr_migration_perf_level", v)),
        _ints_out_of(0, 63).map(lambda v: _field("shared_proc_pool_id", v)),
        # names with characters no name has
        st.tuples(st.sampled_from(msp_names), st.sampled_from(
            ["a/b", "vios\x01", "", "vi\u200bos", "a\u2028b"])).map(lambda kv: _field(*kv)),
        # not addresses
        st.tuples(st.sampled_from(["source_msp_ipaddr", "dest_msp_ipaddr"]),
                  st.sampled_from(["1.2.3", "256.1.1.1", "abc", "::1", "1.2.3.4.5", ""])).map(
            lambda kv: _field(*kv)),
        st.sampled_from(["prof1", "", "PROF", "configx"]).map(
            lambda v: _field("inactive_prof_policy", v)),
        # list items that are not items
        st.sampled_from(sorted(bad_items)).flatmap(
            lambda n: st.sampled_from(bad_items[n]).map(lambda v: _field(n, v))),
        # attributes of another operation, and mutually exclusive ones
        st.just("num_active_migrations_configured=4"),
        st.just("shared_proc_pool_name=DefaultPool,shared_proc_pool_id=0"),
        st.just(f"dest_msp_name={v_dst.name},dest_msps={v_dst.name}//"),
        # syntax
        st.sampled_from(SYNTAX_ERRORS),
        # names of MSPs that are not there (validation refuses them)
        unknown_name(names).filter(lambda s: s and not re.search(r'[,/"\s=]', s)
                                   and s.isprintable()).map(
            lambda n: _field("dest_msp_name", n)),
    ]
    return bad_attributes(names, good, bad)


def chsyscfg(names: LabNames) -> st.SearchStrategy[Command]:
    p = names.partitions[0]
    v = next(v for v in names.vios if v.frame == p.frame)
    cmd = "chsyscfg"
    prof = p.profiles[0]
    lpar_bad = st.one_of(
        st.tuples(st.sampled_from([p.name, v.name]), junk().filter(
            lambda s: s.strip() not in ("msp", "time_ref", "migration_disabled", "name",
                                        "lpar_id", "") and "=" not in s)).map(
            lambda t: f"name={t[0]},{_field(t[1], '1')}"),
        junk().filter(lambda s: s.strip() not in ("0", "1")).map(
            lambda s: ",".join([f"name={p.name}", _field("migration_disabled", s)])),
        st.tuples(st.sampled_from(["msp", "time_ref"]), junk().filter(
            lambda s: s.strip() not in ("0", "1"))).map(
            lambda t: ",".join([f"name={v.name}", _field(*t)])),
        st.just(f"name={v.name},migration_disabled=1"),
        st.just(f"name={p.name},msp=1"),
        unknown_name(names).map(lambda n: ",".join([_field("name", n), "migration_disabled=1"])),
        st.just("migration_disabled=1"),
        st.sampled_from([f"name={p.name}", f"name={v.name}", f"lpar_id={p.lpar_id}"]),
        bad_id(names, p.frame).map(lambda i: ",".join([_field("lpar_id", i),
                                                      "migration_disabled=1"])),
        st.sampled_from(SYNTAX_ERRORS),
        st.just(f"name={v.name},msp=1,msp=0"),
        st.sampled_from(names.vios).filter(lambda o: o.frame != p.frame).map(
            lambda o: f"name={o.name},msp=1"),
    )
    lmb = names.lmb_mb
    prof_bad = st.one_of(
        st.just(f"lpar_name={p.name},desired_mem={lmb}"),
        st.just(f"name={prof},desired_mem={lmb}"),
        st.just(f"name={prof},lpar_name={p.name}"),
        st.tuples(junk().filter(lambda s: s.strip() and "=" not in s and s.strip() not in (
            "name", "lpar_name", "min_mem", "desired_mem", "max_mem", "min_procs",
            "desired_procs", "max_procs", "lpar_proc_compat_mode"))).map(
            lambda t: ",".join([f"name={prof}", f"lpar_name={p.name}", _field(t[0], "1")])),
        unknown_name(names).map(lambda n: ",".join(
            [_field("name", n), f"lpar_name={p.name}", f"desired_mem={lmb * 2}"])),
        unknown_name(names).map(lambda n: ",".join(
            [f"name={prof}", _field("lpar_name", n), f"desired_mem={lmb * 2}"])),
        st.tuples(st.sampled_from(["min_mem", "desired_mem", "max_mem", "min_procs",
                                   "desired_procs", "max_procs"]),
                  st.sampled_from(["abc", "", "1.5", "-1", "0", "9" * 30, "\u0663", "1e3",
                                   str(lmb + 1), str(10**9)])).map(
            lambda t: ",".join([f"name={prof}", f"lpar_name={p.name}", _field(*t)])),
        junk().filter(lambda s: s.strip() not in ("default", "POWER8", "POWER9", "POWER10")
                      ).map(lambda m: ",".join([f"name={prof}", f"lpar_name={p.name}",
                                                _field("lpar_proc_compat_mode", m)])),
        st.just(f"name={v.name},lpar_name={v.name},desired_mem={lmb}"),
        st.sampled_from(SYNTAX_ERRORS),
    )
    lpar = [["-r", "lpar"], ["-m", p.frame]]
    profr = [["-r", "prof"], ["-m", p.frame]]
    return st.one_of(
        lpar_bad.flatmap(lambda a: _line(cmd, [*lpar, ["-i", a]], "bad -i (lpar)")),
        prof_bad.flatmap(lambda a: _line(cmd, [*profr, ["-i", a]], "bad -i (prof)")),
        generic(names, cmd, [*lpar, ["-i", f"name={v.name},msp=1"]], ["-r", "-m", "-i"],
                {"-r": ("lpar", "prof")}),
        unknown_system(names, cmd, [*lpar, ["-i", f"name={v.name},msp=1"]]),
        _line(cmd, [*lpar, ["-i", f"name={v.name},msp=1"], ["-f", "/dev/null"]],
              "-i and -f together"),
        st.sampled_from(["/nonexistent/attrs", "", "/", "/proc/self/nosuch"]).flatmap(
            lambda f: _line(cmd, [*lpar, ["-f", f]], "no attribute file")),
    )


def migrlpar(names: LabNames) -> st.SearchStrategy[Command]:
    from lpmlab.cli.migrlpar import OPTION_OPS, OVERRIDES

    p = names.partitions[0]
    src, dst = p.frame, names.other_frame(p.frame)
    v = next(v for v in names.vios if v.frame == src)
    cmd = "migrlpar"
    mv = st.sampled_from(["m", "v"])

    def base(op: str) -> Pairs:
        if op in ("m", "v"):
            return [["-o", op], ["-m", src], ["-t", dst], ["-p", p.name]]
        if op in ("s", "r"):
            return [["-o", op], ["-m", src], ["-p", p.name]]
        if op == "set-sys":
            return [["-o", "set"], ["-r", "sys"], ["-m", src],
                    ["-i", "inactive_prof_policy=config"]]
        return [["-o", "set"], ["-r", "lpar"], ["-m", src], ["-p", v.name],
                ["-i", "num_active_migrations_configured=4"]]

    ops = st.sampled_from(["m", "v", "s", "r", "set-sys", "set-lpar"])
    values = {"-w": "3", "-n": "prof2", "-d": "2", "--steps": "1", "-r": "sys",
              "--mover-bandwidth": "100", "--max-speed": "100", "--max-downtime": "300",
              "--schedule": "none", "--ip": names.hmcs[0], "-u": "hscroot",
              **{f"--{n}": "1" for n in OVERRIDES}}

    def wrong_op_option(op: str) -> st.SearchStrategy[Command]:
        o = op if op in ("m", "v", "s", "r") else "set"
        cands = sorted(opt for opt, (_a, allowed) in OPTION_OPS.items() if o not in allowed)
        return st.sampled_from(cands).flatmap(lambda opt: _line(
            cmd, _with(base(op), opt, values.get(opt)), f"{opt} not valid with -o {o}"))

    set_lpar = base("set-lpar")
    set_sys = base("set-sys")
    unknown_list = st.lists(unknown_name(names).filter(
        lambda s: s.strip(", ") and not s.startswith("-")), min_size=1, max_size=3).map(
        ",".join)
    bad_ctl = st.sampled_from([("--mover-bandwidth", "nan"), ("--mover-bandwidth", "inf"),
                               ("--mover-bandwidth", "0"), ("--mover-bandwidth", "-5"),
                               ("--mover-bandwidth", "1e400"), ("--max-speed", "0"),
                               ("--max-speed", "9" * 25), ("--max-downtime", "-1"),
                               ("--max-downtime", "9" * 25), ("--max-speed", "fast"),
                               ("--schedule", "whatever"),
                               ("--schedule", "postcopy-on-stall")])
    return st.one_of(
        # -o m / -o v
        st.tuples(mv, migrate_attributes(names, src, dst)).flatmap(
            lambda t: _line(cmd, [*base(t[0]), ["-i", t[1]]], "bad -i")),
        st.tuples(mv, unknown_list).flatmap(
            lambda t: _line(cmd, _with(base(t[0]), "-p", t[1]), "unknown partition")),
        st.tuples(mv, bad_id(names, src)).flatmap(
            lambda t: _line(cmd, _with(_without(base(t[0]), "-p"), "--id", t[1]), "bad --id")),
        st.tuples(ops.filter(lambda o: o != "set-sys"), unknown_name(names)).flatmap(
            lambda t: _line(cmd, _with(base(t[0]), "-m", t[1]), "unknown -m")),
        st.tuples(mv, unknown_name(names)).flatmap(
            lambda t: _line(cmd, _with(base(t[0]), "-t", t[1]), "unknown -t")),
        st.tuples(mv, st.sampled_from([src, names.alias_of(src)])).flatmap(
            lambda t: _line(cmd, _with(base(t[0]), "-t", t[1]), "-t is the source")),
        mv.flatmap(lambda o: _line(cmd, _with(base(o), "-p", v.name), "a VIOS cannot migrate")),
        _line(cmd, _with(base("v"), "-p", f"{p.name},{p.name}"), "a partition named twice"),
        _line(cmd, _with(_without(base("v"), "-p"), "--id", f"{p.lpar_id},{p.lpar_id}"),
              "a partition named twice"),
        ops.flatmap(wrong_op_option),
        st.sampled_from(["-t", "-m", "-p"]).flatmap(
            lambda o: mv.flatmap(lambda op: _line(cmd, _without(base(op), o),
                                                  f"-o {op} without {o}"))),
        st.tuples(mv, st.sampled_from([("-w", "-1"), ("-w", "abc"), ("-w", "9" * 25),
                                       ("-d", "0"), ("-d", "6"), ("-d", "-3"), ("-d", "x"),
                                       ("-d", "9" * 25), ("--redundantvios", "3"),
                                       ("--mpio", "0"), ("--vlanbridge", "x"),
                                       ("--protectstorage", "-1"), ("--steps", "1"),
                                       ("--uuid", "9")])).filter(
            lambda t: not (t[1][0] == "--steps" and t[0] == "m")).flatmap(
            lambda t: _line(cmd, _with(base(t[0]), *t[1]), f"bad {t[1][0]}")),
        bad_ctl.flatmap(lambda kv: _line(cmd, _with(base("m"), *kv), f"bad {kv[0]}")),
        _line(cmd, [*base("m"), ["--progress"], ["--noprogress"]], "--progress and "
              "--noprogress"),
        mv.flatmap(lambda o: _line(cmd, [*base(o), ["-v"], ["--nodetails"]],
                                   "-v and --nodetails")),
        mv.flatmap(lambda o: _line(cmd, [*base(o), ["-u", "hscroot"]], "-u without --ip")),
        st.tuples(mv, st.sampled_from(["1.2.3", "256.0.0.1", "8.8.8.8", "hmc9", "x", ""])
                  ).flatmap(lambda t: _line(cmd, [*base(t[0]), ["--ip", t[1]]],
                                            "--ip names no HMC of the lab")),
        st.tuples(mv, st.sampled_from(["Prof", "1prof", "p/q", "a b", "", "x" * 40, "é",
                                       "-"])).flatmap(
            lambda t: _line(cmd, [*base(t[0]), ["-n", t[1]]], "bad profile name")),
        st.sampled_from(["m", "v"]).flatmap(lambda o: _line(
            cmd, _with(base(o), "-p", f"{p.name},nosuch-{o}") + [["-n", "prof2"]],
            "-n with several partitions")),
        st.sampled_from(["", "/nonexistent/attrs", "/"]).flatmap(
            lambda f: _line(cmd, [*base("v"), ["-f", f]], "no attribute file")),
        _line(cmd, _with(base("v"), "--all", None), "--all with -o v"),
        _line(cmd, [*_without(base("m"), "-p"), ["-p", p.name], ["--all"]], "-p and --all"),
        _line(cmd, _with(base("r"), "--all", None), "--all with -o r"),
        st.sampled_from(["s", "r"]).flatmap(lambda o: _line(
            cmd, _with(base(o), "-p", f"{p.name},nosuch"), f"-o {o} takes one partition")),
        st.sampled_from(["s", "r"]).flatmap(
            lambda o: _line(cmd, [*base(o), ["-t", dst]], f"-t with -o {o}")),
        st.sampled_from(["s", "r"]).flatmap(
            lambda o: _line(cmd, [*base(o), ["-i", "dest_msp_name=vios2"]], f"-i with -o {o}")),
        _line(cmd, base("s"), "-o s with no migration under way"),
        unknown_name(names).filter(lambda s: s.strip(", ")).flatmap(
            lambda n: _line(cmd, _with(base("r"), "-p", n), "recover an unknown partition")),
        # -o set
        _line(cmd, _without(set_sys, "-r"), "-o set without -r"),
        _line(cmd, _without(set_sys, "-i"), "-o set without -i"),
        st.sampled_from([["-t", dst], ["--all"], ["-v"]]).flatmap(
            lambda o: _line(cmd, [*set_sys, o], f"{o[0]} with -o set")),
        _line(cmd, [*set_sys, ["-p", p.name]], "-o set -r sys with a partition"),
        _line(cmd, _without(set_lpar, "-p"), "-o set -r lpar without a partition"),
        _line(cmd, _with(set_lpar, "-p", f"{v.name},{v.name}"), "-o set -r lpar, two"),
        bad_id(names, src).filter(lambda s: not s.isdigit()).flatmap(
            lambda i: _line(cmd, _with(_without(set_lpar, "-p"), "--id", i), "bad --id")),
        unknown_name(names).filter(lambda s: "," not in s).flatmap(
            lambda n: _line(cmd, _with(set_lpar, "-p", n), "unknown VIOS")),
        _line(cmd, _with(set_lpar, "-p", p.name), "not a VIOS"),
        unknown_name(names).flatmap(lambda n: _line(cmd, _with(set_sys, "-m", n),
                                                    "unknown -m")),
        st.one_of(
            st.sampled_from(["prof1", "", "CONFIG", "config,prof"]).map(
                lambda x: _field("inactive_prof_policy", x)),
            st.sampled_from(["dest_msp_name=vios2", "num_active_migrations_configured=4",
                             "bogus=1"]),
            st.sampled_from(SYNTAX_ERRORS)).flatmap(
            lambda a: _line(cmd, _with(set_sys, "-i", a), "bad -o set -r sys -i")),
        st.one_of(
            st.sampled_from(["0", "9", "9" * 25, "-1", "", "x", "\u0663"]).map(
                lambda x: _field("num_active_migrations_configured", x)),
            st.sampled_from(["0", "6", "", "x"]).map(
                lambda x: _field("concurr_migration_perf_level", x)),
            st.sampled_from(["inactive_prof_policy=config", "dest_msp_name=vios2",
                             "bogus=1"]),
            st.sampled_from(SYNTAX_ERRORS)).flatmap(
            lambda a: _line(cmd, _with(set_lpar, "-i", a), "bad -o set -r lpar -i")),
        ops.flatmap(lambda o: generic(names, cmd, base(o), ["-o"], {
            "-o": ("m", "v", "s", "r", "set"), "-r": ("sys", "lpar")})),
    )


STRATEGIES: dict[str, Callable[[LabNames], st.SearchStrategy[Command]]] = {
    "lssyscfg": lssyscfg, "lslparmigr": lslparmigr, "migrlpar": migrlpar,
    "chsyscfg": chsyscfg, "chsysstate": chsysstate, "mkvterm": _vterm("mkvterm"),
    "rmvterm": _vterm("rmvterm"), "lsrefcode": lsrefcode, "diagrmc": diagrmc,
    "lshmc": lshmc, "lssysconn": lssysconn, "lshwres": lshwres, "mkauthkeys": mkauthkeys,
}


def commands(names: LabNames) -> st.SearchStrategy[Command]:
    """One bad command line for any HMC command (each command equally likely)."""
    return st.sampled_from(sorted(STRATEGIES)).flatmap(lambda c: STRATEGIES[c](names))


# CI runs the same examples every time and leaves nothing on disk (no example database)
settings.register_profile(
    "lpmlab-fuzz", deadline=None, derandomize=True, database=None, print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large])


def keep_hypothesis_files_in(directory: Path) -> None:
    """Hypothesis caches what it learns of the source (constants, unicode tables) in
    ./.hypothesis even without an example database: a run leaves that in its own folder."""
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(directory / "hypothesis")


# -- running commands --------------------------------------------------------------------------

class CommandServer:
    """The HMC's command server on a private socket, started from this interpreter (so it
    imports the same lpmlab), for ``hmc`` of the lab in ``lab_dir``."""

    def __init__(self, lab_dir: Path, hmc: str, workdir: Path, timeout: float = 60) -> None:
        self.socket_path = workdir / "fuzz-hmc.sock"
        self.timeout = timeout
        self.log = (workdir / "cmdserver.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lpmlab.cli.cmdserver", "--lab-dir", str(lab_dir),
             "--hmc", hmc, "--socket", str(self.socket_path), "--allow-uid", str(os.getuid())],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while not self.socket_path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"the command server did not start: see {self.log.name}")
            time.sleep(0.05)

    def run(self, argv: Sequence[str]) -> Result:
        """One command, as the SSH endpoint runs it: its stdin /dev/null, its stdout and
        stderr captured whole."""
        from lpmlab.cli import cmdwire

        t0 = time.monotonic()
        with contextlib.ExitStack() as stack:
            conn = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET))
            conn.connect(str(self.socket_path))
            stdin = stack.enter_context(open(os.devnull, "rb"))
            out = stack.enter_context(tempfile.TemporaryFile())
            err = stack.enter_context(tempfile.TemporaryFile())
            cmdwire.send(conn, {"argv": list(argv), "env": {"NO_COLOR": "1"}},
                         [stdin.fileno(), out.fileno(), err.fileno()])
            conn.settimeout(self.timeout)
            hung = False
            try:
                reply, _ = cmdwire.receive(conn)
            except TimeoutError:
                hung, reply = True, None
                with contextlib.suppress(OSError):
                    cmdwire.send(conn, {"signal": int(signal.SIGKILL)})
                    cmdwire.send(conn, {"signal": int(signal.SIGTERM)})
            if not hung and (reply is None or "rc" not in reply):
                raise RuntimeError(f"the command server refused {list(argv)}: {reply}")
            rc = int(reply["rc"]) if reply else -1
            out.seek(0)
            err.seek(0)
            return Result(rc, out.read().decode("utf-8", "replace"),
                          err.read().decode("utf-8", "replace"), time.monotonic() - t0, hung)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()


def run_console_script(argv: Sequence[str], timeout: float = 120) -> Result:
    """The same command as its console script, in a fresh interpreter (the cross-check)."""
    t0 = time.monotonic()
    cp = subprocess.run([str(Path(sys.executable).parent / argv[0]), *argv[1:]],
                        capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout,
                        env={**os.environ, "NO_COLOR": "1"})
    return Result(cp.returncode, cp.stdout.decode("utf-8", "replace"),
                  cp.stderr.decode("utf-8", "replace"), time.monotonic() - t0)


# -- the lab's state ---------------------------------------------------------------------------

def snapshot(hmc: Any, full: bool) -> dict[str, Any]:
    """What no refused command may change. Cheap: every domain of every frame (all of them,
    not only lpmlab's) with its state, and the number of migration records. Full: also each
    domain's persistent definition, where each partition is placed, the lab's settings and
    the HMC's authorized keys."""
    import libvirt

    doms: dict[str, list[tuple[str, str]]] = {}
    xml: dict[str, dict[str, str]] = {}
    for fp in hmc.frames():
        name = fp.frame.name
        conn = hmc.conn(name).conn
        states = {libvirt.VIR_DOMAIN_RUNNING: "running", libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
                  libvirt.VIR_DOMAIN_PAUSED: "paused", libvirt.VIR_DOMAIN_PMSUSPENDED:
                  "pmsuspended"}
        listed = conn.listAllDomains(0)
        doms[name] = sorted((d.name(), states.get(d.state()[0], str(d.state()[0])))
                            for d in listed)
        if full:
            xml[name] = {d.name(): hashlib.sha256(d.XMLDesc(
                libvirt.VIR_DOMAIN_XML_INACTIVE).encode()).hexdigest() for d in listed}
    import sqlite3

    with contextlib.closing(sqlite3.connect(hmc.console.db_path, timeout=10)) as db:
        records = db.execute("SELECT COUNT(*) FROM migrations").fetchone()[0]
    snap: dict[str, Any] = {"domains": doms, "records": records}
    if full:
        from lpmlab.fabric.lab import SETTINGS_FILE

        def digest(path: Path) -> str | None:
            return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None

        snap.update({
            "xml": xml,
            "placements": {p.name: sorted((x.frame, x.info.state)
                                          for x in hmc.placements(p.name))
                           for p in hmc.topology.partitions},
            "settings": digest(hmc.plan.dir / SETTINGS_FILE),
            "authorized_keys": digest(hmc.console.authorized_keys),
        })
    return snap


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [f"{k}: {before.get(k)!r} -> {after.get(k)!r}"
            for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]


class StateProbe:
    """:func:`snapshot` in a process of its own (it keeps the lab's libvirt connections)."""

    def __init__(self, lab_dir: Path, hmc: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--probe", str(lab_dir), hmc],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def snapshot(self, full: bool = False) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("full\n" if full else "cheap\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the state probe died")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the state probe failed: {answer['error']}")
        return json.loads(json.dumps(answer["snapshot"]))

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _probe_main(lab_dir: str, hmc_name: str) -> None:
    from lpmlab.hmc.system import Hmc

    hmc = Hmc.open(Path(lab_dir), hmc_name)
    for line in sys.stdin:
        try:
            snap = snapshot(hmc, full=line.strip() == "full")
            print(json.dumps({"snapshot": snap}), flush=True)
        except Exception as exc:  # the caller shows it; the probe keeps answering
            print(json.dumps({"error": repr(exc)}), flush=True)


# -- the lab, for the test and the benchmark ---------------------------------------------------

@dataclass
class Fuzzer:
    """A command server and a state probe for the running lab; the lab's names."""

    names: LabNames
    server: CommandServer
    probe: StateProbe
    tallies: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def start(cls, workdir: Path) -> Fuzzer:
        from lpmlab import paths
        from lpmlab.fabric.lab import load_state

        plan, _ = load_state()
        hmc = plan.topology.hmcs[0].name
        server = CommandServer(paths.lab_dir(), hmc, workdir)
        try:
            probe = StateProbe(paths.lab_dir(), hmc)
        except BaseException:
            server.close()
            raise
        return cls(LabNames.from_topology(plan.topology), server, probe)

    def close(self) -> None:
        self.server.close()
        self.probe.close()

    def tally(self, cmd: Command, result: Result, found: list[str], changed: bool) -> None:
        t = self.tallies.setdefault(cmd.name, {
            "runs": 0, "tracebacks": 0, "exit_0": 0, "missing_code": 0, "wrong_exit": 0,
            "hung": 0, "state_changes": 0, "seconds": 0.0, "failures": []})
        t["runs"] += 1
        t["seconds"] += result.seconds
        t["tracebacks"] += "traceback" in found
        t["exit_0"] += "exit 0" in found
        t["missing_code"] += "missing code" in found
        t["wrong_exit"] += any(f.startswith("exit ") and f != "exit 0" for f in found)
        t["hung"] += "hung" in found
        t["state_changes"] += changed
        if (found or changed) and len(t["failures"]) < 20:
            t["failures"].append({"argv": list(cmd.argv), "poison": cmd.poison,
                                  "rc": result.rc, "problems": found, "state_changed": changed,
                                  "stderr": result.stderr[-2000:]})


if __name__ == "__main__" and sys.argv[1:2] == ["--probe"]:
    _probe_main(sys.argv[2], sys.argv[3])
