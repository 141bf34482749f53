"""What a receptive-field run writes: summary.json's content and the folder of CSV files.

Shared by `brainvae receptive` and the Receptive fields dock so both write the same files:
impact.csv (ROI rows, latent columns z1..zL, KL in nats), impact_per_voxel.csv (the same divided
by each ROI's voxel count), latents.csv (per latent: active / inactive / encoder-only, code
variance, top ROI), covariance.csv (A, latent x latent, with at least 2 ROIs), gaussians.csv
(roi, latent, weight, mean, variance, active) and summary.json (activity, both scores over the
active latents, kind, weights, images, where the variance floor was used).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainvae.analysis.disentanglement import (
    HEADLINE_SCORE,
    disentanglement_scores,
    impact_covariance,
    separation,
)
from brainvae.analysis.receptive_field import ReceptiveField
from brainvae.data.io.output_folder import atomic_output_folder


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


def write_receptive_tables(folder: Path, result: ReceptiveField, info: dict[str, Any]) -> None:
    """Write impact.csv, impact_per_voxel.csv, latents.csv, covariance.csv (>= 2 ROIs),
    gaussians.csv and summary.json."""
    from brainvae.data.csv_safety import neutralised

    neutralised(result.impact_table()).to_csv(folder / "impact.csv", float_format="%.8g")
    per_voxel = result.impact_table().copy()
    per_voxel.loc[:, :] = result.impact_per_voxel
    neutralised(per_voxel).to_csv(folder / "impact_per_voxel.csv", float_format="%.8g")
    neutralised(latent_table(result)).to_csv(folder / "latents.csv", float_format="%.8g")
    if result.n_rois >= 2:
        names = list(result.latent_names)
        covariance = pd.DataFrame(impact_covariance(result.impact), index=names, columns=names)
        covariance.index.name = "latent"
        neutralised(covariance).to_csv(folder / "covariance.csv", float_format="%.8g")
    gaussians = result.gaussian_table()
    gaussians["active"] = gaussians["latent"].map(
        dict(zip(result.latent_names, result.active.tolist(), strict=True))
    )
    neutralised(gaussians).to_csv(folder / "gaussians.csv", index=False, float_format="%.8g")
    (folder / "summary.json").write_text(json.dumps(info, indent=2) + "\n", "utf-8")


def write_receptive_results(
    out: str | Path, result: ReceptiveField, info: dict[str, Any], overwrite: bool
) -> Path:
    """Write the tables into `out` at once (a temporary folder renamed into place)."""
    with atomic_output_folder(out, overwrite) as folder:
        write_receptive_tables(folder, result, info)
    return Path(out)


def read_impact(path: str | Path, roi_names: Sequence[str], latent_names: Sequence[str]) -> Any:
    """(R, K) impacts from an impact.csv written by a receptive run, in the order of the given
    ROI and latent names; a DataFileError names the file and what does not match."""
    from brainvae.data.csv_safety import restored
    from brainvae.errors import DataFileError

    try:
        table = pd.read_csv(path, index_col=0)
    except (OSError, ValueError) as error:
        raise DataFileError(path, f"cannot read the receptive impact CSV ({error})") from error
    table.index = table.index.astype(str)
    table = restored(table)
    missing_rois = [name for name in roi_names if name not in table.index]
    missing_latents = [name for name in latent_names if name not in table.columns]
    if missing_rois or missing_latents:
        problems = []
        if missing_rois:
            problems.append(f"ROI rows {', '.join(missing_rois)}")
        if missing_latents:
            problems.append(f"latent columns {', '.join(missing_latents)}")
        raise DataFileError(
            path,
            f"has no {' and no '.join(problems)}: run `brainvae receptive` with the same ROIs "
            "(and names) and the same model",
        )
    values = table.loc[list(roi_names), list(latent_names)].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise DataFileError(path, "holds non-finite impacts")
    return values
