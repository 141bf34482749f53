"""Image-quality scores of estimated scans (reconstructions, denoised scans) against references.

Every function takes stacks shaped (N, *spatial) with 2 or 3 spatial axes and returns one
score per scan. `mask` is None, one boolean brain mask of the spatial shape for all scans, or
one mask per scan (N, *spatial); the scores are then computed inside the brain.

- mse: mean squared error over the voxels (inside the mask).
- ssim: scikit-image's structural_similarity (7-voxel uniform window, 3D windows for volumes);
  without a mask exactly skimage's value, with a mask the mean of skimage's SSIM map over the
  brain voxels at least 3 voxels from the edge (the part of the map skimage itself averages).
- cw_ssim: complex-wavelet SSIM (Sampat et al. 2009) on pyrtools' complex steerable pyramid;
  see `cw_ssim` for what is computed, and how volumes are handled (slice by slice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from brainvae.errors import ModelError

if TYPE_CHECKING:
    import pandas

DEFAULT_ORIENTATIONS = 4
"""CW-SSIM orientations per scale (pyramid order 3, as in Sampat et al.)."""
DEFAULT_WINDOW = 7
"""CW-SSIM local window side in pixels (Sampat et al.'s 7 x 7)."""
DEFAULT_K = 0.01
"""CW-SSIM stabilising constant K, in the units of the windowed coefficient sums."""
COARSEST_BAND_WINDOWS = 2
"""Default scales rule: the coarsest band's shorter side is at least this many windows."""
CHUNK_PIXELS = 2**17
"""Pixels of reference images in one batched pyramid pass (with their estimates, 4 MB per
complex band): small enough to stay in cache, the fastest of 2^15 to 2^20 on 128 x 160 scans
and 48 x 40 slices (bench_image_quality.py)."""


def _stacks(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both stacks as float64, checked: same shape, (N, *spatial) with 2 or 3 axes, finite."""
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.shape != estimate.shape:
        raise ModelError(
            f"reference scans have shape {reference.shape} and estimates {estimate.shape}: "
            "they must be the same stack shape (N, *spatial)"
        )
    if reference.ndim not in (3, 4) or reference.shape[0] == 0:
        raise ModelError(
            f"expected a stack of scans (N, *spatial) with 2 or 3 spatial axes and N >= 1, "
            f"got shape {reference.shape}"
        )
    for name, stack in (("reference", reference), ("estimate", estimate)):
        bad = ~np.isfinite(stack).reshape(len(stack), -1).all(axis=1)
        if bad.any():
            raise ModelError(
                f"{name} scan(s) {np.flatnonzero(bad)[:10].tolist()} contain NaN or infinity"
            )
    return reference, estimate


def as_boolean_mask(mask: np.ndarray) -> np.ndarray:
    """A mask as booleans: booleans as they are, numbers only when every value is 0 or 1."""
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return mask
    if mask.dtype.kind in "biuf" and np.isin(mask, (0, 1)).all():
        return mask.astype(bool)
    raise ModelError(
        f"the brain mask must be boolean (or hold only 0 and 1), got {mask.dtype} values"
    )


def _scan_masks(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """The mask as a boolean (N, *spatial) array (a broadcast view for one shared mask)."""
    if mask is None:
        return None
    mask = as_boolean_mask(mask)
    if mask.shape == shape[1:]:
        masks = np.broadcast_to(mask, shape)
    elif mask.shape == shape:
        masks = mask
    else:
        raise ModelError(
            f"brain mask of shape {mask.shape} fits neither the spatial shape {shape[1:]} "
            f"nor the stack shape {shape}"
        )
    empty = ~masks.reshape(shape[0], -1).any(axis=1)
    if empty.any():
        raise ModelError(
            f"the brain mask is empty for scan(s) {np.flatnonzero(empty)[:10].tolist()}"
        )
    return masks


def mse(reference: np.ndarray, estimate: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(N,) mean squared error of each estimate against its reference (inside the mask)."""
    reference, estimate = _stacks(reference, estimate)
    squared = (reference - estimate) ** 2
    masks = _scan_masks(mask, reference.shape)
    n = len(reference)
    if masks is None:
        return squared.reshape(n, -1).mean(axis=1)
    weights = masks.reshape(n, -1)
    return (squared.reshape(n, -1) * weights).sum(axis=1) / weights.sum(axis=1)


def ssim(
    reference: np.ndarray,
    estimate: np.ndarray,
    mask: np.ndarray | None = None,
    data_range: float = 1.0,
) -> np.ndarray:
    """(N,) scikit-image SSIM of each estimate against its reference (2D or 3D windows).

    skimage averages its SSIM map away from the border (3 voxels for the 7-voxel window);
    with a mask, that same part of the map is averaged over brain voxels only. One skimage
    call per scan (skimage has no batched SSIM)."""
    from skimage.metrics import structural_similarity

    reference, estimate = _stacks(reference, estimate)
    masks = _scan_masks(mask, reference.shape)
    if data_range <= 0:
        raise ModelError(f"SSIM data_range must be positive, got {data_range}")
    win_size = 7
    if min(reference.shape[1:]) < win_size:
        raise ModelError(
            f"SSIM needs at least {win_size} voxels along each axis, got {reference.shape[1:]}"
        )
    pad = (win_size - 1) // 2
    inner = tuple(slice(pad, size - pad) for size in reference.shape[1:])
    scores = np.empty(len(reference))
    for i in range(len(reference)):
        value, ssim_map = structural_similarity(
            reference[i], estimate[i], data_range=data_range, win_size=win_size, full=True
        )
        if masks is None:
            scores[i] = value
            continue
        inside = masks[i][inner]
        if not inside.any():
            raise ModelError(
                f"the brain mask of scan {i} lies entirely within {pad} voxels of the edge, "
                "where SSIM is not averaged"
            )
        scores[i] = ssim_map[inner][inside].mean()
    return scores


def default_cw_ssim_scales(shape: tuple[int, int], window: int = DEFAULT_WINDOW) -> int:
    """Scales that fit a 2D image: the most scales whose coarsest band (side ceil(n / 2^s))
    keeps its shorter side at least COARSEST_BAND_WINDOWS windows (so that band still has
    window + 1 or more window positions per axis), and no more than pyrtools builds
    (log2(shorter side) - 2). 128 x 160: 4 scales (bands 128, 64, 32, 16); 40 x 48: 2."""
    from brainvae.evaluation.steerable import max_scales

    smallest = min(shape)
    scales = 0
    while scales < max_scales(shape) and (
        int(np.ceil(smallest / 2**scales)) >= COARSEST_BAND_WINDOWS * window
    ):
        scales += 1
    if scales == 0:
        raise ModelError(
            f"CW-SSIM needs images of at least {COARSEST_BAND_WINDOWS * window} pixels per side "
            f"for a {window}-pixel window, got {shape[0]} x {shape[1]}"
        )
    return scales


def _box_sums(values: np.ndarray, window: int) -> np.ndarray:
    """Sums over every window x window neighbourhood that fits inside each (B, h, w) image."""
    padded = np.zeros((values.shape[0], values.shape[1] + 1, values.shape[2] + 1), values.dtype)
    np.cumsum(values, axis=1, out=padded[:, 1:, 1:])
    np.cumsum(padded[:, 1:, 1:], axis=2, out=padded[:, 1:, 1:])
    return (
        padded[:, window:, window:]
        - padded[:, :-window, window:]
        - padded[:, window:, :-window]
        + padded[:, :-window, :-window]
    )


def _half_resolution(weights: np.ndarray) -> np.ndarray:
    """A (B, h, w) brain-fraction map on the next pyramid scale's grid (ceil(h/2), ceil(w/2)):
    smoothed by [1, 2, 1] / 4 along each axis, then every other pixel, so pixel j of the coarse
    band sits on pixel 2j of the fine one, as the pyramid's bands do."""
    from scipy.ndimage import convolve1d

    kernel = np.array([0.25, 0.5, 0.25])
    smooth = convolve1d(weights, kernel, axis=1, mode="nearest")
    smooth = convolve1d(smooth, kernel, axis=2, mode="nearest")
    return smooth[:, ::2, ::2]


def _cw_ssim_slices(
    reference: np.ndarray,
    estimate: np.ndarray,
    masks: np.ndarray | None,
    scales: int,
    orientations: int,
    window: int,
    k: float,
) -> np.ndarray:
    """(B,) CW-SSIM of 2D images (B, H, W); NaN where the mask reaches no window position."""
    from brainvae.evaluation.steerable import complex_bands

    count = len(reference)
    total = np.zeros(count)
    bands_used = np.zeros(count)
    both = np.concatenate([reference, estimate])
    weights = None if masks is None else masks.astype(np.float64)
    current_scale = 0
    edge = window // 2
    for scale, _orientation, band in complex_bands(both, scales, orientations):
        if weights is not None and scale != current_scale:
            weights = _half_resolution(weights)
            current_scale = scale
        band_x, band_y = band[:count], band[count:]
        correlation = _box_sums(band_x * np.conj(band_y), window)
        energy = _box_sums(
            band_x.real**2 + band_x.imag**2 + band_y.real**2 + band_y.imag**2, window
        )
        index = (2.0 * np.abs(correlation) + k) / (energy + k)
        if weights is None:
            total += index.mean(axis=(1, 2))
            bands_used += 1
            continue
        centres = weights[:, edge : edge + index.shape[1], edge : edge + index.shape[2]]
        mass = centres.sum(axis=(1, 2))
        reached = mass > 0
        total[reached] += (index * centres).sum(axis=(1, 2))[reached] / mass[reached]
        bands_used[reached] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(bands_used > 0, total / np.maximum(bands_used, 1), np.nan)


def cw_ssim(
    reference: np.ndarray,
    estimate: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    scales: int | None = None,
    orientations: int = DEFAULT_ORIENTATIONS,
    window: int = DEFAULT_WINDOW,
    k: float = DEFAULT_K,
    slice_axis: int = 0,
) -> np.ndarray:
    """(N,) complex-wavelet SSIM (Sampat et al. 2009): insensitive to small shifts.

    Each image goes through pyrtools' complex steerable pyramid (`scales` scales, default
    `default_cw_ssim_scales` of the image, or of the slice for volumes; `orientations` bands
    per scale). In every band, for every
    window x window neighbourhood that fits inside the band (uniform weights: plain sums),
    the local index is (2 |sum c_x c_y*| + K) / (sum |c_x|^2 + sum |c_y|^2 + K); it is
    averaged over positions, then over all bands (orientations and scales alike). With a
    mask, positions are weighted by the brain fraction at the window's centre (the mask
    carried to each band's grid by [1, 2, 1] / 4 smoothing and halving); bands the brain
    does not reach are left out. Volumes are scored slice by slice along spatial axis
    `slice_axis` and the slices averaged (with a mask: only the slices that contain brain).
    The pyramid runs on many images at once (pyrtools' masks, batched FFTs)."""
    reference, estimate = _stacks(reference, estimate)
    masks = _scan_masks(mask, reference.shape)
    if window < 3 or window % 2 == 0:
        raise ModelError(f"CW-SSIM window must be an odd number of pixels >= 3, got {window}")
    if k < 0:
        raise ModelError(f"CW-SSIM K must be >= 0, got {k}")
    n = len(reference)
    spatial = reference.ndim - 1
    if spatial == 3:
        if not -3 <= slice_axis < 3:
            raise ModelError(f"slice_axis must be 0, 1 or 2 for volumes, got {slice_axis}")
        axis = 1 + slice_axis % 3
        reference = np.moveaxis(reference, axis, 1)
        estimate = np.moveaxis(estimate, axis, 1)
        if masks is not None:
            masks = np.moveaxis(masks, axis, 1)
    else:
        reference, estimate = reference[:, None], estimate[:, None]
        masks = None if masks is None else masks[:, None]
    per_scan = reference.shape[1]
    plane = reference.shape[2:]
    reference = reference.reshape(-1, *plane)
    estimate = estimate.reshape(-1, *plane)
    if masks is not None:
        masks = masks.reshape(-1, *plane)
    if scales is None:
        scales = default_cw_ssim_scales(plane, window)
    coarsest = min(int(np.ceil(side / 2 ** (scales - 1))) for side in plane)
    if coarsest < window:
        raise ModelError(
            f"with {scales} scales the coarsest band of {plane[0]} x {plane[1]} images is "
            f"{coarsest} pixels across, smaller than the {window}-pixel window"
        )
    keep = np.ones(len(reference), bool) if masks is None else masks.any(axis=(1, 2))
    values = np.full(len(reference), np.nan)
    chunk = max(1, CHUNK_PIXELS // int(np.prod(plane)))
    kept = np.flatnonzero(keep)
    for start in range(0, len(kept), chunk):
        rows = kept[start : start + chunk]
        values[rows] = _cw_ssim_slices(
            reference[rows],
            estimate[rows],
            None if masks is None else masks[rows],
            scales,
            orientations,
            window,
            k,
        )
    values = values.reshape(n, per_scan)
    reached = np.isfinite(values)
    if not reached.any(axis=1).all():
        lost = np.flatnonzero(~reached.any(axis=1))[:10].tolist()
        raise ModelError(
            f"the brain mask of scan(s) {lost} lies only within {window // 2} pixels of the "
            "edge, where no CW-SSIM window fits"
        )
    return np.where(reached, values, 0.0).sum(axis=1) / reached.sum(axis=1)


@dataclass(frozen=True, eq=False)
class ImageScores:
    """Per-scan image-quality scores (N,) of estimates against references."""

    mse: np.ndarray
    ssim: np.ndarray
    cw_ssim: np.ndarray

    METRICS = ("mse", "ssim", "cw_ssim")

    def table(self) -> pandas.DataFrame:
        """One row per scan (scan index, mse, ssim, cw_ssim)."""
        import pandas

        table = pandas.DataFrame({name: getattr(self, name) for name in self.METRICS})
        table.insert(0, "scan", np.arange(len(table)))
        return table

    def summary(self) -> dict[str, float]:
        """Mean, sample SD (NaN for one scan) and median per metric: `mse_mean`, `mse_sd`..."""
        summary: dict[str, float] = {}
        for name in self.METRICS:
            values = np.asarray(getattr(self, name), dtype=np.float64)
            summary[f"{name}_mean"] = float(values.mean())
            summary[f"{name}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
            summary[f"{name}_median"] = float(np.median(values))
        return summary


def image_scores(
    reference: np.ndarray, estimate: np.ndarray, mask: np.ndarray | None = None
) -> ImageScores:
    """MSE, SSIM (data range 1) and CW-SSIM (defaults) of each estimate against its reference."""
    return ImageScores(
        mse=mse(reference, estimate, mask),
        ssim=ssim(reference, estimate, mask),
        cw_ssim=cw_ssim(reference, estimate, mask),
    )
