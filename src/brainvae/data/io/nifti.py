"""NIfTI volumes in one display orientation, with the affine kept for a lossless round trip.

Every volume is reoriented (by axis permutation and flips only, no resampling) so
that array axes run (Inferior, Posterior, Right): axis 0 walks axial slices from the
top of the head down, rows put anterior at the top, columns put the subject's right
on the right (neurological convention). A single coronal, axial or sagittal slice
stored as a 3D file with one voxel of thickness squeezes to a 2D image that is
displayed upright. The affine stored with the data maps these array indices to
world millimetres, so writing (data, affine) and reading again is exact. Given the
source file's `FileLayout` (`volume_layout`), `write_nifti` instead gives back that
file's own voxel order, shape, affine, qform/sform codes and (where lossless) voxel type
(brainvae.data.io.nifti_writing).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DISPLAY_AXCODES: tuple[str, str, str] = ("I", "P", "R")
AXIS_NAMES = {"I": "inferior", "P": "posterior", "R": "right"}
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def display_affine(zooms: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """The affine of a display-orientation array with no other geometry (voxel 0 at the origin).

    Array axes (inferior, posterior, right) run along world -z, -y, +x, so read_nifti
    gives such a file back unchanged.
    """
    affine = np.zeros((4, 4))
    affine[2, 0], affine[1, 1], affine[0, 2] = -zooms[0], -zooms[1], zooms[2]
    affine[3, 3] = 1.0
    return affine


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


@dataclass(frozen=True)
class FileLayout:
    """How a source file stored its voxels: order, affine, header codes and voxel type.

    Given to write_nifti, display-orientation data goes back to this voxel order and
    affine, keeps the qform/sform codes and units, and keeps ``dtype`` (with ``slope``
    and ``inter`` for scaled integers) when the values fit it without loss.
    """

    affine: np.ndarray
    axcodes: tuple[str, ...]
    shape: tuple[int, ...]
    qform_code: int = 1
    sform_code: int = 1
    dtype: str | None = None
    slope: float = 1.0
    inter: float = 0.0
    xyzt_units: tuple[str, str] = ("mm", "sec")
    zooms: tuple[float, ...] = ()


def file_layout(affine: Any, axcodes: Any, header: dict[str, Any] | None) -> FileLayout | None:
    """The FileLayout of a read file from its affine, axcodes and header summary (None if unusable)."""
    header = header or {}
    if affine is None or not axcodes or "shape" not in header or "affine_replaced" in header:
        return None
    try:
        matrix = np.asarray(affine, dtype=np.float64)
        if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
            return None
        return FileLayout(
            affine=matrix,
            axcodes=tuple(str(c) for c in axcodes),
            shape=tuple(int(n) for n in header["shape"]),
            qform_code=int(header.get("qform_code", 1)),
            sform_code=int(header.get("sform_code", 1)),
            dtype=header.get("datatype"),
            slope=float(header.get("scl_slope", 1.0)),
            inter=float(header.get("scl_inter", 0.0)),
            xyzt_units=tuple(header.get("xyzt_units") or ("mm", "sec")),
            zooms=tuple(float(z) for z in header.get("zooms", ())),
        )
    except (TypeError, ValueError, KeyError):
        return None


def volume_layout(volume: Volume) -> FileLayout | None:
    """The FileLayout of the file a Volume was read from (None when unknown)."""
    return file_layout(volume.original_affine, volume.original_axcodes, volume.header)


def _header_summary(header) -> dict[str, Any]:
    """JSON-friendly copy of the header fields a user looks at (the full header is bytes)."""
    out: dict[str, Any] = {}
    for key in ("descrip", "intent_name", "aux_file", "db_name"):
        try:
            value = header[key]
            value = value.item() if hasattr(value, "item") else value
            out[key] = (
                value.decode("latin-1").strip("\x00 ") if isinstance(value, bytes) else str(value)
            )
        except (KeyError, ValueError):
            pass
    try:
        out["shape"] = [int(n) for n in header.get_data_shape()]
        out["zooms"] = [float(z) for z in header.get_zooms()]
        out["xyzt_units"] = list(header.get_xyzt_units())
        out["datatype"] = str(header.get_data_dtype())
        out["qform_code"] = int(header["qform_code"])
        out["sform_code"] = int(header["sform_code"])
        out["cal_min"] = float(header["cal_min"])
        out["cal_max"] = float(header["cal_max"])
    except Exception:  # noqa: BLE001 - a partial summary is still useful
        pass
    return out


def _load_image(path: Path, max_bytes: int | None, volume_index: int | None):
    """Open and check the header (no voxels yet), turning every nibabel failure into a DataFileError."""
    import nibabel as nib

    from brainvae.data.io.nifti_integrity import check_header, check_size, gzip_problem
    from brainvae.errors import DataFileError

    if not path.exists():
        raise DataFileError(path, "file does not exist")
    if path.is_dir():
        raise DataFileError(path, "is a folder, not a NIfTI file")
    if not is_nifti_path(path):
        raise DataFileError(path, "not a NIfTI file name (expected .nii or .nii.gz)")
    try:
        img = nib.load(str(path), mmap=False)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:  # damage early in a .nii.gz
        raise DataFileError(path, gzip_problem(err)) from err
    except Exception as err:  # noqa: BLE001 - nibabel raises many types for bad files
        raise DataFileError(
            path, f"not a readable NIfTI file ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise DataFileError(path, f"not a NIfTI image (nibabel read it as {type(img).__name__})")
    check_header(img, path)
    check_size(img, path, max_bytes, volume_index)
    return img


def _usable_affine(img, path: Path) -> tuple[np.ndarray, np.ndarray, bool]:
    """The file's affine and the one to use: a diagonal one from the voxel sizes when the
    file's is singular (e.g. an unset sform); a non-finite or absurd one is refused."""
    from brainvae.data.io.nifti_integrity import check_affine

    affine = np.asarray(img.affine, dtype=np.float64)
    if check_affine(affine, img.header, path):
        return affine, affine, False
    zooms = img.header.get_zooms()
    sizes = [float(z) if np.isfinite(z) and z > 0 else 1.0 for z in (list(zooms) + [1.0] * 3)[:3]]
    return affine, np.diag([*sizes, 1.0]), True


