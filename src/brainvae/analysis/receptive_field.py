"""Receptive fields (Liu et al.; docs/methods.md): which input regions move which latents.

For every ROI l and perturbation weight w, every image is perturbed inside the ROI
(x~ = x0 + w * p_l), encoded, and each latent's posterior means are summarised by a Gaussian
over the images. The impact I[l, k] is the KL divergence between latent k's Gaussians at the two
extreme weights. The unperturbed images are always encoded too: their codes say which latents
are active (latent_activity) and set each latent's variance floor, a fixed fraction of its
population variance, so the impact does not depend on a latent's scale.

Here: the result, the checks of the inputs and the two entry points (a step generator that
yields progress, so a napari worker can report it and be cancelled, and the plain function that
runs it). The ROI masks are in roi_masks.py, the perturbations in perturbations.py, the KL maths
in receptive_kl.py and the batch-by-batch encoding in receptive_streaming.py.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.analysis.latent_activity import LatentActivity, activity_from_variance
from brainvae.analysis.perturbations import DEFAULT_AMPLITUDE, check_kind
from brainvae.analysis.receptive_kl import FLOOR_FRACTION, impact_from_gaussians, variance_floors
from brainvae.analysis.receptive_streaming import (
    PerturbationPlan,
    ReceptiveFieldProgress,
    stream_code_moments,
)
from brainvae.analysis.roi_masks import roi_masks
from brainvae.analysis.steps import drained
from brainvae.errors import ReceptiveFieldError

if TYPE_CHECKING:
    import pandas as pd

    from brainvae.models.base import LatentModel

DEFAULT_WEIGHTS = (-1.0, -0.5, 0.0, 0.5, 1.0)
"""A symmetric range including 0 (the unperturbed images), as in the paper."""

ENCODER_ONLY_IMPACT = 0.1
"""An inactive latent whose impact reaches this many nats in some ROI (a shift of about 0.45 of
its own spread) is reported as encoder-only: its encoder answers to the ROI, but its code hardly
varies over the population, so the decoder does not use it."""


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


def _check_model_images(model: Any, scan_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The spatial shape of the images, after checking they fit the model (ModelError if not)."""
    from brainvae.errors import ModelError

    config = model.config
    spatial = tuple(int(s) for s in config.input_shape)
    if scan_shape != spatial and scan_shape != (int(config.channels), *spatial):
        expected = " x ".join(map(str, spatial))
        got = " x ".join(map(str, scan_shape)) or "scalars"
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
    check_kind(kind)
    if batch_size < 1:
        raise ReceptiveFieldError(f"batch_size must be >= 1, got {batch_size}")
    if not floor_fraction > 0:
        raise ReceptiveFieldError(f"the floor fraction must be > 0, got {floor_fraction}")
    weight_values = _checked_weights(weights)
    scan_shape = tuple(int(s) for s in np.shape(images)[1:])
    spatial = _check_model_images(model, scan_shape)
    rows = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= len(images))):
        raise ReceptiveFieldError(f"indices must be rows of the {len(images)} images")
    if rows.size < 2:
        raise ReceptiveFieldError(
            f"{rows.size} image(s): a receptive field fits a Gaussian per latent over the "
            "images, which needs at least 2 (a single image has no variance)"
        )
    masks, names = roi_masks(rois, roi_names, spatial)
    plan = PerturbationPlan(
        rows=rows,
        masks=masks,
        names=names,
        weights=weight_values,
        kind=kind,
        amplitude=DEFAULT_AMPLITUDE[kind] if amplitude is None else float(amplitude),
        one_sided=one_sided,
        floor_fraction=floor_fraction,
        batch_size=batch_size,
        autocast_dtype=autocast_dtype,
    )
    return _steps(model, images, plan)


def _steps(
    model: Any, images: np.ndarray, plan: PerturbationPlan
) -> Generator[ReceptiveFieldProgress, None, ReceptiveField]:
    """Stream the codes' moments, then the impact between the extreme weights."""
    moments = yield from stream_code_moments(model, images, plan)
    floors = variance_floors(moments.population_variance, plan.floor_fraction)
    impact, floor_hit = impact_from_gaussians(
        moments.means, moments.variances, plan.one_sided, floors
    )
    return ReceptiveField(
        roi_names=plan.names,
        weights=plan.weights,
        kind=plan.kind,
        amplitude=plan.amplitude,
        means=moments.means,
        variances=moments.variances,
        impact=impact,
        one_sided=plan.one_sided,
        floor_fraction=float(plan.floor_fraction),
        variance_floor=floors,
        floor_hit=floor_hit,
        roi_sizes=plan.masks.reshape(len(plan.masks), -1).sum(axis=1),
        n_images=len(plan.rows),
        activity=activity_from_variance(moments.population_variance, len(plan.rows)),
    )


receptive_field = drained(
    receptive_field_steps,
    "receptive_field",
    "The receptive field of every latent over the given ROIs: receptive_field_steps' arguments, "
    "run to the end; returns the ReceptiveField.",
)
