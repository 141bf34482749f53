"""Errors raised by the models: a configuration or an input the model cannot use."""

from __future__ import annotations

from brainvae.errors import BrainVAEError


class ModelError(BrainVAEError, ValueError):
    """A model configuration or input that does not fit: says what was expected and what came."""
