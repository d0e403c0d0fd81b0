"""Files that land whole (lpmlab.atomic.replace_file)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from lpmlab.atomic import replace_file


def test_a_key_gets_its_mode_whatever_the_umask_and_an_old_file_had(tmp_path: Path) -> None:
    key = tmp_path / "private" / "serverkey.pem"
    key.parent.mkdir()
    key.write_text("old")
    key.chmod(0o644)
    old = os.umask(0)
    try:
        replace_file(key, b"new", 0o600)
    finally:
        os.umask(old)
    assert key.read_bytes() == b"new"
    assert key.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in key.parent.iterdir()) == ["serverkey.pem"]


def test_a_failed_write_leaves_the_old_content_and_no_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "settings.json"
    f.write_text('{"a": 1}')

    def refuse(*_a: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        replace_file(f, '{"a": 2}')
    assert f.read_text() == '{"a": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]


def test_readers_never_see_half_a_file_while_two_writers_replace_it(tmp_path: Path) -> None:
    f = tmp_path / "record.json"
    bodies = [b"a" * 300_000, b"b" * 200_000]
    replace_file(f, bodies[0])
    torn: list[int] = []
    stop = threading.Event()

    def write(body: bytes) -> None:
        for _ in range(40):
            replace_file(f, body)

    def read() -> None:
        while not stop.is_set():
            data = f.read_bytes()
            if data not in bodies:
                torn.append(len(data))

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(b,)) for b in bodies]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    reader.join()
    assert torn == []
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]
