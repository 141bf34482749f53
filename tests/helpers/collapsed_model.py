"""A collapsed beta-VAE, made on purpose: the few "live" latents vary over the population and
drive the decoder; every other latent's encoder output is scaled down to a whisper (code
variance far below 0.01: inactive by the shared definition) and the decoder ignores it.

That is what posterior collapse leaves behind, and what misled the receptive and projective
fields (the KL impact is scale-free, so a whisper the decoder ignores can still read as a
strong field). Built from a real small conv net, saved and loaded like any model.
"""

from __future__ import annotations

import numpy as np

WHISPER = 1e-3
"""Factor on an inactive latent's encoder row: its code sd becomes ~1e-3 of a live one's."""


def collapsed_beta_vae(images: np.ndarray, latent_dim: int = 4, live: tuple[int, ...] = (0,),
                       seed: int = 0):  # fmt: skip
    """A small beta-VAE on images' grid with only `live` latents active (variance ~1)."""
    import torch

    from brainvae.models import ModelConfig, build_model

    torch.manual_seed(seed)
    shape = tuple(int(s) for s in images.shape[1:])
    config = ModelConfig(
        input_shape=shape, latent_dim=latent_dim, family="beta_vae", likelihood="gaussian",
        gaussian_sigma=0.05, architecture="small",
    )  # fmt: skip
    model = build_model(config).eval()
    head = model.encoder.head
    first_decoder = next(m for m in model.decoder.dense if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        mu, _ = model.encode(np.asarray(images, dtype=np.float32))
        sd = mu.std(dim=0).clamp_min(1e-12)
        for k in range(latent_dim):
            if k in live:
                head.weight[k] /= sd[k]  # variance ~1 over these images
                head.bias[k] = 0.0
                first_decoder.weight[:, k] *= 3.0  # the decoder clearly uses it
            else:
                head.weight[k] *= WHISPER / sd[k]
                first_decoder.weight[:, k] = 0.0  # the decoder ignores it
    return model
