"""FileEdit values read as paths (the per-user cache folders are brainvae.data.dataset_cache's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def optional_path(value: Any) -> Path | None:
    """A FileEdit's value as a path, or None when empty (magicgui gives Path('.') or '')."""
    if value in (None, "") or str(value) in ("", "."):
        return None
    return Path(value)
