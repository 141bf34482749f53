"""Integrity checks for NIfTI files: header sanity, memory budget, verified voxel reading.

A damaged file must fail with a DataFileError naming the file and the problem, never
yield wrong voxels: the header is checked before any voxel is read (data offset, shape,
implied size against the file and the memory budget, geometry), and a .nii.gz is
decompressed to the end of its stream so that gzip's CRC-32 and length (ISIZE) are
verified even though the voxels were read before them.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from brainvae.errors import DataFileError, MemoryBudgetError

# Deflate never compresses better than 1032:1, so a .nii.gz whose header claims more
# voxel bytes than this many times its size on disk cannot hold that data.
MAX_GZIP_RATIO = 1100
# Plausible geometry in millimetres: voxels from 1 micrometre to 1 metre, origin within 1 km.
VOXEL_SIZE_RANGE_MM = (1e-3, 1e3)
MAX_TRANSLATION_MM = 1e6
# What the default budget leaves for everything else: reading takes at most this share.
DEFAULT_BUDGET_SHARE = 0.5
_DRAIN_CHUNK = 1 << 20


def available_memory_bytes() -> int | None:
    """Memory the system can give this process now (MemAvailable), None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil missing or unsupported here
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def default_memory_budget() -> int | None:
    """Bytes one volume may take as float32 when no budget is given: half the available memory."""
    available = available_memory_bytes()
    return None if available is None else int(available * DEFAULT_BUDGET_SHARE)


def describe_default_budget() -> str:
    """The default budget in words, for --help and the Population data dock."""
    budget = default_memory_budget()
    share = f"{DEFAULT_BUDGET_SHARE:.0%} of the available memory"
    return share if budget is None else f"{share}, now {_mib(budget)}"


def checked_budget(max_bytes: object) -> int | None:
    """`max_bytes` as a positive whole number of bytes (or None: the default budget); nan,
    infinities, zero, negatives, booleans and text are refused with a ValueError."""
    import math
    import numbers

    if max_bytes is None:
        return None
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Real):
        raise ValueError(f"max_bytes must be a number of bytes or None, not {max_bytes!r}")
    if not math.isfinite(float(max_bytes)) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a finite number of bytes >= 1, not {max_bytes!r}")
    return int(max_bytes)


def _mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:,.0f} MiB"


def check_header(img, path: Path) -> None:
    """Refuse a header whose data offset or dimensions cannot describe a real image."""
    header = img.header
    minimum = int(getattr(header, "single_vox_offset", 352))
    # nibabel zeroes vox_offset in the loaded image's header; the proxy keeps the file's value.
    offset = float(img.dataobj.offset)
    if not np.isfinite(offset) or offset < minimum:
        raise DataFileError(
            path,
            f"header field vox_offset is {offset:g}: the voxel data would start inside the "
            f"{minimum}-byte header (corrupt header)",
        )
    dims = [int(n) for n in np.asarray(header["dim"]).ravel()]
    ndim = dims[0]
    if not 1 <= ndim <= 7:
        raise DataFileError(path, f"header field dim[0] is {ndim}, expected 1..7 (corrupt header)")
    if min(dims[1 : ndim + 1]) < 1:
        raise DataFileError(
            path, f"header field dim holds {dims[1 : ndim + 1]}: every dimension must be >= 1"
        )


def check_size(img, path: Path, max_bytes: int | None, volume_index: int | None) -> None:
    """Refuse, before reading voxels, data the file cannot hold or the memory budget cannot afford.

    An explicit ``max_bytes`` is checked first; without one the default budget (half the
    available memory) is checked after the file's own consistency, so a corrupt header is
    reported as such rather than as a memory problem.
    """
    max_bytes = checked_budget(max_bytes)
    shape = tuple(int(n) for n in img.shape)
    if len(shape) < 2 or len(shape) > 4:
        raise DataFileError(path, f"has {len(shape)} dimensions {shape}; expected 2, 3 or 4")
    if min(shape) < 1:
        raise DataFileError(path, f"has an empty dimension (shape {shape})")
    read_shape = shape[:3] if (volume_index is not None and len(shape) == 4) else shape
    needed = float(np.prod(read_shape, dtype=np.float64)) * 4
    if max_bytes is not None:
        _check_budget(path, read_shape, needed, max_bytes, "")
    stored = float(np.prod(shape, dtype=np.float64)) * img.header.get_data_dtype().itemsize
    on_disk = path.stat().st_size
    if str(path).lower().endswith(".gz"):
        if stored > on_disk * MAX_GZIP_RATIO:
            raise DataFileError(
                path,
                f"header claims shape {shape} ({_mib(stored)} of voxels) but the compressed "
                f"file ({on_disk} bytes) cannot hold that much: corrupt header or gzip bomb",
            )
    else:
        offset = int(img.dataobj.offset)
        if offset + stored > on_disk:
            raise DataFileError(
                path,
                f"truncated: header claims shape {shape} ({offset + stored:.10g} bytes with the "
                f"header) but the file holds {on_disk} bytes",
            )
    if max_bytes is None:
        budget = default_memory_budget()
        if budget is not None:
            _check_budget(
                path,
                read_shape,
                needed,
                budget,
                " (half the memory available now; set a budget such as --max-mb to change it)",
            )


def _check_budget(path: Path, shape: tuple[int, ...], needed: float, budget: int, why: str):
    if needed > budget:
        raise MemoryBudgetError(
            f"{path}: volume of shape {shape} needs {_mib(needed)} as float32, "
            f"over the memory budget of {_mib(budget)}{why}"
        )


