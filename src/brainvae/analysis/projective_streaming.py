"""The projective field's streaming: every decode of a sweep summed into float64 running sums
per band, nothing else kept.

Every decode is shifted by the base decode before summing (so the sums of squares do not
cancel), each batch is reduced in torch (one (bands, batch) x (batch, voxels) product per
moment, in float64: a one-sided far band's mean sits far from the base decode, so E[x^2] -
E[x]^2 cancels a digit that float32 products would lose) into float64 running sums, and only
the sums cross to numpy. A generator that yields progress after every decoded batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainvae.analysis.projective_sweep import SweepSettings


@dataclass(frozen=True)
class ProjectiveProgress:
    """Reported after every decoded batch; decodes count sweep decodes, not the base decode."""

    latent: int
    latents_done: int
    n_latents: int
    decodes_done: int
    total_decodes: int


@dataclass(frozen=True)
class SweepPlan:
    """The checked inputs of one sweep: 0-based latents (K,), the base code (L,), one unit of
    c per swept latent (K,), which latents fell back to prior units (K,), the c grid, decodes
    per forward pass and the decoder's autocast dtype (or None)."""

    latents: np.ndarray
    base: np.ndarray
    scale: np.ndarray
    unit_fallback: np.ndarray
    settings: SweepSettings
    batch_size: int
    autocast_dtype: Any = None


@dataclass(frozen=True)
class SweepVariances:
    """Per swept latent, the per-voxel variance (ddof 0, float32, flat voxels) of the decodes:
    band (K, 4, P) in BAND_NAMES order, the pooled large band (K, P) and the whole grid (K, P);
    band_counts (4,): decodes per band; image_shape: the decodes' shape."""

    band: np.ndarray
    large: np.ndarray
    total: np.ndarray
    band_counts: np.ndarray
    image_shape: tuple[int, ...]


def _image_shape(model: Any) -> tuple[int, ...]:
    config = model.config
    channels = int(getattr(config, "channels", 1))
    spatial = tuple(int(s) for s in config.input_shape)
    return spatial if channels == 1 else (channels, *spatial)


def _decode(model: Any, codes: np.ndarray, device: Any, autocast_dtype: Any) -> Any:
    """(n, P) float32 torch tensor of the decoded images (any model; numpy or torch out);
    only the decoder runs under autocast, never the sums."""
    import torch

    autocast = (
        torch.autocast(device_type=torch.device(device).type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    with autocast:
        images = model.decode(torch.from_numpy(codes.astype(np.float32)).to(device))
    images = torch.as_tensor(images)
    return images.reshape(len(codes), -1).to(dtype=torch.float32, device=device)


def stream_variances(
    model: Any, plan: SweepPlan
) -> Generator[ProjectiveProgress, None, SweepVariances]:
    """Yield a ProjectiveProgress after every decoded batch; return the SweepVariances."""
    import torch

    rows, base, units, batch_size = plan.latents, plan.base, plan.scale, plan.batch_size
    autocast_dtype = plan.autocast_dtype
    values = plan.settings.values()
    masks = plan.settings.band_masks()
    band_counts = masks.sum(axis=1)
    shape = _image_shape(model)
    n_voxels = int(np.prod(shape))
    device = getattr(model, "device", torch.device("cpu"))
    if hasattr(model, "eval"):
        model.eval()
    n_values, total = len(values), len(rows) * len(values)
    n_bands = len(masks)
    band_variance = np.empty((len(rows), n_bands, n_voxels), dtype=np.float32)
    large_variance = np.empty((len(rows), n_voxels), dtype=np.float32)
    total_variance = np.empty((len(rows), n_voxels), dtype=np.float32)
    # Rows: the 4 bands, the pooled large band, then the whole grid (c = 0 counted once).
    rows_of_weights = np.vstack(
        [masks, masks[2:].any(axis=0, keepdims=True), np.ones((1, n_values), bool)]
    )
    weights_all = torch.from_numpy(rows_of_weights).to(device=device, dtype=torch.float64)
    counts = weights_all.sum(dim=1, keepdim=True)
    done = 0
    with torch.inference_mode():
        reference = _decode(model, base[None], device, autocast_dtype)  # (1, P): the shift
        for position, latent in enumerate(rows):
            first = torch.zeros((n_bands + 2, n_voxels), dtype=torch.float64, device=device)
            second = torch.zeros_like(first)
            for start in range(0, n_values, batch_size):
                chunk = values[start : start + batch_size]
                codes = np.repeat(base[None], len(chunk), axis=0)
                codes[:, latent] += chunk * units[position]
                # Shifted in float32 (the decodes' own precision), summed in float64: the
                # weights select each band's rows in one product.
                shifted = _decode(model, codes, device, autocast_dtype).sub_(reference).double()
                weights = weights_all[:, start : start + len(chunk)]
                first += weights @ shifted
                second += weights @ shifted.square_()
                done += len(chunk)
                yield ProjectiveProgress(int(latent), position, len(rows), done, total)
            mean = first / counts
            variance = (second / counts - mean * mean).clamp_min_(0.0).cpu().numpy()
            band_variance[position] = variance[:n_bands]
            large_variance[position] = variance[n_bands]
            total_variance[position] = variance[n_bands + 1]
    return SweepVariances(
        band=band_variance,
        large=large_variance,
        total=total_variance,
        band_counts=band_counts.astype(np.int64),
        image_shape=shape,
    )
