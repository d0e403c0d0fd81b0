"""What the REST API's tests share about pypowervm (the real client, run unchanged)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def sessions_logged_off() -> Iterator[None]:
    """pypowervm logs off in its Session's __del__: collect the test's sessions now, not in
    a garbage collection that may run inside some later import (CPython 3.11.7's AST
    constructor fails with "recursion depth mismatch" when a finalizer runs during it)."""
    yield
    gc.collect()
