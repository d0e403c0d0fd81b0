"""Installing files in a running partition over its RMC channel.

The guest's dropbear has no SFTP subsystem, so the bytes travel base64-encoded inside shell
commands, a chunk per command, all over one connection.
"""

from __future__ import annotations

import base64
import shlex
from pathlib import PurePosixPath
from typing import Any

CHUNK = 48 * 1024  # bytes per command: well under the command length dropbear accepts


def push_files(channel: Any, files: dict[str, tuple[str | bytes, int]]) -> None:
    """Write each ``path: (content, mode)`` in the partition, parents created, replacing
    what was there."""
    for path, (content, mode) in files.items():
        data = content.encode() if isinstance(content, str) else content
        q = shlex.quote(path)
        channel.run(f"mkdir -p {shlex.quote(str(PurePosixPath(path).parent))} && : > {q}",
                    check=True)
        for i in range(0, len(data), CHUNK):
            b64 = base64.b64encode(data[i:i + CHUNK]).decode()
            channel.run(f"echo {b64} | base64 -d >> {q}", check=True)
        channel.run(f"chmod {mode:o} {q}", check=True)
