"""The folder of a receptive-field run: impact.csv (ROI rows, latent columns z1..zL, KL in
nats), impact_per_voxel.csv (the same divided by each ROI's voxel count), latents.csv,
covariance.csv (A, latent x latent, with at least 2 ROIs), gaussians.csv (roi, latent, weight,
mean, variance, active) and summary.json; and impact.csv read back for the projective agreement.

Written all at once (brainvae.atomic through atomic_output_folder), so an interrupted run
leaves the old folder or the complete new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainvae.analysis.disentanglement import impact_covariance
from brainvae.analysis.receptive_field import ReceptiveField
from brainvae.analysis.receptive_report import latent_table
from brainvae.data.io.output_folder import atomic_output_folder
from brainvae.exports.tables import write_csv, write_json


def write_receptive_tables(folder: Path, result: ReceptiveField, info: dict[str, Any]) -> None:
    """Write impact.csv, impact_per_voxel.csv, latents.csv, covariance.csv (>= 2 ROIs),
    gaussians.csv and summary.json."""
    write_csv(folder / "impact.csv", result.impact_table())
    per_voxel = result.impact_table().copy()
    per_voxel.loc[:, :] = result.impact_per_voxel
    write_csv(folder / "impact_per_voxel.csv", per_voxel)
    write_csv(folder / "latents.csv", latent_table(result))
    if result.n_rois >= 2:
        names = list(result.latent_names)
        covariance = pd.DataFrame(impact_covariance(result.impact), index=names, columns=names)
        covariance.index.name = "latent"
        write_csv(folder / "covariance.csv", covariance)
    gaussians = result.gaussian_table()
    gaussians["active"] = gaussians["latent"].map(
        dict(zip(result.latent_names, result.active.tolist(), strict=True))
    )
    write_csv(folder / "gaussians.csv", gaussians, index=False)
    write_json(folder / "summary.json", info)


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
