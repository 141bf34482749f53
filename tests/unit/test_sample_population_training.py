"""Every family trains on the shipped 2D and 3D sample populations, from the CLI and Python."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from brainvae.cli import main
from brainvae.data.dataset import PreparedDataset
from brainvae.data.prepare import prepare
from brainvae.data.preprocessing import PreprocessConfig
from brainvae.models import ModelConfig, build_model, load_model
from brainvae.training import TrainConfig, train

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
CLI_MODELS = ("beta-vae", "vae", "soft-intro-vae", "pca")
FAMILIES = ("beta_vae", "soft_intro_vae", "pca")


@pytest.fixture(scope="module", params=[2, 3], ids=["2d", "3d"])
def sample(request, tmp_path_factory) -> PreparedDataset:
    """The sample population of that dimensionality, prepared as it is (values in [0, 1])."""
    folder = SAMPLE / f"population_{request.param}d"
    out = tmp_path_factory.mktemp(f"sample{request.param}d") / "ds"
    return prepare(
        folder / "images", out, PreprocessConfig.identity(), csv=folder / "subjects.csv", workers=1
    )


def check_run(run: Path, dataset: PreparedDataset) -> None:
    """The run loads and reconstructs the dataset's images in their own shape."""
    model = load_model(run).eval()
    images = np.asarray(dataset.images[:3], dtype=np.float32)
    assert model.reconstruct(images).shape == images.shape
    assert model.encode(images)[0].shape == (3, model.latent_dim)


@pytest.mark.slow
@pytest.mark.parametrize("name", CLI_MODELS)
def test_cli_trains_each_family(sample, name, tmp_path):
    run = tmp_path / "run"
    args = ["train", str(sample.path), "--model", name, "--arch", "small", "--latent", "4"]
    fast = ["--epochs", "1", "--batch", "64", "--lr", "1e-3", "--device", "cpu", "--quiet"]
    assert main([*args, *fast, "--out", str(run)]) == 0
    check_run(run, sample)
    if name == "beta-vae":  # resume on the real populations (each family: test_cli_train)
        assert main([*args, *fast[:1], "2", *fast[2:], "--out", str(run), "--resume"]) == 0
        assert len(pd.read_csv(run / "history.csv")) == 2


@pytest.mark.parametrize("family", FAMILIES)
def test_python_trains_each_family(sample, family, tmp_path):
    config = ModelConfig(
        input_shape=sample.scan_shape, latent_dim=4, family=family, architecture="small"
    )
    torch.manual_seed(0)
    model = build_model(config)
    run = tmp_path / "run"
    if family == "pca":
        model.fit(np.asarray(sample.images[sample.indices("train")], dtype=np.float32))
        model.save(run)
    else:
        generator = train(model, sample, TrainConfig(epochs=1, batch_size=64, device="cpu"), run)
        reports = list(generator)
        assert reports[-1].reason == "completed"
    check_run(run, sample)
