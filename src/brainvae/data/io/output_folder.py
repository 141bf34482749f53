"""Result folders written all at once: a hidden temporary folder renamed into place at the end.

An interrupted or failed write leaves nothing half-written where the user looks: either the
old folder (untouched) or the complete new one. Used by every command and dock that writes a
folder of results (receptive and projective fields).

Single files go the same way (`atomic_file`), and every write here turns "no room to
write" (disk full, quota, file-size limit) into a DiskFullError naming the file; the
temporary file or folder is removed whatever went wrong.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from brainvae.errors import DataFileError, as_disk_full, is_no_room


def check_output(out: Path, overwrite: bool) -> None:
    """Refuse an existing, non-empty output without overwrite (check before computing)."""
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise DataFileError(out, "already exists: choose another --out or pass --overwrite")


@contextmanager
def atomic_output_folder(out: str | Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty temporary folder beside `out`; on success it replaces `out` whole.

    On an exception the temporary folder is removed and `out` is left as it was.
    """
    out = Path(out)
    check_output(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        try:
            yield temporary
        except OSError as error:
            if is_no_room(error):
                raise as_disk_full(error, _final_name(error, temporary, out)) from error
            raise
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            if out.is_dir():
                out.replace(old)
            else:
                out.unlink()
            temporary.replace(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            temporary.replace(out)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _final_name(error: OSError, temporary: Path, out: Path) -> Path:
    """Where the file that could not be written would have been: inside `out`, not the
    temporary folder (which is removed)."""
    if error.filename:
        try:
            return out / Path(os.fsdecode(error.filename)).relative_to(temporary)
        except ValueError:
            pass
    return out


@contextmanager
def no_room_names(path: str | Path) -> Iterator[None]:
    """Re-raise a no-room OSError inside the block as a DiskFullError naming `path`."""
    try:
        yield
    except OSError as error:
        if is_no_room(error):
            raise as_disk_full(error, path) from error
        raise


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a hidden temporary path beside `path`; on success it replaces `path`.

    On any exception the temporary file is removed and `path` is left as it was; no room to
    write becomes a DiskFullError naming `path`.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with no_room_names(path):
            yield temporary
            os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
