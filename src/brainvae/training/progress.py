"""What the training loop yields: small reports a GUI worker or a CLI progress bar can show."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

VALIDATION_NOTE = "z = mu, no sampling: not comparable with the training loss"
"""How every display labels validation losses: they are scored at the posterior mean (eval
mode), while the training loss draws z ~ q(z|x), so validation usually reads lower without
meaning the model does better on unseen scans."""
VALIDATION_TAG = "(z = mu)"
"""The short form of VALIDATION_NOTE, where space is tight (legends, progress bars)."""


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
    from the training split). They are computed at z = mu, without sampling, so they are not
    comparable with train_*, which sample z (VALIDATION_NOTE). reconstruction_net is the validation (else training)
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
    direction_cosines: dict[str, float | None] = field(default_factory=dict)
    """A longitudinal VAE's directions ("aging", then each disease group): the mean cosine of
    the evaluation scans' visit changes with each (None without a pair); empty otherwise."""


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
