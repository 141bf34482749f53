"""Result folders (receptive and projective fields): refused when they exist without
overwrite, then written all at once through `brainvae.atomic`."""

from __future__ import annotations

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
    """Yield an empty hidden folder beside `out`; on success it replaces `out` whole.

    On an exception the hidden folder is removed and `out` is left as it was.
    """
    from brainvae.atomic import atomic_folder, recover

    out = Path(out)
    recover(out)  # an old folder a killed swap moved aside is back before the check
    check_output(out, overwrite)
    with atomic_folder(out) as folder:
        yield folder
