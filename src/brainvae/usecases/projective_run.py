"""The projective run: encode the population (the base code, each latent's spread, which
latents are active), sweep the chosen latents around the base code, then the colour maps, the
ROI x latent enrichment and the far sides' asymmetry.

projective_run yields the sweep's progress reports and returns a ProjectiveRun; a command
writes it to files, a dock shows it.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RoiSelection:
    """ROIs as (R, *spatial) boolean masks, with their names and labels in the same order."""

    masks: np.ndarray
    names: tuple[str, ...]
    labels: tuple[int, ...]

    @property
    def sizes(self) -> np.ndarray:
        """(R,) voxels in each ROI."""
        return self.masks.reshape(len(self.masks), -1).sum(axis=1)


def roi_selection(
    labels: np.ndarray, names: Mapping[int, str], spatial_shape: tuple[int, ...]
) -> RoiSelection:
    """The masks of the named labels of a label image (ascending label order)."""
    from brainvae.analysis.roi_masks import roi_masks

    masks, ordered = roi_masks(labels, dict(names), spatial_shape)
    return RoiSelection(masks, tuple(ordered), tuple(sorted(int(label) for label in names)))


@dataclass(frozen=True)
class ProjectiveRun:
    """A finished sweep: the ProjectiveField, its colour composite (K, *spatial, 3) with the
    (K, 3) limits used and their mode, the ROI x latent enrichment (None without ROIs) with
    each ROI's voxel count, the population's mean image (the dimmed brain the colours are shown
    over) and brain mask, which latents are active (LatentActivity over all L), the far
    sides' asymmetry (projective_report.asymmetry_summary) and the base code's label."""

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
    brain_mask: np.ndarray
    base_label: str

    @property
    def active(self) -> np.ndarray:
        """(K,) whether each swept latent is active."""
        from brainvae.analysis.projective_report import swept_active

        return swept_active(self.result, self.activity)


@dataclass(frozen=True)
class ProjectiveRequest:
    """What to sweep and how to show it: the latents (0-based), the base code ("mean", "zero"
    or a subject id), the SweepSettings, the colour scheme and limits mode, the ROIs for the
    enrichment (None: none), the brain mask the enrichment and the asymmetry count (None: the
    mean image above 10 % of its peak), the decodes per forward pass, and the population's
    LatentStatistics when they were already computed for these images and this model (None:
    encoded here)."""

    latents: tuple[int, ...]
    base: str
    settings: Any
    scheme: str
    limits_mode: str
    rois: RoiSelection | None = None
    brain_mask: np.ndarray | None = None
    batch_size: int = 32
    statistics: Any = None


def projective_run(
    model: Any, images: np.ndarray, table: Any, request: ProjectiveRequest
) -> Generator[Any, None, ProjectiveRun]:
    """Yield ProjectiveProgress reports; return the ProjectiveRun.

    table: the scans' metadata, in the images' order (subject_id picks a subject's base code).
    """
    from brainvae.analysis.latent_space import population_latents
    from brainvae.analysis.projective_colour import colour_composite
    from brainvae.analysis.projective_field import base_code, projective_field_steps
    from brainvae.analysis.projective_maps import (
        brain_mask_from_images,
        mean_image,
        projective_matrix,
    )
    from brainvae.analysis.projective_report import asymmetry_summary

    spatial = tuple(int(s) for s in model.config.input_shape)
    population_mean = mean_image(images).reshape(spatial)
    brain = request.brain_mask
    brain = brain_mask_from_images(population_mean) if brain is None else brain
    statistics = request.statistics
    statistics = population_latents(model, images) if statistics is None else statistics
    code, label = base_code(statistics, table, request.base)
    latents = list(request.latents)
    result = yield from projective_field_steps(  # dead latents' sd and prior units: handled there
        model,
        latents,
        code,
        request.settings,
        scale=statistics.sd[latents],
        batch_size=request.batch_size,
        base_label=label,
    )
    scheme, limits_mode, rois = request.scheme, request.limits_mode, request.rois
    colour, limits = colour_composite(result.colour_bands, scheme, mode=limits_mode)
    masks = None if rois is None else rois.masks
    names = () if rois is None else rois.names
    return ProjectiveRun(
        result=result,
        colour=colour,
        limits=limits,
        scheme=scheme,
        matrix=None if masks is None else projective_matrix(result.total_variance, masks, brain),
        roi_names=names,
        roi_labels=() if rois is None else rois.labels,
        mean_image=population_mean.astype(np.float32),
        limits_mode=limits_mode,
        activity=statistics.activity,
        roi_sizes=np.zeros(0) if rois is None else rois.sizes,
        asymmetry=asymmetry_summary(result, brain, masks, names),
        brain_mask=brain,
        base_label=label,
    )


def agreement_record(
    impact_file: str, run: ProjectiveRun, impact: np.ndarray, rois: RoiSelection
) -> dict[str, Any]:
    """summary.json entries comparing the projective with the receptive field: each latent's
    receptive impact per ROI voxel (impact / the ROIs' voxel counts) against its enrichment,
    Spearman rho over ROIs; active latents under the threshold disagree."""
    from brainvae.analysis.projective_maps import field_agreement

    latents = run.result.latent_names
    sizes = rois.sizes
    agreement = field_agreement(run.matrix, impact, sizes, active=run.active)
    return {
        "impact_file": str(impact_file),
        "agreement_compares": "receptive impact per ROI voxel (impact / ROI voxel count) "
        "with the projective enrichment, Spearman rho over ROIs",
        "roi_voxels": [int(n) for n in sizes],
        "field_agreement_rho": {
            name: (float(rho) if rho == rho else None)
            for name, rho in zip(latents, agreement.rho, strict=True)
        },
        "agreement_threshold": float(agreement.threshold),
        "fields_disagree": [
            name for name, bad in zip(latents, agreement.disagree, strict=True) if bad
        ],
        "agreement_inactive": [
            name for name, gone in zip(latents, agreement.inactive, strict=True) if gone
        ],
    }
