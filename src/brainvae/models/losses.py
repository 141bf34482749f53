"""Loss terms kept apart from the models: reconstruction by likelihood name, KL, capacity."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from brainvae.errors import ModelError


def bernoulli_nll(target: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """BCE on logits, summed over voxels, averaged over the batch (nats per sample)."""
    per_voxel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return per_voxel.flatten(1).sum(1).mean()


def sum_squared_error(target: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Squared error summed over voxels, averaged over the batch."""
    return (mean - target).square().flatten(1).sum(1).mean()


def gaussian_nll(target: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Full Gaussian negative log-likelihood with one sigma, summed over voxels, batch-averaged."""
    per_voxel = 0.5 * ((target - mean) * torch.exp(-log_sigma)).square() + log_sigma
    return per_voxel.flatten(1).sum(1).mean() + 0.5 * math.log(2 * math.pi) * target[0].numel()


def kl_per_latent(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) for each latent, averaged over the batch: shape (L,)."""
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1).mean(0)


def kl_weight(beta: float, step: int, warmup_steps: int) -> float:
    """The KL weight at a training step: beta, or beta * step / warmup_steps during a linear
    warm-up (evaluation, at the last step reached, uses the same weight)."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, max(step, 0) / warmup_steps)


def capacity_at(step: int, capacity_max: float, anneal_steps: int) -> float:
    """Target KL capacity C (nats) at a training step: linear from 0 to capacity_max."""
    return capacity_max * min(1.0, max(step, 0) / anneal_steps)


class ReconstructionTerm:
    """A likelihood: the loss on the decoder's raw output, and the data-space mean of it."""

    name: str = ""

    def __call__(
        self, target: torch.Tensor, raw: torch.Tensor, log_sigma: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, raw: torch.Tensor) -> torch.Tensor:
        """The image the raw decoder output stands for, in the data's range."""
        raise NotImplementedError

    def check_target(self, target: torch.Tensor) -> None:
        """Refuse data this likelihood cannot score (no-op by default)."""


class BernoulliTerm(ReconstructionTerm):
    """Raw output = logits; mean = sigmoid(logits) in [0, 1]; data must lie in [0, 1]."""

    name = "bernoulli"

    def __call__(self, target, raw, log_sigma=None):
        return bernoulli_nll(target, raw)

    def mean(self, raw):
        return torch.sigmoid(raw)

    def check_target(self, target):
        low, high = float(target.min()), float(target.max())
        if low < 0 or high > 1:
            raise ModelError(
                f"the Bernoulli likelihood needs data in [0, 1] but this batch spans "
                f"[{low:.4g}, {high:.4g}]: scale the data or use likelihood='gaussian'"
            )


class GaussianTerm(ReconstructionTerm):
    """Raw output = mean; loss is the SSE (sigma None) or the Gaussian NLL (fixed/learned sigma)."""

    name = "gaussian"

    def __init__(self, sigma: float | None = None):
        self.sigma = sigma

    def __call__(self, target, raw, log_sigma=None):
        if log_sigma is None and self.sigma is None:
            return sum_squared_error(target, raw)
        if log_sigma is None:
            log_sigma = torch.tensor(math.log(self.sigma), device=raw.device, dtype=raw.dtype)
        return gaussian_nll(target, raw, log_sigma)

    def mean(self, raw):
        return raw


def make_reconstruction_term(likelihood: str, sigma: float | None = None) -> ReconstructionTerm:
    """Factory by likelihood name: "bernoulli" or "gaussian"."""
    if likelihood == "bernoulli":
        return BernoulliTerm()
    if likelihood == "gaussian":
        return GaussianTerm(sigma)
    raise ModelError(f"unknown likelihood {likelihood!r}; known: bernoulli, gaussian")


@dataclass
class LossOutput:
    """One batch's loss and its parts (tensors; total carries the gradient)."""

    total: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor
    kl_per_latent: torch.Tensor
    beta: float
    capacity: float | None = None

    def as_floats(self) -> dict[str, float]:
        """Plain numbers for logging."""
        out = {
            "total": self.total.item(),
            "reconstruction": self.reconstruction.item(),
            "kl": self.kl.item(),
            "beta": self.beta,
        }
        if self.capacity is not None:
            out["capacity"] = self.capacity
        return out
