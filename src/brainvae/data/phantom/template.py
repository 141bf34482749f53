"""The real MNI152 2009 template and tissue maps, in display orientation at 1 mm, loaded once.

Everything the phantom draws comes from nilearn's packaged copy of the MNI ICBM152
2009 nonlinear symmetric template (offline: no fetch_* call). Arrays are reoriented
to the project's display axes (Inferior, Posterior, Right) so that the phantom's
grids, atlas and images share one convention with `brainvae.data.io.nifti`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TemplateVolumes:
    """MNI152 at 1 mm in display orientation: T1 in [0, 1], tissue probabilities, brain mask."""

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain: np.ndarray
    affine: np.ndarray  # display indices -> world mm

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.t1.shape)


def to_display(img, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Reorient a nibabel image to (Inferior, Posterior, Right) by flips/permutations only."""
    import nibabel as nib
    from nibabel.orientations import axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

    data = np.asarray(img.dataobj).astype(dtype)
    transform = ornt_transform(io_orientation(img.affine), axcodes2ornt(("I", "P", "R")))
    data = nib.orientations.apply_orientation(data, transform)
    affine = np.asarray(img.affine, float) @ inv_ornt_aff(transform, img.shape[:3])
    return np.ascontiguousarray(data), affine


@functools.lru_cache(maxsize=1)
def load_template() -> TemplateVolumes:
    """Load nilearn's packaged MNI152 (T1, GM, WM, brain mask) once per process."""
    from nilearn import datasets

    t1, affine = to_display(datasets.load_mni152_template(resolution=1))
    gm, _ = to_display(datasets.load_mni152_gm_template(resolution=1))
    wm, _ = to_display(datasets.load_mni152_wm_template(resolution=1))
    brain, _ = to_display(datasets.load_mni152_brain_mask(resolution=1))
    brain = (brain > 0).astype(np.float32)
    gm, wm = gm * brain, wm * brain
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    return TemplateVolumes(t1=t1 * brain, gm=gm, wm=wm, csf=csf, brain=brain, affine=affine)


def world_to_index(affine: np.ndarray, points_mm: np.ndarray) -> np.ndarray:
    """World mm points (..., 3) to fractional array indices (3, ...) of the grid with `affine`."""
    inv = np.linalg.inv(affine)
    pts = np.asarray(points_mm, float)
    return np.moveaxis(pts @ inv[:3, :3].T + inv[:3, 3], -1, 0)


def sample_world(
    volume: np.ndarray, affine: np.ndarray, points_mm: np.ndarray, *, order: int = 1
) -> np.ndarray:
    """Values of `volume` at world points (..., 3): linear for maps, nearest (order 0) for labels."""
    from scipy.ndimage import map_coordinates

    coords = world_to_index(affine, points_mm)
    out = map_coordinates(volume, coords.reshape(3, -1), order=order, mode="constant", cval=0.0)
    return out.reshape(coords.shape[1:]).astype(volume.dtype, copy=False)
