"""The text filters the HMC restricted shell lets a pipeline feed (``| grep vio | tail -1``).

They are the system's own GNU programs, run as the HMC user, but only as filters: each reads
the pipe and writes the next, with the options listed here and no file operands, so none can
read, write or run anything (sed runs with ``--sandbox``: no ``e``, ``r`` or ``w`` commands).
An option that is not listed is refused, not guessed at.

Standard library only (the login shell runs outside the lab's venv).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from lpmlab.cli.shellsyntax import SHELL, ShellRefusal

FILTER_PATH = "/usr/bin:/bin"


@dataclass(frozen=True)
class FilterSpec:
    """A filter's allowed options: short flags with and without a value, long options
    (``name`` or ``name=`` when it takes a value), and how many operands it takes that are
    not files (a grep pattern, a sed script, tr's sets)."""

    name: str
    flags: str = ""
    valued: str = ""
    long: tuple[str, ...] = ()
    operands: int = 0
    # an option that supplies the operand instead (grep -e, sed -e)
    operand_options: str = ""
    numeric_shorthand: bool = False  # head -5, tail -1
    prefix: tuple[str, ...] = ()  # always passed first

    def takes_value(self, opt: str) -> bool:
        return opt in self.valued


FILTERS: dict[str, FilterSpec] = {f.name: f for f in (
    FilterSpec("grep", flags="iyvcwxEFGPonqshHbaTUzZ", valued="emABC",
               long=("ignore-case", "no-ignore-case", "invert-match", "count", "word-regexp",
                     "line-regexp", "extended-regexp", "fixed-strings", "basic-regexp",
                     "perl-regexp", "only-matching", "line-number", "quiet", "silent",
                     "no-messages", "byte-offset", "text", "null-data", "color", "colour",
                     "color=", "colour=", "regexp=", "max-count=", "after-context=",
                     "before-context=", "context=", "label="),
               operands=1, operand_options="e"),
    FilterSpec("sed", flags="nErsuz", valued="el", long=(
        "quiet", "silent", "regexp-extended", "separate", "unbuffered", "null-data", "posix",
        "expression=", "line-length="), operands=1, operand_options="e",
        prefix=("--sandbox",)),
    FilterSpec("cut", flags="snz", valued="bcdf", long=(
        "bytes=", "characters=", "delimiter=", "fields=", "only-delimited", "complement",
        "output-delimiter=", "zero-terminated")),
    FilterSpec("head", flags="qvz", valued="nc", long=("lines=", "bytes=", "quiet", "silent",
                                                       "verbose", "zero-terminated"),
               numeric_shorthand=True),
    FilterSpec("tail", flags="qvz", valued="nc", long=("lines=", "bytes=", "quiet",
                                                         "silent", "verbose",
                                                         "zero-terminated"),
               numeric_shorthand=True),
    FilterSpec("sort", flags="bdfgiMhnRrVsuz", valued="ktS", long=(
        "ignore-leading-blanks", "dictionary-order", "ignore-case", "general-numeric-sort",
        "ignore-nonprinting", "month-sort", "human-numeric-sort", "numeric-sort",
        "random-sort", "reverse", "version-sort", "stable", "unique", "zero-terminated",
        "key=", "field-separator=", "buffer-size=", "sort=")),
    FilterSpec("wc", flags="clmwL", long=("bytes", "chars", "lines", "words",
                                          "max-line-length")),
    FilterSpec("uniq", flags="cdDuiz", valued="fsw", long=(
        "count", "repeated", "unique", "ignore-case", "zero-terminated", "skip-fields=",
        "skip-chars=", "check-chars=")),
    FilterSpec("tr", flags="cCdst", long=("complement", "delete", "squeeze-repeats",
                                          "truncate-set1"), operands=2),
)}


def is_filter(name: str) -> bool:
    return name in FILTERS


def refuse(name: str, what: str) -> ShellRefusal:
    return ShellRefusal(f"{SHELL}: {name}: restricted: {what}")


def checked_argv(argv: list[str]) -> list[str]:
    """The filter's command line to run (its program's absolute path first), or a refusal
    naming the option or operand that is not allowed."""
    name, args = argv[0], argv[1:]
    spec = FILTERS[name]
    operands: list[str] = []
    supplied = False  # an -e style option gave the operand
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            operands.extend(args[i + 1:])
            break
        if a.startswith("--"):
            opt, eq, _value = a[2:].partition("=")
            if opt in spec.long and not eq:
                pass
            elif f"{opt}=" in spec.long:
                if not eq:
                    i += 1
                    if i >= len(args):
                        raise refuse(name, f"option --{opt} needs a value")
                supplied = supplied or opt in ("regexp", "expression")
            else:
                raise refuse(name, f"option --{opt} is not allowed")
        elif a.startswith("-") and a != "-":
            if spec.numeric_shorthand and a[1:].isdigit():
                i += 1
                continue
            j = 1
            while j < len(a):
                c = a[j]
                if spec.takes_value(c):
                    if j + 1 == len(a):
                        i += 1
                        if i >= len(args):
                            raise refuse(name, f"option -{c} needs a value")
                    supplied = supplied or c in spec.operand_options
                    break
                if c not in spec.flags:
                    raise refuse(name, f"option -{c} is not allowed")
                j += 1
        else:
            operands.append(a)
        i += 1
    allowed = 0 if supplied else spec.operands
    if len(operands) > allowed:
        extra = operands[allowed]
        raise refuse(name, f"cannot read files ('{extra}'): it filters its input only")
    path = shutil.which(name, path=FILTER_PATH)
    if path is None:
        raise ShellRefusal(f"{SHELL}: {name}: command not found", 127)
    return [path, *spec.prefix, *args]
