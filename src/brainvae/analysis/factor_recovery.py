"""Did a model learn a factor whose value and region are known? The bar a usable model meets.

For a population with ground truth (a phantom, or any cohort with a measured factor such as
ventricle volume and an ROI where it acts) a usable model:
- keeps at least half of its latents active (latent_activity);
- has an active latent whose posterior mean correlates with the factor at |r| >= min_r
  (with 100 held-out scans, the best of 8 random latents reaches |r| ~ 0.27 by chance);
- that latent is the most affected active latent of the factor's ROI in the receptive field
  (default perturbation), so painting the ROI finds it;
- its projective field is enriched >= min_enrichment times in that ROI, so sweeping it shows
  the region.
One function over a model, images and arrays; the benchmark and the tests call it alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainvae.analysis.latent_activity import LatentActivity

MIN_CORRELATION = 0.8
MIN_ENRICHMENT = 3.0


@dataclass(frozen=True)
class FactorRecovery:
    """How well one model recovers one factor, and whether that meets the bar."""

    factor: str
    roi: str
    activity: LatentActivity
    correlations: np.ndarray
    best_latent: int
    receptive_top: int | None
    enrichment: float
    min_correlation: float = MIN_CORRELATION
    min_enrichment: float = MIN_ENRICHMENT

    @property
    def best_correlation(self) -> float:
        return float(abs(self.correlations[self.best_latent]))

    def failures(self) -> list[str]:
        """Each point of the bar that is not met, in words (empty when all are)."""
        name = f"z{self.best_latent + 1}"
        problems = []
        if 2 * self.activity.n_active < self.activity.latent_dim:
            problems.append(f"only {self.activity.n_active} of {self.activity.latent_dim} active")
        if not self.activity.active[self.best_latent]:
            problems.append(f"{self.factor}'s best latent {name} is inactive")
        if self.best_correlation < self.min_correlation:
            problems.append(
                f"{self.factor}'s best latent {name} reaches |r| = {self.best_correlation:.2f} "
                f"< {self.min_correlation:g}"
            )
        if self.receptive_top != self.best_latent:
            top = "no active latent" if self.receptive_top is None else f"z{self.receptive_top + 1}"
            problems.append(f"the receptive field ranks {top} first for {self.roi}, not {name}")
        if not self.enrichment >= self.min_enrichment:
            problems.append(
                f"{name}'s projective enrichment in {self.roi} is {self.enrichment:.2f} "
                f"< {self.min_enrichment:g}"
            )
        return problems

    @property
    def meets_bar(self) -> bool:
        return not self.failures()

    def describe(self) -> str:
        name = f"z{self.best_latent + 1}"
        text = (
            f"{self.activity.n_active}/{self.activity.latent_dim} active; {self.factor}: {name} "
            f"|r| = {self.best_correlation:.2f}, receptive top for {self.roi}: "
            f"{'-' if self.receptive_top is None else f'z{self.receptive_top + 1}'}, "
            f"projective enrichment {self.enrichment:.2f}"
        )
        return text + (" (meets the bar)" if self.meets_bar else f" ({'; '.join(self.failures())})")


def factor_recovery(
    model: Any,
    images: Any,
    factor_values: np.ndarray,
    rois: np.ndarray,
    roi_names: Sequence[str] | Mapping[int, str] | None,
    roi: str,
    *,
    factor: str = "factor",
    brain_mask: np.ndarray | None = None,
    min_correlation: float = MIN_CORRELATION,
    min_enrichment: float = MIN_ENRICHMENT,
) -> FactorRecovery:
    """Check the bar on these images (all of them: use held-out scans for an honest |r|).

    factor_values: (N,) the factor per image; rois: a label image on the images' grid with
    roi_names (as receptive_field takes them); roi: the factor's ROI name. The receptive field
    uses the default perturbation over every ROI; the projective field the "prior" preset.
    """
    from brainvae.analysis.latent_space import population_latents
    from brainvae.analysis.projective_field import projective_field
    from brainvae.analysis.projective_maps import (
        brain_mask_from_images,
        mean_image,
        projective_matrix,
    )
    from brainvae.analysis.projective_sweep import SWEEP_PRESETS
    from brainvae.analysis.receptive_field import receptive_field
    from brainvae.analysis.roi_masks import roi_masks

    values = np.asarray(factor_values, dtype=np.float64).reshape(-1)
    if len(values) != len(images):
        raise ValueError(f"{len(values)} factor values for {len(images)} images")
    statistics = population_latents(model, images)
    activity = statistics.activity
    correlations = _correlations(statistics.codes, values)
    best = int(np.nanargmax(np.where(activity.active, np.abs(correlations), -1.0)))
    spatial = tuple(int(s) for s in model.config.input_shape)
    masks, names = roi_masks(rois, roi_names, spatial)
    if roi not in names:
        raise ValueError(f"no ROI named {roi!r}; ROIs: {', '.join(names)}")
    receptive = receptive_field(model, images, masks, names)
    order = [k for k in receptive.most_affected_latents(roi) if receptive.active[k]]
    field = projective_field(
        model, [best], statistics.mean, SWEEP_PRESETS["prior"], scale=statistics.sd[[best]]
    )
    if brain_mask is None:
        brain_mask = brain_mask_from_images(mean_image(images).reshape(spatial))
    enrichment = projective_matrix(field.total_variance, masks, brain_mask)[names.index(roi), 0]
    return FactorRecovery(
        factor=factor,
        roi=roi,
        activity=activity,
        correlations=correlations,
        best_latent=best,
        receptive_top=int(order[0]) if order else None,
        enrichment=float(enrichment),
        min_correlation=min_correlation,
        min_enrichment=min_enrichment,
    )


def _correlations(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(L,) Pearson r of each latent's code with the factor (0 for a constant latent)."""
    codes = np.asarray(codes, dtype=np.float64)
    centred = codes - codes.mean(axis=0)
    target = values - values.mean()
    denominator = np.sqrt((centred**2).sum(axis=0) * (target**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (centred * target[:, None]).sum(axis=0) / denominator
    return np.nan_to_num(r, nan=0.0)
