"""beta-VAE trained with aging and disease directions over visit pairs (Ouyang et al. 2022)."""

from brainvae.models.longitudinal_vae.model import LongitudinalVAE

__all__ = ["LongitudinalVAE"]
