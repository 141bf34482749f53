"""What the training loop yields: small reports a GUI worker or a CLI progress bar can show."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class BatchReport:
    """One optimiser step done (epoch and batch count from 1); losses are per image, in nats."""

    epoch: int
    batch: int
    n_batches: int
    loss: float
    reconstruction: float
    kl: float
    images_per_s: float
    elapsed_s: float
    eta_s: float


@dataclass(frozen=True)
class EpochReport:
    """One epoch done: training means, evaluation on the validation split, latent health.

    val_* are None when the dataset has no validation split (then the latent statistics come
    from the training split). reconstruction_net is the validation (else training)
    reconstruction minus the data's Bernoulli entropy floor, None for other likelihoods.
    """

    epoch: int
    train_loss: float
    train_reconstruction: float
    train_kl: float
    val_loss: float | None
    val_reconstruction: float | None
    val_kl: float | None
    reconstruction_net: float | None
    kl_per_latent: list[float] = field(default_factory=list)
    active_units: int = 0
    images_per_s: float = 0.0
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class Finished:
    """The loop ended: reason "completed" or "cancelled"; run_dir holds the model and history."""

    reason: str
    run_dir: Path


@dataclass
class TrainResult:
    """What train() returns when its generator is exhausted."""

    reason: str
    run_dir: Path
    epochs_completed: int
    step: int
    history: list[dict] = field(default_factory=list)
