"""NIfTI volumes in one display orientation, with the affine kept for a lossless round trip.

Every volume is reoriented (by axis permutation and flips only, no resampling) so
that array axes run (Inferior, Posterior, Right): axis 0 walks axial slices from the
top of the head down, rows put anterior at the top, columns put the subject's right
on the right (neurological convention). A single coronal, axial or sagittal slice
stored as a 3D file with one voxel of thickness squeezes to a 2D image that is
displayed upright. The affine stored with the data maps these array indices to
world millimetres, so writing (data, affine) and reading again is exact.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DISPLAY_AXCODES: tuple[str, str, str] = ("I", "P", "R")
AXIS_NAMES = {"I": "inferior", "P": "posterior", "R": "right"}
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti_path(path: str | Path) -> bool:
    """True for names ending in .nii or .nii.gz (not a bare .gz)."""
    name = str(path).lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


@dataclass
class Volume:
    """An image in display orientation plus what is needed to write it back.

    data: spatial axes in display order (singleton spatial axes squeezed when asked),
        preceded by a "volume" axis for 4D files.
    affine: 4x4, maps the unsqueezed 3D display indices (i, j, k) to world mm.
    squeezed_axes: which of the three display axes were dropped (length-1).
    """

    data: np.ndarray
    affine: np.ndarray
    zooms: tuple[float, ...]
    axis_names: tuple[str, ...]
    squeezed_axes: tuple[int, ...] = ()
    source: Path | None = None
    original_affine: np.ndarray | None = None
    original_axcodes: tuple[str, ...] | None = None
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def is_4d(self) -> bool:
        return bool(self.axis_names) and self.axis_names[0] == "volume"

    @property
    def spatial_ndim(self) -> int:
        return self.data.ndim - (1 if self.is_4d else 0)


def _header_summary(header) -> dict[str, Any]:
    """JSON-friendly copy of the header fields a user looks at (the full header is bytes)."""
    out: dict[str, Any] = {}
    for key in ("descrip", "intent_name", "aux_file", "db_name"):
        try:
            value = header[key]
            value = value.item() if hasattr(value, "item") else value
            out[key] = value.decode("latin-1").strip("\x00 ") if isinstance(value, bytes) else str(value)
        except (KeyError, ValueError):
            pass
    try:
        out["xyzt_units"] = list(header.get_xyzt_units())
        out["datatype"] = str(header.get_data_dtype())
        out["qform_code"] = int(header["qform_code"])
        out["sform_code"] = int(header["sform_code"])
    except Exception:  # noqa: BLE001 - a partial summary is still useful
        pass
    return out


def _load_image(path: Path, max_bytes: int | None):
    import nibabel as nib

    from brainvae.errors import DataFileError, MemoryBudgetError

    if not path.exists():
        raise DataFileError(path, "file does not exist")
    if not is_nifti_path(path):
        raise DataFileError(path, "not a NIfTI file name (expected .nii or .nii.gz)")
    try:
        img = nib.load(str(path))
    except (nib.filebasedimages.ImageFileError, zlib.error, EOFError, OSError, ValueError) as err:
        raise DataFileError(
            path, f"not a readable NIfTI file ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise DataFileError(path, f"not a NIfTI image (nibabel read it as {type(img).__name__})")
    shape = img.shape
    if len(shape) < 2 or len(shape) > 4:
        raise DataFileError(path, f"has {len(shape)} dimensions {shape}; expected 2, 3 or 4")
    nbytes = int(np.prod(shape)) * 4
    if max_bytes is not None and nbytes > max_bytes:
        raise MemoryBudgetError(
            f"{path}: volume of shape {shape} needs {nbytes / 2**20:.0f} MiB as float32, "
            f"over the memory budget of {max_bytes / 2**20:.0f} MiB"
        )
    return img


def _read_array(img, path: Path) -> np.ndarray:
    """Voxel values: integers stay integers when unscaled (labels), else float32."""
    from brainvae.errors import DataFileError

    header = img.header
    slope, inter = header.get_slope_inter()
    unscaled = slope in (None, 1.0) and inter in (None, 0.0)
    try:
        if unscaled and np.issubdtype(header.get_data_dtype(), np.integer):
            return np.asarray(img.dataobj.get_unscaled())
        return np.asarray(img.get_fdata(dtype=np.float32))
    except (zlib.error, EOFError, OSError, ValueError) as err:
        raise DataFileError(
            path, f"truncated or corrupt voxel data ({type(err).__name__}: {err})"
        ) from err


def read_nifti(
    path: str | Path, *, squeeze: bool = True, max_bytes: int | None = None
) -> Volume:
    """Read a .nii/.nii.gz file into display orientation; errors name the file and problem."""
    import nibabel as nib
    from nibabel.orientations import axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

    path = Path(path)
    img = _load_image(path, max_bytes)
    data = _read_array(img, path)
    affine = np.asarray(img.affine, dtype=np.float64)
    if data.ndim == 2:  # a bare 2D NIfTI: treat as (i, j, 1)
        data = data[:, :, None]
    original_axcodes = tuple(str(c) for c in nib.aff2axcodes(affine))
    ornt = io_orientation(affine)
    transform = ornt_transform(ornt, axcodes2ornt(DISPLAY_AXCODES))
    shape3 = data.shape[:3]
    data = nib.orientations.apply_orientation(data, transform)
    display_affine = affine @ inv_ornt_aff(transform, shape3)
    names = [AXIS_NAMES[c] for c in DISPLAY_AXCODES]
    zooms = [float(z) for z in np.sqrt((display_affine[:3, :3] ** 2).sum(axis=0))]
    if data.ndim == 4:
        data = np.moveaxis(data, 3, 0)
    squeezed: list[int] = []
    if squeeze:
        offset = 1 if data.ndim == 4 else 0
        squeezed = [a for a in range(3) if data.shape[a + offset] == 1]
        if len(squeezed) == 3:
            squeezed = squeezed[:1]
        if squeezed:
            data = np.squeeze(data, axis=tuple(a + offset for a in squeezed))
            names = [n for a, n in enumerate(names) if a not in squeezed]
            zooms = [z for a, z in enumerate(zooms) if a not in squeezed]
    if data.ndim == len(names) + 1:
        names = ["volume", *names]
    return Volume(
        data=np.ascontiguousarray(data),
        affine=display_affine,
        zooms=tuple(zooms),
        axis_names=tuple(names),
        squeezed_axes=tuple(squeezed),
        source=path,
        original_affine=affine,
        original_axcodes=original_axcodes,
        header=_header_summary(img.header),
    )


def write_nifti(
    path: str | Path,
    data: np.ndarray,
    affine: np.ndarray | None = None,
    *,
    squeezed_axes: tuple[int, ...] = (),
    is_4d: bool = False,
    description: str = "",
) -> Path:
    """Write display-orientation data with its affine; inverse of read_nifti (atomic)."""
    import os

    import nibabel as nib

    from brainvae.errors import DataFileError

    path = Path(path)
    if not is_nifti_path(path):
        raise DataFileError(path, "output name must end in .nii or .nii.gz")
    arr = np.asarray(data)
    if is_4d:
        arr = np.moveaxis(arr, 0, -1)
    for axis in sorted(squeezed_axes):
        arr = np.expand_dims(arr, axis)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim not in (3, 4):
        raise DataFileError(path, f"cannot write an array of shape {np.shape(data)} as NIfTI")
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype == np.int64:
        info = np.iinfo(np.int32)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise DataFileError(path, "integer values do not fit in int32")
        arr = arr.astype(np.int32)
    affine = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
    img = nib.Nifti1Image(arr, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    if description:
        img.header["descrip"] = description.encode("latin-1", "replace")[:79]
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".nii.gz" if str(path).lower().endswith(".nii.gz") else ".nii"
    tmp = path.with_name(f".{path.name}.partial{suffix}")
    try:
        nib.save(img, str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
