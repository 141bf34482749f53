"""How well a trained model reconstructs held-out scans and how real its prior samples look.

evaluation_steps encodes the scans (posterior means), decodes them, scores each reconstruction
against its scan (MSE, SSIM, CW-SSIM inside the brain mask: brainvae.evaluation.image_quality),
draws as many samples from the prior and compares them with the scans as a set (PCA-based
Frechet distance: brainvae.evaluation.frechet). Every family answers the same verbs
(encode, decode), so this serves the beta-VAE, the VAE, the Soft-IntroVAE and PCA alike; the
age-conditioned VAE's prior depends on a condition, so its samples are drawn at given values
(the scans' own: say so with sample_note).

Arrays in, a RunEvaluation out, small EvaluationProgress reports on the way; no file I/O
(brainvae.usecases.evaluate_run opens the run and the dataset, brainvae.exports.
evaluation_folder writes the results).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

SHOWN = 4
"""Scans, reconstructions and samples kept for pictures."""
SCORED_PER_STEP = 16
"""Reconstructions scored per progress report (CW-SSIM is the slow part)."""


@dataclass(frozen=True)
class EvaluationProgress:
    """One step done: stage (what is being done), done of total steps."""

    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class RunEvaluation:
    """Reconstructions of a split scored per scan, and prior samples scored as a set.

    reconstruction: ImageScores (per-scan mse, ssim, cw_ssim against the scan, inside
    brain_mask); identity: one row per scan (who it is: subject_id, session, its dataset row);
    codes: (N, L) posterior means of the scans; pca_fd: PCAFrechet of the samples against the
    scans; shown_*: the first SHOWN scans, their reconstructions and SHOWN samples, for
    pictures; sample_note: how the samples were drawn.
    """

    split: str
    family: str
    identity: pd.DataFrame
    reconstruction: Any
    codes: np.ndarray
    pca_fd: Any
    n_samples: int
    sample_note: str
    brain_mask: np.ndarray
    mask_note: str
    shown_scans: np.ndarray
    shown_reconstructions: np.ndarray
    samples: np.ndarray
    model_label: str = ""

    @property
    def n_scans(self) -> int:
        return int(len(self.codes))

    @property
    def table(self) -> pd.DataFrame:
        """One row per scan: who it is, then mse, ssim, cw_ssim of its reconstruction."""
        import pandas as pd

        scores = self.reconstruction.table().reset_index(drop=True)
        scores = scores[[c for c in scores.columns if c not in self.identity.columns]]
        return pd.concat([self.identity.reset_index(drop=True), scores], axis=1)

    def activity(self) -> Any:
        """Which latents vary over these scans (brainvae.analysis.latent_activity)."""
        from brainvae.analysis.latent_activity import latent_activity

        return latent_activity(self.codes)

    def summary(self) -> dict[str, Any]:
        """The figures in numbers and words, JSON-ready."""
        activity = self.activity()
        fd = self.pca_fd
        return {
            "split": self.split,
            "family": self.family,
            "model": self.model_label,
            "n_scans": self.n_scans,
            "latent_dim": int(self.codes.shape[1]),
            "active_latents": activity.n_active,
            "activity": activity.to_json(),
            "reconstruction": {k: _plain(v) for k, v in self.reconstruction.summary().items()},
            "reconstruction_is": "decode(posterior mean) of each scan, scored against the scan",
            "brain_mask": self.mask_note,
            "brain_mask_voxels": int(np.count_nonzero(self.brain_mask)),
            "samples": {
                "n": self.n_samples,
                "drawn": self.sample_note,
                "pca_frechet_distance": _plain(fd.distance),
                "pca_components": int(fd.n_components),
                "pca_explained_variance": _plain(fd.explained_variance),
                "compared_with": f"the {self.n_scans} scans of the {self.split} split",
            },
        }


def _plain(value: Any) -> Any:
    """A number as JSON has it (NaN and infinities as None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return number if np.isfinite(number) else None


def prior_codes(model: Any, n: int, seed: int, condition: np.ndarray | None = None) -> np.ndarray:
    """(n, L) draws from the model's prior: N(0, I), or for an age-conditioned VAE N(c u, I) at
    the given condition values (cycled when fewer than n)."""
    import torch

    from brainvae.errors import ModelError

    if n < 1:
        raise ModelError(f"the number of samples must be >= 1, got {n}")
    generator = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n, model.latent_dim, generator=generator)
    if model.config.family == "age_vae":
        if condition is None or len(condition) == 0:
            raise ModelError(
                "an age-conditioned VAE's prior depends on its condition "
                f"({model.config.condition!r}): give the values to sample at"
            )
        values = np.asarray(condition, dtype=np.float32)[np.arange(n) % len(condition)]
        with torch.no_grad():
            z = z + model.prior_mean(values).float().cpu()
    return z.numpy()


def model_description(model: Any) -> str:
    """The model in words: "beta-VAE, beta = 3, L = 8", "PCA baseline, L = 8"."""
    from brainvae.models.families import family_choice

    config = model.config
    try:
        words = family_choice(config.family).label
    except ValueError:
        words = str(config.family)
    if config.family in ("beta_vae", "age_vae"):
        words += f", beta = {config.beta:g}"
    return f"{words}, L = {config.latent_dim}"


