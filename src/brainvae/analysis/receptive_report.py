"""What a receptive-field run reports: summary.json's content, the scores and the latent table.

Shared by `brainvae receptive` and the Receptive fields dock so both write the same files
(brainvae.exports.receptive_tables writes them):
impact.csv (ROI rows, latent columns z1..zL, KL in nats), impact_per_voxel.csv (the same divided
by each ROI's voxel count), latents.csv (per latent: active / inactive / encoder-only, code
variance, top ROI), covariance.csv (A, latent x latent, with at least 2 ROIs), gaussians.csv
(roi, latent, weight, mean, variance, active) and summary.json (activity, both scores over the
active latents, kind, weights, images, where the variance floor was used).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from brainvae.analysis.disentanglement import HEADLINE_SCORE, disentanglement_scores, separation
from brainvae.analysis.receptive_field import ReceptiveField


def receptive_summary(result: ReceptiveField, extra: dict[str, Any]) -> dict[str, Any]:
    """What summary.json holds (non-finite scores as null with a text form)."""
    info: dict[str, Any] = {
        "kind": result.kind,
        "amplitude": result.amplitude,
        "weights": [float(w) for w in result.weights],
        "one_sided": result.one_sided,
        "n_images": result.n_images,
        "rois": {
            name: int(size) for name, size in zip(result.roi_names, result.roi_sizes, strict=True)
        },
        "latent_dim": result.latent_dim,
        "activity": result.activity.to_json(),
        "encoder_only": [
            {
                "latent": result.latent_names[k],
                "roi": result.roi_names[int(np.argmax(result.impact[:, k]))],
                "impact": float(result.impact[:, k].max()),
            }
            for k in np.flatnonzero(result.encoder_only())
        ],
        "floor_fraction": result.floor_fraction,
        "variance_floor_hits": [
            {"roi": result.roi_names[r], "latent": f"z{k + 1}"}
            for r, k in zip(*result.floor_hit.nonzero(), strict=True)
        ],
        "headline_score": HEADLINE_SCORE,
    }
    info.update(receptive_scores(result))
    info.update(extra)
    return info


def receptive_scores(result: ReceptiveField) -> dict[str, Any]:
    """The scores over the active latents: separation of the impact per ROI voxel (the
    headline: raw impact grows with ROI size, so on raw impact the largest ROI dominates every
    profile), separation of the raw impact, and the published s (raw impact, as published);
    with the latents they were computed over and a note when they cannot be computed."""
    keys = ("separation", "separation_raw_impact", "published_s")
    if result.n_rois < 2:
        return {
            **dict.fromkeys(keys),
            "scored_latents": [],
            "scores_note": "the scores compare impact profiles over ROIs: give at least 2 ROIs",
        }
    raw = disentanglement_scores(result.impact, result.active)
    per_voxel = separation(result.impact_per_voxel, result.active)
    info: dict[str, Any] = {}
    for key, value in zip(keys, (per_voxel, raw.separation, raw.published), strict=True):
        info[key] = value if math.isfinite(value) else None
        if not math.isfinite(value):
            info[f"{key}_text"] = str(value)
    info["scored_latents"] = [result.latent_names[k] for k in np.flatnonzero(raw.scored)]
    if raw.n_scored < 2:
        info["scores_note"] = (
            f"only {raw.n_scored} active latent(s) answer to an ROI: the scores compare latents "
            "with each other and need at least 2, so they are not computed"
        )
    return info


def latent_table(result: ReceptiveField) -> pd.DataFrame:
    """One row per latent: status (active / inactive / encoder-only), code variance over the
    images, the ROI it answers to most (raw and per voxel) and that impact."""
    encoder_only = result.encoder_only()
    status = np.where(result.active, "active", np.where(encoder_only, "encoder-only", "inactive"))
    top = result.impact.argmax(axis=0)
    top_per_voxel = result.impact_per_voxel.argmax(axis=0)
    table = pd.DataFrame(
        {
            "status": status,
            "code_variance": result.activity.variance,
            "top_roi": np.asarray(result.roi_names, dtype=object)[top],
            "top_impact": result.impact.max(axis=0),
            "top_roi_per_voxel": np.asarray(result.roi_names, dtype=object)[top_per_voxel],
        },
        index=pd.Index(result.latent_names, name="latent"),
    )
    return table
