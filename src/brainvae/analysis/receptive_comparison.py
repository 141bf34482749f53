"""Receptive fields of several models side by side: the scores and each ROI's top latents.

The same images, ROIs, weights and perturbation for every model (beta-VAE, VAE, PCA...), one
row per model, so separation (the score to read) and the published s sit next to each other,
both over each model's active latents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.analysis.disentanglement import disentanglement_scores, separation
from brainvae.analysis.receptive_field import ReceptiveField, receptive_field

if TYPE_CHECKING:
    import pandas as pd

    from brainvae.models.base import LatentModel


def comparison_table(results: Mapping[str, ReceptiveField], top: int = 2) -> pd.DataFrame:
    """One row per model, from receptive fields already computed on the same ROIs.

    Columns: model, latent_dim, active_latents (count), n_images, kind, separation (of the
    impact per ROI voxel), separation_raw_impact, published_s (all over the active latents), encoder_only (count), then
    "top: <roi>" per ROI: the `top` most-affected ACTIVE latents ("z3 (1.2), z1 (0.4)": name
    and impact in nats; "none active" if the model has none). All results must share their ROI
    names.
    """
    import pandas as pd

    if not results:
        raise ValueError("no results to compare")
    roi_names = next(iter(results.values())).roi_names
    rows: list[dict[str, Any]] = []
    for name, result in results.items():
        if result.roi_names != roi_names:
            raise ValueError(
                f"{name!r} was computed on ROIs {list(result.roi_names)}, the others on "
                f"{list(roi_names)}: compare models on the same ROIs"
            )
        scores = disentanglement_scores(result.impact, result.active)
        row: dict[str, Any] = {
            "model": name,
            "latent_dim": result.latent_dim,
            "active_latents": result.activity.n_active,
            "n_images": result.n_images,
            "kind": result.kind,
            "separation": separation(result.impact_per_voxel, result.active),
            "separation_raw_impact": scores.separation,
            "published_s": scores.published,
            "encoder_only": int(result.encoder_only().sum()),
        }
        for roi in roi_names:
            order = [k for k in result.most_affected_latents(roi) if result.active[k]][:top]
            impact = result.impact[result.roi_index(roi)]
            text = ", ".join(f"z{k + 1} ({impact[k]:.3g})" for k in order)
            row[f"top: {roi}"] = text or "none active"
        rows.append(row)
    return pd.DataFrame(rows)


def compare_models(
    models: Mapping[str, LatentModel],
    images: np.ndarray,
    rois: np.ndarray,
    roi_names: Sequence[str] | Mapping[int, str] | None = None,
    top: int = 2,
    **options: Any,
) -> tuple[pd.DataFrame, dict[str, ReceptiveField]]:
    """Run receptive_field (same options) on every model; the table and the results by name."""
    results = {
        name: receptive_field(model, images, rois, roi_names, **options)
        for name, model in models.items()
    }
    return comparison_table(results, top), results
