"""Working grids of the phantom (2D coronal slice, 3D volume) with all maps the renderer samples.

A grid is built once per process (functools.lru_cache) from the 1 mm template and
atlas: the renderer works on a "fine" grid (2x finer than the output in-plane: 2 mm
in 3D, 0.55 mm in 2D) and block-averages to the output grid, so warps are applied
near the template's own resolution and the output has no interpolation aliasing.
All geometry is in "display mm": array indices (Inferior, Posterior, Right) times
the voxel size, which the affine maps to world mm.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from brainvae.data.phantom.atlas import ATLAS_LABELS, LABEL_OF, build_atlas_1mm
from brainvae.data.phantom.template import load_template, sample_world

CORONAL_SLICE_Y_MM = -12.0  # through hippocampus, thalamus, striatum and lateral ventricles
VENTRICLE_POTENTIAL_SIGMA_MM = 4.0
STEP_SAFETY = 0.7  # share of the largest fold-free ventricle warp amplitude used per step


@dataclass(frozen=True)
class GridSpec:
    """Output grid: shape in display order, voxel size (mm), world centre (mm), fine factor."""

    dims: int
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    centre_mm: tuple[float, float, float]  # world (x, y, z) of the grid centre
    fine_factor: int = 2

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of the written arrays: the singleton (slice) axis dropped in 2D."""
        return tuple(n for n in self.shape if n > 1) if self.dims == 2 else self.shape

    @property
    def slice_axis(self) -> int | None:
        """2D: the display axis across the slice (1, posterior, for coronal; 0, inferior, for
        axial); None in 3D."""
        return self.shape.index(1) if self.dims == 2 else None

    @property
    def world_slice_axis(self) -> int | None:
        """2D: the world axis (x, y, z) across the slice; display axes (I, P, R) run along
        world (z, y, x)."""
        return None if self.slice_axis is None else 2 - self.slice_axis


# FLAIR study grid: MNI 1 mm, 160 x 192 x 160 box around the brain, 4 mm blocks.
GRID_3D = GridSpec(3, (40, 48, 40), (4.0, 4.0, 4.0), (0.0, -17.5, 4.5))
# One coronal slice, 128 x 160 at 1.1 mm (both divisible by 32).
GRID_2D = GridSpec(2, (128, 1, 160), (1.1, 1.1, 1.1), (0.0, CORONAL_SLICE_Y_MM, 15.0))
# One axial slice through the lateral ventricles' bodies, 144 x 120 at 1.25 mm: another
# orientation and grid than the sample's, to check that defaults hold on data nobody tuned on.
GRID_2D_AXIAL = GridSpec(2, (1, 144, 120), (1.25, 1.25, 1.25), (0.0, -17.5, 18.0))
DEFAULT_GRIDS = {2: GRID_2D, 3: GRID_3D}
ORIENTATIONS = {"coronal": GRID_2D, "axial": GRID_2D_AXIAL}
"""2D slice grids by orientation (3D has one grid)."""


def grid_spec(dims: int, orientation: str = "coronal") -> GridSpec:
    """The output grid of a population: the 3D volume, or a 2D slice in that orientation."""
    from brainvae.errors import DatasetError

    if dims not in DEFAULT_GRIDS:
        raise DatasetError(f"phantom grids exist for dims 2 and 3, not {dims}")
    if dims == 3:
        return GRID_3D
    if orientation not in ORIENTATIONS:
        raise DatasetError(
            f"unknown slice orientation {orientation!r}; expected one of {', '.join(ORIENTATIONS)}"
        )
    return ORIENTATIONS[orientation]


