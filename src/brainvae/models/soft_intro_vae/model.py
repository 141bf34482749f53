"""Soft-IntroVAE (Daniel & Tamar, CVPR 2021) and the margin IntroVAE (Huang et al., 2018).

The encoder doubles as a discriminator: it is trained to give real images a high ELBO and
generated ones (reconstructions x_r and prior samples x_p) a low one, while the decoder is
trained to make its images look real to the encoder. Training alternates two steps, each
with its own optimiser (brainvae.training.adversarial): encoder_loss, then decoder_loss.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from brainvae.errors import ModelError
from brainvae.models.base import ArrayLike, LatentModel
from brainvae.models.config import ModelConfig
from brainvae.models.losses import LossOutput, kl_per_latent
from brainvae.models.networks.conv import ConvDecoder, ConvEncoder


@dataclass
class IntrospectiveLoss:
    """One step's loss (total carries the gradient) and the real batch's ELBO parts.

    negative: the adversarial part (the encoder's term on generated images, or the
    decoder's KL of its images); z: the real batch's latent, detached, for the decoder step.
    """

    total: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor
    kl_per_latent: torch.Tensor
    negative: torch.Tensor
    z: torch.Tensor


class SoftIntroVAE(LatentModel):
    """Conv encoder/decoder as BetaVAE, trained introspectively (config.intro_variant)."""

    family = "soft_intro_vae"

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        if config.learn_sigma:
            raise ModelError("soft_intro_vae does not support learn_sigma; use a fixed sigma")
        spec = config.network
        args = (spec, config.input_shape, config.channels, config.latent_dim)
        self.encoder = ConvEncoder(*args)
        self.decoder = ConvDecoder(*args)
        self.use_config_memory_format()

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def _decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """What the encoder optimiser updates."""
        return list(self.encoder.parameters())

    def decoder_parameters(self) -> list[nn.Parameter]:
        """What the decoder optimiser updates."""
        return list(self.decoder.parameters())

    @property
    def scale(self) -> float:
        """s = 1 / number of values per sample, keeping exp(-2 s ELBO) away from underflow."""
        return 1.0 / self.config.n_features

    # -- the plain ELBO, for evaluation ---------------------------------------------------
    def loss(self, x: ArrayLike, step: int = 0) -> LossOutput:
        """beta_rec * rec + beta_kl * KL of the real batch (what validation reports)."""
        batch = self._checked(x)
        out = self._forward(batch)
        reconstruction = self._reconstruction(batch, out.decoder_output).mean()
        per_latent = kl_per_latent(out.mu.float(), out.logvar.float())
        kl = per_latent.sum()
        total = self.config.beta_rec * reconstruction + self.config.beta_kl * kl
        _check_finite_loss(total, reconstruction, kl)
        return LossOutput(total, reconstruction, kl, per_latent, self.config.beta_kl)

    # -- the two training objectives ------------------------------------------------------
    def encoder_loss(self, x: ArrayLike) -> IntrospectiveLoss:
        """The encoder's objective; x_r and x_p are detached, so only the encoder learns here.

        soft: s (b_rec rec(x) + b_kl KL(x)) + 1/4 sum_{x' in x_r, x_p} E[exp(-2 s ELBO_neg(x'))]
        with ELBO_neg = b_rec rec(x', D(E(x'))) + b_neg KL(x'); margin: b_rec rec(x) +
        b_kl (KL(x) + w_neg [max(0, m - KL(x_r)) + max(0, m - KL(x_p))] / 2): the hinge is
        weighted by b_kl as in Huang et al.'s reference code (loss_margin * weight_kl).
        """
        config, s = self.config, self.scale
        batch = self._checked(x)
        mu, logvar = self._encode(batch)
        z = self.reparameterize(mu, logvar)
        raw = self._decode_raw(z)
        reconstruction = self._reconstruction(batch, raw).mean()
        per_latent = kl_per_latent(mu.float(), logvar.float())
        kl = per_latent.sum()
        generated = (self._image(raw).detach(), self._image(self._prior_raw(z)).detach())
        if config.intro_variant == "soft":
            real = s * (config.beta_rec * reconstruction + config.beta_kl * kl)
            negative = sum(
                torch.exp(-2 * s * self._negative_elbo(image)).mean() for image in generated
            )
            negative = 0.25 * negative
        else:
            real = config.beta_rec * reconstruction + config.beta_kl * kl
            hinges = [F.relu(config.margin - self._kl(image)).mean() for image in generated]
            negative = config.beta_kl * config.w_neg * 0.5 * (hinges[0] + hinges[1])
        total = real + negative
        _check_finite_loss(total, reconstruction, kl)
        return IntrospectiveLoss(total, reconstruction, kl, per_latent, negative, z.detach())

    def decoder_loss(self, x: ArrayLike, z: torch.Tensor | None = None) -> IntrospectiveLoss:
        """The decoder's objective with the encoder frozen; z: the encoder step's latent.

        soft: s (b_rec rec(x) + b_kl/2 [KL(E(x_r)) + KL(E(x_p))] + g_r b_rec/2 [rec(x_r) +
        rec(x_p)]); margin: b_rec rec(x) + b_kl/2 [KL(E(x_r)) + KL(E(x_p))] (METHODS.md 2).
        """
        config, s = self.config, self.scale
        batch = self._checked(x)
        with _frozen(self.encoder):
            if z is None:
                with torch.no_grad():
                    z = self.reparameterize(*self._encode(batch))
            z = z.detach()
            raw = self._decode_raw(z)
            reconstruction = self._reconstruction(batch, raw).mean()
            generated = (self._image(raw), self._image(self._prior_raw(z)))
            kls, rerecs = [], []
            for image in generated:
                mu, logvar = self._encode(image)
                kls.append(_kl_per_sample(mu, logvar).mean())
                if config.intro_variant == "soft":
                    again = self._decode_raw(self.reparameterize(mu, logvar).detach())
                    rerecs.append(self._reconstruction(image.detach(), again).mean())
            negative = 0.5 * (kls[0] + kls[1])
            if config.intro_variant == "soft":
                rerec = 0.5 * (rerecs[0] + rerecs[1])
                total = s * (
                    config.beta_rec * reconstruction
                    + config.beta_kl * negative
                    + config.gamma_r * config.beta_rec * rerec
                )
            else:
                total = config.beta_rec * reconstruction + config.beta_kl * negative
        zero = torch.zeros((), device=batch.device)
        per_latent = torch.zeros(self.latent_dim, device=batch.device)
        _check_finite_loss(total, reconstruction, zero)
        return IntrospectiveLoss(total, reconstruction, zero, per_latent, negative, z)

    # -- pieces ---------------------------------------------------------------------------
    def _checked(self, x: ArrayLike) -> torch.Tensor:
        batch, _ = self.prepare_input(x)
        self.reconstruction_term.check_target(batch)
        return batch

    def _image(self, raw: torch.Tensor) -> torch.Tensor:
        """Decoder output in the data's range: what the encoder sees as a generated image."""
        return self.reconstruction_term.mean(raw)

    def _prior_raw(self, like: torch.Tensor) -> torch.Tensor:
        """Raw decoder output for z ~ N(0, I), one per row of like."""
        return self._decode_raw(torch.randn_like(like))

    def _kl(self, image: torch.Tensor) -> torch.Tensor:
        """KL(q(z|image) || N(0, I)) per sample."""
        return _kl_per_sample(*self._encode(image))

    def _negative_elbo(self, image: torch.Tensor) -> torch.Tensor:
        """beta_rec * rec + beta_neg * KL per sample: the ELBO the encoder pushes down."""
        mu, logvar = self._encode(image)
        raw = self._decode_raw(self.reparameterize(mu, logvar))
        reconstruction = self._reconstruction(image, raw)
        return self.config.beta_rec * reconstruction + self.config.beta_neg * _kl_per_sample(
            mu, logvar
        )

    def _reconstruction(self, target: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """Reconstruction loss per sample (nats), in fp32, summed over voxels."""
        target, raw = target.float(), raw.float()
        if self.config.likelihood == "bernoulli":
            per_voxel = F.binary_cross_entropy_with_logits(raw, target, reduction="none")
        elif self.config.gaussian_sigma is None:
            per_voxel = (raw - target).square()
        else:
            sigma = self.config.gaussian_sigma
            per_voxel = (
                0.5 * ((target - raw) / sigma).square()
                + math.log(sigma)
                + 0.5 * math.log(2 * math.pi)
            )
        return per_voxel.flatten(1).sum(1)


def _kl_per_sample(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latents, one value per sample (fp32)."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1).sum(1)


def _check_finite_loss(total: torch.Tensor, reconstruction: torch.Tensor, kl: torch.Tensor) -> None:
    if not torch.isfinite(total):
        values = [float(v.detach()) for v in (total, reconstruction, kl)]
        raise ModelError(
            f"the loss became {values[0]} (reconstruction {values[1]}, "
            f"KL {values[2]}): lower the learning rate or check the data"
        )


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Parameters of module take no gradient inside the block (gradients still pass through)."""
    before = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), before, strict=True):
            p.requires_grad_(flag)
