"""Errors the user can act on: each names the file (when there is one) and the problem."""

from __future__ import annotations

import errno
import os
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


class ModelError(BrainVAEError, ValueError):
    """A model configuration or input that does not fit: says what was expected and what came."""


class ReceptiveFieldError(BrainVAEError, ValueError):
    """Inputs a receptive field cannot be computed from: ROIs, weights, images, options."""


class ProjectiveFieldError(BrainVAEError, ValueError):
    """A sweep that cannot run as asked: names the setting and what is wrong."""


# errno values that mean "no room to write": the disk is full (ENOSPC), the user's quota is
# spent (EDQUOT), or the file hit a size limit such as ulimit -f (EFBIG).
NO_ROOM_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if code
)


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the filesystem holding `path` (its nearest existing folder), or None."""
    import shutil

    place = Path(path)
    while not place.exists() and place != place.parent:
        place = place.parent
    try:
        return shutil.disk_usage(place).free
    except OSError:
        return None


def readable_bytes(count: int) -> str:
    """A byte count as a person reads it (1.4 GB, 512 KB)."""
    size = float(count)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


class PopulationAnalysisError(BrainVAEError, ValueError):
    """A population question that cannot be asked of these scans and this table as they are."""


class DiskFullError(BrainVAEError, OSError):
    """No room to write a file (disk full, quota spent, file-size limit): names the file,
    the bytes free there and, when known, the bytes needed. An OSError too, so code that
    already handles write failures keeps working."""

    def __init__(
        self,
        path: str | Path,
        *,
        needed: int | None = None,
        free: int | None = None,
        code: int = errno.ENOSPC,
    ):
        self.path = Path(path)
        self.needed = needed
        self.free = free_bytes(self.path) if free is None else free
        self.code = code
        OSError.__init__(self, code, os.strerror(code), str(self.path))

    def __str__(self) -> str:
        if self.needed is not None:
            problem = f"needs about {readable_bytes(self.needed)} ({self.needed} bytes)"
        elif self.code == errno.EFBIG:
            problem = "could not be written: file too large for this filesystem or process limit"
        else:
            problem = "could not be written: no space left on the disk"
        free = "" if self.free is None else f", {readable_bytes(self.free)} free there"
        advice = "free some space or choose another folder"
        if self.code == errno.EFBIG and self.needed is None:
            advice = "raise the file-size limit (ulimit -f) or choose another filesystem"
        return f"{self.path}: {problem}{free}; {advice}"


def is_no_room(error: BaseException) -> bool:
    """Whether an error means there was no room to write (ENOSPC, EDQUOT, EFBIG)."""
    return isinstance(error, OSError) and error.errno in NO_ROOM_ERRNOS


def as_disk_full(error: OSError, path: str | Path | None = None) -> DiskFullError:
    """The DiskFullError for a no-room OSError, naming `path` (else the error's own file)."""
    if isinstance(error, DiskFullError):
        return error
    named = path if path is not None else (error.filename or "(unknown file)")
    return DiskFullError(named, code=error.errno or errno.ENOSPC)
