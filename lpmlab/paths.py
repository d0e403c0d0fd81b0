"""Where lpmlab keeps its state, caches and run artifacts on the host."""

from __future__ import annotations

import os
from pathlib import Path


def state_root() -> Path:
    """Root of lab state (one lab per host); ``LPMLAB_HOME`` overrides it."""
    return Path(os.environ.get("LPMLAB_HOME", "/var/lib/lpmlab"))


def lab_dir() -> Path:
    return state_root() / "lab"


def cache_dir() -> Path:
    """Built images, cached by content; ``LPMLAB_CACHE`` overrides it."""
    return Path(os.environ.get("LPMLAB_CACHE", "/var/cache/lpmlab"))


def repo_root() -> Path:
    """The source checkout (playbooks/ and images/ live beside the package)."""
    return Path(__file__).resolve().parent.parent


def playbooks_dir() -> Path:
    return repo_root() / "playbooks"


def images_src_dir() -> Path:
    return repo_root() / "images"
