"""Errors the user can act on: each names the file (when there is one) and the problem."""

from __future__ import annotations

from pathlib import Path


class BrainVAEError(Exception):
    """Base class for every error this package raises on purpose."""


class DataFileError(BrainVAEError, ValueError):
    """A file that cannot be used as it is: names the file and says what is wrong."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = Path(path) if path is not None else None
        self.problem = problem
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}")


class DatasetError(BrainVAEError, ValueError):
    """A population that cannot be assembled (mismatched CSV, shapes, empty folder...)."""


class MemoryBudgetError(BrainVAEError, MemoryError):
    """A volume or dataset that would exceed the configured memory budget."""


class DatasetFileError(DataFileError, DatasetError):
    """A damaged file inside a prepared dataset (truncated images.npy, metadata.csv without
    split): names the file like a DataFileError and is a DatasetError, so code that tries
    several dataset folders (a run's recorded locations) treats it as a dataset that does
    not open."""
