"""Writing a display-oriented array back to NIfTI: in display orientation, or, given the
source file's FileLayout, in that file's own voxel order, shape, affine, qform/sform codes
and (where lossless) voxel type; written atomically and read back before it replaces a file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from brainvae.data.io.nifti import DISPLAY_AXCODES, FileLayout, is_nifti_path


def _writable_array(arr: np.ndarray, path: Path) -> np.ndarray:
    """Cast to a dtype NIfTI-1 stores (float64 -> float32, bool -> uint8, int64 -> int32)."""
    from brainvae.errors import DataFileError

    if arr.dtype.kind == "b":
        return arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    if arr.dtype.kind in "iu" and arr.dtype.itemsize == 8:
        info = np.iinfo(np.int32)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise DataFileError(path, "integer values do not fit in int32")
        return arr.astype(np.int32)
    if arr.dtype.kind in "iu":
        return arr.astype(arr.dtype.newbyteorder("="), copy=False)
    raise DataFileError(path, f"cannot write voxels of type {arr.dtype} as NIfTI")


def _to_file_order(arr: np.ndarray, layout: FileLayout, path: Path) -> np.ndarray:
    """Undo the display reorientation: the source file's voxel order and (2D or 3D+) shape."""
    from nibabel.orientations import apply_orientation, axcodes2ornt, ornt_transform

    from brainvae.errors import DataFileError

    transform = ornt_transform(axcodes2ornt(DISPLAY_AXCODES), axcodes2ornt(layout.axcodes))
    arr = apply_orientation(arr, transform)
    expected = (tuple(layout.shape) + (1, 1, 1))[:3]
    if tuple(arr.shape[:3]) != expected:
        raise DataFileError(
            path, f"data of shape {arr.shape[:3]} does not fit the source grid {expected}"
        )
    if len(layout.shape) == 2 and arr.ndim == 3:
        arr = arr[:, :, 0]
    return arr


def _fits_integer(arr: np.ndarray, dtype: np.dtype) -> bool:
    """True when every value is a finite whole number inside the integer type's range."""
    if arr.size == 0:
        return True
    if arr.dtype.kind == "f" and not (np.all(np.isfinite(arr)) and np.all(arr == np.rint(arr))):
        return False
    info = np.iinfo(dtype)
    return bool(arr.min() >= info.min and arr.max() <= info.max)


def _file_array(arr: np.ndarray, layout: FileLayout, path: Path) -> tuple[np.ndarray, float, float]:
    """Voxels in the layout's on-disk type when lossless (raw values, slope, inter), else as usual."""
    target = np.dtype(layout.dtype).newbyteorder("=") if layout.dtype else None
    scaled = layout.slope != 1.0 or layout.inter != 0.0
    if target is not None and target.kind in "iu" and arr.dtype.kind in "iuf":
        if scaled and layout.slope != 0.0 and arr.dtype.kind == "f":
            raw = np.rint((arr.astype(np.float64) - layout.inter) / layout.slope)
            if _fits_integer(raw, target):
                return raw.astype(target), layout.slope, layout.inter
        elif not scaled and _fits_integer(arr, target):
            return arr.astype(target), 1.0, 0.0
    if target is not None and target == np.float64 and arr.dtype.kind == "f":
        return arr.astype(np.float64), 1.0, 0.0
    return _writable_array(arr, path), 1.0, 0.0


def _nifti_image(arr: np.ndarray, affine: np.ndarray, layout: FileLayout | None, description: str):
    """A Nifti1Image with the layout's header codes and units (codes 1, mm and s without one)."""
    import nibabel as nib

    img = nib.Nifti1Image(arr, affine)
    qform_code, sform_code = (1, 1) if layout is None else (layout.qform_code, layout.sform_code)
    img.set_qform(affine, code=qform_code)
    img.set_sform(affine, code=sform_code)
    img.header.set_xyzt_units(*(("mm", "sec") if layout is None else layout.xyzt_units))
    if layout is not None and arr.ndim == 4 and len(layout.zooms) >= 4:
        img.header.set_zooms((*img.header.get_zooms()[:3], layout.zooms[3]))
    if description:
        img.header["descrip"] = description.encode("latin-1", "replace")[:79]
    return img


def _reads_back(tmp: Path, values: np.ndarray) -> bool:
    """True when the saved scaled file reads back (as read_nifti does) to exactly these values."""
    import nibabel as nib

    again = np.asarray(nib.load(str(tmp), mmap=False).get_fdata(dtype=np.float32))
    return bool(np.array_equal(again, values.astype(np.float32)))


def write_nifti(
    path: str | Path,
    data: np.ndarray,
    affine: np.ndarray | None = None,
    *,
    squeezed_axes: tuple[int, ...] = (),
    is_4d: bool = False,
    description: str = "",
    original: FileLayout | None = None,
) -> Path:
    """Write display-orientation data with its affine; inverse of read_nifti (atomic).

    With ``original`` (see FileLayout) the file gets the source file's voxel order,
    affine, header codes and, where lossless, voxel type; ``affine`` is then unused.
    """
    import nibabel as nib

    from brainvae.errors import DataFileError, as_disk_full, is_no_room

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
    slope, inter = 1.0, 0.0
    if original is not None:
        values = _to_file_order(arr, original, path)
        arr, slope, inter = _file_array(values, original, path)
        affine = original.affine
    else:
        arr = _writable_array(arr, path)
    affine = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise DataFileError(path, f"affine must be a finite 4x4 matrix, got shape {affine.shape}")
    img = _nifti_image(arr, affine, original, description)
    suffix = ".nii.gz" if str(path).lower().endswith(".nii.gz") else ".nii"
    tmp = path.with_name(f".{path.name}.partial{suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if slope != 1.0 or inter != 0.0:
            img.header.set_slope_inter(slope, inter)
        nib.save(img, str(tmp))
        if (slope != 1.0 or inter != 0.0) and not _reads_back(tmp, values):
            plain = _writable_array(values, path)
            nib.save(_nifti_image(plain, affine, original, description), str(tmp))
        os.replace(tmp, path)
    except OSError as err:
        if is_no_room(err):
            raise as_disk_full(err, path) from err
        raise DataFileError(path, f"could not write ({type(err).__name__}: {err})") from err
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
