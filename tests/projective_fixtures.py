"""Shared ground truth for projective-field tests: the oracle, a PCA fit and the checks."""

from __future__ import annotations

import numpy as np

from oracle_model import make_phantom, oracle_setup, sample_factors


def small_oracle(shape: tuple[int, ...] = (24, 30), n: int = 40, seed: int = 0):
    """(phantom, images, factors, model) on a small grid: rendering is the slow part."""
    return oracle_setup(shape, n=n, seed=seed)


def local_pca(shape: tuple[int, ...] = (48, 60), seed: int = 0):
    """(phantom, factors, model): an 8-component PCA of a population of eight local factors
    (ventricle, lesions, cortex, five nuclei), as test_receptive_field.py builds it."""
    from brainvae.models import ModelConfig, build_model

    phantom = make_phantom(shape, lesion_amplitude=0.6, ventricle_edge=0.04, n_nuclei=5)
    factors = sample_factors(160, seed, phantom.n_factors)
    images = phantom.render(factors, noise_sd=0.01, seed=seed + 1)
    config = ModelConfig(input_shape=shape, latent_dim=8, family="pca", likelihood="gaussian")
    return phantom, factors, images, build_model(config).fit(images)


def variance_share(variance_map: np.ndarray, region: np.ndarray, dilation: int = 0) -> float:
    """Share of a map's total variance inside a region (dilated by `dilation` voxels)."""
    from scipy.ndimage import binary_dilation

    region = np.asarray(region, dtype=bool)
    if dilation:
        region = binary_dilation(region, iterations=dilation)
    total = float(np.sum(variance_map))
    return float(np.sum(variance_map[region]) / total) if total > 0 else 0.0


def ground_truth_holds(total_variance: np.ndarray, phantom) -> bool:
    """The oracle's truth: z1 (ventricle) varies >= 80 % inside the ventricle zone dilated by 2,
    z2 (lesions) >= 80 % inside the lesion zone dilated by 2, and z3 (cortex intensity) puts
    < 5 % of its variance in the ventricle zone and >= 80 % in the cortex."""
    ventricle, lesion, cortex = (np.asarray(total_variance[k]) for k in range(3))
    return (
        variance_share(ventricle, phantom.ventricle_zone, 2) >= 0.8
        and variance_share(lesion, phantom.lesion_zone, 2) >= 0.8
        and variance_share(cortex, phantom.ventricle_zone, 2) < 0.05
        and variance_share(cortex, phantom.cortex, 1) >= 0.8
    )
