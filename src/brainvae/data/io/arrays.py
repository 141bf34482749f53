"""Plain arrays as volumes: .npy and .tif files, taken as already in display orientation.

These formats carry no orientation or voxel size, so a 3D array is read as
(inferior, posterior, right) with 1 mm voxels (the affine `display_affine()`, so a
NIfTI written from it reads back in the same orientation), and a 2D
array as one axial image (posterior, right) whose squeezed axis is the first
display axis. Errors name the file and the problem, like read_nifti.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainvae.data.io.nifti import AXIS_NAMES, DISPLAY_AXCODES, Volume, display_affine
from brainvae.errors import DataFileError, MemoryBudgetError

NPY_SUFFIXES = (".npy",)
TIF_SUFFIXES = (".tif", ".tiff")


def _check_budget(path: Path, shape: tuple[int, ...], max_bytes: int | None) -> None:
    """Refuse, before reading, a file whose float32 copy would exceed the budget."""
    nbytes = int(np.prod(shape)) * 4
    if max_bytes is not None and nbytes > max_bytes:
        raise MemoryBudgetError(
            f"{path}: volume of shape {tuple(shape)} needs {nbytes / 2**20:.0f} MiB as float32, "
            f"over the memory budget of {max_bytes / 2**20:.0f} MiB"
        )


def _as_volume(path: Path, data: np.ndarray) -> Volume:
    """Wrap a 2D or 3D display-orientation array with the plain display affine."""
    if data.ndim not in (2, 3):
        raise DataFileError(path, f"has {data.ndim} dimensions {data.shape}; expected 2 or 3")
    if not (np.issubdtype(data.dtype, np.number) or data.dtype == bool):
        raise DataFileError(path, f"holds {data.dtype} values, not numbers")
    names = tuple(AXIS_NAMES[c] for c in DISPLAY_AXCODES)
    squeezed: tuple[int, ...] = ()
    if data.ndim == 2:
        squeezed = (0,)
        names = names[1:]
    if data.dtype == bool or not np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32, copy=False)
    return Volume(
        data=np.ascontiguousarray(data),
        affine=display_affine(),
        zooms=(1.0,) * data.ndim,
        axis_names=names,
        squeezed_axes=squeezed,
        source=path,
    )


def read_npy(path: str | Path, *, max_bytes: int | None = None) -> Volume:
    """Read a 2D/3D .npy array (shape checked against the budget before loading)."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(path, "file does not exist")
    try:
        header = np.load(path, mmap_mode="r", allow_pickle=False)
        _check_budget(path, header.shape, max_bytes)
        data = np.array(header)
    except (ValueError, OSError, EOFError) as err:
        raise DataFileError(
            path, f"not a readable .npy array ({type(err).__name__}: {err})"
        ) from err
    return _as_volume(path, data)


def read_tif(path: str | Path, *, max_bytes: int | None = None) -> Volume:
    """Read a 2D image or a 3D stack from a .tif file (singleton axes dropped)."""
    import tifffile

    path = Path(path)
    if not path.exists():
        raise DataFileError(path, "file does not exist")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            if "S" in series.axes and series.shape[series.axes.index("S")] > 1:
                raise DataFileError(
                    path, f"is a colour image (axes {series.axes}); expected grey values"
                )
            shape = tuple(s for s in series.shape if s != 1) or (1,)
            _check_budget(path, shape, max_bytes)
            data = series.asarray()
    except DataFileError:
        raise
    except (tifffile.TiffFileError, ValueError, OSError, EOFError, IndexError, KeyError) as err:
        raise DataFileError(
            path, f"not a readable TIFF image ({type(err).__name__}: {err})"
        ) from err
    return _as_volume(path, np.squeeze(data) if data.ndim > 2 else data)
