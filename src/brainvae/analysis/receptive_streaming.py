"""The receptive field's streaming: every batch of images read once, perturbed for every
(ROI, weight) pair and encoded; only running float64 means and sums of squares are kept, so
memory is bounded by the batch size, not by images x weights x ROIs. A generator that yields
progress after every encode call (a napari worker reports it and can cancel between calls)."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainvae.analysis.perturbations import NOISE_SEED, blur, perturb


@dataclass(frozen=True)
class ReceptiveFieldProgress:
    """One step of the computation: encode calls done of total, and the batch just finished."""

    done: int
    total: int
    images_done: int
    n_images: int


@dataclass(frozen=True)
class PerturbationPlan:
    """The checked inputs of one receptive-field run: which image rows, the (R, *spatial) ROI
    masks and their names, the sorted weights, the perturbation and its amplitude, how the KL
    is taken and floored, images per encode call and the encoder's autocast dtype (or None)."""

    rows: np.ndarray
    masks: np.ndarray
    names: tuple[str, ...]
    weights: np.ndarray
    kind: str
    amplitude: float
    one_sided: bool
    floor_fraction: float
    batch_size: int
    autocast_dtype: Any = None


@dataclass(frozen=True)
class CodeMoments:
    """What the stream keeps: (R, W, L) mean and variance (ddof 0) of the perturbed codes and
    (L,) the variance of the unperturbed ones."""

    means: np.ndarray
    variances: np.ndarray
    population_variance: np.ndarray


class _RunningMoments:
    """Mean and sum of squared deviations per cell, merged batch by batch (Chan et al.)."""

    def __init__(self, shape: tuple[int, ...]):
        self.count = 0
        self.mean = np.zeros(shape, dtype=np.float64)
        self.m2 = np.zeros(shape, dtype=np.float64)

    def add(self, index: tuple, codes: np.ndarray, count_before: int) -> None:
        codes = np.asarray(codes, dtype=np.float64)
        n_batch = codes.shape[0]
        batch_mean = codes.mean(axis=0)
        batch_m2 = ((codes - batch_mean) ** 2).sum(axis=0)
        total = count_before + n_batch
        delta = batch_mean - self.mean[index]
        self.mean[index] += delta * (n_batch / total)
        self.m2[index] += batch_m2 + delta**2 * (count_before * n_batch / total)

    def variance(self) -> np.ndarray:
        return self.m2 / max(self.count, 1)


def _codes(model: Any, batch: np.ndarray) -> np.ndarray:
    """Posterior means of a batch as float64 numpy, whatever the model returns."""
    mu = model.encode(batch)[0]
    if hasattr(mu, "detach"):
        mu = mu.detach().float().cpu().numpy()
    return np.asarray(mu, dtype=np.float64)


def _autocast(model: Any, dtype: Any) -> Any:
    """torch.autocast on the model's device for `dtype`, or no context for None."""
    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(
        device_type=str(getattr(model, "device", "cpu")).split(":")[0], dtype=dtype
    )


def stream_code_moments(
    model: Any, images: np.ndarray, plan: PerturbationPlan
) -> Generator[ReceptiveFieldProgress, None, CodeMoments]:
    """Yield a ReceptiveFieldProgress after every encode call; return the CodeMoments.

    The unperturbed images are encoded once per batch: their codes are the population's and,
    for a weight of 0, every ROI's (x~ = x0)."""
    import torch

    masks, weights, kind, amplitude = plan.masks, plan.weights, plan.kind, plan.amplitude
    rows, batch_size = plan.rows, plan.batch_size
    n_rois, n_weights, n_latents = len(masks), len(weights), int(model.latent_dim)
    moments = _RunningMoments((n_rois, n_weights, n_latents))
    population = _RunningMoments((n_latents,))  # unperturbed codes: activity and floors
    zero = np.flatnonzero(weights == 0.0)  # x~ = x0 for every ROI: encoded once per batch
    perturbed_weights = [j for j in range(n_weights) if j not in set(zero.tolist())]
    calls_per_batch = n_rois * len(perturbed_weights) + 1
    n_batches = -(-len(rows) // batch_size)
    total, done = n_batches * calls_per_batch, 0
    rng = np.random.default_rng(NOISE_SEED)
    spatial_dims = masks.ndim - 1
    if hasattr(model, "eval"):
        model.eval()
    with torch.inference_mode(), _autocast(model, plan.autocast_dtype):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            contiguous = bool(np.all(np.diff(chunk) == 1))  # a slice reads a memory map fastest
            batch = images[chunk[0] : chunk[-1] + 1] if contiguous else images[chunk]
            batch = np.asarray(batch, dtype=np.float32)
            noise = blurred = None
            if kind == "noise":
                noise = rng.standard_normal(batch.shape, dtype=np.float32)
            elif kind == "blur":
                blurred = blur(batch, amplitude, spatial_dims)
            count, batch_end = moments.count, done + calls_per_batch
            codes = _codes(model, batch)
            population.add((), codes, count)
            for r in range(n_rois if zero.size else 0):
                moments.add((r, int(zero[0])), codes, count)
            done += 1
            yield _progress(done, total, batch_end, start, len(batch), len(rows))
            for r in range(n_rois):
                for j in perturbed_weights:
                    x = perturb(batch, masks[r], float(weights[j]), kind, amplitude, noise, blurred)
                    moments.add((r, j), _codes(model, x), count)
                    done += 1
                    yield _progress(done, total, batch_end, start, len(batch), len(rows))
            moments.count += len(batch)
            population.count += len(batch)
    return CodeMoments(moments.mean, moments.variance(), population.variance())


def _progress(
    done: int, total: int, batch_end: int, start: int, batch_len: int, n_images: int
) -> ReceptiveFieldProgress:
    images_done = start + batch_len if done == batch_end else start
    return ReceptiveFieldProgress(done, total, images_done, n_images)
