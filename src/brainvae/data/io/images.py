"""One reader for every supported image file, chosen by the file's suffix."""

from __future__ import annotations

from pathlib import Path

from brainvae.data.io.arrays import NPY_SUFFIXES, TIF_SUFFIXES, read_npy, read_tif
from brainvae.data.io.nifti import NIFTI_SUFFIXES, Volume, is_nifti_path, read_nifti
from brainvae.errors import DataFileError

IMAGE_SUFFIXES: tuple[str, ...] = (*NIFTI_SUFFIXES, *NPY_SUFFIXES, *TIF_SUFFIXES)


def is_image_path(path: str | Path) -> bool:
    """True for a name this package can read as an image (by suffix, case-insensitive)."""
    name = str(path).lower()
    return any(name.endswith(suffix) for suffix in IMAGE_SUFFIXES)


def image_stem(path: str | Path) -> str:
    """File name without its image suffix ("sub-01_ses-2.nii.gz" -> "sub-01_ses-2")."""
    name = Path(path).name
    lower = name.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def read_image(
    path: str | Path, max_bytes: int | None = None, volume_index: int | None = None
) -> Volume:
    """Read a NIfTI, .npy or .tif file as a display-orientation Volume.

    ``volume_index`` picks one volume of a 4D NIfTI file and reads only that one (the
    other formats hold 2D/3D arrays only and ignore it).
    """
    path = Path(path)
    lower = path.name.lower()
    if is_nifti_path(path):
        return read_nifti(path, max_bytes=max_bytes, volume_index=volume_index)
    if lower.endswith(NPY_SUFFIXES):
        return read_npy(path, max_bytes=max_bytes)
    if lower.endswith(TIF_SUFFIXES):
        return read_tif(path, max_bytes=max_bytes)
    raise DataFileError(
        path, f"unsupported image type; expected one of {', '.join(IMAGE_SUFFIXES)}"
    )
