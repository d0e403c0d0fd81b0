"""What every lpmlab command shares: error rendering, exit codes, logging setup, --json.

Under ``--json`` a command prints one JSON document on stdout and nothing else there; an error
is still told on stderr as text, and stdout gets ``{"error": {"code", "message", "fix",
"exit_code"}}`` (plus ``findings`` when the error has them), with the same exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from lpmlab import codes, log
from lpmlab.errors import LpmlabError, UsageError

# what an HMC listing prints when nothing matches (exit 0); clients look for it
NO_RESULTS = "No results were found."


class HmcArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (HSCL code, exit 2) instead of printing and exiting;
    every command also takes ``--version`` and ``--debug``."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        from lpmlab import __version__

        self.add_argument("--version", action="version",
                          version=f"%(prog)s (lpmlab {__version__})")
        self.add_argument("--debug", action="store_true",
                          help="log everything the controller does on stderr (structured)")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        ns, extra = super().parse_known_args(args, namespace)
        # an empty -m/-t/-p/-i names nothing; taken as "not given" it would list or act
        # on everything (lssyscfg -r sys -m '' listed every frame)
        for action in self._actions:
            if (action.option_strings and action.default != ""
                    and getattr(ns, action.dest, None) == ""):
                opt = action.option_strings[0]
                raise UsageError(f"{self.prog}: {opt} '' is empty: it names nothing",
                                 fix=f"give {opt} a value (see '{self.prog} --help')")
        return ns, extra

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}", fix=f"see '{self.prog} --help'")


_WHOLE = re.compile(r"-?[0-9]+")


def whole_number(text: str) -> int:
    """argparse ``type`` of the HMC's numeric options: ASCII digits (a leading '-' too, so
    that a range check names the negative value). ``int`` would also take ' 2', '+2', '1_0'
    and '٢', and turn them into another partition's ID."""
    if not _WHOLE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (digits 0-9)")
    return int(text)


def run(main: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Call ``main``; turn lpmlab errors into a message on stderr (and, under ``--json``, an
    error object on stdout) and their exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    log.configure(verbose=log.debug_wanted(args))
    try:
        rc = main(args)
    except LpmlabError as exc:
        print(exc.render(), file=sys.stderr)
        if json_wanted(args):
            emit_json({"error": error_record(exc)})
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``| head``): nothing left to say, and no traceback
        sys.stdout = None  # type: ignore[assignment]
        return 0
    return rc or 0


def finish(rc: int) -> NoReturn:
    """End an HMC command: flush what it printed, then exit without the interpreter's
    teardown, which after a migration spends ~0.15 s freeing libvirt's and paramiko's objects
    (benchmarks/lab_bench.py). Nothing is left to do by then: the command's threads that
    work were joined, its records committed, its log lines written."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    os._exit(rc & 0xFF)


def json_wanted(args: Sequence[str]) -> bool:
    """``--json`` on the command line (looked for before parsing: a syntax error is JSON
    too)."""
    return "--json" in args


def error_record(err: LpmlabError) -> dict[str, Any]:
    """An error for --json: its code, message, fix and exit code (and its findings)."""
    out: dict[str, Any] = {"code": err.code, "message": err.message, "fix": err.fix,
                           "exit_code": err.exit_code}
    if err.findings:
        out["findings"] = err.findings
    return out


def emit_json(doc: Any) -> None:
    """One JSON document on stdout (no colour: it is for programs)."""
    json.dump(doc, sys.stdout, indent=2, default=str)
    print()


def add_json_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"{what} as JSON on stdout")


def unknown_partition(name: str) -> LpmlabError:
    """A lab command named a partition the lab does not have."""
    return codes.error("LPM1010", obj=name)


def emit(text: str) -> None:
    """Machine-readable output: stdout only, nothing when empty."""
    if text:
        print(text)


def emit_records(recs: list[dict[str, Any]], fields: str | None = None, header: bool = False,
                 as_json: bool = False) -> None:
    """An HMC listing on stdout: records, ``-F`` values or JSON; ``No results were found.``
    when nothing matches (after ``-F``/``--header`` were checked)."""
    from lpmlab.hmc import records

    if as_json:
        emit_json(recs)
        return
    text = records.render(recs, fields, header)
    emit(text if recs else NO_RESULTS)


def add_listing_options(p: argparse.ArgumentParser, filter_help: str | None = None) -> None:
    """The options every HMC listing takes: -F, --header, --json (and --filter)."""
    if filter_help is not None:
        p.add_argument("--filter", dest="filter", help=filter_help)
    p.add_argument("-F", dest="fields", help="attribute names, e.g. name,state or name:state")
    p.add_argument("--header", action="store_true", help="print the -F names first")
    p.add_argument("--json", action="store_true", help="JSON list of records")


# HSCL8012 for a partition (name, or None and an ID) missing from a managed system; the
# HMC's ``Hmc.not_found`` also says where it is, or that it may be on a frame it cannot see
Missing = Callable[[str | None, str | None], LpmlabError]


def emit_listing(recs: list[dict[str, Any]], args: argparse.Namespace,
                 allowed: Sequence[str] = (), system: str | None = None,
                 missing: Missing | None = None) -> None:
    """A listing's ``--filter`` applied (HSCL8012 for a partition it names that is not on
    ``system``, worded by ``missing`` when given), then its records on stdout."""
    from lpmlab.hmc import records

    if getattr(args, "filter", None):
        flt = records.parse_filter(args.filter, list(allowed))
        if system is not None:
            require_filtered(recs, flt, system, missing)
        recs = records.select(recs, flt)
    emit_records(recs, args.fields, args.header, args.json)


def require_filtered(recs: list[dict[str, Any]], flt: dict[str, list[str]],
                     system: str, missing: Missing | None = None) -> None:
    """HSCL8012, as the HMC answers it, when a ``--filter`` names a partition (by name or
    ID) that the managed system does not have."""
    def error(name: str | None, lpar_id: str | None) -> LpmlabError:
        if missing is not None:
            return missing(name, lpar_id)
        return codes.error("HSCL8012", obj=name if name is not None else f"with ID {lpar_id}",
                           sys=system)

    names = {str(r.get("lpar_name", r.get("name"))) for r in recs}
    ids = {str(r.get("lpar_id")) for r in recs}
    for name in flt.get("lpar_names", []):
        if name not in names:
            raise error(name, None)
    for lpar_id in flt.get("lpar_ids", []):
        if lpar_id not in ids:
            raise error(None, lpar_id)


def missing_on(hmc: Any, system: str) -> Missing:
    """``Hmc.not_found`` for ``system``, as emit_listing's ``missing``."""
    def error(name: str | None, lpar_id: str | None) -> LpmlabError:
        return hmc.not_found(name or "", system, lpar_id=lpar_id)
    return error


def read_secret(prompt: str) -> str:
    """A password typed at the terminal on stdin, not echoed; a UsageError when stdin is no
    terminal (say it with the command's option instead). Works on the caller's terminal
    also where it is not this process's controlling terminal (the HMC's command server)."""
    import os
    import termios

    if not os.isatty(0):
        raise UsageError("a password is needed and there is no terminal to ask it on",
                         fix="give it with --passwd")
    sys.stderr.write(prompt)
    sys.stderr.flush()
    old = termios.tcgetattr(0)
    new = termios.tcgetattr(0)
    new[3] &= ~termios.ECHO
    try:
        termios.tcsetattr(0, termios.TCSADRAIN, new)
        line = sys.stdin.readline()
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, old)
        sys.stderr.write("\n")
    if not line:
        raise UsageError("no password given", fix="give it with --passwd")
    return line.rstrip("\n")
