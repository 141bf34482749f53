"""Where an ROI lies in its labels grid: its voxels, bounds and the slice through its middle.

A dock that highlights an ROI (a clicked impact cell, a chosen atlas region) shows the ROI's
outline and moves the view to the ROI's centre slice; this is the array part of that, so the
receptive and projective docks ask the same way. Arrays in, a small dataclass out; no napari.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RoiLocation:
    """An ROI's place in its grid, in voxel indices of the labels array.

    centre: per axis, the index of the slice that splits the ROI's voxels in half (their lower
    median), so the slice through centre[axis] always cuts the ROI, even a C-shaped one whose
    centre of mass lies outside it. bounds: per axis, the first and last index the ROI touches.
    """

    label: int
    voxels: int
    centre: tuple[int, ...]
    bounds: tuple[tuple[int, int], ...]


def roi_mask(labels: np.ndarray, label: int) -> np.ndarray:
    """True where the labels array holds `label`."""
    return np.asarray(labels) == int(label)


def roi_location(labels: np.ndarray, label: int) -> RoiLocation | None:
    """Voxel count, bounds and centre slice of one label; None when no voxel has it."""
    indices = np.nonzero(roi_mask(labels, label))
    if indices[0].size == 0:
        return None
    centre = tuple(int(np.sort(axis)[(axis.size - 1) // 2]) for axis in indices)
    bounds = tuple((int(axis.min()), int(axis.max())) for axis in indices)
    return RoiLocation(int(label), int(indices[0].size), centre, bounds)
