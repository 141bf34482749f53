"""TrainConfig: how one training run goes (epochs, batch, optimiser, device), and its JSON form."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from brainvae.errors import ModelError
from brainvae.json_files import loads_or_raise
from brainvae.training.recipe import DEFAULT_RECIPE, epochs_for_steps

PRECISIONS = ("auto", "fp32", "bf16")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
RESUME_FIXED = ("seed", "batch_size", "drop_last")
"""Fields a resumed run must share with the run it continues (they fix the data order).
epochs, lr, max_grad_norm, device and precision may change on resume (e.g. a lower lr after
a NaN stop); the same values give the same run as if never stopped."""


@dataclass
class TrainConfig:
    """One training run.

    epochs / steps: how long to train, in passes over the training split or in optimiser steps
        (give at most one; neither: the default recipe's steps). steps become the whole number
        of epochs that reaches them (resolved), so resume stays exact.
    batch_size: images per Adam step; lr: Adam rate (defaults: the default recipe's).
    seed: seeds weights-independent randomness (data order, reparameterisation noise).
    device: "auto" (CUDA, then MPS, then CPU), "cpu", "mps" or "cuda[:N]".
    precision: "fp32", "bf16" (autocast) or "auto" (bf16 on a CUDA GPU that supports it, or on
        a CPU where a short measured probe found bf16 at least 10 % faster, cached per machine;
        else fp32; see device.autocast_dtype).
    checkpoint_every: epochs between checkpoints (one is also written at stop).
    num_workers: threads reading the next batches ahead (0 = read in the loop; order unchanged).
    drop_last: skip a final short batch. max_grad_norm: clip gradients to this norm (None = off).
    """

    epochs: int | None = None
    steps: int | None = None
    batch_size: int = DEFAULT_RECIPE.batch_size
    lr: float = DEFAULT_RECIPE.lr
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    checkpoint_every: int = 1
    num_workers: int = 0
    drop_last: bool = False
    max_grad_norm: float | None = None

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        for name in ("epochs", "steps", "batch_size", "seed", "checkpoint_every", "num_workers"):
            value = getattr(self, name)
            if value is None and name in ("epochs", "steps"):
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise ModelError(f"{name} must be an integer, got {value!r}")
        if self.epochs is not None and self.steps is not None:
            raise ModelError(
                f"give the training length as epochs or as steps, not both (got epochs "
                f"{self.epochs} and steps {self.steps})"
            )
        length = self.epochs if self.epochs is not None else (self.steps or 1)
        if length < 1 or self.batch_size < 1 or self.checkpoint_every < 1:
            raise ModelError(
                "epochs (or steps), batch_size and checkpoint_every must be >= 1, got "
                f"{length}, {self.batch_size}, {self.checkpoint_every}"
            )
        if self.seed < 0 or self.num_workers < 0:
            raise ModelError(
                f"seed and num_workers must be >= 0, got {self.seed}, {self.num_workers}"
            )
        if not _is_number(self.lr) or not (math.isfinite(self.lr) and self.lr > 0):
            raise ModelError(f"lr must be a finite number > 0, got {self.lr!r}")
        if self.max_grad_norm is not None and not (
            _is_number(self.max_grad_norm)
            and math.isfinite(self.max_grad_norm)
            and self.max_grad_norm > 0
        ):
            raise ModelError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm!r}")
        if not isinstance(self.drop_last, bool):
            raise ModelError(f"drop_last must be true or false, got {self.drop_last!r}")
        if not isinstance(self.device, str) or not DEVICE_PATTERN.match(self.device):
            raise ModelError(f"device must be auto, cpu, mps, cuda or cuda:N, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ModelError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )

    def resolved(self, n_train: int) -> TrainConfig:
        """This config with epochs set: given, or the whole epochs that reach `steps` (the
        default recipe's when neither is given) over n_train scans (a rank's share)."""
        if self.epochs is not None:
            return self
        steps = self.steps if self.steps is not None else DEFAULT_RECIPE.steps
        epochs = epochs_for_steps(steps, max(n_train, 1), self.batch_size, self.drop_last)
        return replace(self, epochs=epochs, steps=None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Validate a dict (e.g. from JSON): unknown fields and wrong types are refused."""
        if not isinstance(data, dict):
            raise ModelError("training config must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"unknown training config field(s): {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as error:
            raise ModelError(f"training config has a field of the wrong type: {error}") from error

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Parse and validate JSON text."""
        return cls.from_dict(loads_or_raise(text, ModelError, "training config"))

    def resume_conflicts(self, previous: TrainConfig) -> list[str]:
        """The run-defining fields that differ from the run being resumed (empty when none)."""
        return [
            f"{name}: {getattr(previous, name)!r} -> {getattr(self, name)!r}"
            for name in RESUME_FIXED
            if getattr(previous, name) != getattr(self, name)
        ]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
