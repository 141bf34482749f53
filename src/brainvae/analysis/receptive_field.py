"""Receptive fields (Liu et al.; docs/methods.md): which input regions move which latents.

For every ROI l and perturbation weight w, every image is perturbed inside the ROI
(x~ = x0 + w * p_l), encoded, and each latent's posterior means are summarised by a Gaussian
over the images. The impact I[l, k] is the KL divergence between latent k's Gaussians at the two
extreme weights. The unperturbed images are always encoded too: their codes say which latents
are active (latent_activity) and set each latent's variance floor, a fixed fraction of its
population variance, so the impact does not depend on a latent's scale. Images are streamed in batches (each batch read once, perturbed for every
(ROI, w) pair, encoded); only running float64 means and sums of squares are kept, so memory is
bounded by the batch size, not by images x weights x ROIs. A generator variant yields progress
so a napari worker can report it and be cancelled; the plain function drives it.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.analysis.latent_activity import LatentActivity, activity_from_variance
from brainvae.errors import BrainVAEError

if TYPE_CHECKING:
    import pandas as pd

    from brainvae.models.base import LatentModel

PERTURBATION_KINDS = ("remove", "add", "noise", "blur")
"""remove: p = -x0 in the ROI (w = 1 blanks it, the paper's default); add: p = amplitude in the
ROI; noise: p = amplitude * N(0, 1) in the ROI (fixed seed); blur: p = G_sigma * x0 - x0 in the
ROI (w = 1 replaces the ROI by its blurred self, sigma = amplitude voxels)."""

DEFAULT_AMPLITUDE = {"remove": 1.0, "add": 0.5, "noise": 0.2, "blur": 2.0}
"""Per-kind scale of p: intensity for add, noise sd for noise, Gaussian sigma (voxels) for blur;
remove ignores it (p = -x0 whatever the data's range)."""

DEFAULT_WEIGHTS = (-1.0, -0.5, 0.0, 0.5, 1.0)
"""A symmetric range including 0 (the unperturbed images), as in the paper."""

FLOOR_FRACTION = 1e-6
"""Each latent's variance floor is this fraction of its population variance (sd 1e-3 of the
population sd; of the prior's variance 1 when the population variance is 0). Variances below it
are raised to it before the KL: a Gaussian that collapses to a point (all images the same after
blanking) would otherwise make the KL 0/0 or infinite. Relative, so a latent's impact does not
change when its codes are rescaled (an absolute floor let a latent with a tiny spread reach
larger impacts than live ones); the result records where it was used (floor_hit)."""

ENCODER_ONLY_IMPACT = 0.1
"""An inactive latent whose impact reaches this many nats in some ROI (a shift of about 0.45 of
its own spread) is reported as encoder-only: its encoder answers to the ROI, but its code hardly
varies over the population, so the decoder does not use it."""

NOISE_SEED = 0
"""Seed of the noise perturbation: the same noise field per image for every ROI and weight."""


class ReceptiveFieldError(BrainVAEError, ValueError):
    """Inputs a receptive field cannot be computed from: ROIs, weights, images, options."""


@dataclass(frozen=True)
class ReceptiveFieldProgress:
    """One step of the computation: encode calls done of total, and the batch just finished."""

    done: int
    total: int
    images_done: int
    n_images: int


@dataclass(frozen=True)
class ReceptiveField:
    """Per-(ROI, weight, latent) Gaussians of the codes and the ROI x latent impact matrix.

    means, variances: (R, W, L) mean and variance (ddof 0, before the floor) of each latent's
    posterior means over the images; impact: (R, L) KL between the Gaussians at weights[0] and
    weights[-1] (symmetric: the mean of both directions; one-sided: KL(N(w_min) || N(w_max)));
    variance_floor: (L,) the floor used per latent (floor_fraction of its population variance);
    floor_hit: (R, L) whether either extreme variance was raised to the floor for the KL;
    roi_sizes: (R,) voxels per ROI; activity: which latents are active over the unperturbed
    images. weights are sorted ascending.
    """

    roi_names: tuple[str, ...]
    weights: np.ndarray
    kind: str
    amplitude: float
    means: np.ndarray
    variances: np.ndarray
    impact: np.ndarray
    one_sided: bool
    floor_fraction: float
    variance_floor: np.ndarray
    floor_hit: np.ndarray
    roi_sizes: np.ndarray
    n_images: int
    activity: LatentActivity

    @property
    def n_rois(self) -> int:
        return len(self.roi_names)

    @property
    def latent_dim(self) -> int:
        return int(self.impact.shape[1])

    @property
    def latent_names(self) -> tuple[str, ...]:
        """z1..zL: the names used in tables and exports (1-based, as in the explorer)."""
        return tuple(f"z{k + 1}" for k in range(self.latent_dim))

    @property
    def impact_per_voxel(self) -> np.ndarray:
        """(R, L) impact divided by each ROI's voxel count: raw impact grows with ROI size
        (a large region moves any latent more), so this is the one to rank ROIs by and to
        compare with the projective enrichment, which is also per voxel."""
        return self.impact / np.maximum(self.roi_sizes, 1)[:, None]

    @property
    def any_floor_hit(self) -> bool:
        return bool(self.floor_hit.any())

    def roi_index(self, roi: str | int) -> int:
        """Row of an ROI given by name or index."""
        if isinstance(roi, str):
            if roi not in self.roi_names:
                raise KeyError(f"no ROI named {roi!r}; ROIs: {', '.join(self.roi_names)}")
            return self.roi_names.index(roi)
        return int(roi)

    @property
    def active(self) -> np.ndarray:
        """(L,) the active latents (latent_activity over the unperturbed images)."""
        return self.activity.active

    def most_affected_latents(self, roi: str | int) -> np.ndarray:
        """Latent indices for one ROI: active latents from the largest impact to the smallest,
        then inactive ones (whose impact means little: the decoder does not use them)."""
        impact = self.impact[self.roi_index(roi)]
        return np.lexsort((-impact, ~self.active))

    def encoder_only(self) -> np.ndarray:
        """(L,) inactive latents whose impact reaches ENCODER_ONLY_IMPACT nats in some ROI."""
        reaches = self.impact.max(axis=0) >= ENCODER_ONLY_IMPACT
        return ~self.active & reaches

    def impact_table(self) -> pd.DataFrame:
        """The impact matrix as a DataFrame: ROI rows (named), latent columns z1..zL."""
        import pandas as pd

        return pd.DataFrame(
            self.impact, index=pd.Index(self.roi_names, name="roi"), columns=self.latent_names
        )

    def gaussian_table(self) -> pd.DataFrame:
        """Long table: one row per (ROI, latent, weight) with the fitted mean and variance."""
        import pandas as pd

        r, w, k = np.meshgrid(
            np.arange(self.n_rois),
            np.arange(len(self.weights)),
            np.arange(self.latent_dim),
            indexing="ij",
        )
        r, w, k = r.transpose(0, 2, 1), w.transpose(0, 2, 1), k.transpose(0, 2, 1)
        return pd.DataFrame(
            {
                "roi": np.asarray(self.roi_names, dtype=object)[r.ravel()],
                "latent": np.asarray(self.latent_names, dtype=object)[k.ravel()],
                "weight": self.weights[w.ravel()],
                "mean": self.means.transpose(0, 2, 1).ravel(),
                "variance": self.variances.transpose(0, 2, 1).ravel(),
            }
        )


# ---- KL between Gaussians ---------------------------------------------------------------
def gaussian_kl(
    mean0: np.ndarray, var0: np.ndarray, mean1: np.ndarray, var1: np.ndarray
) -> np.ndarray:
    """KL(N(mean0, var0) || N(mean1, var1)) elementwise, in nats (variances must be > 0)."""
    mean0, var0 = np.asarray(mean0, np.float64), np.asarray(var0, np.float64)
    mean1, var1 = np.asarray(mean1, np.float64), np.asarray(var1, np.float64)
    return 0.5 * (np.log(var1 / var0) + (var0 + (mean0 - mean1) ** 2) / var1 - 1.0)


def variance_floors(
    population_variance: np.ndarray, floor_fraction: float = FLOOR_FRACTION
) -> np.ndarray:
    """(L,) per-latent floors: floor_fraction of each latent's population variance (of 1, the
    prior's variance, for a latent that does not vary at all)."""
    population_variance = np.asarray(population_variance, dtype=np.float64)
    return floor_fraction * np.where(population_variance > 0, population_variance, 1.0)


def impact_from_gaussians(
    means: np.ndarray,
    variances: np.ndarray,
    one_sided: bool = False,
    variance_floor: float | np.ndarray = FLOOR_FRACTION,
) -> tuple[np.ndarray, np.ndarray]:
    """(impact, floor_hit) from (R, W, L) Gaussians: KL between the first and last weight.

    Symmetric by default (mean of KL(lo || hi) and KL(hi || lo)); variances below
    variance_floor (a number, or (L,) per latent: variance_floors) are raised to it so the KL
    stays finite, and floor_hit says where.
    """
    variance_floor = np.asarray(variance_floor, dtype=np.float64)
    if np.any(~(variance_floor > 0)):
        raise ReceptiveFieldError(
            f"the variance floor must be > 0, got {variance_floor.ravel()[:4].tolist()}"
        )
    means, variances = np.asarray(means, np.float64), np.asarray(variances, np.float64)
    low_var, high_var = variances[:, 0], variances[:, -1]
    floor_hit = (low_var < variance_floor) | (high_var < variance_floor)
    low_var = np.maximum(low_var, variance_floor)
    high_var = np.maximum(high_var, variance_floor)
    forward = gaussian_kl(means[:, 0], low_var, means[:, -1], high_var)
    if one_sided:
        return forward, floor_hit
    backward = gaussian_kl(means[:, -1], high_var, means[:, 0], low_var)
    return 0.5 * (forward + backward), floor_hit


# ---- ROIs and perturbations ----------------------------------------------------------------
def roi_masks(
    rois: np.ndarray, roi_names: Sequence[str] | Mapping[int, str] | None, spatial_shape: tuple
) -> tuple[np.ndarray, tuple[str, ...]]:
    """(R, *spatial) boolean masks and R names from a labels array or a boolean stack.

    rois: integer labels of the spatial shape (0 = background; each other label one ROI, in
    ascending order) or a boolean (R, *spatial) stack. roi_names: R names in that order, a
    {label: name} mapping (which also chooses the ROIs), or None ("roi_<label>"). Raises a
    ReceptiveFieldError naming the problem for a wrong shape, an ROI without voxels or names that do not
    match.
    """
    rois = np.asarray(rois)
    spatial_shape = tuple(int(s) for s in spatial_shape)
    shape_text = " x ".join(map(str, spatial_shape))
    if rois.dtype == bool and rois.ndim == len(spatial_shape) + 1:
        if tuple(rois.shape[1:]) != spatial_shape:
            raise ReceptiveFieldError(
                f"ROI masks are {' x '.join(map(str, rois.shape[1:]))} but the images are "
                f"{shape_text}: draw the ROIs on the images' grid"
            )
        masks = rois
        labels = list(range(1, len(rois) + 1))
        if isinstance(roi_names, Mapping):
            raise ReceptiveFieldError(
                "a boolean ROI stack takes a sequence of names, not a mapping"
            )
    else:
        if tuple(rois.shape) != spatial_shape:
            raise ReceptiveFieldError(
                f"the ROI label image is {' x '.join(map(str, rois.shape)) or 'a scalar'} but "
                f"the images are {shape_text}: draw the ROIs on the images' grid"
            )
        if not (np.issubdtype(rois.dtype, np.integer) or rois.dtype == bool):
            rounded = np.rint(rois)
            if not np.array_equal(rounded, rois):
                raise ReceptiveFieldError(
                    "the ROI label image holds non-integer values: it must be labels"
                )
            rois = rounded.astype(np.int64)
        if isinstance(roi_names, Mapping):
            labels = sorted(int(label) for label in roi_names)
        else:
            labels = [int(v) for v in np.unique(rois) if v != 0]
        masks = np.stack([rois == label for label in labels]) if labels else np.zeros((0,))
    if len(labels) == 0:
        raise ReceptiveFieldError("no ROI given: the label image has no non-zero label")
    if roi_names is None:
        names = tuple(f"roi_{label}" for label in labels)
    elif isinstance(roi_names, Mapping):
        names = tuple(str(roi_names[label]) for label in labels)
    else:
        names = tuple(str(name) for name in roi_names)
        if len(names) != len(labels):
            raise ReceptiveFieldError(
                f"{len(names)} ROI names for {len(labels)} ROIs (labels {labels}): "
                "give one name per ROI"
            )
    if len(set(names)) != len(names):
        raise ReceptiveFieldError(f"ROI names must be unique, got {list(names)}")
    sizes = masks.reshape(len(labels), -1).sum(axis=1)
    empty = [
        f"{name} (label {label})"
        for name, label, n in zip(names, labels, sizes, strict=True)
        if n == 0
    ]
    if empty:
        raise ReceptiveFieldError(f"empty ROI(s) without a single voxel: {', '.join(empty)}")
    return masks.astype(bool), names


def perturb(
    batch: np.ndarray,
    mask: np.ndarray,
    weight: float,
    kind: str,
    amplitude: float,
    noise: np.ndarray | None = None,
    blurred: np.ndarray | None = None,
) -> np.ndarray:
    """x0 + w * p for a (B, ...) batch, p confined to the (spatial) mask; vectorised.

    noise (for kind "noise") and blurred (for kind "blur") are computed once per batch by the
    caller and shared by every ROI and weight.
    """
    m = mask.astype(batch.dtype)
    if kind == "remove":
        return batch * (1.0 - weight * m)
    if kind == "add":
        return batch + (weight * amplitude) * m
    if kind == "noise":
        if noise is None:
            raise ReceptiveFieldError("the noise perturbation needs the batch's noise field")
        return batch + (weight * amplitude) * (m * noise)
    if kind == "blur":
        if blurred is None:
            raise ReceptiveFieldError("the blur perturbation needs the batch's blurred images")
        return batch + weight * (m * (blurred - batch))
    raise ReceptiveFieldError(
        f"unknown perturbation kind {kind!r}; expected one of {PERTURBATION_KINDS}"
    )


def _blur(batch: np.ndarray, sigma: float, spatial_dims: int) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    sigmas = (0.0,) * (batch.ndim - spatial_dims) + (float(sigma),) * spatial_dims
    return gaussian_filter(batch, sigma=sigmas, mode="nearest").astype(batch.dtype, copy=False)


# ---- the computation ----------------------------------------------------------------------
class _RunningMoments:
    """Mean and sum of squared deviations per cell, merged batch by batch (Chan et al.)."""

    def __init__(self, shape: tuple[int, ...]):
        self.count = 0
        self.mean = np.zeros(shape, dtype=np.float64)
        self.m2 = np.zeros(shape, dtype=np.float64)

    def add(self, index: tuple, codes: np.ndarray, count_before: int) -> None:
        codes = np.asarray(codes, dtype=np.float64)
        n_batch = codes.shape[0]
        batch_mean = codes.mean(axis=0)
        batch_m2 = ((codes - batch_mean) ** 2).sum(axis=0)
        total = count_before + n_batch
        delta = batch_mean - self.mean[index]
        self.mean[index] += delta * (n_batch / total)
        self.m2[index] += batch_m2 + delta**2 * (count_before * n_batch / total)

    def variance(self) -> np.ndarray:
        return self.m2 / max(self.count, 1)


def _codes(model: Any, batch: np.ndarray) -> np.ndarray:
    """Posterior means of a batch as float64 numpy, whatever the model returns."""
    mu = model.encode(batch)[0]
    if hasattr(mu, "detach"):
        mu = mu.detach().float().cpu().numpy()
    return np.asarray(mu, dtype=np.float64)


def _check_model_images(model: Any, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The spatial shape of the images, after checking they fit the model (ModelError if not)."""
    from brainvae.models.errors import ModelError

    config = model.config
    spatial = tuple(int(s) for s in config.input_shape)
    if sample_shape != spatial and sample_shape != (int(config.channels), *spatial):
        expected = " x ".join(map(str, spatial))
        got = " x ".join(map(str, sample_shape)) or "scalars"
        raise ModelError(
            f"the images are {got} but the model expects {expected} "
            f"({len(spatial)}D, {model.latent_dim} latents): use a model trained on this grid"
        )
    return spatial


def _checked_weights(weights: Sequence[float]) -> np.ndarray:
    values = np.asarray(weights, dtype=np.float64).ravel()
    if values.size < 2 or np.unique(values).size < 2:
        raise ReceptiveFieldError(
            f"at least two different perturbation weights are needed (the impact compares the "
            f"extremes), got {values.tolist()}"
        )
    if not np.all(np.isfinite(values)):
        raise ReceptiveFieldError(f"perturbation weights must be finite, got {values.tolist()}")
    return np.unique(values)


def receptive_field_steps(
    model: LatentModel,
    images: np.ndarray,
    rois: np.ndarray,
    roi_names: Sequence[str] | Mapping[int, str] | None = None,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    kind: str = "remove",
    one_sided: bool = False,
    batch_size: int = 64,
    floor_fraction: float = FLOOR_FRACTION,
    amplitude: float | None = None,
    indices: Sequence[int] | None = None,
    autocast_dtype: Any = None,
) -> Generator[ReceptiveFieldProgress, None, ReceptiveField]:
    """Check the inputs now, then return a generator that yields a ReceptiveFieldProgress
    after every encode call and returns the ReceptiveField (StopIteration.value).

    images: (N, *input_shape) or (N, C, *input_shape), e.g. a memory map, read batch by batch;
    indices: the rows to use (default all). At least 2 images are needed: the Gaussian of a
    single image has no variance, so the impact would measure only the floor. autocast_dtype
    (e.g. torch.bfloat16) runs the encoder under torch.autocast; sums stay float64.
    """
    if kind not in PERTURBATION_KINDS:
        raise ReceptiveFieldError(
            f"unknown perturbation kind {kind!r}; expected one of {PERTURBATION_KINDS}"
        )
    if batch_size < 1:
        raise ReceptiveFieldError(f"batch_size must be >= 1, got {batch_size}")
    if not floor_fraction > 0:
        raise ReceptiveFieldError(f"the floor fraction must be > 0, got {floor_fraction}")
    weight_values = _checked_weights(weights)
    sample_shape = tuple(int(s) for s in np.shape(images)[1:])
    spatial = _check_model_images(model, sample_shape)
    rows = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= len(images))):
        raise ReceptiveFieldError(f"indices must be rows of the {len(images)} images")
    if rows.size < 2:
        raise ReceptiveFieldError(
            f"{rows.size} image(s): a receptive field fits a Gaussian per latent over the "
            "images, which needs at least 2 (a single image has no variance)"
        )
    masks, names = roi_masks(rois, roi_names, spatial)
    scale = DEFAULT_AMPLITUDE[kind] if amplitude is None else float(amplitude)
    return _steps(
        model, images, rows, masks, names, weight_values, kind, scale, one_sided,
        batch_size, floor_fraction, autocast_dtype,
    )  # fmt: skip


def _steps(
    model: Any,
    images: np.ndarray,
    rows: np.ndarray,
    masks: np.ndarray,
    names: tuple[str, ...],
    weights: np.ndarray,
    kind: str,
    amplitude: float,
    one_sided: bool,
    batch_size: int,
    floor_fraction: float,
    autocast_dtype: Any,
) -> Generator[ReceptiveFieldProgress, None, ReceptiveField]:
    import contextlib

    import torch

    n_rois, n_weights, n_latents = len(masks), len(weights), int(model.latent_dim)
    moments = _RunningMoments((n_rois, n_weights, n_latents))
    population = _RunningMoments((n_latents,))  # unperturbed codes: activity and floors
    zero = np.flatnonzero(weights == 0.0)  # x~ = x0 for every ROI: encoded once per batch
    perturbed_weights = [j for j in range(n_weights) if j not in set(zero.tolist())]
    calls_per_batch = n_rois * len(perturbed_weights) + 1
    n_batches = -(-len(rows) // batch_size)
    total, done = n_batches * calls_per_batch, 0
    rng = np.random.default_rng(NOISE_SEED)
    spatial_dims = masks.ndim - 1
    if hasattr(model, "eval"):
        model.eval()
    autocast = (
        torch.autocast(device_type=str(getattr(model, "device", "cpu")).split(":")[0],
                       dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )  # fmt: skip
    with torch.inference_mode(), autocast:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            contiguous = bool(np.all(np.diff(chunk) == 1))  # a slice reads a memory map fastest
            batch = images[chunk[0] : chunk[-1] + 1] if contiguous else images[chunk]
            batch = np.asarray(batch, dtype=np.float32)
            noise = blurred = None
            if kind == "noise":
                noise = rng.standard_normal(batch.shape, dtype=np.float32)
            elif kind == "blur":
                blurred = _blur(batch, amplitude, spatial_dims)
            count, batch_end = moments.count, done + calls_per_batch
            codes = _codes(model, batch)
            population.add((), codes, count)
            for r in range(n_rois if zero.size else 0):
                moments.add((r, int(zero[0])), codes, count)
            done += 1
            yield _progress(done, total, batch_end, start, len(batch), len(rows))
            for r in range(n_rois):
                for j in perturbed_weights:
                    x = perturb(batch, masks[r], float(weights[j]), kind, amplitude, noise, blurred)
                    moments.add((r, j), _codes(model, x), count)
                    done += 1
                    yield _progress(done, total, batch_end, start, len(batch), len(rows))
            moments.count += len(batch)
            population.count += len(batch)
    variances = moments.variance()
    population_variance = population.variance()
    floors = variance_floors(population_variance, floor_fraction)
    impact, floor_hit = impact_from_gaussians(moments.mean, variances, one_sided, floors)
    return ReceptiveField(
        roi_names=names,
        weights=weights,
        kind=kind,
        amplitude=amplitude,
        means=moments.mean,
        variances=variances,
        impact=impact,
        one_sided=one_sided,
        floor_fraction=float(floor_fraction),
        variance_floor=floors,
        floor_hit=floor_hit,
        roi_sizes=masks.reshape(n_rois, -1).sum(axis=1),
        n_images=len(rows),
        activity=activity_from_variance(population_variance, len(rows)),
    )


def _progress(
    done: int, total: int, batch_end: int, start: int, batch_len: int, n_images: int
) -> ReceptiveFieldProgress:
    images_done = start + batch_len if done == batch_end else start
    return ReceptiveFieldProgress(done, total, images_done, n_images)


def receptive_field(
    model: LatentModel,
    images: np.ndarray,
    rois: np.ndarray,
    roi_names: Sequence[str] | Mapping[int, str] | None = None,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    kind: str = "remove",
    one_sided: bool = False,
    batch_size: int = 64,
    floor_fraction: float = FLOOR_FRACTION,
    amplitude: float | None = None,
    indices: Sequence[int] | None = None,
    autocast_dtype: Any = None,
) -> ReceptiveField:
    """The receptive field of every latent over the given ROIs (see receptive_field_steps)."""
    steps = receptive_field_steps(
        model, images, rois, roi_names, weights, kind, one_sided, batch_size,
        floor_fraction, amplitude, indices, autocast_dtype,
    )  # fmt: skip
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value
