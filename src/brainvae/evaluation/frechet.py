"""The Frechet distance between Gaussians, and the PCA-based Frechet distance of image sets.

The PCA-based Frechet distance (METHODS.md section 4) compares a generated set of scans with
a real one without a pretrained image network: PCA is fitted on the real scans only, both
sets are projected on its leading axes (unit-length axes, so the distance is in squared
intensity units, not whitened), and the Frechet distance is taken between Gaussians with the
two sets' means and covariances in that space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainvae.errors import ModelError

DEFAULT_MAX_COMPONENTS = 32
"""Cap of the default number of PCA components."""
SCANS_PER_COMPONENT = 4
"""Default rule: at most one component per this many scans in the smaller set."""
IMAGINARY_TOLERANCE = 1e-6
"""Largest imaginary part of sqrtm(S1 S2) dropped as round-off, relative to max(1, Tr S1 + Tr S2)."""


def frechet_distance(
    mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray
) -> float:
    """||m1 - m2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)) between two Gaussians.

    scipy.linalg.sqrtm gives the matrix square root; imaginary parts it returns from round-off
    are dropped after checking they are small (IMAGINARY_TOLERANCE), larger ones are refused.
    A negative total from round-off (identical sets) is returned as 0."""
    from scipy.linalg import sqrtm

    mean1 = np.atleast_1d(np.asarray(mean1, dtype=np.float64))
    mean2 = np.atleast_1d(np.asarray(mean2, dtype=np.float64))
    cov1 = np.atleast_2d(np.asarray(cov1, dtype=np.float64))
    cov2 = np.atleast_2d(np.asarray(cov2, dtype=np.float64))
    dims = len(mean1)
    if mean1.ndim != 1 or mean1.shape != mean2.shape:
        raise ModelError(
            f"Frechet distance needs two means of the same length, got {mean1.shape} and "
            f"{mean2.shape}"
        )
    for name, cov in (("first", cov1), ("second", cov2)):
        if cov.shape != (dims, dims):
            raise ModelError(
                f"the {name} covariance has shape {cov.shape}, expected ({dims}, {dims}) for "
                f"means of length {dims}"
            )
    for name, array in (("mean1", mean1), ("cov1", cov1), ("mean2", mean2), ("cov2", cov2)):
        if not np.isfinite(array).all():
            raise ModelError(f"Frechet distance: {name} contains NaN or infinity")
    root = sqrtm(cov1 @ cov2)
    scale = max(1.0, abs(np.trace(cov1)) + abs(np.trace(cov2)))
    if not np.isfinite(root).all():
        raise ModelError(
            "the matrix square root of S1 S2 is not finite: a covariance is singular; use "
            "fewer components or more scans"
        )
    if np.iscomplexobj(root):
        largest = float(np.abs(root.imag).max())
        if largest > IMAGINARY_TOLERANCE * scale:
            raise ModelError(
                f"sqrtm(S1 S2) has imaginary parts up to {largest:.3g} (more than round-off): "
                "a covariance is not positive semi-definite"
            )
        root = root.real
    difference = mean1 - mean2
    distance = difference @ difference + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(root)
    return float(max(distance, 0.0))


@dataclass(frozen=True)
class PCAFrechet:
    """A PCA-based Frechet distance and what it was computed on.

    explained_variance: share of the real set's total variance (inside the mask) kept by the
    n_components axes.
    """

    distance: float
    n_components: int
    explained_variance: float
    n_real: int
    n_generated: int

    def describe(self) -> str:
        """One line for the command line and the docks."""
        return (
            f"PCA-based Frechet distance {self.distance:.4g} ({self.n_components} components "
            f"keeping {100 * self.explained_variance:.1f} % of the real variance; "
            f"{self.n_real} real, {self.n_generated} generated scans)"
        )


def default_components(n_real: int, n_generated: int) -> int:
    """min(DEFAULT_MAX_COMPONENTS, n_real // 4, n_generated // 4): with at least four scans
    per dimension, a sample covariance of white data keeps its eigenvalues within about
    (1 +- 1/2)^2 of the truth (Marchenko-Pastur), so neither covariance is near singular."""
    return min(
        DEFAULT_MAX_COMPONENTS, n_real // SCANS_PER_COMPONENT, n_generated // SCANS_PER_COMPONENT
    )


def _scan_rows(name: str, scans: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """(N, voxels) float64 rows of a stack (inside the mask), checked finite."""
    rows = scans.reshape(len(scans), -1)
    if mask is not None:
        rows = rows[:, mask.reshape(-1)]
    rows = np.asarray(rows, dtype=np.float64)
    bad = ~np.isfinite(rows).all(axis=1)
    if bad.any():
        raise ModelError(
            f"{name} scan(s) {np.flatnonzero(bad)[:10].tolist()} contain NaN or infinity"
        )
    return rows


def pca_frechet_distance(
    real: np.ndarray,
    generated: np.ndarray,
    n_components: int | None = None,
    mask: np.ndarray | None = None,
) -> PCAFrechet:
    """Frechet distance between real and generated scans (N, *spatial) in the space of the
    real set's leading principal axes (PCA fitted on `real` only; voxels inside the one
    spatial `mask` when given). n_components defaults to `default_components`."""
    real = np.asarray(real)
    generated = np.asarray(generated)
    for name, stack in (("real", real), ("generated", generated)):
        if stack.ndim not in (3, 4):
            raise ModelError(
                f"{name} scans must be a stack (N, *spatial) with 2 or 3 spatial axes, got "
                f"shape {stack.shape}"
            )
    if real.shape[1:] != generated.shape[1:]:
        raise ModelError(
            f"real scans are {real.shape[1:]} and generated scans {generated.shape[1:]}: the "
            "PCA-based Frechet distance needs one scan shape"
        )
    spatial = real.shape[1:]
    if mask is not None:
        from brainvae.evaluation.image_quality import as_boolean_mask

        mask = as_boolean_mask(mask)
        if mask.shape != spatial:
            raise ModelError(
                f"the PCA-based Frechet distance takes one brain mask of the scan shape "
                f"{spatial}, got shape {mask.shape}"
            )
        if not mask.any():
            raise ModelError("the brain mask is empty")
    n_real, n_generated = len(real), len(generated)
    if n_components is None:
        n_components = default_components(n_real, n_generated)
        if n_components < 1:
            raise ModelError(
                f"the PCA-based Frechet distance needs at least {SCANS_PER_COMPONENT} real and "
                f"{SCANS_PER_COMPONENT} generated scans, got {n_real} and {n_generated}"
            )
    elif n_components < 1 or n_components >= min(n_real, n_generated):
        raise ModelError(
            f"n_components must be 1 to {min(n_real, n_generated) - 1} (fewer than the scans "
            f"of each set: {n_real} real, {n_generated} generated), got {n_components}"
        )
    real_rows = _scan_rows("real", real, mask)
    generated_rows = _scan_rows("generated", generated, mask)
    if n_components > real_rows.shape[1]:
        raise ModelError(
            f"n_components {n_components} exceeds the {real_rows.shape[1]} voxels compared"
        )
    axes, kept, total = _principal_axes(real_rows, n_components)
    if kept[-1] <= 1e-12 * max(total, 1e-300):
        rank = int((kept > 1e-12 * max(total, 1e-300)).sum())
        raise ModelError(
            f"the real scans vary along only {rank} direction(s): use at most {rank} "
            f"component(s), not {n_components}"
        )
    centre = real_rows.mean(axis=0)
    real_codes = (real_rows - centre) @ axes
    generated_codes = (generated_rows - centre) @ axes
    distance = frechet_distance(
        real_codes.mean(axis=0),
        np.cov(real_codes, rowvar=False),
        generated_codes.mean(axis=0),
        np.cov(generated_codes, rowvar=False),
    )
    return PCAFrechet(
        distance=distance,
        n_components=int(n_components),
        explained_variance=float(kept.sum() / total) if total > 0 else 0.0,
        n_real=n_real,
        n_generated=n_generated,
    )


def _principal_axes(rows: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(voxels, count) unit principal axes of the rows, their variances (descending), and the
    total variance; exact, from the leading eigenvectors of the smaller of the Gram (n x n)
    and covariance (voxels x voxels) matrices (LAPACK evx computes only those `count`)."""
    from scipy.linalg import eigh

    centred = rows - rows.mean(axis=0)
    n, voxels = centred.shape
    gram_route = n <= voxels
    square = centred @ centred.T if gram_route else centred.T @ centred
    size = len(square)
    values, vectors = eigh(square, subset_by_index=(size - count, size - 1), driver="evx")
    values, vectors = np.clip(values[::-1], 0.0, None), vectors[:, ::-1]
    if gram_route:
        axes = centred.T @ vectors
        axes /= np.maximum(np.linalg.norm(axes, axis=0), 1e-300)
    else:
        axes = vectors
    total = float(np.trace(square)) / (n - 1)
    return axes, values / (n - 1), total
