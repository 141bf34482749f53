"""Published s and the bounded profile independence: values by hand, edge cases, comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brainvae.analysis.disentanglement import (
    absolute_correlation,
    disentanglement_scores,
    impact_covariance,
    profile_independence,
    published_score,
)
from brainvae.analysis.receptive_comparison import compare_models, comparison_table
from brainvae.models import ModelConfig, build_model
from oracle_model import ROI_NAMES, oracle_setup


def test_covariance_and_published_score_by_hand():
    impact = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    # column means 1, 1; deviations (0, -1, 1) and (-1, 0, 1): var 1, 1; cov (0 + 0 + 1) / 2
    covariance = impact_covariance(impact)
    np.testing.assert_allclose(covariance, [[1.0, 0.5], [0.5, 1.0]])
    assert published_score(covariance) == pytest.approx(2.0 / 1.0)
    np.testing.assert_allclose(absolute_correlation(covariance), [[1.0, 0.5], [0.5, 1.0]])
    assert profile_independence(covariance) == pytest.approx(0.5)


def test_published_score_flips_sign_and_is_unbounded_while_the_companion_stays_in_0_1():
    negative = np.array([[2.0, -1.5], [-1.5, 2.0]])  # Tr 4, off-diagonal sum -3
    assert published_score(negative) == pytest.approx(-4.0 / 3.0)
    assert profile_independence(negative) == pytest.approx(0.25)
    near_cancel = np.array([[1.0, 0.5, -0.5], [0.5, 1.0, 1e-9], [-0.5, 1e-9, 1.0]])
    assert published_score(near_cancel) == pytest.approx(3.0 / 2e-9)
    assert 0.0 <= profile_independence(near_cancel) <= 1.0
    assert published_score(np.eye(3)) == math.inf
    assert math.isnan(published_score(np.zeros((3, 3))))


def test_per_roi_normalised_impacts_make_s_exactly_minus_one():
    impact = np.random.default_rng(0).uniform(0.0, 5.0, size=(6, 8))
    normalised = impact / impact.sum(axis=1, keepdims=True)
    assert published_score(impact_covariance(normalised)) == pytest.approx(-1.0)


def test_companion_is_bounded_and_scale_free():
    rng = np.random.default_rng(1)
    for _ in range(50):
        impact = rng.exponential(size=(int(rng.integers(2, 8)), int(rng.integers(2, 10))))
        score = profile_independence(impact_covariance(impact))
        assert 0.0 <= score <= 1.0
        scaled = impact * rng.uniform(0.1, 100.0, size=impact.shape[1]) * 7.0
        assert profile_independence(impact_covariance(scaled)) == pytest.approx(score)
    identical = np.outer(np.arange(1.0, 5.0), [1.0, 3.0, -2.0])  # every profile a scaled copy
    assert profile_independence(impact_covariance(identical)) == pytest.approx(0.0)
    one_latent_per_roi = np.eye(4) * [1.0, 2.0, 3.0, 4.0]  # but rank R - 1: r = -1/3 each pair
    assert profile_independence(impact_covariance(one_latent_per_roi)) == pytest.approx(2 / 3)


def test_zero_impact_latent_is_left_out_and_reported():
    impact = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    scores = disentanglement_scores(impact)
    assert scores.constant_latents.tolist() == [False, False, True]
    assert np.isnan(scores.abs_correlation[2]).all()
    # the two live latents: profiles (1, 0, 0) and (0, 1, 0), r = -0.5
    assert scores.profile_independence == pytest.approx(0.5)
    assert np.isfinite(scores.published)
    only_one_live = np.array([[1.0, 0.0], [0.0, 0.0], [3.0, 0.0]])
    assert math.isnan(disentanglement_scores(only_one_live).profile_independence)


def test_single_roi_is_a_clear_error():
    with pytest.raises(ValueError, match="1 ROI.*at least 2 ROIs"):
        impact_covariance(np.array([[1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        impact_covariance(np.array([[1.0, np.inf], [0.0, 1.0]]))


def test_comparison_table_of_oracle_and_pca():
    phantom, images, _, oracle = oracle_setup((32, 40), n=80, seed=5)
    config = ModelConfig(input_shape=(32, 40), latent_dim=4, family="pca", likelihood="gaussian")
    pca = build_model(config).fit(images)
    table, results = compare_models(
        {"oracle": oracle, "pca": pca}, images, phantom.roi_labels(), ROI_NAMES, top=2
    )
    assert list(table["model"]) == ["oracle", "pca"]
    assert {"published_s", "profile_independence", "top: ventricles"} <= set(table.columns)
    oracle_row = table.set_index("model").loc["oracle"]
    assert oracle_row["top: ventricles"].startswith("z1 (")
    assert oracle_row["top: lesion_zone"].startswith("z2 (")
    assert oracle_row["latent_dim"] == 3 and table.set_index("model").loc["pca", "latent_dim"] == 4
    expected = disentanglement_scores(results["pca"].impact)
    assert table.loc[1, "profile_independence"] == pytest.approx(expected.profile_independence)
    assert table.loc[1, "published_s"] == pytest.approx(expected.published)
    renamed = results["pca"].__class__(**{**results["pca"].__dict__, "roi_names": ("a",) * 4})
    with pytest.raises(ValueError, match="same ROIs"):
        comparison_table({"oracle": results["oracle"], "other": renamed})