def _affine_fields(header) -> str:
    """The header fields the affine comes from (nibabel's choice: sform, else qform, else pixdim)."""
    if int(header["sform_code"]) > 0:
        return "sform (srow_x, srow_y, srow_z)"
    if int(header["qform_code"]) > 0:
        return "qform (quatern_b/c/d, qoffset_x/y/z, pixdim)"
    return "pixdim (voxel sizes; no qform or sform)"


def check_affine(affine: np.ndarray, header, path: Path) -> bool:
    """Refuse a non-finite or absurdly scaled affine, naming the header field it came from.

    Returns True when the affine is usable as it is and False when it is singular (all
    zeros, e.g. an unset sform), in which case the caller falls back to the voxel sizes.
    """
    field = _affine_fields(header)
    if not np.all(np.isfinite(affine)):
        raise DataFileError(path, f"header field {field} is not finite (NaN or Inf): corrupt")
    linear = affine[:3, :3]
    with np.errstate(all="ignore"):
        determinant = np.linalg.det(linear)
    if np.isfinite(determinant) and abs(determinant) <= 1e-12:
        return False
    sizes = np.sqrt((linear.astype(np.float64) ** 2).sum(axis=0))
    low, high = VOXEL_SIZE_RANGE_MM
    if not np.all((sizes >= low) & (sizes <= high)):
        shown = ", ".join(f"{s:.3g}" for s in sizes)
        raise DataFileError(
            path,
            f"header field {field} gives voxel sizes ({shown}) mm, outside {low:g}..{high:g} mm: "
            "corrupt geometry",
        )
    translation = np.abs(affine[:3, 3])
    if np.any(translation > MAX_TRANSLATION_MM):
        shown = ", ".join(f"{t:.3g}" for t in affine[:3, 3])
        raise DataFileError(
            path,
            f"header field {field} puts the first voxel at ({shown}) mm, more than "
            f"{MAX_TRANSLATION_MM:g} mm from the origin: corrupt geometry",
        )
    return True


def gzip_problem(err: Exception) -> str:
    """What a gzip/zlib failure means for the user."""
    text = str(err)
    if isinstance(err, EOFError):
        return "truncated: the compressed stream ends before its end marker (incomplete copy?)"
    if "CRC check failed" in text:
        return f"damaged: the gzip checksum (CRC-32) does not match the data ({text})"
    if "Incorrect length" in text:
        return "damaged: the gzip length field (ISIZE) does not match the data's length"
    if isinstance(err, zlib.error):
        return f"damaged: the compressed data cannot be decompressed ({text})"
    return f"damaged gzip stream ({type(err).__name__}: {text})"


def _drain(stream) -> None:
    """Decompress the rest of the stream (discarding it) so gzip checks CRC-32 and ISIZE."""
    while stream.read(_DRAIN_CHUNK):
        pass


def read_voxels(img, path: Path, volume_index: int | None) -> np.ndarray:
    """The voxels of ``img`` (one volume of a 4D file when ``volume_index`` is given).

    Unscaled integers stay integers (labels), everything else is float32. A .nii.gz is
    read through one gzip stream that is then drained to its end, so a damaged file
    (flipped bit, truncation, bad CRC or ISIZE) raises DataFileError instead of
    returning wrong voxels.
    """
    from nibabel.arrayproxy import ArrayProxy

    dtype = img.header.get_data_dtype()
    if dtype.fields is not None or dtype.kind not in "biuf":
        raise DataFileError(path, f"unsupported voxel type {dtype} (expected integers or floats)")
    # After loading, nibabel keeps the (sanitised) scaling on the array proxy.
    slope = float(getattr(img.dataobj, "slope", 1.0))
    inter = float(getattr(img.dataobj, "inter", 0.0))
    shape = tuple(int(n) for n in img.shape)
    offset = int(img.dataobj.offset)
    if volume_index is not None and len(shape) == 4:
        if not 0 <= volume_index < shape[3]:
            raise DataFileError(
                path, f"has {shape[3]} volumes; volume_index {volume_index} is out of range"
            )
        offset += volume_index * int(np.prod(shape[:3])) * dtype.itemsize
        shape = shape[:3]
    spec = (shape, dtype, offset, slope, inter)
    compressed = str(path).lower().endswith(".gz")
    try:
        opener = gzip.open if compressed else open
        with opener(path, "rb") as stream:
            arr = _read_proxy(ArrayProxy(stream, spec, mmap=False), slope, inter, dtype)
            if compressed:
                _drain(stream)
        return arr
    except MemoryError as err:
        raise MemoryBudgetError(
            f"{path}: not enough memory to read voxels of shape {shape} ({err})"
        ) from err
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataFileError(path, gzip_problem(err)) from err
    except Exception as err:  # noqa: BLE001 - OS, value and nibabel errors alike
        raise DataFileError(
            path, f"truncated or corrupt voxel data ({type(err).__name__}: {err})"
        ) from err


def _read_proxy(proxy, slope: float, inter: float, dtype: np.dtype) -> np.ndarray:
    """Integers without scaling as they are (bool as uint8, native byte order), else float32."""
    if slope == 1.0 and inter == 0.0 and dtype.kind in "biu":
        arr = np.asarray(proxy.get_unscaled())
        if arr.dtype.kind == "b":
            arr = arr.astype(np.uint8)
        return arr.astype(arr.dtype.newbyteorder("="), copy=False)
    return np.asarray(np.asanyarray(proxy, dtype=np.float32))
