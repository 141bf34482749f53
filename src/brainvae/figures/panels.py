"""The panels of a projective-field figure: each latent's slices cut, oriented, sized in mm and
blended over the dimmed population mean (projective_colour.over_anatomy).

Orientation: brainvae reads every image into one display orientation (brainvae.data.io.nifti:
array axes run Inferior, Posterior, Right). Which end of each axis is L/R, A/P or S/I, which
view a cut is and where it sits in mm are read from the affine (nibabel's aff2axcodes) when one
is given; without an affine the display orientation is assumed and slices are given by index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ANATOMY_BRIGHTNESS = 0.35
"""The population mean under the colours peaks at this grey: context, never mistaken for colour."""
_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "S": "I", "I": "S"}
_VIEW_OF_CUT = {"S": "axial", "I": "axial", "A": "coronal", "P": "coronal"}
_DISPLAY_AXCODES = ("I", "P", "R")


class FigureError(ValueError):
    """A figure that cannot be drawn as asked (a bad slice, file type or shape)."""


@dataclass(frozen=True)
class Panel:
    """One slice of one latent as drawn: the picture, its size in mm, the labels of its left
    and right edges, the view's name, where the slice sits (mm) and its index (None: the one
    slice of a 2D map)."""

    picture: np.ndarray
    size_mm: tuple[float, float]
    sides: tuple[str, str]
    view: str
    position: str
    index: int | None = None

    @property
    def subtitle(self) -> str:
        return f"{self.view}, {self.position}" if self.position else self.view


@dataclass(frozen=True)
class Geometry:
    """Per display axis (3, the squeezed one included): the axis code its index walks towards
    (L/R/A/P/S/I), the voxel size in mm; plus the affine (None: positions by index only)."""

    axcodes: tuple[str, str, str]
    zooms: tuple[float, float, float]
    affine: np.ndarray | None
    squeezed_axes: tuple[int, ...]

    @classmethod
    def of(cls, affine: np.ndarray | None, squeezed_axes: Sequence[int] = ()) -> Geometry:
        """The geometry of a display-orientation grid with this affine (None: assumed)."""
        squeezed = tuple(int(a) for a in squeezed_axes)
        if affine is None:
            return cls(_DISPLAY_AXCODES, (1.0, 1.0, 1.0), None, squeezed)
        import nibabel as nib

        affine = np.asarray(affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise FigureError(f"the affine must be a finite 4 x 4 matrix, got {affine.shape}")
        codes = tuple(str(code) for code in nib.aff2axcodes(affine))
        zooms = tuple(float(z) for z in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
        return cls(codes, zooms, affine, squeezed)  # type: ignore[arg-type]

    def full_axes(self, ndim: int) -> tuple[int, ...]:
        """The display axes (0..2) of a map's ndim spatial axes (2D maps skip the squeezed)."""
        if ndim == 3:
            return (0, 1, 2)
        squeezed = self.squeezed_axes[:1] or (0,)
        return tuple(axis for axis in range(3) if axis not in squeezed)

    def display_shape(self, shape: Sequence[int]) -> list[int]:
        """A map's spatial shape on the three display axes (1 along a 2D map's squeezed one),
        as position() takes it."""
        shape3 = [1, 1, 1]
        for position, axis in enumerate(self.full_axes(len(shape))):
            shape3[axis] = int(shape[position])
        return shape3

    def view_name(self, cut_axis: int) -> str:
        """axial, coronal or sagittal: the view of a slice across this display axis."""
        return _VIEW_OF_CUT.get(self.axcodes[cut_axis], "sagittal")

    def position(self, cut_axis: int, index: int, shape3: Sequence[int]) -> str:
        """The world coordinate a slice fixes (x, y or z in mm at the slice's centre), or ""
        without an affine."""
        if self.affine is None:
            return ""
        voxel = np.array([(n - 1) / 2.0 for n in shape3] + [1.0])
        voxel[cut_axis] = index
        world = self.affine @ voxel
        dominant = int(np.argmax(np.abs(self.affine[:3, cut_axis])))
        return f"{'xyz'[dominant]} = {world[dominant]:.0f} mm".replace("-", "\u2212")


