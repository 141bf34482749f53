"""What a receptive-field run writes: summary.json's content and the folder of CSV files.

Shared by `brainvae receptive` and the Receptive fields dock so both write the same files:
impact.csv (ROI rows, latent columns z1..zL, KL in nats), covariance.csv (A, latent x latent,
with at least 2 ROIs), gaussians.csv (roi, latent, weight, mean, variance) and summary.json
(both scores, kind, weights, images, where the variance floor was used).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from brainvae.analysis.disentanglement import disentanglement_scores, impact_covariance
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
        "variance_floor": result.variance_floor,
        "variance_floor_hits": [
            {"roi": result.roi_names[r], "latent": f"z{k + 1}"}
            for r, k in zip(*result.floor_hit.nonzero(), strict=True)
        ],
    }
    if result.n_rois < 2:
        info.update(published_s=None, profile_independence=None, constant_latents=[])
        info["scores_note"] = "the scores compare impact profiles over ROIs: give at least 2 ROIs"
    else:
        scores = disentanglement_scores(result.impact)
        for key, value in (
            ("published_s", scores.published),
            ("profile_independence", scores.profile_independence),
        ):
            info[key] = value if math.isfinite(value) else None
            if not math.isfinite(value):
                info[f"{key}_text"] = str(value)
        info["constant_latents"] = [f"z{k + 1}" for k in scores.constant_latents.nonzero()[0]]
    info.update(extra)
    return info


def write_receptive_tables(folder: Path, result: ReceptiveField, info: dict[str, Any]) -> None:
    """Write impact.csv, covariance.csv (with >= 2 ROIs), gaussians.csv and summary.json."""
    result.impact_table().to_csv(folder / "impact.csv", float_format="%.8g")
    if result.n_rois >= 2:
        names = list(result.latent_names)
        covariance = pd.DataFrame(impact_covariance(result.impact), index=names, columns=names)
        covariance.index.name = "latent"
        covariance.to_csv(folder / "covariance.csv", float_format="%.8g")
    result.gaussian_table().to_csv(folder / "gaussians.csv", index=False, float_format="%.8g")
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
    import numpy as np

    from brainvae.errors import DataFileError

    try:
        table = pd.read_csv(path, index_col=0)
    except (OSError, ValueError) as error:
        raise DataFileError(path, f"cannot read the receptive impact CSV ({error})") from error
    table.index = table.index.astype(str)
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
