"""Frechet distance and the PCA-based Frechet distance: against numpy transcriptions of the
formula and of PCA, scikit-learn's explained variance, the known properties (zero for
identical sets, growing with a mean shift, symmetric), the default rule and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from brainvae.errors import ModelError
from brainvae.evaluation.frechet import (
    PCAFrechet,
    default_components,
    frechet_distance,
    pca_frechet_distance,
)


def _transcribed_distance(mean1, cov1, mean2, cov2) -> float:
    """The formula in numpy alone: Tr sqrt(S1 S2) is the sum of the square roots of S1 S2's
    eigenvalues (real and >= 0 for covariances)."""
    eigenvalues = np.linalg.eigvals(cov1 @ cov2)
    root_trace = np.sqrt(np.clip(eigenvalues.real, 0, None)).sum()
    diff = mean1 - mean2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * root_trace)


def _random_gaussian(rng, dims):
    factor = rng.normal(size=(dims, dims))
    return rng.normal(size=dims), factor @ factor.T / dims + 0.1 * np.eye(dims)


@pytest.mark.parametrize("dims", [1, 3, 16])
def test_frechet_distance_matches_numpy_transcription(dims):
    rng = np.random.default_rng(dims)
    for _ in range(5):
        (m1, s1), (m2, s2) = _random_gaussian(rng, dims), _random_gaussian(rng, dims)
        expected = _transcribed_distance(m1, s1, m2, s2)
        assert frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-8, abs=1e-8)
        # symmetric
        assert frechet_distance(m2, s2, m1, s1) == pytest.approx(
            frechet_distance(m1, s1, m2, s2), rel=1e-10
        )


def test_frechet_distance_by_hand_for_diagonal_covariances():
    # ||(3, 4)||^2 = 25; Tr: (4 + 1) + (1 + 9) - 2 (2 + 3) = 5
    assert frechet_distance([0, 0], np.diag([4.0, 1.0]), [3, 4], np.diag([1.0, 9.0])) == (
        pytest.approx(30.0)
    )


def _scans(rng, n, shape=(24, 20)):
    """Smooth random scans: a few spatial patterns mixed with random weights, plus noise."""
    patterns = np.random.default_rng(99).normal(size=(6, *shape))
    weights = rng.normal(size=(n, 6)) * np.array([3.0, 2.0, 1.5, 1.0, 0.5, 0.25])
    return np.tensordot(weights, patterns, axes=1) + 0.1 * rng.normal(size=(n, *shape))


def _transcribed_pca_distance(real, generated, k, mask=None):
    """PCA by numpy's SVD of the centred real rows, projections, np.cov, the formula."""
    x = real.reshape(len(real), -1)
    g = generated.reshape(len(generated), -1)
    if mask is not None:
        x, g = x[:, mask.ravel()], g[:, mask.ravel()]
    centre = x.mean(axis=0)
    _, singular, vt = np.linalg.svd(x - centre, full_matrices=False)
    axes = vt[:k].T
    p, q = (x - centre) @ axes, (g - centre) @ axes
    explained = (singular[:k] ** 2).sum() / (singular**2).sum()
    cov_p = np.atleast_2d(np.cov(p, rowvar=False))
    cov_q = np.atleast_2d(np.cov(q, rowvar=False))
    return _transcribed_distance(p.mean(0), cov_p, q.mean(0), cov_q), explained


@pytest.mark.parametrize("k", [1, 4, 10])
def test_pca_frechet_matches_transcription(k):
    rng = np.random.default_rng(10 + k)
    real, generated = _scans(rng, 60), 1.3 * _scans(rng, 45) + 0.2
    result = pca_frechet_distance(real, generated, n_components=k)
    expected, explained = _transcribed_pca_distance(real, generated, k)
    assert result.distance == pytest.approx(expected, rel=1e-8)
    assert result.explained_variance == pytest.approx(explained, rel=1e-10)
    assert (result.n_components, result.n_real, result.n_generated) == (k, 60, 45)


def test_pca_frechet_explained_variance_equals_scikit_learn_and_uses_the_mask():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(20)
    real, generated = _scans(rng, 40), _scans(rng, 40) + 0.5
    mask = np.zeros(real.shape[1:], bool)
    mask[4:20, 3:15] = True
    result = pca_frechet_distance(real, generated, n_components=5, mask=mask)
    sklearn = PCA(n_components=5, svd_solver="full").fit(real.reshape(40, -1)[:, mask.ravel()])
    assert result.explained_variance == pytest.approx(
        sklearn.explained_variance_ratio_.sum(), rel=1e-10
    )
    expected, _ = _transcribed_pca_distance(real, generated, 5, mask)
    assert result.distance == pytest.approx(expected, rel=1e-8)
    # voxels outside the mask do not count: changing them changes nothing
    changed = generated.copy()
    changed[:, ~mask] += 10.0
    again = pca_frechet_distance(real, changed, n_components=5, mask=mask)
    assert again.distance == pytest.approx(result.distance, rel=1e-12)