@dataclass
class PhantomGrid:
    """Everything the renderer needs for one grid; arrays of the fine grid are (I, P, R)."""

    spec: GridSpec
    affine: np.ndarray  # output display indices -> world mm
    fine_affine: np.ndarray
    fine_spacing: np.ndarray  # (3,) mm
    maps: dict[
        str, np.ndarray
    ]  # fine float32 maps: gm, wm, csf, brain, texture, distance, exposure
    labels: np.ndarray  # fine int8 ROI labels
    ventricle_gradient: np.ndarray  # (3, *fine) gradient of the ventricle potential, 1/mm
    ventricle_step_mm2: float  # fold-free amplitude of one ventricle warp step
    centre_mm: np.ndarray  # display-mm brain centre on the fine grid (scaling, rotation pivot)
    lesion_candidates_mm: np.ndarray  # (n, 3) display-mm points of the lesion zone
    atlas: np.ndarray = field(default=None)  # output int labels
    brain_mask: np.ndarray = field(default=None)  # output uint8

    @property
    def fine_shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.labels.shape)

    @property
    def factors(self) -> tuple[int, int, int]:
        """Block size between the fine and output grids per display axis."""
        return tuple(self.spec.fine_factor if n > 1 else 1 for n in self.spec.shape)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume (2D: area x slice thickness) of one output voxel, in ml."""
        return float(np.prod(self.spec.spacing_mm)) / 1000.0


def grid_affine(shape, spacing, centre_world) -> np.ndarray:
    """Display-orientation affine (I, P, R -> x, y, z) whose voxel grid is centred on centre_world."""
    direction = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]])
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(spacing, float)[None, :]
    half = (np.asarray(shape, float) - 1.0) / 2.0
    affine[:3, 3] = np.asarray(centre_world, float) - affine[:3, :3] @ half
    return affine


def block_mean(array: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Average non-overlapping blocks (the FLAIR study's 4x4x4 downsampling, here fine -> output)."""
    shape = []
    for n, f in zip(array.shape, factors, strict=True):
        shape += [n // f, f]
    return array.reshape(shape).mean(axis=tuple(range(1, 2 * array.ndim, 2)))


def _fine_world_points(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    index = np.indices(shape, dtype=np.float64).reshape(3, -1).T
    return index @ affine[:3, :3].T + affine[:3, 3]


def _texture(template) -> np.ndarray:
    """The T1's own detail left after predicting it from the tissue maps (keeps the real look)."""
    brain = template.brain > 0
    design = np.stack([template.gm[brain], template.wm[brain], template.csf[brain]], axis=1)
    weights, *_ = np.linalg.lstsq(design, template.t1[brain], rcond=None)
    predicted = np.tensordot(weights, np.stack([template.gm, template.wm, template.csf]), axes=1)
    return ((template.t1 - predicted) * template.brain).astype(np.float32)


def _gradient(field_: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Gradient along each display axis in 1/mm, zero along singleton axes."""
    out = np.zeros((3, *field_.shape), np.float32)
    for axis in range(3):
        if field_.shape[axis] > 1:
            out[axis] = np.gradient(field_, spacing[axis], axis=axis)
    return out


def fold_free_step(gradient: np.ndarray, spacing: np.ndarray) -> float:
    """Largest |a| with det(I + a * Hessian) > 0 everywhere, times STEP_SAFETY."""
    hessian = np.stack([_gradient(gradient[axis], spacing) for axis in range(3)])
    matrices = np.moveaxis(hessian.reshape(3, 3, -1), -1, 0)
    matrices = 0.5 * (matrices + np.transpose(matrices, (0, 2, 1)))
    largest = float(np.abs(np.linalg.eigvalsh(matrices)).max())
    return STEP_SAFETY / largest


@functools.lru_cache(maxsize=4)
def build_grid(spec: GridSpec) -> PhantomGrid:
    """Resample template, tissue maps and atlas onto the spec's fine and output grids (cached)."""
    from scipy import ndimage

    template = load_template()
    atlas = build_atlas_1mm()
    affine = grid_affine(spec.shape, spec.spacing_mm, spec.centre_mm)
    factors = np.array([spec.fine_factor if n > 1 else 1 for n in spec.shape])
    fine_spacing = np.asarray(spec.spacing_mm, float) / factors
    fine_shape = tuple(int(n) for n in np.asarray(spec.shape) * factors)
    fine_affine = grid_affine(fine_shape, fine_spacing, spec.centre_mm)
    points = _fine_world_points(fine_affine, fine_shape)

    def resample(volume: np.ndarray) -> np.ndarray:
        return sample_world(volume, template.affine, points).reshape(fine_shape)

    exposure = ndimage.gaussian_filter(template.csf * (~atlas.ventricles), 1.5)
    maps = {
        "gm": resample(template.gm),
        "wm": resample(template.wm),
        "csf": resample(template.csf),
        "brain": resample(template.brain),
        "texture": resample(_texture(template)),
        "distance": resample(atlas.distance_to_ventricles_mm),
        "exposure": resample(exposure.astype(np.float32)),
    }
    fractions = np.stack(
        [
            resample((atlas.labels == label).astype(np.float32))
            for label in range(len(ATLAS_LABELS) + 1)
        ]
    )
    labels = np.argmax(fractions, axis=0).astype(np.int8)
    maps["ventricles"] = fractions[LABEL_OF["ventricles"]]  # linear: volumes vary smoothly
    out_fractions = np.stack([block_mean(f, tuple(factors)) for f in fractions])
    out_labels = np.argmax(out_fractions, axis=0).astype(np.int16)

    sigma = VENTRICLE_POTENTIAL_SIGMA_MM / fine_spacing * (np.asarray(fine_shape) > 1)
    potential = ndimage.gaussian_filter(fractions[LABEL_OF["ventricles"]], sigma)
    gradient = _gradient(potential, fine_spacing)
    step = fold_free_step(gradient, fine_spacing)

    index = np.indices(fine_shape, dtype=np.float32)
    brain = maps["brain"] > 0.5
    centre = np.array([(index[a][brain]).mean() * fine_spacing[a] for a in range(3)])
    zone = labels == LABEL_OF["lesion_zone"]
    candidates = np.stack([index[a][zone] * fine_spacing[a] for a in range(3)], axis=1)
    squeeze_out = tuple(spec.output_shape)
    return PhantomGrid(
        spec=spec,
        affine=affine,
        fine_affine=fine_affine,
        fine_spacing=fine_spacing,
        maps=maps,
        labels=labels,
        ventricle_gradient=gradient,
        ventricle_step_mm2=step,
        centre_mm=centre,
        lesion_candidates_mm=candidates.astype(np.float32),
        atlas=out_labels.reshape(squeeze_out),
        brain_mask=(block_mean(maps["brain"], tuple(factors)) > 0.5)
        .astype(np.uint8)
        .reshape(squeeze_out),
    )


def get_grid(dims: int, orientation: str = "coronal") -> PhantomGrid:
    """The 3D grid or the 2D slice grid of that orientation, built once per process."""
    return build_grid(grid_spec(dims, orientation))
