"""The interface every model family answers to: encode, decode, reconstruct, sample, save, load."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from brainvae.errors import DataFileError, ModelError
from brainvae.models.config import ModelConfig
from brainvae.models.losses import LossOutput, ReconstructionTerm, make_reconstruction_term

ArrayLike = torch.Tensor | np.ndarray


@dataclass
class ModelOutput:
    """One forward pass: posterior, the latent used, raw decoder output and its data-space mean.

    decoder_output is what the loss scores (logits for Bernoulli, the mean for Gaussian);
    reconstruction is the image it stands for, in the data's range.
    """

    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    decoder_output: torch.Tensor
    reconstruction: torch.Tensor


class LatentModel(nn.Module, abc.ABC):
    """Base of all families; tensors in and out, numpy arrays accepted as input.

    Inputs are (N, C, *input_shape), or (N, *input_shape) when C = 1 (reconstruct then
    gives the same layout back). Inference helpers (reconstruct, embed, sample) run without
    gradients; call model.eval() first so batch-norm and dropout behave deterministically.
    """

    family: ClassVar[str] = ""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.family != self.family:
            raise ModelError(
                f"{type(self).__name__} needs family {self.family!r}, got {config.family!r}"
            )
        self.config = config
        self.reconstruction_term: ReconstructionTerm = make_reconstruction_term(
            config.likelihood, config.gaussian_sigma
        )

    # -- what each family provides ------------------------------------------------------
    @abc.abstractmethod
    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) for a checked (N, C, *input_shape) batch."""

    @abc.abstractmethod
    def _decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Raw decoder output (N, C, *input_shape) for checked latents."""

    @abc.abstractmethod
    def loss(self, x: ArrayLike, step: int = 0) -> LossOutput:
        """The training loss of a batch (step drives annealing schedules)."""

    # -- shared verbs ---------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        for tensor in chain(self.parameters(), self.buffers()):
            return tensor.device
        return torch.device("cpu")

    def log_sigma(self) -> torch.Tensor | None:
        """The learned Gaussian log-sigma, or None when sigma is fixed or unused."""
        return None

    def encode(self, x: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each (N, latent_dim)."""
        batch, _ = self.prepare_input(x)
        return self._encode(batch)

    def decode_raw(self, z: ArrayLike) -> torch.Tensor:
        """What the loss scores: logits (Bernoulli) or mean (Gaussian), (N, C, *input_shape)."""
        return self._decode_raw(self.prepare_latent(z))

    def decode(self, z: ArrayLike) -> torch.Tensor:
        """Images in the data's range (sigmoid of the logits for Bernoulli), (N, C, *input_shape)."""
        return self.reconstruction_term.mean(self.decode_raw(z))

    def forward(self, x: ArrayLike) -> ModelOutput:
        """Encode, draw z (the mean in eval mode), decode."""
        batch, _ = self.prepare_input(x)
        return self._forward(batch)

    def _forward(self, batch: torch.Tensor) -> ModelOutput:
        mu, logvar = self._encode(batch)
        z = self.reparameterize(mu, logvar) if self.training else mu
        raw = self._decode_raw(z)
        return ModelOutput(mu, logvar, z, raw, self.reconstruction_term.mean(raw))

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, differentiable in mu and logvar."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    @torch.no_grad()
    def embed(self, x: ArrayLike) -> torch.Tensor:
        """Latent codes (posterior means), (N, latent_dim)."""
        return self.encode(x)[0]

    @torch.no_grad()
    def reconstruct(self, x: ArrayLike) -> torch.Tensor:
        """decode(embed(x)) in the data's range, in the same layout as x."""
        batch, added_channel = self.prepare_input(x)
        images = self.reconstruction_term.mean(self._decode_raw(self._encode(batch)[0]))
        return images.squeeze(1) if added_channel else images

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images decoded from z ~ N(0, I), (n, C, *input_shape)."""
        if n < 1:
            raise ModelError(f"sample needs n >= 1, got {n}")
        z = torch.randn(n, self.latent_dim, generator=generator)
        return self.decode(z.to(self.device))

    # -- input checks ---------------------------------------------------------------------
    def prepare_input(self, x: ArrayLike) -> tuple[torch.Tensor, bool]:
        """Check shape and values; give (N, C, *input_shape) float32 and whether C was added."""
        batch = _as_float_tensor(x, "input", self.device)
        channels, spatial = self.config.channels, self.config.input_shape
        shape = tuple(batch.shape)
        added_channel = False
        if shape[1:] != (channels, *spatial):
            if channels == 1 and batch.ndim >= 1 and shape[1:] == spatial:
                batch, added_channel = batch.unsqueeze(1), True
            else:
                expected = f"(N, {channels}, {', '.join(map(str, spatial))})"
                if channels == 1:
                    expected += f" or (N, {', '.join(map(str, spatial))})"
                raise ModelError(
                    f"input of shape {shape} does not fit this model: expected {expected}"
                )
        _check_finite(batch, "input")
        if self.config.channels_last:
            batch = batch.contiguous(memory_format=_memory_format(self.config.dims))
        return batch, added_channel

    def use_config_memory_format(self) -> None:
        """Lay the weights out channels-last when the config asks (conv nets run faster so)."""
        if self.config.channels_last:
            self.to(memory_format=_memory_format(self.config.dims))

    def prepare_latent(self, z: ArrayLike) -> torch.Tensor:
        """Check latents are (N, latent_dim) and finite."""
        latent = _as_float_tensor(z, "latent", self.device)
        if latent.ndim != 2 or latent.shape[1] != self.latent_dim:
            raise ModelError(
                f"latent of shape {tuple(latent.shape)} does not fit this model: "
                f"expected (N, {self.latent_dim})"
            )
        _check_finite(latent, "latent")
        return latent

    # -- saving and loading ---------------------------------------------------------------
    def save(self, folder: str | Path, training: dict[str, Any] | None = None) -> Path:
        """Write config.json + weights.safetensors atomically; training replaces the summary."""
        from brainvae.models.serialization import write_checkpoint

        if training is not None:
            self.config.training = dict(training)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        return write_checkpoint(folder, self.config.to_json(), tensors)

    @classmethod
    def load(cls, folder: str | Path) -> LatentModel:
        """Load a saved model of this family (in eval mode); refuses a folder holding another.

        brainvae.models.load_model loads a model of any family.
        """
        from brainvae.models.families import FAMILY_NAMES
        from brainvae.models.serialization import load_checked, read_config

        if cls is LatentModel:
            raise ModelError("load a model of any family with brainvae.models.load_model")
        config = read_config(folder, FAMILY_NAMES)
        if config.family != cls.family:
            raise ModelError(f"{folder} holds a {config.family!r} model, not {cls.family!r}")
        return load_checked(folder, config, lambda: cls(config))

    def load_tensors(self, tensors: dict[str, torch.Tensor], path: str | Path) -> None:
        """Copy weights in after checking names, shapes, dtypes and values; errors name the file."""
        from brainvae.models.serialization import check_tensor_layout

        layout = {
            name: (tuple(tensor.shape), tensor.dtype)
            for name, tensor in tensors.items()
            if isinstance(tensor, torch.Tensor)
        }
        if len(layout) != len(tensors):
            raise DataFileError(path, "weights must all be tensors")
        check_tensor_layout(layout, self.state_dict(), path)
        for name, tensor in tensors.items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise DataFileError(path, f"weight {name!r} contains NaN or Inf values")
        self.load_state_dict(tensors, strict=True)


def _as_float_tensor(x: ArrayLike, what: str, device: torch.device) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.tensor(np.asarray(x, dtype=np.float32))
    elif not isinstance(x, torch.Tensor):
        raise ModelError(f"{what} must be a torch tensor or numpy array, got {type(x).__name__}")
    return x.to(device=device, dtype=torch.float32)


def _check_finite(x: torch.Tensor, what: str) -> None:
    bad = ~torch.isfinite(x)
    if bad.any():
        raise ModelError(
            f"{what} contains {int(bad.sum())} NaN or Inf value(s) out of {x.numel()}: "
            "clean the data (e.g. preprocessing nonfinite='zero') before using the model"
        )


def _memory_format(dims: int) -> torch.memory_format:
    return torch.channels_last if dims == 2 else torch.channels_last_3d
