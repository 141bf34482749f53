"""A small prepared phantom dataset on disk with a PCA run fitted on it, for the CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers.oracle_model import make_phantom, sample_factors


def prepared_phantom(
    root: Path, shape: tuple[int, ...], n: int, latent_dim: int, record_dataset: bool = False
) -> tuple[Path, Path, np.ndarray]:
    """(dataset folder, run folder, ROI labels): n phantom scans as .npy prepared with the
    identity preset, and a PCA saved from them (recording the dataset's path when asked)."""
    from brainvae.data.prepare import prepare
    from brainvae.data.preprocessing import PreprocessConfig
    from brainvae.models import ModelConfig, build_model

    phantom = make_phantom(shape)
    images = phantom.render(sample_factors(n, 0), noise_sd=0.01, seed=1)
    source = root / "src"
    source.mkdir(parents=True)
    for i, image in enumerate(images):
        np.save(source / f"sub-{i:03d}_ses-1.npy", image)
    dataset = prepare(source, root / "ds", PreprocessConfig.identity(), workers=1)
    config = ModelConfig(
        input_shape=shape, latent_dim=latent_dim, family="pca", likelihood="gaussian"
    )
    training = {"dataset": str(dataset.path)} if record_dataset else None
    build_model(config).fit(np.asarray(dataset.images)).save(root / "run", training=training)
    return root / "ds", root / "run", phantom.roi_labels()