def test_more_scans_than_voxels_uses_the_covariance_route_exactly():
    rng = np.random.default_rng(21)
    real, generated = _scans(rng, 300, (8, 9)), _scans(rng, 250, (8, 9)) * 0.8
    result = pca_frechet_distance(real, generated, n_components=6)
    expected, explained = _transcribed_pca_distance(real, generated, 6)
    assert result.distance == pytest.approx(expected, rel=1e-8)
    assert result.explained_variance == pytest.approx(explained, rel=1e-10)


def test_identical_sets_give_zero_and_a_mean_shift_grows_it():
    rng = np.random.default_rng(30)
    real = _scans(rng, 80)
    assert pca_frechet_distance(real, real).distance < 1e-6
    volumes = rng.normal(size=(40, 10, 12, 8))
    assert pca_frechet_distance(volumes, volumes).distance < 1e-6
    shifts = (0.0, 0.1, 0.3, 1.0, 3.0)
    # the same scans moved along a fixed direction: FD = shift^2 |projected direction|^2
    direction = np.random.default_rng(31).normal(size=real.shape[1:])
    moved = [pca_frechet_distance(real, real + s * direction).distance for s in shifts]
    assert moved[0] < 1e-6
    assert (np.diff(moved) > 0).all()
    assert moved[2] / moved[1] == pytest.approx(9.0, rel=1e-6)
    # an independent set moved further away from the real mean
    generated = _scans(rng, 80)
    away = generated.mean(axis=0) - real.mean(axis=0) + 0.05
    distances = [pca_frechet_distance(real, generated + s * away).distance for s in shifts]
    assert (np.diff(distances) > 0).all()


def test_default_components_rule():
    assert default_components(1000, 1000) == 32
    assert default_components(40, 100) == 10
    assert default_components(100, 7) == 1
    assert default_components(3, 100) == 0
    rng = np.random.default_rng(40)
    result = pca_frechet_distance(_scans(rng, 37), _scans(rng, 50))
    assert isinstance(result, PCAFrechet)
    assert result.n_components == 9
    assert "9 components" in result.describe()


def test_bad_input_is_refused_with_the_problem_named():
    rng = np.random.default_rng(50)
    real = _scans(rng, 20)
    with pytest.raises(ModelError, match=r"\(24, 20\) and generated scans \(24, 18\)"):
        pca_frechet_distance(real, real[..., :18])
    with pytest.raises(ModelError, match="at least 4 real and 4 generated scans, got 20 and 3"):
        pca_frechet_distance(real, real[:3])
    with pytest.raises(ModelError, match="n_components must be 1 to 19"):
        pca_frechet_distance(real, real, n_components=20)
    nan = real.copy()
    nan[2, 0, 0] = np.nan
    with pytest.raises(ModelError, match=r"generated scan\(s\) \[2\] contain NaN"):
        pca_frechet_distance(real, nan)
    with pytest.raises(ModelError, match=r"real scan\(s\) \[2\] contain NaN"):
        pca_frechet_distance(nan, real)
    with pytest.raises(ModelError, match="2 or 3 spatial axes"):
        pca_frechet_distance(real[0], real[0])
    with pytest.raises(ModelError, match="one brain mask of the scan shape"):
        pca_frechet_distance(real, real, mask=np.ones((20, 24, 20), bool))
    with pytest.raises(ModelError, match="empty"):
        pca_frechet_distance(real, real, mask=np.zeros((24, 20), bool))
    flat = np.repeat(real[:1], 20, axis=0) + np.arange(20)[:, None, None] * 0.01
    with pytest.raises(ModelError, match="vary along only 1 direction"):
        pca_frechet_distance(flat, real, n_components=3)


def test_frechet_distance_refuses_bad_gaussians():
    with pytest.raises(ModelError, match="same length"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ModelError, match=r"second covariance has shape \(3, 3\)"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
    with pytest.raises(ModelError, match="cov1 contains NaN"):
        frechet_distance(np.zeros(2), np.full((2, 2), np.nan), np.zeros(2), np.eye(2))
    with pytest.raises(ModelError, match="not positive semi-definite"):
        frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))
