"""beta-VAE (beta = 1 is the plain VAE), with optional capacity annealing (Burgess et al.)."""

from __future__ import annotations

import math

import torch
from torch import nn

from brainvae.errors import ModelError
from brainvae.models.base import ArrayLike, LatentModel, ModelOutput
from brainvae.models.config import ModelConfig
from brainvae.models.losses import LossOutput, capacity_at, kl_per_latent, kl_weight
from brainvae.models.networks.conv import ConvDecoder, ConvEncoder


class BetaVAE(LatentModel):
    """Conv encoder -> diagonal Gaussian posterior -> conv decoder; loss rec + beta * KL."""

    family = "beta_vae"

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        spec = config.network
        args = (spec, config.input_shape, config.channels, config.latent_dim)
        self.encoder = ConvEncoder(*args)
        self.decoder = ConvDecoder(*args)
        if config.learn_sigma:
            start = math.log(config.gaussian_sigma or 1.0)
            self.learned_log_sigma = nn.Parameter(torch.tensor(start))
        self.use_config_memory_format()

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def _decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def log_sigma(self) -> torch.Tensor | None:
        return self.learned_log_sigma if self.config.learn_sigma else None

    def loss(self, x: ArrayLike, step: int = 0) -> LossOutput:
        """rec + beta * KL (beta warmed up from 0 over kl_warmup_steps), or
        rec + gamma * |KL - C(step)| when capacity annealing is on."""
        batch, _ = self.prepare_input(x)
        self.reconstruction_term.check_target(batch)
        out = self._forward(batch)
        reconstruction = self.reconstruction_term(batch, out.decoder_output, self.log_sigma())
        loss = self._beta_vae_total(out, reconstruction, step)
        if not torch.isfinite(loss.total):
            values = [float(v.detach()) for v in (loss.total, reconstruction, loss.kl)]
            raise ModelError(
                f"the loss became {values[0]} (reconstruction {values[1]}, "
                f"KL {values[2]}): lower the learning rate or check the data"
            )
        return loss

    def _beta_vae_total(
        self, out: ModelOutput, reconstruction: torch.Tensor, step: int
    ) -> LossOutput:
        """The beta-VAE objective of one forward pass (its KL in fp32: under bf16 autocast
        small per-latent KLs would round to exactly 0)."""
        per_latent = kl_per_latent(out.mu.float(), out.logvar.float())
        kl = per_latent.sum()
        config = self.config
        capacity = None
        beta = kl_weight(config.beta, step, config.kl_warmup_steps)
        if config.capacity_max is None:
            total = reconstruction + beta * kl
        else:
            capacity = capacity_at(step, config.capacity_max, config.capacity_anneal_steps)
            total = reconstruction + config.capacity_gamma * (kl - capacity).abs()
        return LossOutput(total, reconstruction, kl, per_latent, beta, capacity)
