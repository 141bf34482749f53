"""PCA run folders fitted on a prepared dataset, for tests that compare runs."""

from __future__ import annotations

import numpy as np
import torch


def save_pca(folder, dataset, latent=None):
    """A PCA fitted on the dataset's train split (latent=None: the identity, every pixel a
    component, which copies its input), saved as a model folder."""
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import ModelConfig, build_model

    opened = PreparedDataset.open(dataset)
    shape = tuple(opened.scan_shape)
    n = int(np.prod(shape))
    config = ModelConfig(input_shape=shape, latent_dim=latent or n, family="pca",
                         likelihood="gaussian")  # fmt: skip
    model = build_model(config)
    if latent:
        model.fit(np.asarray(opened.images[opened.indices("train")]))
    else:
        with torch.no_grad():
            model.components.copy_(torch.eye(n))
            model.explained_variance.fill_(1.0)
            model.n_samples_seen.fill_(1)
    model.save(folder)
    return folder
