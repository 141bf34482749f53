"""The PCA baseline family."""

from brainvae.models.pca.model import PCA_LOGVAR, PCAModel

__all__ = ["PCA_LOGVAR", "PCAModel"]