def max_variance_slices(total_variance: np.ndarray) -> np.ndarray:
    """(K, ndim) int: per latent and spatial axis, the slice whose summed total variance is
    largest (where the latent moves the decoded image most)."""
    variance = np.asarray(total_variance, dtype=np.float64)
    spatial = variance.ndim - 1
    picks = np.zeros((len(variance), spatial), dtype=np.int64)
    for axis in range(spatial):
        others = tuple(a + 1 for a in range(spatial) if a != axis)
        picks[:, axis] = np.argmax(variance.sum(axis=others), axis=1)
    return picks


def chosen_slices(slices: Any, total_variance: np.ndarray, count: int) -> np.ndarray:
    shape = total_variance.shape[1:]
    if slices is None:
        return max_variance_slices(total_variance)
    picks = np.asarray(slices, dtype=np.float64)
    if picks.shape == (len(shape),):
        picks = np.repeat(picks[None], count, axis=0)
    if picks.shape != (count, len(shape)) or not np.array_equal(picks, np.round(picks)):
        raise FigureError(
            f"slices must be {len(shape)} whole numbers (one per axis) or {count} x {len(shape)}, "
            f"got {np.asarray(slices).tolist()}"
        )
    picks = picks.astype(np.int64)
    for axis, size in enumerate(shape):
        bad = picks[:, axis][(picks[:, axis] < 0) | (picks[:, axis] >= size)]
        if bad.size:
            raise FigureError(
                f"slice {int(bad[0])} on axis {axis} is outside the grid (0..{size - 1})"
            )
    return picks


def latent_panels(
    colour: np.ndarray,
    grey: np.ndarray,
    geometry: Geometry,
    slices: Sequence[int],
) -> list[Panel]:
    """One latent's panels: a 2D map whole, a volume cut across each axis at `slices`."""
    from brainvae.analysis.projective_colour import over_anatomy

    spatial = colour.shape[:-1]
    axes = geometry.full_axes(len(spatial))
    shape3 = geometry.display_shape(spatial)
    zooms, codes = geometry.zooms, geometry.axcodes
    if len(spatial) == 2:
        picture = over_anatomy(colour, grey)
        rows, columns = axes
        cut = geometry.squeezed_axes[0] if geometry.squeezed_axes else 0
        size = (spatial[1] * zooms[columns], spatial[0] * zooms[rows])
        sides = (_OPPOSITE[codes[columns]], codes[columns])
        return [
            Panel(picture, size, sides, geometry.view_name(cut), geometry.position(cut, 0, shape3))
        ]
    panels = []
    for cut in range(3):
        rows, columns = (axis for axis in range(3) if axis != cut)
        index = int(slices[cut])
        image = over_anatomy(np.take(colour, index, axis=cut), np.take(grey, index, axis=cut))
        size = (spatial[columns] * zooms[columns], spatial[rows] * zooms[rows])
        sides = (_OPPOSITE[codes[columns]], codes[columns])
        where = geometry.position(cut, index, shape3)
        panels.append(Panel(image, size, sides, geometry.view_name(cut), where, index))
    order = {"axial": 0, "coronal": 1, "sagittal": 2}
    return sorted(panels, key=lambda panel: order[panel.view])


def dimmed(mean_image: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """The population mean scaled to [0, ANATOMY_BRIGHTNESS] (zeros without one)."""
    if mean_image is None:
        return np.zeros(shape, dtype=np.float32)
    mean = np.asarray(mean_image, dtype=np.float32)
    if mean.shape != shape:
        raise FigureError(f"the mean image {mean.shape} is not on the maps' grid {shape}")
    peak = float(np.max(mean)) if mean.size else 0.0
    if not np.isfinite(peak) or peak <= 0:
        return np.zeros(shape, dtype=np.float32)
    return ANATOMY_BRIGHTNESS * np.clip(mean / peak, 0.0, 1.0)
