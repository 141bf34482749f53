"""Latent-variable models of brain-image populations: one interface, several families.

build_model(config) makes an untrained model; load_model(folder) reads a saved one.
Every model: encode(x) -> (mu, logvar), decode(z) -> images, decode_raw(z) -> what the
loss scores, reconstruct, embed, sample(n), loss(x, step), save(folder), load(folder).
"""

from __future__ import annotations

from pathlib import Path

from brainvae.errors import ModelError
from brainvae.models.age_vae import AgeVAE
from brainvae.models.base import LatentModel, ModelOutput
from brainvae.models.beta_vae import BetaVAE
from brainvae.models.config import FORMAT_VERSION, ModelConfig
from brainvae.models.families import FAMILY_CHOICES, FAMILY_NAMES, FamilyChoice, family_choice
from brainvae.models.longitudinal_vae import LongitudinalVAE
from brainvae.models.losses import LossOutput
from brainvae.models.networks import NETWORK_PRESETS, ConvNetSpec, get_preset
from brainvae.models.pca import PCAModel
from brainvae.models.serialization import load_checked, read_config
from brainvae.models.soft_intro_vae import SoftIntroVAE

FAMILIES: dict[str, type[LatentModel]] = {
    family.family: family for family in (BetaVAE, SoftIntroVAE, PCAModel, AgeVAE, LongitudinalVAE)
}
"""Family name (config.json's "family") -> model class; the names are FAMILY_NAMES."""


def build_model(config: ModelConfig) -> LatentModel:
    """An untrained model of config.family."""
    if config.family not in FAMILIES:
        raise ModelError(f"unknown model family {config.family!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[config.family](config)


def load_model(folder: str | Path, memory_budget: int | None = None) -> LatentModel:
    """A saved model of any family, in eval mode: config validated first, then the
    safetensors weights (see serialization.load_checked for the memory_budget)."""
    config = read_config(folder, FAMILIES)
    return load_checked(folder, config, lambda: build_model(config), memory_budget)


__all__ = [
    "FAMILIES",
    "FAMILY_CHOICES",
    "FAMILY_NAMES",
    "FORMAT_VERSION",
    "NETWORK_PRESETS",
    "AgeVAE",
    "BetaVAE",
    "ConvNetSpec",
    "FamilyChoice",
    "LatentModel",
    "LongitudinalVAE",
    "LossOutput",
    "ModelConfig",
    "ModelError",
    "ModelOutput",
    "PCAModel",
    "SoftIntroVAE",
    "build_model",
    "family_choice",
    "get_preset",
    "load_model",
]
