"""Label images moved onto another grid of the same world space, by their affines.

An ROI atlas is often drawn at another resolution or voxel order than the scans (a 2 mm MNI
grey-matter mask for 4 mm scans, an RAS atlas for LAS scans). Both affines map voxels to the
same millimetres, so each voxel of the target grid takes the label of the nearest ROI voxel
(nearest neighbour keeps labels integer and never invents a label between two others).
Both grids are read in display order (read_nifti), so a voxel centre exactly between two ROI
voxels takes the same one whatever the ROI file's voxel order. Shapes are reported in a file's
own array order, as nibabel and FSL show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset

PARALLEL_COSINE = 0.999


@dataclass(frozen=True)
class Grid:
    """A 3D voxel grid in world space: its array shape and the affine from indices to mm."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def zooms(self) -> tuple[float, float, float]:
        """Voxel size in mm along each array axis."""
        norms = np.sqrt((np.asarray(self.affine)[:3, :3] ** 2).sum(axis=0))
        return (float(norms[0]), float(norms[1]), float(norms[2]))

    @property
    def axcodes(self) -> tuple[str, ...]:
        """Where each array axis points (nibabel's codes, e.g. R, A, S)."""
        import nibabel as nib

        return tuple(str(code) for code in nib.aff2axcodes(self.affine))

    def reordered(self, axcodes: tuple[str, ...]) -> Grid:
        """The same voxels with array axes flipped and permuted to point along `axcodes`."""
        from nibabel.orientations import axcodes2ornt, inv_ornt_aff, ornt_transform

        transform = ornt_transform(axcodes2ornt(self.axcodes), axcodes2ornt(axcodes))
        shape = [0, 0, 0]
        for axis, (target, _) in enumerate(transform):
            shape[int(target)] = self.shape[axis]
        affine = np.asarray(self.affine, dtype=np.float64) @ inv_ornt_aff(transform, self.shape)
        return Grid((shape[0], shape[1], shape[2]), affine)

    def world_box(self) -> np.ndarray:
        """(3, 2) lowest and highest world x, y, z of the voxel centres, in mm."""
        corners = np.array(np.meshgrid(*[(0, n - 1) for n in self.shape], indexing="ij"))
        points = self.affine[:3, :3] @ corners.reshape(3, -1) + self.affine[:3, 3:4]
        return np.stack([points.min(axis=1), points.max(axis=1)], axis=1)

    def describe(self) -> str:
        """'91 x 109 x 91 at 2 mm' (shape in this grid's array order)."""
        return f"{' x '.join(map(str, self.shape))} at {_sizes_text(self.zooms)}"


@dataclass(frozen=True)
class ResampledLabels:
    """Labels on the target grid plus what a user needs to trust them."""

    labels: np.ndarray
    coverage: float
    vanished: tuple[int, ...]


def _sizes_text(zooms: tuple[float, ...]) -> str:
    """'2 mm' when isotropic, else '1 x 1 x 2.5 mm'."""
    sizes = [f"{size:.3g}" for size in zooms]
    return f"{sizes[0]} mm" if len(set(sizes)) == 1 else f"{' x '.join(sizes)} mm"


def box_text(grid: Grid) -> str:
    """'x -90..90, y -126..90, z -72..108 mm': where the grid's voxel centres lie."""
    box = grid.world_box()
    parts = [f"{name} {low:.4g}..{high:.4g}" for name, (low, high) in zip("xyz", box, strict=True)]
    return ", ".join(parts) + " mm"


def index_map(source: Grid, target: Grid) -> np.ndarray:
    """4x4 from target voxel indices to source voxel indices (through world mm).

    A one-voxel-thick source parallel to a one-voxel-thick target applies wherever the target
    plane lies along its normal (a slice ROI serves every slice, as on identical grids).
    """
    mapping = np.linalg.inv(source.affine) @ np.asarray(target.affine, dtype=np.float64)
    for axis in _parallel_thin_axes(source, target):
        mapping[axis, :] = 0.0
    mapping[3, :] = (0.0, 0.0, 0.0, 1.0)
    return mapping


def _parallel_thin_axes(source: Grid, target: Grid) -> list[int]:
    """Source axes of one voxel that run along the normal of a one-voxel-thick target."""
    thin_target = [axis for axis in range(3) if target.shape[axis] == 1]
    if len(thin_target) != 1:
        return []
    normal = target.affine[:3, thin_target[0]]
    normal = normal / np.linalg.norm(normal)
    found = []
    for axis in range(3):
        if source.shape[axis] != 1:
            continue
        direction = source.affine[:3, axis] / np.linalg.norm(source.affine[:3, axis])
        if abs(float(direction @ normal)) > PARALLEL_COSINE:
            found.append(axis)
    return found


def resample_labels(labels: np.ndarray, source: Grid, target: Grid) -> ResampledLabels:
    """Nearest-neighbour labels of `source` at every voxel of `target` (0 outside the source).

    coverage is the share of target voxels that fall inside the source grid; vanished are the
    labels of the source that no target voxel picked (too small for the grid, or outside it).
    """
    from scipy.ndimage import affine_transform

    if tuple(labels.shape) != tuple(source.shape):
        raise ValueError(f"labels of shape {labels.shape} do not fit the grid {source.shape}")
    mapping = index_map(source, target)
    moved = affine_transform(
        labels, mapping, output_shape=target.shape, order=0, mode="constant", cval=0
    )
    inside = affine_transform(
        np.ones(source.shape, dtype=np.uint8),
        mapping,
        output_shape=target.shape,
        order=0,
        mode="constant",
        cval=0,
    )
    before = set(np.unique(labels).tolist()) - {0}
    after = set(np.unique(moved).tolist()) - {0}
    return ResampledLabels(
        labels=moved,
        coverage=float(inside.mean()),
        vanished=tuple(int(label) for label in sorted(before - after)),
    )


def dataset_grid(dataset: PreparedDataset) -> Grid:
    """The dataset's samples as a 3D display-order grid: slice datasets at their usual slice."""
    shape = list(int(n) for n in dataset.scan_shape)
    for axis in sorted(dataset.squeezed_axes):
        shape.insert(axis, 1)
    return Grid((shape[0], shape[1], shape[2]), dataset.maps_affine())


def dataset_file_axcodes(dataset: PreparedDataset) -> tuple[str, ...]:
    """The voxel order of the dataset's files (its reference NIfTI's), else display order.

    The prepared arrays are in display order; a user compares shapes with their scans' headers.
    """
    import nibabel as nib

    from brainvae.data.io.nifti import DISPLAY_AXCODES, is_nifti_path

    reference = dataset.report.get("affine_reference")
    if reference and is_nifti_path(reference) and Path(reference).is_file():
        try:
            return tuple(str(c) for c in nib.aff2axcodes(nib.load(str(reference)).affine))
        except Exception:  # noqa: BLE001 - an unreadable reference only costs the file order
            pass
    return DISPLAY_AXCODES


SLICE_AXIS_NAMES = ("axial", "coronal", "sagittal")


def slice_note(dataset: PreparedDataset) -> str:
    """For slice datasets, which slice the 3D ROIs were cut at (empty otherwise)."""
    if dataset.slice_axis is None or "slice_index" not in dataset.metadata.columns:
        return ""
    slices = dataset.metadata["slice_index"].dropna()
    if not len(slices):
        return ""
    used = int(slices.mode().iloc[0])
    distinct = int(slices.nunique())
    others = f", the most common of its {distinct} slices" if distinct > 1 else ""
    return f", its {SLICE_AXIS_NAMES[dataset.slice_axis]} slice {used}{others}"
