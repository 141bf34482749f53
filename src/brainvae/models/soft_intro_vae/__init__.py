"""The introspective family: Soft-IntroVAE (default) and the original margin IntroVAE."""

from brainvae.models.soft_intro_vae.model import IntrospectiveLoss, SoftIntroVAE

__all__ = ["IntrospectiveLoss", "SoftIntroVAE"]
