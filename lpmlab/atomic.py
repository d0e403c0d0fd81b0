"""Files that land whole: a reader (another command, a lab starting meanwhile, a crash's
survivor) sees the old content or the new one, never half of either."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def replace_file(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write ``data`` to a private file beside ``path`` with ``mode`` from the start (a key is
    never readable by others, not even for a moment), then rename it over ``path``. Each
    writer has its own temporary name, so two processes writing one file do not mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
