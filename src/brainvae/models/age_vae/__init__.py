"""The age-conditioned VAE family (Zhao et al., MICCAI 2019): a regressor q(c|x) and the
conditional prior p(z|c) = N(c u, I) along a learned unit direction u."""

from brainvae.models.age_vae.model import AgeVAE, ConditionedLossOutput

__all__ = ["AgeVAE", "ConditionedLossOutput"]
