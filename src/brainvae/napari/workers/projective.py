"""Projective fields in the background: encode the population (for the base code, each
latent's spread and which latents are active), sweep the chosen latents, then the colour maps,
the ROI enrichment and the far sides' asymmetry. Runs in a napari worker and yields the sweep's
progress; never touches a layer or widget."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ProjectiveRun:
    """A finished sweep: the ProjectiveField, its colour composite (K, *spatial, 3) with the
    (K, 3) limits used and their mode, the ROI x latent enrichment (None without ROIs) with
    each ROI's voxel count, the population's mean image (the dimmed brain the colours are shown
    over) and brain mask, which latents are active (LatentActivity over all L) and the far
    sides' asymmetry (projective_report.asymmetry_summary)."""

    result: Any
    colour: np.ndarray
    limits: np.ndarray
    scheme: str
    matrix: np.ndarray | None
    roi_names: tuple[str, ...]
    roi_labels: tuple[int, ...]
    mean_image: np.ndarray
    limits_mode: str
    activity: Any
    roi_sizes: np.ndarray
    asymmetry: dict

    @property
    def active(self) -> np.ndarray:
        """(K,) whether each swept latent is active."""
        from brainvae.analysis.projective_report import swept_active

        return swept_active(self.result, self.activity)


def projective_run(
    model: Any,
    images: np.ndarray,
    table: Any,
    latents: Sequence[int],
    base: str,
    settings: Any,
    scheme: str,
    rois: np.ndarray | None,
    roi_names: Mapping[int, str] | None,
    batch_size: int = 32,
    limits_mode: str = "per-latent",
) -> Generator[Any, None, ProjectiveRun]:
    """Yield ProjectiveProgress reports; return the ProjectiveRun."""
    from brainvae.analysis.latent_space import population_latents
    from brainvae.analysis.projective_field import (
        base_code,
        brain_mask_from_images,
        colour_composite,
        mean_image,
        projective_field_steps,
        projective_matrix,
    )
    from brainvae.analysis.projective_report import asymmetry_summary
    from brainvae.analysis.receptive_field import roi_masks

    statistics = population_latents(model, images)
    code, label = base_code(statistics, table, base)
    latents = list(latents)
    result = yield from projective_field_steps(  # dead latents' sd and prior units: handled there
        model,
        latents,
        code,
        settings,
        scale=statistics.sd[latents],
        batch_size=batch_size,
        base_label=label,
    )
    colour, limits = colour_composite(result.colour_bands, scheme, mode=limits_mode)
    population_mean = mean_image(images)
    brain = brain_mask_from_images(population_mean)
    matrix, names, labels, masks = None, (), (), None
    if rois is not None and roi_names:
        masks, names = roi_masks(rois, dict(roi_names), result.spatial_shape)
        labels = tuple(sorted(int(label) for label in roi_names))
        matrix = projective_matrix(result.total_variance, masks, brain)
    sizes = np.zeros(0) if masks is None else masks.reshape(len(masks), -1).sum(axis=1)
    return ProjectiveRun(
        result,
        colour,
        limits,
        scheme,
        matrix,
        tuple(names),
        labels,
        population_mean.astype(np.float32),
        limits_mode,
        statistics.activity,
        sizes,
        asymmetry_summary(result, brain, masks, tuple(names)),
    )
