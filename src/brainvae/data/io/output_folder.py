"""Result folders written all at once: a hidden temporary folder renamed into place at the end.

An interrupted or failed write leaves nothing half-written where the user looks: either the
old folder (untouched) or the complete new one. Used by every command and dock that writes a
folder of results (receptive and projective fields).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from brainvae.errors import DataFileError


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
        yield temporary
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
