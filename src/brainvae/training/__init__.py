"""Training engine: a generator loop with progress reports, exact resume and safe checkpoints."""

from __future__ import annotations

from brainvae.run_folder import RunFolder
from brainvae.training.checkpoint import latest_checkpoint, list_checkpoints, read_checkpoint
from brainvae.training.config import TrainConfig
from brainvae.training.device import autocast_dtype, describe_device, resolve_device
from brainvae.training.history import (
    active_units,
    bernoulli_entropy_floor,
)
from brainvae.training.progress import BatchReport, EpochReport, Finished, TrainResult
from brainvae.training.trainer import train

__all__ = [
    "BatchReport",
    "EpochReport",
    "Finished",
    "RunFolder",
    "TrainConfig",
    "TrainResult",
    "active_units",
    "autocast_dtype",
    "bernoulli_entropy_floor",
    "describe_device",
    "latest_checkpoint",
    "list_checkpoints",
    "read_checkpoint",
    "resolve_device",
    "train",
]
