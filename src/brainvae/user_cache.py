"""The per-user cache folder: the precision probe's answer, and the datasets and runs the docks
make unless the user picks a folder. One place decides where it is, for every part."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "BRAINVAE_CACHE_DIR"
"""Environment variable naming the cache folder (tests point it at a temporary folder)."""


def cache_dir() -> Path:
    """$BRAINVAE_CACHE_DIR, else $XDG_CACHE_HOME/brainvae, else ~/.cache/brainvae."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "brainvae"


def user_cache_dir(kind: str) -> Path:
    """A part of the cache folder: "datasets" (prepared by the docks), "runs" (trained there)."""
    return cache_dir() / kind
