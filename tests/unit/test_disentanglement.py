"""Separation (the truth table of issue 12) and the published s: values by hand, active latents
only, edge cases, model comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brainvae.analysis.disentanglement import (
    cosine_similarity,
    disentanglement_scores,
    impact_covariance,
    published_score,
    separation,
)
from brainvae.analysis.receptive_comparison import compare_models, comparison_table
from brainvae.models import ModelConfig, build_model
from helpers.oracle_model import ROI_NAMES, oracle_setup


def test_covariance_and_published_score_by_hand():
    impact = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    # column means 1, 1; deviations (0, -1, 1) and (-1, 0, 1): var 1, 1; cov (0 + 0 + 1) / 2
    covariance = impact_covariance(impact)
    np.testing.assert_allclose(covariance, [[1.0, 0.5], [0.5, 1.0]])
    assert published_score(covariance) == pytest.approx(2.0 / 1.0)
    # cosine of (1, 0, 2) and (0, 1, 2): 4 / 5
    np.testing.assert_allclose(cosine_similarity(impact), [[1.0, 0.8], [0.8, 1.0]])
    assert separation(impact) == pytest.approx(0.2)


@pytest.mark.parametrize("n_rois", [2, 3, 6, 8])
def test_truth_table_one_hot_is_fully_separated_at_any_number_of_rois(n_rois):
    one_hot = np.eye(n_rois) * np.arange(1.0, n_rois + 1)  # each latent its own ROI
    assert separation(one_hot) == pytest.approx(1.0)
    # the published s, exactly as published, gives the ideal model -1
    assert published_score(impact_covariance(one_hot / np.arange(1.0, n_rois + 1))) == (
        pytest.approx(-1.0)
    )


def test_truth_table_identical_overlapping_and_scaled_profiles():
    identical = np.outer([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 0.5])  # every profile a scaled copy
    assert separation(identical) == pytest.approx(0.0)
    # the published s of L identical profiles: +1 / (L - 1)
    assert published_score(impact_covariance(identical / [1.0, 3.0, 0.5])) == (
        pytest.approx(1.0 / 2.0)
    )
    overlapping = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # share one of two ROIs each
    assert separation(overlapping) == pytest.approx(0.5)
    shared_roi = np.array([[1.0, 1.0], [0.0, 0.0]])  # both answer to the same ROI only
    disjoint = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert separation(shared_roi) == pytest.approx(0.0)
    assert separation(disjoint) == pytest.approx(1.0)
    complementary = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert separation(complementary) == pytest.approx(1.0)  # disjoint, never "like identical"
    rng = np.random.default_rng(1)
    for _ in range(50):
        impact = rng.exponential(size=(int(rng.integers(2, 8)), int(rng.integers(2, 10))))
        score = separation(impact)
        assert 0.0 <= score <= 1.0
        scaled = impact * rng.uniform(0.1, 100.0, size=impact.shape[1]) * 7.0
        assert separation(scaled) == pytest.approx(score)


def test_scores_use_active_latents_only():
    impact = np.array([[5.0, 0.0, 4.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    active = np.array([True, True, False])
    scores = disentanglement_scores(impact, active)
    assert scores.scored.tolist() == [True, True, False] and scores.n_scored == 2
    assert scores.separation == pytest.approx(1.0)  # z1 and z2 are disjoint
    assert scores.published == pytest.approx(published_score(impact_covariance(impact[:, :2])))
    assert disentanglement_scores(impact).separation < 1.0  # with the inactive z3 counted
    with pytest.raises(ValueError, match="2 activity flags for an impact matrix of 3"):
        disentanglement_scores(impact, np.array([True, False]))


def test_published_score_edge_cases():
    assert published_score(np.array([[2.0, -1.5], [-1.5, 2.0]])) == pytest.approx(-4.0 / 3.0)
    near_cancel = np.array([[1.0, 0.5, -0.5], [0.5, 1.0, 1e-9], [-0.5, 1e-9, 1.0]])
    assert published_score(near_cancel) == pytest.approx(3.0 / 2e-9)
    assert published_score(np.eye(3)) == math.inf
    assert math.isnan(published_score(np.zeros((3, 3))))


def test_per_roi_normalised_impacts_make_s_exactly_minus_one():
    impact = np.random.default_rng(0).uniform(0.0, 5.0, size=(6, 8))
    normalised = impact / impact.sum(axis=1, keepdims=True)
    assert published_score(impact_covariance(normalised)) == pytest.approx(-1.0)


def test_zero_impact_latent_is_left_out_and_reported():
    impact = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    scores = disentanglement_scores(impact)
    assert scores.zero_profiles.tolist() == [False, False, True]
    assert np.isnan(scores.cosine[2]).all()
    assert scores.separation == pytest.approx(1.0)
    assert np.isfinite(scores.published)
    only_one_live = np.array([[1.0, 0.0], [0.0, 0.0], [3.0, 0.0]])
    assert math.isnan(disentanglement_scores(only_one_live).separation)


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
    assert {"published_s", "separation", "active_latents", "top: ventricles"} <= set(table.columns)
    oracle_row = table.set_index("model").loc["oracle"]
    assert oracle_row["top: ventricles"].startswith("z1 (")
    assert oracle_row["top: lesion_zone"].startswith("z2 (")
    assert oracle_row["latent_dim"] == 3 and table.set_index("model").loc["pca", "latent_dim"] == 4
    expected = disentanglement_scores(results["pca"].impact, results["pca"].active)
    assert table.loc[1, "separation_raw_impact"] == pytest.approx(expected.separation)
    assert table.loc[1, "separation"] == pytest.approx(
        separation(results["pca"].impact_per_voxel, results["pca"].active)
    )
    assert table.loc[1, "published_s"] == pytest.approx(expected.published)
    renamed = results["pca"].__class__(**{**results["pca"].__dict__, "roi_names": ("a",) * 4})
    with pytest.raises(ValueError, match="same ROIs"):
        comparison_table({"oracle": results["oracle"], "other": renamed})
