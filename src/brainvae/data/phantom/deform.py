"""Backward warps of the phantom: rigid nuisance, global shrinkage, ventricle enlargement.

Each warp maps an observed fine-grid point (display mm) to the template point it
shows. The ventricle warp moves points along the gradient of a smoothed ventricle
mask, x -> x + a * grad V(x), whose Jacobian I + a * Hessian(V) stays positive when
|a| is below 1 / max|eigenvalue| (computed per grid); larger enlargements compose
several such steps, and a composition of fold-free maps never folds.
"""

from __future__ import annotations

import math

import numpy as np

from brainvae.data.phantom.factors import ScanFactors
from brainvae.data.phantom.grid import PhantomGrid


def rotation_matrix(angles_deg: tuple[float, float, float]) -> np.ndarray:
    """Rotation about the display axes I, P, R (in that order), degrees."""
    matrix = np.eye(3)
    for axis, angle in enumerate(angles_deg):
        if angle == 0.0:
            continue
        a, b = [k for k in range(3) if k != axis]
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        step = np.eye(3)
        step[a, a], step[a, b], step[b, a], step[b, b] = c, -s, s, c
        matrix = step @ matrix
    return matrix


def fine_points(grid: PhantomGrid) -> np.ndarray:
    """Display-mm coordinates (3, *fine) of the fine grid's voxel centres."""
    index = np.indices(grid.fine_shape, dtype=np.float32)
    return index * grid.fine_spacing.astype(np.float32)[:, None, None, None]


def sample_fine(
    volume: np.ndarray, points: np.ndarray, grid: PhantomGrid, order: int = 1
) -> np.ndarray:
    """Values of a fine-grid map at display-mm points (3, ...), edge values outside."""
    from scipy.ndimage import map_coordinates

    index = points / grid.fine_spacing.astype(np.float32)[:, None, None, None]
    return map_coordinates(volume, index, order=order, mode="nearest")


def ventricle_warp(points: np.ndarray, grid: PhantomGrid, expansion: float) -> np.ndarray:
    """Enlarge (expansion > 0) or shrink the ventricles by |expansion| fold-free steps."""
    remaining = abs(float(expansion))
    sign = 1.0 if expansion >= 0 else -1.0
    while remaining > 1e-9:
        amplitude = sign * grid.ventricle_step_mm2 * min(1.0, remaining)
        step = np.stack([sample_fine(grid.ventricle_gradient[a], points, grid) for a in range(3)])
        points = points + amplitude * step
        remaining -= 1.0
    return points


def source_points(factors: ScanFactors, grid: PhantomGrid) -> np.ndarray:
    """Template points (display mm, (3, *fine)) shown at each fine voxel of this scan."""
    points = fine_points(grid)
    centre = grid.centre_mm.astype(np.float32)[:, None, None, None]
    rotation = rotation_matrix(factors.rotation_deg).astype(np.float32)
    shift = np.asarray(factors.shift_mm, np.float32)[:, None, None, None]
    relative = np.tensordot(rotation.T, points - centre - shift, axes=1)  # undo rotation
    points = centre + relative / np.float32(1.0 - factors.shrinkage)  # undo shrinkage
    return ventricle_warp(points, grid, factors.ventricle_expansion)


def jacobian_determinant(points: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """det of d(source)/d(observed) per voxel; singleton axes count as identity."""
    jac = np.zeros((*points.shape[1:], 3, 3), np.float64)
    for axis in range(3):
        if points.shape[1 + axis] > 1:
            derivative = np.gradient(points, spacing[axis], axis=1 + axis)
            jac[..., :, axis] = np.moveaxis(derivative, 0, -1)
        else:
            jac[..., axis, axis] = 1.0
    return np.linalg.det(jac)


def warp_jacobian(factors: ScanFactors, grid: PhantomGrid) -> np.ndarray:
    """Jacobian determinant of this scan's whole warp on the fine grid (> 0 means no folding)."""
    return jacobian_determinant(source_points(factors, grid), grid.fine_spacing)


def display_to_world(points: np.ndarray, grid: PhantomGrid) -> np.ndarray:
    """Display-mm points (3, ...) to world mm (3, ...) through the fine grid's affine."""
    index = points / grid.fine_spacing.astype(np.float32).reshape(3, *([1] * (points.ndim - 1)))
    linear = grid.fine_affine[:3, :3].astype(np.float32)
    offset = grid.fine_affine[:3, 3].astype(np.float32).reshape(3, *([1] * (points.ndim - 1)))
    return np.tensordot(linear, index, axes=1) + offset


# MS lesion sites lie on the periventricular rim: this far (mm) from the ventricle wall, so an
# ovoid centred there, its long axis along the wall's normal, touches the wall (Dawson's fingers).
LESION_RIM_MM = (3.0, 6.0)


def lesion_sites(grid: PhantomGrid) -> tuple[np.ndarray, np.ndarray]:
    """World points of the lesion zone's rim and unit normals pointing away from the ventricles.

    Only points LESION_RIM_MM from the (undeformed) ventricle wall are kept; the population
    picks its fixed lesion sites among them (`factors.site_set`).
    """
    display = grid.lesion_candidates_mm.T.astype(np.float32)  # (3, n)
    index = np.round(display / grid.fine_spacing[:, None]).astype(int)
    distance = grid.maps["distance"][index[0], index[1], index[2]]
    rim = (distance >= LESION_RIM_MM[0]) & (distance <= LESION_RIM_MM[1])
    if rim.any():
        display = display[:, rim]
    gradient = np.stack(
        [
            np.gradient(grid.maps["distance"], grid.fine_spacing[a], axis=a)
            if grid.fine_shape[a] > 1
            else np.zeros(grid.fine_shape, np.float32)
            for a in range(3)
        ]
    )
    index = np.round(display / grid.fine_spacing[:, None]).astype(int)
    normal = gradient[:, index[0], index[1], index[2]]
    direction = grid.fine_affine[:3, :3] / grid.fine_spacing[None, :]
    normal_world = direction @ normal
    normal_world /= np.maximum(np.linalg.norm(normal_world, axis=0, keepdims=True), 1e-6)
    return display_to_world(display, grid).T, normal_world.T
