"""The beta-VAE family (beta = 1: plain VAE)."""

from brainvae.models.beta_vae.model import BetaVAE

__all__ = ["BetaVAE"]
