"""Evaluating a run (issue 19.2): reconstructions of the test split and prior samples, scored
against the test split, for every family; checked against the model's own verbs and the
metrics computed directly on the same arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from brainvae.data.dataset import PreparedDataset
from brainvae.data.prepare import prepare
from brainvae.data.preprocessing import PreprocessConfig
from brainvae.evaluation.frechet import pca_frechet_distance
from brainvae.evaluation.image_quality import cw_ssim, mse, ssim
from brainvae.evaluation.run_evaluation import EvaluationProgress, evaluation_steps, prior_codes
from brainvae.models import ModelConfig, ModelError, build_model
from brainvae.usecases.evaluate_run import SplitMissing, evaluate_run

SHAPE = (24, 20)


def write_population(root: Path, n: int = 24, split=(0.5, 0.17, 0.33)) -> Path:
    """n blob scans (one per subject) whose blob grows with age, with subjects.csv (age)."""
    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    rows = []
    for i, age in enumerate(np.round(np.linspace(40, 85, n), 1)):
        radius = 2.5 + 4.0 * (age - 40) / 45
        cy, cx = rng.uniform(10, 14), rng.uniform(8, 12)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
        image = (0.05 + 0.85 * blob + rng.uniform(0, 0.03, SHAPE)).astype(np.float32)
        np.save(images / f"sub-{i:02d}_ses-1.npy", image)
        rows.append({"subject_id": f"sub-{i:02d}", "session": 1,
                     "filename": f"images/sub-{i:02d}_ses-1.npy", "age": age})  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "subjects.csv", index=False)
    config = PreprocessConfig.identity(split_fractions=split)
    prepare(images, root / "ds", config, csv=root / "subjects.csv", workers=1)
    return root / "ds"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> PreparedDataset:
    return PreparedDataset.open(write_population(tmp_path_factory.mktemp("evaluation")))


def drain(steps):
    """Every report and the generator's value."""
    reports = []
    while True:
        try:
            reports.append(next(steps))
        except StopIteration as finished:
            return reports, finished.value


def network(family: str, latent: int = 3, **extra) -> ModelConfig:
    return ModelConfig(
        input_shape=SHAPE, latent_dim=latent, family=family, architecture="small",
        likelihood="gaussian", gaussian_sigma=0.1, **extra,
    )  # fmt: skip


def test_reconstructions_and_samples_are_the_models_and_scored_inside_the_brain(dataset):
    torch.manual_seed(0)
    model = build_model(network("beta_vae")).eval()
    reports, evaluation = drain(evaluate_run(model, dataset, "test", n_samples=8, seed=5))
    rows = dataset.indices("test")
    scans = np.asarray(dataset.images[rows], dtype=np.float32)
    mean = scans.mean(0)
    mask = mean > 0.1 * mean.max()  # the split's brain mask, written out here
    reconstructions = model.reconstruct(scans).numpy()
    table = evaluation.table
    assert list(table["row"]) == list(rows) and list(table["subject_id"]) == list(
        dataset.metadata["subject_id"].iloc[rows]
    )
    np.testing.assert_allclose(table["mse"], mse(scans, reconstructions, mask), rtol=1e-5)
    np.testing.assert_allclose(table["ssim"], ssim(scans, reconstructions, mask), rtol=1e-5)
    np.testing.assert_allclose(table["cw_ssim"], cw_ssim(scans, reconstructions, mask), rtol=1e-5)
    assert int(evaluation.brain_mask.sum()) == int(mask.sum()) < mask.size
    z = torch.randn(8, 3, generator=torch.Generator().manual_seed(5))
    samples = model.decode(z).detach().numpy()[:, 0]
    expected = pca_frechet_distance(scans, samples, mask=mask)
    assert evaluation.pca_fd.distance == pytest.approx(expected.distance, rel=1e-6)
    np.testing.assert_allclose(evaluation.samples, samples[:4], atol=1e-6)
    np.testing.assert_allclose(evaluation.codes, model.embed(scans).numpy(), atol=1e-6)
    assert all(isinstance(r, EvaluationProgress) for r in reports)
    assert [r.done for r in reports] == list(range(1, len(reports) + 1))
    assert reports[-1].done == reports[-1].total
    summary = evaluation.summary()
    assert summary["n_scans"] == len(rows) and summary["samples"]["n"] == 8
    assert summary["reconstruction"]["cw_ssim_mean"] == pytest.approx(table["cw_ssim"].mean())
    assert "N(0, I)" in summary["samples"]["drawn"]


