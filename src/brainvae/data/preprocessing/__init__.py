"""Preprocessing: a declarative config, pure array steps, and the per-file pipeline."""

from brainvae.data.preprocessing.config import CONFIG_VERSION, PREPROCESS_RECIPES, PreprocessConfig
from brainvae.data.preprocessing.pipeline import PreprocessedImage, preprocess_volume

__all__ = [
    "CONFIG_VERSION",
    "PREPROCESS_RECIPES",
    "PreprocessConfig",
    "PreprocessedImage",
    "preprocess_volume",
]
