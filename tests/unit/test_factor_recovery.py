"""The usable-model bar (analysis.factor_recovery) against ground truth, and a short version of
the proof that the default recipe learns on a population unlike the sample (issue 13 point 3;
the full figures come from benchmarks/bench_time_to_usable.py)."""

from __future__ import annotations

import numpy as np
import pytest

from brainvae.analysis.factor_recovery import factor_recovery
from helpers.collapsed_model import collapsed_beta_vae
from helpers.oracle_model import ROI_NAMES, oracle_setup


@pytest.fixture(scope="module")
def oracle():
    return oracle_setup((32, 40), n=80, seed=2)


def test_the_oracle_meets_the_bar_for_its_ventricle_factor(oracle):
    phantom, images, factors, model = oracle
    check = factor_recovery(
        model, images, factors[:, 0], phantom.roi_labels(), ROI_NAMES, "ventricles",
        factor="ventricle size",
    )  # fmt: skip
    assert check.best_latent == 0 and check.best_correlation > 0.99
    assert check.receptive_top == 0 and check.enrichment >= 3.0
    assert check.meets_bar and "meets the bar" in check.describe()


def test_a_collapsed_model_fails_and_says_why(oracle):
    phantom, images, factors, _ = oracle
    model = collapsed_beta_vae(images, latent_dim=4, live=(0,))
    check = factor_recovery(
        model, images, factors[:, 0], phantom.roi_labels(), ROI_NAMES, "ventricles"
    )
    failures = " ".join(check.failures())
    assert not check.meets_bar and "only 1 of 4 active" in failures
    assert "|r| =" in failures  # the random live latent does not track ventricle size
    with pytest.raises(ValueError, match="no ROI named 'hippocampus'"):
        factor_recovery(
            model, images, factors[:, 0], phantom.roi_labels(), ROI_NAMES, "hippocampus"
        )
    with pytest.raises(ValueError, match="3 factor values for 80 images"):
        factor_recovery(
            model, images, factors[:3, 0], phantom.roi_labels(), ROI_NAMES, "ventricles"
        )


@pytest.mark.slow
def test_default_recipe_learns_on_an_axial_population_it_was_not_tuned_on(tmp_path):
    """Short version: 50 subjects of the axial phantom (not the sample's coronal grid), the
    default preprocessing and the default recipe but 400 steps; the model learns (verdict) and
    a latent tracks ventricle volume on the held-out scans."""
    import torch

    from brainvae.data.phantom import PopulationConfig, build_population
    from brainvae.data.prepare import prepare
    from brainvae.models import build_model
    from brainvae.training import TrainConfig, train
    from brainvae.training.recipe import DEFAULT_RECIPE, model_config_from_recipe
    from brainvae.training.verdict import dataset_verdict

    config = PopulationConfig(dims=2, orientation="axial", n_subjects=50, seed=21,
                              longitudinal_share=0.0)  # fmt: skip
    build_population(config, tmp_path / "raw", progress=False, workers=2)
    dataset = prepare(tmp_path / "raw" / "images", tmp_path / "ds",
                      csv=tmp_path / "raw" / "subjects.csv", workers=1)  # fmt: skip
    assert dataset.scan_shape == (144, 120)
    torch.manual_seed(0)
    model = build_model(model_config_from_recipe(DEFAULT_RECIPE, dataset.scan_shape))
    for _ in train(model, dataset, TrainConfig(steps=400, device="cpu"), tmp_path / "run"):
        pass
    verdict = dataset_verdict(model, dataset)
    assert verdict.learned, verdict.describe()
    rows = np.concatenate([dataset.indices("val"), dataset.indices("test")])
    mu = model.encode(np.asarray(dataset.images)[rows])[0].detach().numpy()
    ventricles = dataset.metadata["ventricle_volume_ml"].to_numpy()[rows]
    best = max(abs(np.corrcoef(mu[:, k], ventricles)[0, 1]) for k in range(mu.shape[1]))
    assert best >= 0.6, best
