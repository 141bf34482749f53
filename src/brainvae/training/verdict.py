"""Did the model learn? A plain verdict after training, with what to try when it did not.

Two signs of a model that learned nothing useful, measured on the evaluation scans (the val
split, else the training split):
- posterior collapse: fewer than half of the latents are active (latent_activity);
- no better than the mean: its reconstructions (at z = mu) are not closer to the scans, in
  mean squared error, than the population's mean image is.
The CLI prints the verdict after `brainvae train`; the Training dock shows it at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

MEAN_IMAGE_MARGIN = 0.95
"""The model must beat the mean image's squared error by at least 5 % to count as better."""


@dataclass(frozen=True)
class TrainingVerdict:
    """What the trained model does on the evaluation scans, and the problems found."""

    n_active: int
    latent_dim: int
    model_mse: float
    mean_image_mse: float
    n_scans: int
    problems: tuple[str, ...] = ()
    advice: tuple[str, ...] = field(default=())

    @property
    def learned(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        """A few plain sentences for the CLI and the dock."""
        ratio = self.model_mse / self.mean_image_mse if self.mean_image_mse > 0 else float("nan")
        head = (
            f"{self.n_active} of {self.latent_dim} latents active; reconstruction error "
            f"{ratio:.2f}x the population mean image's (over {self.n_scans} evaluation scans)."
        )
        if self.learned:
            return (
                head
                + " The model learned: explore it, then run the receptive and projective fields."
            )
        return " ".join(
            [head, "WARNING: " + " ".join(self.problems), "Try: " + "; ".join(self.advice) + "."]
        )


def training_verdict(
    model: Any, images: Any, rows: np.ndarray, *, total_steps: int | None = None,
    batch_size: int = 32,
) -> TrainingVerdict:  # fmt: skip
    """Encode and decode the rows of images (batched, fp32, z = mu) and judge the model."""
    import torch

    from brainvae.analysis.latent_activity import latent_activity

    rows = np.sort(np.asarray(rows, dtype=np.int64))
    if rows.size == 0:
        raise ValueError("no evaluation scans to judge the model on")
    model.eval()
    codes, squared, total, total_squares, count = [], 0.0, 0.0, 0.0, 0
    with torch.inference_mode():  # one read of the scans: the model's and the mean's errors
        for start in range(0, len(rows), batch_size):
            batch = np.asarray(images[rows[start : start + batch_size]], dtype=np.float32)
            mu, _ = model.encode(batch)
            decoded = model.decode(mu).float().cpu().numpy().reshape(batch.shape)
            codes.append(mu.float().cpu().numpy())
            squared += float(((decoded - batch) ** 2).sum())
            flat = batch.astype(np.float64)
            total = total + flat.sum(axis=0)
            total_squares += float((flat * flat).sum())
            count += len(batch)
    # sum over scans and voxels of (x - mean)^2 = sum x^2 - count * sum(mean^2)
    mean_image = np.asarray(total) / count
    baseline = max(total_squares - count * float((mean_image * mean_image).sum()), 0.0)
    n_values = count * mean_image.size
    activity = latent_activity(np.concatenate(codes))
    model_mse, mean_mse = squared / n_values, baseline / n_values
    problems = _problems(activity.n_active, activity.latent_dim, model_mse, mean_mse)
    advice = _advice(model, len(images), total_steps) if problems else []
    return TrainingVerdict(
        n_active=activity.n_active,
        latent_dim=activity.latent_dim,
        model_mse=model_mse,
        mean_image_mse=mean_mse,
        n_scans=count,
        problems=tuple(problems),
        advice=tuple(advice),
    )


def _problems(n_active: int, latent_dim: int, model_mse: float, mean_mse: float) -> list[str]:
    """The signs of a model that did not learn, in words."""
    problems: list[str] = []
    if 2 * n_active < latent_dim:
        problems.append(
            f"Only {n_active} of {latent_dim} latents are active (posterior collapse): the "
            "others carry nothing about the scans."
        )
    if not model_mse < MEAN_IMAGE_MARGIN * mean_mse:
        problems.append(
            "The reconstructions are no closer to the scans than the population's mean image: "
            "the model has not learned what varies."
        )
    return problems


def _advice(model: Any, n_population: int, total_steps: int | None) -> list[str]:
    """What to try, most likely first, from the model's settings."""
    config = model.config
    advice = []
    if total_steps is not None and total_steps < 3000:
        advice.append(f"more steps (this run took {total_steps}; --steps 3000 or more)")
    else:
        advice.append("more steps (--steps)")
    if config.family == "beta_vae" and config.beta > 1:
        advice.append(f"a lower beta (--beta 1; this model used {config.beta:g})")
    if config.family == "beta_vae" and not getattr(config, "kl_warmup_steps", 0):
        advice.append("a KL warm-up (--kl-warmup 300)")
    if config.likelihood == "bernoulli":
        advice.append("the Gaussian likelihood (--likelihood gaussian --sigma 0.05)")
    if config.architecture != "small":
        advice.append("the small net (--arch small)")
    if n_population < 100 or config.latent_dim > 8:
        advice.append("fewer latents, or PCA for a small population (--model pca)")
    else:
        advice.append("PCA as a baseline (--model pca)")
    return advice


def dataset_verdict(model: Any, dataset: Any, total_steps: int | None = None) -> TrainingVerdict:
    """The verdict on a prepared dataset's val split (its train split when val has < 2 scans):
    what `brainvae train` prints and the Training dock shows."""
    rows = dataset.indices("val")
    if len(rows) < 2:
        rows = dataset.indices("train")
    return training_verdict(model, dataset.images, rows, total_steps=total_steps)