def test_the_seed_fixes_the_samples(dataset):
    torch.manual_seed(0)
    model = build_model(network("beta_vae", beta=1.0)).eval()  # a VAE
    first = drain(evaluate_run(model, dataset, n_samples=8, seed=1))[1]
    again = drain(evaluate_run(model, dataset, n_samples=8, seed=1))[1]
    other = drain(evaluate_run(model, dataset, n_samples=8, seed=2))[1]
    assert first.pca_fd.distance == again.pca_fd.distance
    assert first.pca_fd.distance != other.pca_fd.distance
    np.testing.assert_array_equal(first.samples, again.samples)


def test_a_pca_spanning_the_scans_reconstructs_them_exactly(dataset):
    images = np.asarray(dataset.images, dtype=np.float32)
    model = build_model(network("pca", latent=len(images) - 1)).fit(images)
    evaluation = drain(evaluate_run(model, dataset))[1]
    scores = evaluation.reconstruction
    assert np.all(scores.mse < 1e-9) and np.all(scores.cw_ssim > 0.9999)
    assert np.all(scores.ssim > 0.9999)
    assert "whitened PCA" in evaluation.sample_note


def test_a_pca_of_one_component_reconstructs_worse_than_of_many(dataset):
    images = np.asarray(dataset.images[dataset.indices("train")], dtype=np.float32)
    one = drain(evaluate_run(build_model(network("pca", latent=1)).fit(images), dataset))[1]
    many = drain(evaluate_run(build_model(network("pca", latent=8)).fit(images), dataset))[1]
    assert np.mean(many.reconstruction.mse) < np.mean(one.reconstruction.mse) / 2


def test_soft_intro_vae_is_evaluated_like_the_others(dataset):
    torch.manual_seed(0)
    model = build_model(network("soft_intro_vae")).eval()
    evaluation = drain(evaluate_run(model, dataset, n_samples=4))[1]
    assert evaluation.family == "soft_intro_vae" and evaluation.n_samples == 4
    assert len(evaluation.table) == len(dataset.indices("test"))


def test_an_age_conditioned_vae_samples_at_the_test_split_ages(dataset):
    torch.manual_seed(0)
    config = network("age_vae", condition="age", condition_mean=60.0, condition_sd=13.0)
    model = build_model(config).eval()
    ages = dataset.metadata["age"].to_numpy(np.float64)[dataset.indices("test")]
    evaluation = drain(evaluate_run(model, dataset, n_samples=len(ages) + 3, seed=4))[1]
    assert "'age' values (cycled)" in evaluation.sample_note
    codes = prior_codes(model, len(ages) + 3, 4, ages)
    noise = torch.randn(len(ages) + 3, 3, generator=torch.Generator().manual_seed(4)).numpy()
    cycled = ages[np.arange(len(ages) + 3) % len(ages)]
    np.testing.assert_allclose(codes - noise, model.prior_mean(cycled).detach().numpy(), atol=1e-6)
    # the prior moves with age: old scans' codes sit one way along u, young ones the other
    direction = model.direction().detach().numpy()
    assert np.corrcoef((codes - noise) @ direction, cycled)[0, 1] > 0.99
    with pytest.raises(ModelError, match="give the values to sample at"):
        prior_codes(model, 3, 0, None)


def test_an_age_conditioned_vae_needs_the_column(dataset, tmp_path):
    config = network("age_vae", condition="weight", condition_mean=60.0, condition_sd=13.0)
    model = build_model(config).eval()
    with pytest.raises(ModelError, match="no such column"):
        drain(evaluate_run(model, dataset))


def test_a_split_without_scans_is_named_with_the_splits_there_are(tmp_path):
    dataset = PreparedDataset.open(write_population(tmp_path, n=10, split=(0.8, 0.2, 0.0)))
    model = build_model(network("beta_vae")).eval()
    with pytest.raises(SplitMissing, match=r"no scan in the 'test' split .*train \(8 scans\), val"):
        drain(evaluate_run(model, dataset, "test"))


def test_a_model_of_another_shape_is_refused(dataset):
    model = build_model(ModelConfig(input_shape=(20, 24), latent_dim=2, family="beta_vae"))
    with pytest.raises(ModelError, match=r"shape \(24, 20\) do not fit the model"):
        drain(evaluate_run(model, dataset))


def test_bad_numbers_are_refused(dataset):
    model = build_model(network("beta_vae")).eval()
    with pytest.raises(ModelError, match="samples must be >= 1"):
        drain(evaluate_run(model, dataset, n_samples=0))
    with pytest.raises(ModelError, match="batch must be >= 1"):
        drain(evaluate_run(model, dataset, batch=0))
    mask = np.ones(SHAPE, bool)
    identity = pd.DataFrame({"row": [0]})
    steps = evaluation_steps(model, np.zeros((1, *SHAPE)), [0], mask, split="x", identity=identity)
    with pytest.raises(ModelError, match="has 1 scan"):
        drain(steps)
