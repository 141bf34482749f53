"""The shipped sample models (sample_data/models/beta_vae_2d, beta_vae_3d) still load and run
with this code, and the 2D one still encodes ventricle size and lesion load."""

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
# name: (dims, input shape, bound on the mean absolute reconstruction error of sample scans)
SHIPPED = {"beta_vae_2d": (2, (128, 160), 0.05), "beta_vae_3d": (3, (40, 48, 40), 0.1)}


def _load(name: str):
    folder = sample_data_dir() / "models" / name
    assert (folder / "config.json").is_file(), f"{folder} lacks config.json"
    assert (folder / "weights.safetensors").is_file(), f"{folder} lacks weights.safetensors"
    assert (folder / "README.md").is_file(), f"{folder} lacks its README.md"
    assert (folder / "weights.safetensors").stat().st_size < 10_000_000
    return load_model(folder)


def _prepared(root, dims: int, count: int | None):
    """Sample scans prepared with the recipe the models were trained on (identity)."""
    source = root / "images"
    source.mkdir()
    files = sorted((sample_population_dir(dims) / "images").glob("*.nii.gz"))
    for path in files[:count] if count else files:
        shutil.copy(path, source / path.name)
    prepare(source, root / "ds", PreprocessConfig.identity(), workers=1)
    return PreparedDataset.open(root / "ds")


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_config(name):
    dims, shape, _ = SHIPPED[name]
    config = _load(name).config
    assert config.family == "beta_vae"
    assert config.dims == dims
    assert tuple(config.input_shape) == shape
    assert config.latent_dim == 8
    assert config.likelihood == "gaussian"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_encodes_and_decodes(name, tmp_path):
    dims, shape, bound = SHIPPED[name]
    shipped = _load(name)
    images = np.array(_prepared(tmp_path, dims, N_IMAGES).images, dtype=np.float32)
    assert images.shape == (N_IMAGES, *shape)
    with torch.no_grad():
        mu, logvar = shipped.encode(torch.from_numpy(images))
        assert mu.shape == (N_IMAGES, shipped.latent_dim)
        assert logvar.shape == (N_IMAGES, shipped.latent_dim)
        assert torch.isfinite(mu).all() and torch.isfinite(logvar).all()
        decoded = shipped.decode(mu)
        assert decoded.shape == (N_IMAGES, 1, *shape)
        assert torch.isfinite(decoded).all()
        # a trained model, not noise: the reconstruction is close to the input
        error = (decoded[:, 0] - torch.from_numpy(images)).abs().mean().item()
        assert error < bound, f"mean absolute reconstruction error {error:.3f}"


def test_shipped_2d_model_encodes_ventricles_and_lesions(tmp_path):
    """All 2D sample scans: a linear map from the 8 latent means explains both factors.

    In-sample OLS R^2 (the held-out figures are in the model's README, measured by
    benchmarks/sample_model_quality.py); an untrained or lesion-blind model fails this.
    """
    shipped = _load("beta_vae_2d")
    folder = sample_population_dir(2)
    dataset = prepare(
        folder / "images", tmp_path / "ds", PreprocessConfig.identity(), folder / "subjects.csv"
    )
    metadata = dataset.metadata.reset_index(drop=True)
    assert len(metadata) >= 200
    with torch.no_grad():
        mu, _ = shipped.encode(torch.from_numpy(np.array(dataset.images, dtype=np.float32)))
    design = np.column_stack([mu.numpy().astype(np.float64), np.ones(len(metadata))])
    for target in ("ventricle_volume_ml", "lesion_load_ml"):
        y = metadata[target].to_numpy(np.float64)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        r2 = 1.0 - (y - design @ coef).var() / y.var()
        assert r2 > 0.8, f"{target}: in-sample R^2 {r2:.3f}"
