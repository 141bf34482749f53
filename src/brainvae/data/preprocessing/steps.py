"""Preprocessing steps, each a pure function over numpy arrays (no files, no config).

Geometry steps also have an affine counterpart so the output grid keeps mapping to
the same world millimetres as the input: crop shifts the origin, block averaging
scales the voxel size and moves the origin to the centre of the first block.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def count_nonfinite(x: np.ndarray) -> int:
    """Number of NaN or infinite values (0 for integer arrays)."""
    if not np.issubdtype(x.dtype, np.floating):
        return 0
    return int(x.size - np.count_nonzero(np.isfinite(x)))


def replace_nonfinite(x: np.ndarray, value: float = 0.0) -> np.ndarray:
    """Copy with NaN and +-Inf replaced by `value`."""
    return np.nan_to_num(x, nan=value, posinf=value, neginf=value)


def apply_mask(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Zero every voxel where the mask is 0 (mask must have x's shape)."""
    if mask.shape != x.shape:
        raise ValueError(f"mask shape {mask.shape} differs from image shape {x.shape}")
    return np.where(mask != 0, x, np.zeros((), dtype=x.dtype))


def centred_box(shape: Sequence[int], target: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """(start, stop) per axis of a box of size `target` centred in `shape` (extra voxel at the end)."""
    if len(shape) != len(target):
        raise ValueError(
            f"crop shape {tuple(target)} has {len(target)} axes, image has {len(shape)}"
        )
    if any(t > s for s, t in zip(shape, target, strict=True)):
        raise ValueError(f"crop shape {tuple(target)} is larger than the image {tuple(shape)}")
    return tuple(((s - t) // 2, (s - t) // 2 + t) for s, t in zip(shape, target, strict=True))


def crop(x: np.ndarray, box: Sequence[tuple[int, int]]) -> np.ndarray:
    """The sub-array inside a per-axis (start, stop) box; the box must lie inside x."""
    if len(box) != x.ndim:
        raise ValueError(f"crop box has {len(box)} axes, image has {x.ndim} {x.shape}")
    for axis, ((start, stop), size) in enumerate(zip(box, x.shape, strict=True)):
        if not 0 <= start < stop <= size:
            raise ValueError(
                f"crop ({start}, {stop}) on axis {axis} is outside the image {x.shape}"
            )
    return x[tuple(slice(start, stop) for start, stop in box)]


def block_factors(factors: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    """One factor per axis from a scalar or a sequence."""
    if isinstance(factors, (int, np.integer)):
        return (int(factors),) * ndim
    factors = tuple(int(f) for f in factors)
    if len(factors) != ndim:
        raise ValueError(f"block factors {factors} have {len(factors)} axes, image has {ndim}")
    return factors


def block_average(
    x: np.ndarray, factors: int | Sequence[int], remainder: str = "trim"
) -> np.ndarray:
    """Mean over non-overlapping blocks (factor f per axis) in float32.

    A size that is not a multiple of f is trimmed at the end of that axis
    (remainder="trim", the last size % f voxels are dropped) or refused ("error").
    """
    fs = block_factors(factors, x.ndim)
    if all(f == 1 for f in fs):
        return x.astype(np.float32, copy=False)
    rest = [s % f for s, f in zip(x.shape, fs, strict=True)]
    if any(rest):
        if remainder == "error":
            raise ValueError(f"shape {x.shape} is not divisible by the block factors {fs}")
        x = x[tuple(slice(0, s - r) for s, r in zip(x.shape, rest, strict=True))]
    if any(s == 0 for s in x.shape):
        raise ValueError(f"block factors {fs} are larger than the image")
    split_shape: list[int] = []
    for s, f in zip(x.shape, fs, strict=True):
        split_shape += [s // f, f]
    blocks = x.reshape(split_shape)
    return blocks.mean(axis=tuple(range(1, 2 * x.ndim, 2)), dtype=np.float64).astype(np.float32)


def clip_percentile(
    x: np.ndarray, percentile: float, region: np.ndarray | None = None
) -> np.ndarray:
    """Clip values above the given percentile of the image's own values, taken over the
    voxels where `region` is True (a brain mask, so background does not count) or over all;
    an empty region leaves the image as it is."""
    values = x if region is None else x[region]
    if values.size == 0:
        return x
    high = np.percentile(values, percentile)
    return np.minimum(x, high.astype(x.dtype))


def scale_unit_range(x: np.ndarray) -> np.ndarray:
    """Map to [0, 1] with (x - min) / (max - min); a constant image becomes all zeros.

    The FLAIR paper wrote (x - min) / max, which only lands in [0, 1] when min is 0
    (skull-stripped scans with a zero background, where both agree); dividing by the
    range guarantees [0, 1] for any input, e.g. negative CT values or a raised floor.
    """
    x = x.astype(np.float32, copy=False)
    low, high = float(x.min()), float(x.max())
    if high <= low:
        return np.zeros_like(x)
    return (x - low) / np.float32(high - low)


def equalise_brightness(
    images: np.ndarray,
    image_means: np.ndarray,
    population_mean: float,
    k: float,
    normalise: bool = True,
) -> np.ndarray:
    """Scale each image (first axis) so its mean is the population mean; saturate at k x mean.

    Liu et al.: fluorescence leakage makes a few pixels very bright, so after matching
    every image's mean brightness, values above k x population mean are clipped.
    normalise divides by that saturation level, mapping the result into [0, 1] for
    non-negative images. Images with a zero mean are left at zero.
    """
    means = np.asarray(image_means, dtype=np.float64)
    gain = np.divide(population_mean, means, out=np.zeros_like(means), where=means != 0)
    gain = gain.reshape((-1,) + (1,) * (images.ndim - 1)).astype(np.float32)
    ceiling = np.float32(k * population_mean)
    out = np.minimum(images * gain, ceiling)
    if normalise and ceiling > 0:
        out /= ceiling
    return out.astype(np.float32, copy=False)


def extract_slices(x: np.ndarray, axis: int, indices: Sequence[int]) -> np.ndarray:
    """Stack of 2D slices of a 3D array at the given indices along `axis` (slice axis first)."""
    if x.ndim != 3:
        raise ValueError(f"slice extraction needs a 3D image, got shape {x.shape}")
    indices = list(indices)
    bad = [i for i in indices if not 0 <= i < x.shape[axis]]
    if bad:
        raise ValueError(
            f"slice index {bad[0]} is outside 0..{x.shape[axis] - 1} on axis {axis} of shape {x.shape}"
        )
    return np.moveaxis(np.take(x, indices, axis=axis), axis, 0)


# --- affine bookkeeping ---------------------------------------------------------------
def grid_affine(
    affine: np.ndarray,
    spatial_axes: Sequence[int],
    starts: Sequence[int],
    factors: Sequence[int],
) -> np.ndarray:
    """Affine of the grid after cropping at `starts` then block-averaging by `factors`.

    spatial_axes says which of the three display axes the sample's axes are (a 2D
    sample skips its squeezed axis). Output index i maps to input index
    start + f * i + (f - 1) / 2, the centre of its block, so world positions are kept.
    """
    transform = np.eye(4)
    for axis, start, factor in zip(spatial_axes, starts, factors, strict=True):
        transform[axis, axis] = factor
        transform[axis, 3] = start + (factor - 1) / 2
    return np.asarray(affine, dtype=np.float64) @ transform


def voxel_sizes(affine: np.ndarray, spatial_axes: Sequence[int]) -> tuple[float, ...]:
    """Voxel size in mm along each sample axis (column norms of the affine)."""
    norms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    return tuple(float(norms[a]) for a in spatial_axes)
