"""Latent-variable models of brain-image populations: one interface, several families.

build_model(config) makes an untrained model; load_model(folder) reads a saved one.
Every model: encode(x) -> (mu, logvar), decode(z) -> images, decode_raw(z) -> what the
loss scores, reconstruct, embed, sample(n), loss(x, step), save(folder), load(folder).
"""

from __future__ import annotations

from pathlib import Path

from brainvae.errors import DataFileError
from brainvae.models.base import LatentModel, ModelOutput
from brainvae.models.beta_vae import BetaVAE
from brainvae.models.config import FORMAT_VERSION, ModelConfig
from brainvae.models.config_schema import check_footprint, model_footprint
from brainvae.models.errors import ModelError
from brainvae.models.losses import LossOutput
from brainvae.models.networks import PRESETS, ConvNetSpec, get_preset
from brainvae.models.pca import PCAModel
from brainvae.models.serialization import CONFIG_FILE, WEIGHTS_FILE, read_config, read_weights
from brainvae.models.soft_intro_vae import SoftIntroVAE

FAMILIES: dict[str, type[LatentModel]] = {
    "beta_vae": BetaVAE,
    "soft_intro_vae": SoftIntroVAE,
    "pca": PCAModel,
}


def build_model(config: ModelConfig) -> LatentModel:
    """An untrained model of config.family."""
    if config.family not in FAMILIES:
        raise ModelError(f"unknown model family {config.family!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[config.family](config)


def load_model(folder: str | Path, memory_budget: int | None = None) -> LatentModel:
    """A saved model, in eval mode: config validated first, then the safetensors weights.

    Before anything is allocated the model is built on the meta device: its memory (weights and
    one image's activations) must fit memory_budget bytes (None: BRAINVAE_MODEL_MEMORY_BUDGET,
    else half the machine's memory), and the weights file's header must match its parameters.
    """
    config = read_config(folder, FAMILIES)
    config_path = Path(folder) / CONFIG_FILE
    try:
        footprint, shapes = model_footprint(lambda: build_model(config))
    except ModelError as error:
        raise DataFileError(config_path, str(error)) from error
    except (RuntimeError, OverflowError) as error:  # sizes past what torch can even describe
        raise DataFileError(
            config_path,
            f"fields input_shape/latent_dim/network describe a model too large to build: {error}",
        ) from error
    check_footprint(footprint, config_path, memory_budget)
    tensors = read_weights(folder, expected=shapes.state_dict())
    model = build_model(config)
    model.load_tensors(tensors, Path(folder) / WEIGHTS_FILE)
    return model.eval()


__all__ = [
    "FAMILIES",
    "FORMAT_VERSION",
    "PRESETS",
    "BetaVAE",
    "ConvNetSpec",
    "LatentModel",
    "LossOutput",
    "ModelConfig",
    "ModelError",
    "ModelOutput",
    "PCAModel",
    "SoftIntroVAE",
    "build_model",
    "get_preset",
    "load_model",
]