def sample_description(model: Any, n: int, n_scans: int, split: str) -> str:
    """How the samples were drawn, in words (the summary says it)."""
    if model.config.family == "age_vae":
        column = model.config.condition
        cycled = " (cycled)" if n > n_scans else ""
        return (
            f"{n} codes from the conditional prior N(c u, I) at the {split} scans' own "
            f"{column!r} values{cycled}, decoded: an age-conditioned VAE has no unconditional "
            "prior"
        )
    if model.config.family == "pca":
        return f"{n} codes from N(0, I) in the whitened PCA space, decoded linearly"
    return f"{n} codes from the prior N(0, I), decoded (the decoder's mean image)"


def evaluation_steps(
    model: Any,
    images: np.ndarray,
    rows: np.ndarray,
    brain_mask: np.ndarray,
    *,
    split: str,
    identity: pd.DataFrame,
    n_samples: int | None = None,
    condition: np.ndarray | None = None,
    seed: int = 0,
    batch: int = 64,
    mask_note: str = "",
) -> Generator[EvaluationProgress, None, RunEvaluation]:
    """Reconstruct images[rows] and sample the prior; score both; return the RunEvaluation.

    images: (M, *spatial) (a memory map is read a batch at a time); rows: the scans to use;
    brain_mask: spatial bool, where the scores are taken; n_samples: prior samples (None: as
    many as scans); condition: the scans' condition values (age-conditioned VAE only).
    """
    import torch

    from brainvae.evaluation.frechet import pca_frechet_distance
    from brainvae.evaluation.image_quality import image_scores
    from brainvae.models import ModelError

    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) < 2:
        raise ModelError(
            f"the {split} split has {len(rows)} scan(s); scoring samples against it needs at "
            "least 2"
        )
    if batch < 1:
        raise ModelError(f"the batch must be >= 1, got {batch}")
    if model.config.channels != 1:
        raise ModelError(
            f"the evaluation scores single-channel images; this model has "
            f"{model.config.channels} channels"
        )
    n_samples = len(rows) if n_samples is None else int(n_samples)
    z = prior_codes(model, n_samples, seed, condition)  # checks n and the condition first
    spatial = tuple(int(s) for s in model.config.input_shape)
    batches = [rows[i : i + batch] for i in range(0, len(rows), batch)]
    sample_batches = [z[i : i + batch] for i in range(0, n_samples, batch)]
    chunks = [slice(i, i + SCORED_PER_STEP) for i in range(0, len(rows), SCORED_PER_STEP)]
    total = len(batches) + len(sample_batches) + len(chunks) + 1
    done = 0
    model.eval()
    scans = np.empty((len(rows), *spatial), dtype=np.float32)
    reconstructions = np.empty_like(scans)
    codes = np.empty((len(rows), model.latent_dim), dtype=np.float64)
    start = 0
    with torch.no_grad():
        for chosen in batches:
            x = np.asarray(images[chosen], dtype=np.float32).reshape(len(chosen), *spatial)
            mu = model.embed(x)
            scans[start : start + len(x)] = x
            codes[start : start + len(x)] = mu.float().cpu().numpy()
            decoded = model.decode(mu).float().cpu().numpy()
            reconstructions[start : start + len(x)] = decoded.reshape(len(x), *spatial)
            start += len(x)
            done += 1
            yield EvaluationProgress("reconstructing", done, total)
        generated = np.empty((n_samples, *spatial), dtype=np.float32)
        start = 0
        for codes_batch in sample_batches:
            decoded = model.decode(codes_batch).float().cpu().numpy()
            generated[start : start + len(codes_batch)] = decoded.reshape(-1, *spatial)
            start += len(codes_batch)
            done += 1
            yield EvaluationProgress("sampling the prior", done, total)
    parts = []
    for chunk in chunks:
        parts.append(image_scores(scans[chunk], reconstructions[chunk], mask=brain_mask))
        done += 1
        yield EvaluationProgress("scoring reconstructions", done, total)
    frechet = pca_frechet_distance(scans, generated, mask=brain_mask)
    done += 1
    yield EvaluationProgress("Frechet distance of the samples", done, total)
    return RunEvaluation(
        split=split,
        family=str(model.config.family),
        identity=identity.reset_index(drop=True),
        reconstruction=joined_scores(parts),
        codes=codes,
        pca_fd=frechet,
        n_samples=n_samples,
        sample_note=sample_description(model, n_samples, len(rows), split),
        brain_mask=np.asarray(brain_mask, dtype=bool),
        mask_note=mask_note,
        shown_scans=scans[:SHOWN].copy(),
        shown_reconstructions=reconstructions[:SHOWN].copy(),
        samples=generated[:SHOWN].copy(),
        model_label=model_description(model),
    )


def joined_scores(parts: list[Any]) -> Any:
    """One ImageScores from the ImageScores of consecutive chunks of scans (each field a
    per-scan array, concatenated in order)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    values = {
        item.name: np.concatenate([np.asarray(getattr(p, item.name)) for p in parts])
        for item in dataclasses.fields(first)
    }
    return type(first)(**values)
