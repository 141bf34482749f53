"""Paths the docks share: the per-user cache folders and FileEdit values read as paths."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def user_cache_dir(kind: str) -> Path:
    """$XDG_CACHE_HOME/brainvae/<kind> (else ~/.cache/...): prepared datasets, runs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "brainvae" / kind


def optional_path(value: Any) -> Path | None:
    """A FileEdit's value as a path, or None when empty (magicgui gives Path('.') or '')."""
    if value in (None, "") or str(value) in ("", "."):
        return None
    return Path(value)
