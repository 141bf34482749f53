"""The shipped sample model (sample_data/models/beta_vae_2d) still loads and runs with this code."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from brainvae.data.dataset import PreparedDataset
from brainvae.data.prepare import prepare
from brainvae.data.preprocessing import PreprocessConfig
from brainvae.data.sample import sample_data_dir, sample_population_dir
from brainvae.models import load_model

N_IMAGES = 4


@pytest.fixture(scope="module")
def shipped():
    """The shipped 2D model, loaded with the current code."""
    folder = sample_data_dir() / "models" / "beta_vae_2d"
    assert (folder / "config.json").is_file(), f"{folder} lacks config.json"
    assert (folder / "weights.safetensors").is_file(), f"{folder} lacks weights.safetensors"
    return load_model(folder)


@pytest.fixture(scope="module")
def sample_images(tmp_path_factory):
    """A few 2D sample scans prepared with the recipe the model was trained on (identity)."""
    root = tmp_path_factory.mktemp("sample_model")
    source = root / "images"
    source.mkdir()
    files = sorted((sample_population_dir(2) / "images").glob("*.nii.gz"))[:N_IMAGES]
    for path in files:
        shutil.copy(path, source / path.name)
    prepare(source, root / "ds", PreprocessConfig.identity(), workers=1)
    return np.array(PreparedDataset.open(root / "ds").images, dtype=np.float32)


def test_shipped_model_config(shipped):
    config = shipped.config
    assert config.family == "beta_vae"
    assert config.dims == 2
    assert tuple(config.input_shape) == (128, 160)
    assert config.latent_dim == 8


def test_shipped_model_encodes_and_decodes(shipped, sample_images):
    shipped.eval()
    assert sample_images.shape == (N_IMAGES, 128, 160)
    with torch.no_grad():
        mu, logvar = shipped.encode(torch.from_numpy(sample_images))
        assert mu.shape == (N_IMAGES, shipped.latent_dim)
        assert logvar.shape == (N_IMAGES, shipped.latent_dim)
        assert torch.isfinite(mu).all() and torch.isfinite(logvar).all()
        images = shipped.decode(mu)
        assert images.shape == (N_IMAGES, 1, 128, 160)
        assert torch.isfinite(images).all()
        # a trained model, not noise: the reconstruction is close to the input
        error = (images[:, 0] - torch.from_numpy(sample_images)).abs().mean().item()
        assert error < 0.1, f"mean absolute reconstruction error {error:.3f}"
