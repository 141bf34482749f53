"""The receptive field's KL maths: how far a latent's Gaussian moves between the extreme
perturbation weights, with a per-latent variance floor so the KL stays finite."""

from __future__ import annotations

import numpy as np

from brainvae.errors import ReceptiveFieldError

FLOOR_FRACTION = 1e-6
"""Each latent's variance floor is this fraction of its population variance (sd 1e-3 of the
population sd; of the prior's variance 1 when the population variance is 0). Variances below it
are raised to it before the KL: a Gaussian that collapses to a point (all images the same after
blanking) would otherwise make the KL 0/0 or infinite. Relative, so a latent's impact does not
change when its codes are rescaled (an absolute floor let a latent with a tiny spread reach
larger impacts than live ones); the result records where it was used (floor_hit)."""


def gaussian_kl(
    mean0: np.ndarray, var0: np.ndarray, mean1: np.ndarray, var1: np.ndarray
) -> np.ndarray:
    """KL(N(mean0, var0) || N(mean1, var1)) elementwise, in nats (variances must be > 0)."""
    mean0, var0 = np.asarray(mean0, np.float64), np.asarray(var0, np.float64)
    mean1, var1 = np.asarray(mean1, np.float64), np.asarray(var1, np.float64)
    return 0.5 * (np.log(var1 / var0) + (var0 + (mean0 - mean1) ** 2) / var1 - 1.0)


def variance_floors(
    population_variance: np.ndarray, floor_fraction: float = FLOOR_FRACTION
) -> np.ndarray:
    """(L,) per-latent floors: floor_fraction of each latent's population variance (of 1, the
    prior's variance, for a latent that does not vary at all)."""
    population_variance = np.asarray(population_variance, dtype=np.float64)
    return floor_fraction * np.where(population_variance > 0, population_variance, 1.0)


def impact_from_gaussians(
    means: np.ndarray,
    variances: np.ndarray,
    one_sided: bool = False,
    variance_floor: float | np.ndarray = FLOOR_FRACTION,
) -> tuple[np.ndarray, np.ndarray]:
    """(impact, floor_hit) from (R, W, L) Gaussians: KL between the first and last weight.

    Symmetric by default (mean of KL(lo || hi) and KL(hi || lo)); variances below
    variance_floor (a number, or (L,) per latent: variance_floors) are raised to it so the KL
    stays finite, and floor_hit says where.
    """
    variance_floor = np.asarray(variance_floor, dtype=np.float64)
    if np.any(~(variance_floor > 0)):
        raise ReceptiveFieldError(
            f"the variance floor must be > 0, got {variance_floor.ravel()[:4].tolist()}"
        )
    means, variances = np.asarray(means, np.float64), np.asarray(variances, np.float64)
    low_var, high_var = variances[:, 0], variances[:, -1]
    floor_hit = (low_var < variance_floor) | (high_var < variance_floor)
    low_var = np.maximum(low_var, variance_floor)
    high_var = np.maximum(high_var, variance_floor)
    forward = gaussian_kl(means[:, 0], low_var, means[:, -1], high_var)
    if one_sided:
        return forward, floor_hit
    backward = gaussian_kl(means[:, -1], high_var, means[:, 0], low_var)
    return 0.5 * (forward + backward), floor_hit
