"""What every lpmlab command shares: error rendering, exit codes, logging setup."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from lpmlab import log
from lpmlab.errors import LpmlabError, UsageError


class HmcArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (HSCL code, exit 2) instead of printing and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}", fix=f"see '{self.prog} --help'")


def run(main: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Call ``main``; turn lpmlab errors into a message on stderr and their exit code."""
    log.configure()
    try:
        rc = main(list(sys.argv[1:] if argv is None else argv))
    except LpmlabError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``| head``): nothing left to say, and no traceback
        sys.stdout = None  # type: ignore[assignment]
        return 0
    return rc or 0


def unknown_partition(name: str) -> UsageError:
    """A command named a partition the lab does not have."""
    return UsageError(f"no partition {name} in the lab", code="HSCL8012",
                      fix="list them with 'lssyscfg -r lpar -m sys1'")


def emit(text: str) -> None:
    """Machine-readable output: stdout only, nothing when empty."""
    if text:
        print(text)
