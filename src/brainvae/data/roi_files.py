"""ROI label images and their names, read from files and checked against a dataset's grid.

The receptive-field and projective-field commands take ROIs as a NIfTI label image (0 =
background, each other label one ROI) drawn on the dataset's template or on any other grid of the
same world space (resampled then, see roi_resampling), and names from a CSV with columns
label,name (the format of the sample atlas's atlas_labels.csv).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from brainvae.errors import DataFileError

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.roi_resampling import Grid, ResampledLabels

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


@dataclass(frozen=True)
class RoiImage:
    """Labels on the dataset's sample grid; `resampling` says how they got there (None: as drawn)."""

    labels: np.ndarray
    resampling: str | None = None
    vanished: tuple[int, ...] = ()


def read_rois(path: str | Path, dataset: PreparedDataset, spatial: tuple[int, ...]) -> np.ndarray:
    """The label image on the dataset's grid (resampled there when drawn on another grid)."""
    return load_rois(path, dataset, spatial).labels


def load_rois(path: str | Path, dataset: PreparedDataset, spatial: tuple[int, ...]) -> RoiImage:
    """The label image on the dataset's grid, and a note when it had to be resampled.

    A file on another grid of the same world space (another resolution, voxel order or field
    of view) is resampled by nearest neighbour; one that does not overlap the dataset is an
    error naming both grids in their files' own array order.
    """
    from brainvae.data.io.nifti import read_nifti
    from brainvae.data.roi_resampling import Grid, box_text, dataset_grid, resample_labels

    volume = read_nifti(path, squeeze=False)
    if volume.is_4d:
        shape = volume.header.get("shape", (*volume.data.shape[1:], volume.data.shape[0]))
        raise DataFileError(
            path, f"is 4D ({' x '.join(map(str, shape))}): ROIs must be one label image"
        )
    labels = _integer_labels(path, volume.data)
    source = Grid(tuple(labels.shape), volume.affine)
    target = dataset_grid(dataset)
    if source.shape == target.shape and same_grid(volume.affine, dataset):
        return RoiImage(_on_samples(path, labels, dataset, spatial))
    result = resample_labels(labels, source, target)
    if result.coverage == 0.0:
        raise DataFileError(
            path,
            f"the ROI grid {_file_grid_text(source, volume.original_axcodes)} does not overlap "
            f"the dataset's grid {_dataset_grid_text(dataset)} anywhere (ROI voxels lie at "
            f"{box_text(source)}; the dataset's at {box_text(target)}): the ROIs are in another "
            "space or the file's affine is wrong. Register them to the dataset's space (e.g. "
            "FSL flirt, ANTs) or draw them on the dataset's template",
        )
    if not result.labels.any():
        raise DataFileError(
            path,
            f"no label lands on the dataset's grid {_dataset_grid_text(dataset)}: every label "
            f"of the ROI grid {_file_grid_text(source, volume.original_axcodes)} is smaller than "
            "the dataset's voxels or outside its field of view",
        )
    note = _resampling_note(source, volume.original_axcodes, dataset, result)
    samples = _on_samples(path, result.labels, dataset, spatial)
    return RoiImage(samples, note, result.vanished)


def _integer_labels(path: str | Path, data: np.ndarray) -> np.ndarray:
    """Non-negative whole numbers as int64, with at least one non-zero label."""
    if data.dtype.kind in "iu":
        if data.size and data.min() < 0:
            raise DataFileError(path, "holds negative values: it must be a label image")
        labels = data.astype(np.int64)
    else:
        rounded = np.rint(data)
        if not np.array_equal(rounded, data) or (rounded < 0).any():
            raise DataFileError(
                path, "holds non-integer or negative values: it must be a label image"
            )
        labels = rounded.astype(np.int64)
    if not labels.any():
        raise DataFileError(path, "has no non-zero label: paint at least one ROI")
    return labels


def _on_samples(
    path: str | Path, labels: np.ndarray, dataset: PreparedDataset, spatial: tuple[int, ...]
) -> np.ndarray:
    """The 3D display-order labels squeezed like the dataset's samples, checked against them."""
    squeezed = (
        np.squeeze(labels, axis=tuple(dataset.squeezed_axes)) if dataset.squeezed_axes else labels
    )
    if tuple(squeezed.shape) != tuple(spatial):
        raise DataFileError(
            path,
            f"labels on the dataset's grid are {' x '.join(map(str, squeezed.shape))} but the "
            f"model's images are {' x '.join(map(str, spatial))}: use a model trained on this "
            "dataset",
        )
    return np.ascontiguousarray(squeezed)


def _file_grid_text(grid: Grid, axcodes: tuple[str, ...] | None, whose: str = "the file's") -> str:
    """A grid as its file stores it: '91 x 109 x 91 at 2 mm (axes RAS, the file's order)'."""
    ordered = grid.reordered(tuple(axcodes)) if axcodes else grid
    return f"{ordered.describe()} (axes {''.join(ordered.axcodes)}, {whose} order)"


def _dataset_grid_text(dataset: PreparedDataset) -> str:
    """The dataset's grid in its files' voxel order, as their headers show it."""
    from brainvae.data.roi_resampling import dataset_file_axcodes, dataset_grid

    return _file_grid_text(dataset_grid(dataset), dataset_file_axcodes(dataset), "its files'")


def _resampling_note(
    source: Grid, axcodes: tuple[str, ...] | None, dataset: PreparedDataset, result: ResampledLabels
) -> str:
    """'ROIs resampled from 91 x 109 x 91 at 2 mm to the dataset's 40 x 48 x 40 at 4 mm (...)'."""
    from brainvae.data.roi_resampling import dataset_file_axcodes, dataset_grid, slice_note

    ours = source.reordered(tuple(axcodes)) if axcodes else source
    theirs = dataset_grid(dataset).reordered(dataset_file_axcodes(dataset))
    ours_text, theirs_text = ours.describe(), theirs.describe()
    if ours.axcodes != theirs.axcodes:
        ours_text += f" (axes {''.join(ours.axcodes)})"
        theirs_text += f" (axes {''.join(theirs.axcodes)})"
    note = (
        f"ROIs resampled from {ours_text} to the dataset's {theirs_text}{slice_note(dataset)} "
        "(nearest neighbour)"
    )
    if result.coverage < 1.0:
        note += (
            f"; they cover {100 * result.coverage:.0f} % of the dataset's grid (label 0 elsewhere)"
        )
    if result.vanished:
        note += (
            f"; label(s) {', '.join(map(str, result.vanished))} vanished (smaller than the "
            "dataset's voxels or outside its field of view) and are skipped"
        )
    return note


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
