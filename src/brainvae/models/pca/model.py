"""PCA baseline (scikit-learn fit) behind the same interface as the VAEs."""

from __future__ import annotations

import numpy as np
import torch

from brainvae.errors import ModelError
from brainvae.models.base import ArrayLike, LatentModel, ModelOutput
from brainvae.models.config import ModelConfig
from brainvae.models.losses import LossOutput

PCA_LOGVAR = -30.0
"""PCA codes are exact points, so encode reports this log-variance (variance ~1e-13) in place
of log 0: it says "no uncertainty" while keeping every downstream formula finite."""

BERNOULLI_CLAMP = 1e-6
"""The Bernoulli loss (and decode_raw, which returns what the loss scores) sees logits of the
reconstruction clamped to [eps, 1 - eps], so the BCE stays finite; decode, reconstruct and
sample never see the clamp: PCA decodes linearly whatever the likelihood."""


class PCAModel(LatentModel):
    """Whitened PCA: encode = projection / sqrt(variance), so latents are on the N(0, I) scale
    of a VAE's (sample works the same way); decode = inverse transform (mean + components,
    unclamped, for every likelihood: the likelihood only shapes the loss). Fit with fit(data)."""

    family = "pca"

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        if config.learn_sigma:
            raise ModelError("the PCA baseline has no learnable sigma: set learn_sigma=False")
        n_latent, n_features = config.latent_dim, config.n_features
        self.register_buffer("components", torch.zeros(n_latent, n_features))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("explained_variance", torch.zeros(n_latent))
        self.register_buffer("n_samples_seen", torch.zeros((), dtype=torch.int64))

    @property
    def is_fitted(self) -> bool:
        return int(self.n_samples_seen) > 0

    def fit(self, data: ArrayLike, random_state: int = 0) -> PCAModel:
        """Fit on (N, [C,] *input_shape) data; latent_dim must not exceed the data's rank."""
        from sklearn.decomposition import PCA

        batch, _ = self.prepare_input(data)
        flat = batch.flatten(1).cpu().numpy()
        n_samples, n_features = flat.shape
        n_latent = self.latent_dim
        if n_latent > min(n_samples, n_features):
            raise ModelError(
                f"latent_dim {n_latent} is larger than the data allow: PCA of {n_samples} "
                f"samples x {n_features} values has at most {min(n_samples, n_features)} components"
            )
        pca = PCA(n_components=n_latent, whiten=True, random_state=random_state).fit(flat)
        variance = pca.explained_variance_
        tiny = variance <= max(float(variance.max()), 1e-30) * 1e-10
        if tiny.any():
            raise ModelError(
                f"latent_dim {n_latent} exceeds the rank of the data ({int((~tiny).sum())} "
                "components with non-zero variance): lower latent_dim or add samples"
            )
        device = self.device
        self.components.copy_(torch.from_numpy(pca.components_.astype(np.float32)).to(device))
        self.mean.copy_(torch.from_numpy(pca.mean_.astype(np.float32)).to(device))
        self.explained_variance.copy_(torch.from_numpy(variance.astype(np.float32)).to(device))
        self.n_samples_seen.fill_(n_samples)
        self.config.training = {
            **self.config.training,
            "n_samples": n_samples,
            "explained_variance_ratio": [float(r) for r in pca.explained_variance_ratio_],
        }
        return self

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise ModelError("this PCA model is not fitted yet: call fit(data) first")

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._require_fitted()
        centred = x.flatten(1) - self.mean
        mu = centred @ self.components.T / self.explained_variance.sqrt()
        return mu, torch.full_like(mu, PCA_LOGVAR)

    def _linear_decode(self, z: torch.Tensor) -> torch.Tensor:
        """The inverse transform, mean + (z * sqrt(variance)) @ components, as images."""
        self._require_fitted()
        flat = (z * self.explained_variance.sqrt()) @ self.components + self.mean
        return flat.view(z.shape[0], self.config.channels, *self.config.input_shape)

    def _scored(self, images: torch.Tensor) -> torch.Tensor:
        """What the loss scores for linear images: logits of a clamp (Bernoulli) or the images."""
        if self.config.likelihood == "bernoulli":
            return torch.logit(images.clamp(BERNOULLI_CLAMP, 1 - BERNOULLI_CLAMP))
        return images

    def _decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self._scored(self._linear_decode(z))

    def decode(self, z: ArrayLike) -> torch.Tensor:
        """The linear reconstruction, unclamped: a sigmoid of clamped logits would shrink it."""
        return self._linear_decode(self.prepare_latent(z))

    @torch.no_grad()
    def reconstruct(self, x: ArrayLike) -> torch.Tensor:
        """The linear PCA reconstruction of x (unclamped), in the same layout as x."""
        batch, added_channel = self.prepare_input(x)
        images = self._linear_decode(self._encode(batch)[0])
        return images.squeeze(1) if added_channel else images

    def _forward(self, batch: torch.Tensor) -> ModelOutput:
        mu, logvar = self._encode(batch)
        images = self._linear_decode(mu)
        return ModelOutput(mu, logvar, mu, self._scored(images), images)

    def loss(self, x: ArrayLike, step: int = 0) -> LossOutput:
        """Reconstruction term under the configured likelihood; KL is 0 (PCA has no posterior)."""
        batch, _ = self.prepare_input(x)
        self.reconstruction_term.check_target(batch)
        raw = self._scored(self._linear_decode(self._encode(batch)[0]))
        reconstruction = self.reconstruction_term(batch, raw)
        per_latent = torch.zeros(self.latent_dim, device=batch.device)
        return LossOutput(reconstruction, reconstruction, per_latent.sum(), per_latent, 0.0)