def read_nifti(
    path: str | Path,
    *,
    squeeze: bool = True,
    max_bytes: int | None = None,
    volume_index: int | None = None,
) -> Volume:
    """Read a .nii/.nii.gz file into display orientation; errors name the file and problem.

    The header is checked before any voxel is read (data offset, shape, geometry, the
    size against the file and against ``max_bytes`` as float32, by default half the
    available memory), and a .nii.gz is verified to the end of its gzip stream (CRC-32,
    length). With ``volume_index`` a 4D file gives only that volume, read alone.
    """
    import nibabel as nib
    from nibabel.orientations import axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

    from brainvae.data.io.nifti_integrity import read_voxels

    path = Path(path)
    img = _load_image(path, max_bytes, volume_index)
    file_affine, affine, replaced = _usable_affine(img, path)
    data = read_voxels(img, path, volume_index)
    if data.ndim == 2:  # a bare 2D NIfTI: treat as (i, j, 1)
        data = data[:, :, None]
    original_axcodes = tuple(str(c) for c in nib.aff2axcodes(affine))
    ornt = io_orientation(affine)
    transform = ornt_transform(ornt, axcodes2ornt(DISPLAY_AXCODES))
    shape3 = data.shape[:3]
    data = nib.orientations.apply_orientation(data, transform)
    # Rounded to what a NIfTI header stores (float32), so write -> read is bit-exact.
    display_affine = (affine @ inv_ornt_aff(transform, shape3)).astype(np.float32).astype(float)
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
    header = _header_summary(img.header)
    header["scl_slope"] = float(getattr(img.dataobj, "slope", 1.0))
    header["scl_inter"] = float(getattr(img.dataobj, "inter", 0.0))
    if replaced:
        header["affine_replaced"] = "singular affine; used voxel sizes only"
    if volume_index is not None and len(img.shape) == 4:
        header["volume_index"] = int(volume_index)
    return Volume(
        data=np.ascontiguousarray(data),
        affine=display_affine,
        zooms=tuple(zooms),
        axis_names=tuple(names),
        squeezed_axes=tuple(squeezed),
        source=path,
        original_affine=file_affine,
        original_axcodes=original_axcodes,
        header=header,
    )
