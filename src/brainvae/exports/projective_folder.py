"""The folder of a projective-field run: NIfTI maps on the dataset's grid, montage.png,
projective.csv and summary.json (brainvae.analysis.projective_report says what each holds).

Written all at once (brainvae.atomic through atomic_output_folder), so an interrupted run
leaves the old folder or the complete new one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainvae.analysis.projective_report import projective_summary, swept_active
from brainvae.data.io.output_folder import atomic_output_folder
from brainvae.exports.tables import write_csv, write_json

MONTAGE_NAME = "montage.png"
"""The publication figure (brainvae.figures.projective_figure) of every swept latent."""


def write_projective_maps(
    folder: Path,
    result: Any,
    colour: np.ndarray,
    affine: np.ndarray,
    squeezed_axes: Sequence[int] = (),
) -> list[Path]:
    """The four band maps, the pooled large band, the four bands per unit var(c) and the
    colour composite of every swept latent, as NIfTI (FILE_UNITS)."""
    from brainvae.analysis.projective_sweep import BAND_NAMES
    from brainvae.data.io.nifti_writing import write_nifti

    squeezed = tuple(int(a) for a in squeezed_axes)
    normalised = result.normalised_band_variance
    written = []

    def write(name: str, values: np.ndarray, description: str, is_4d: bool = False) -> None:
        written.append(
            write_nifti(
                folder / f"{name}.nii.gz",
                np.asarray(values, dtype=np.float32),
                affine,
                squeezed_axes=squeezed,
                is_4d=is_4d,
                description=f"brainvae projective field: {description}"[:79],
            )
        )

    for k, name in enumerate(result.latent_names):
        for band, values in zip(BAND_NAMES, result.band_variance[k], strict=True):
            write(f"{name}_{band}", values, f"{name} {band} variance")
        write(f"{name}_large", result.large_variance[k], f"{name} large (both signs) variance")
        write(f"{name}_bands_per_var_c", normalised[k], f"{name} 4 bands per var(c)", True)
        write(f"{name}_colour", np.moveaxis(colour[k], -1, 0), f"{name} colour (RGB)", True)
    return written


def write_projective_results(
    out: str | Path,
    result: Any,
    colour: np.ndarray,
    limits: np.ndarray,
    scheme: str,
    affine: np.ndarray,
    squeezed_axes: Sequence[int] = (),
    *,
    matrix: np.ndarray | None = None,
    roi_names: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
    overwrite: bool = False,
    also: Callable[[Path], None] | None = None,
    limits_mode: str = "per-latent",
    activity: Any = None,
    asymmetry: dict[str, Any] | None = None,
    mean_image: np.ndarray | None = None,
) -> Path:
    """Write maps, figure (montage.png, over the dimmed `mean_image` when given), table and
    summary into `out` at once (a temporary folder renamed into place); `also(folder)` may add
    files (the dock's plots) before the rename."""
    from brainvae.analysis.projective_maps import projective_table
    from brainvae.exports.figures import save_projective_figure

    info = projective_summary(
        result, limits, scheme, matrix, roi_names, extra,
        limits_mode=limits_mode, activity=activity, asymmetry=asymmetry,
    )  # fmt: skip
    active = swept_active(result, activity)
    with atomic_output_folder(out, overwrite) as folder:
        write_projective_maps(folder, result, colour, affine, squeezed_axes)
        save_projective_figure(
            folder / MONTAGE_NAME, result, colour, limits, scheme=scheme,
            limits_mode=limits_mode, mean_image=mean_image, affine=affine,
            squeezed_axes=squeezed_axes, active=active,
        )  # fmt: skip
        if matrix is not None:
            table = projective_table(matrix, roi_names, result.latent_names, active=active)
            write_csv(folder / "projective.csv", table)
        write_json(folder / "summary.json", info)
        if also is not None:
            also(folder)
    return Path(out)
