"""ROI label images and their names, read from files and checked against a dataset's grid.

The receptive-field and projective-field commands take ROIs as a NIfTI label image drawn on the
dataset's template (0 = background, each other label one ROI) and names from a CSV with columns
label,name (the format of the sample atlas's atlas_labels.csv).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from brainvae.errors import DataFileError

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset

GRID_TOLERANCE_MM = 1e-3


def read_roi_names(path: str | Path) -> dict[int, str]:
    """{label: name} from a CSV with columns label,name (the sample atlas_labels.csv format)."""
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise DataFileError(path, f"cannot read the ROI names CSV ({error})") from error
    if not {"label", "name"} <= set(table.columns):
        raise DataFileError(
            path, f"needs columns label and name, found {', '.join(map(str, table.columns))}"
        )
    labels = pd.to_numeric(table["label"], errors="coerce")
    if labels.isna().any() or (labels % 1 != 0).any() or (labels <= 0).any():
        raise DataFileError(path, "labels must be positive integers")
    if labels.duplicated().any():
        raise DataFileError(
            path, f"label(s) listed twice: {sorted(set(labels[labels.duplicated()]))}"
        )
    return {int(label): str(name) for label, name in zip(labels, table["name"], strict=True)}


def read_rois(path: str | Path, dataset: PreparedDataset, spatial: tuple[int, ...]) -> np.ndarray:
    """The label image, checked to lie on the dataset's grid (shape, orientation, position)."""
    from brainvae.data.io.nifti import read_nifti

    volume = read_nifti(path)
    data = volume.data
    if volume.is_4d:
        raise DataFileError(path, f"is 4D {data.shape}: ROIs must be one label image")
    if tuple(data.shape) != tuple(spatial):
        raise DataFileError(
            path,
            f"ROI image is {' x '.join(map(str, data.shape))} but the dataset's images are "
            f"{' x '.join(map(str, spatial))} (axes {', '.join(dataset.axis_names)}): "
            "draw the ROIs on the dataset's template or resample them to its grid",
        )
    if tuple(volume.squeezed_axes) != tuple(dataset.squeezed_axes) or not same_grid(
        volume.affine, dataset
    ):
        raise DataFileError(
            path,
            "ROI image is not on the dataset's grid: its orientation or voxel positions differ "
            f"(ROI affine {np.round(volume.affine[:3], 3).tolist()}, dataset affine "
            f"{np.round(dataset.affine[:3], 3).tolist()}); write it with the dataset's affine",
        )
    rounded = np.rint(data)
    if not np.array_equal(rounded, data) or (rounded < 0).any():
        raise DataFileError(path, "holds non-integer or negative values: it must be a label image")
    labels = rounded.astype(np.int64)
    if not labels.any():
        raise DataFileError(path, "has no non-zero label: paint at least one ROI")
    return labels


def same_grid(affine: np.ndarray, dataset: PreparedDataset) -> bool:
    """Same axes and voxel sizes; same origin, up to a move along the slice axis for slices."""
    reference = dataset.affine
    if not np.allclose(affine[:3, :3], reference[:3, :3], atol=GRID_TOLERANCE_MM):
        return False
    offset = affine[:3, 3] - reference[:3, 3]
    if dataset.slice_axis is not None:
        direction = reference[:3, dataset.slice_axis]
        offset = offset - direction * (offset @ direction) / (direction @ direction)
    return bool(np.allclose(offset, 0.0, atol=GRID_TOLERANCE_MM))
