"""The latent space of one model over one population: statistics, ranges, paths, traversals.

Pure functions over arrays and a LatentModel (any family: beta-VAE, Soft-IntroVAE, PCA),
each returning arrays or a small result dataclass; every decode and encode is batched.
The slider ranges are computed apart from the rendering (as disentangling-vae does), so the
explorer dock, a script and an export all see the same numbers. traversal_pictures.py turns a
traversal into 8-bit pictures; brainvae.exports.pictures writes them (PNG, GIF).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.analysis.latent_activity import LatentActivity, latent_activity

if TYPE_CHECKING:
    from brainvae.models.base import LatentModel

RANGE_MODES = ("population", "fixed3", "fixed7")
"""Slider range modes: population mean +- n sd of the codes, fixed [-3, 3], fixed [-7, 7]."""

FIXED_HALF_WIDTHS = {"fixed3": 3.0, "fixed7": 7.0}
MIN_SD = 1e-3
"""Below this population sd a latent is dead: its population range falls back to the prior's."""
NO_POSTERIOR_LOGVAR = -20.0
"""Log-variances at or below this everywhere mean point codes (PCA): no KL is reported."""


@dataclass(frozen=True)
class LatentStatistics:
    """Posterior means of a population and what they say about each latent.

    codes: (N, L) posterior means; mean, sd: (L,) over the population; kl: (L,) mean
    KL(q(z|x) || N(0, I)) per latent in nats, or None for models whose codes are points (PCA,
    where a KL would only measure the stand-in log-variance); active: (L,) the shared
    definition (latent_activity: code variance over the population > 0.01), so dead latents
    stand out whatever the family.
    """

    codes: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    kl: np.ndarray | None
    active: np.ndarray

    @property
    def n_images(self) -> int:
        return int(self.codes.shape[0])

    @property
    def latent_dim(self) -> int:
        return int(self.codes.shape[1])

    @property
    def activity(self) -> LatentActivity:
        """The codes' activity (latent_activity), with each latent's code variance."""
        return latent_activity(self.codes)


@dataclass(frozen=True)
class SliderRanges:
    """Per-latent slider bounds (L,) and, for the population mode, which fell back to the prior."""

    low: np.ndarray
    high: np.ndarray
    mode: str
    prior_fallback: np.ndarray

    def clip(self, code: np.ndarray) -> np.ndarray:
        """The code moved inside the ranges."""
        return np.clip(code, self.low, self.high)


@dataclass(frozen=True)
class TraversalGrid:
    """Decoded traversal: images (rows, values, *shape), row r sweeping latent latents[r].

    values: (rows, n_values) the value latent latents[r] takes in each column; base: (L,)
    the code every other latent keeps.
    """

    images: np.ndarray
    latents: np.ndarray
    values: np.ndarray
    base: np.ndarray

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[2:])


def check_images_fit(model: LatentModel, images_shape: Sequence[int]) -> None:
    """Raise a ModelError naming both shapes when (N, *shape) images do not fit the model."""
    from brainvae.errors import ModelError

    config = model.config
    sample = tuple(int(s) for s in images_shape[1:])
    fits = sample == tuple(config.input_shape) or sample == (config.channels, *config.input_shape)
    if not fits:
        expected = " x ".join(map(str, config.input_shape))
        got = " x ".join(map(str, sample)) or "scalars"
        raise ModelError(
            f"the population's images are {got} but the model expects {expected} "
            f"({config.dims}D, {config.latent_dim} latents): load a model trained on this grid"
        )


def population_latents(
    model: LatentModel, images: np.ndarray, batch_size: int = 64
) -> LatentStatistics:
    """Encode all images (batched; memory maps are read batch by batch) and summarise the codes."""
    import torch

    check_images_fit(model, np.shape(images))
    n_images = len(images)
    if n_images == 0:
        raise ValueError("the population is empty: nothing to encode")
    codes = np.empty((n_images, model.latent_dim), dtype=np.float32)
    logvars = np.empty_like(codes)
    with torch.inference_mode():
        for start in range(0, n_images, batch_size):
            batch = np.asarray(images[start : start + batch_size], dtype=np.float32)
            mu, logvar = model.encode(batch)
            codes[start : start + len(batch)] = _as_numpy(mu)
            logvars[start : start + len(batch)] = _as_numpy(logvar)
    mean = codes.mean(axis=0, dtype=np.float64)
    sd = codes.std(axis=0, dtype=np.float64)
    kl = None
    if np.any(logvars > NO_POSTERIOR_LOGVAR):
        mu64, logvar64 = codes.astype(np.float64), logvars.astype(np.float64)
        kl = 0.5 * (mu64**2 + np.exp(logvar64) - logvar64 - 1.0).mean(axis=0)
    return LatentStatistics(
        codes=codes, mean=mean, sd=sd, kl=kl, active=latent_activity(codes).active
    )


def _as_numpy(values: Any) -> np.ndarray:
    """A torch tensor or an array (stand-in models, tests' oracle) as float32 numpy."""
    if hasattr(values, "detach"):
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float32)


def slider_ranges(
    mode: str,
    latent_dim: int,
    statistics: LatentStatistics | None = None,
    n_sd: float = 3.0,
) -> SliderRanges:
    """Bounds for each latent's slider.

    "population": mean +- n_sd sd of the population's codes; a dead latent (sd < MIN_SD) gets
    mean +- n_sd (the prior's sd) so its slider still moves. "fixed3" / "fixed7": [-3, 3] and
    [-7, 7] in prior units for every latent.
    """
    if mode not in RANGE_MODES:
        raise ValueError(f"unknown range mode {mode!r}; expected one of {', '.join(RANGE_MODES)}")
    if mode in FIXED_HALF_WIDTHS:
        half = FIXED_HALF_WIDTHS[mode]
        return SliderRanges(
            low=np.full(latent_dim, -half),
            high=np.full(latent_dim, half),
            mode=mode,
            prior_fallback=np.zeros(latent_dim, dtype=bool),
        )
    if statistics is None:
        raise ValueError("the population range needs the population's latent statistics")
    if statistics.latent_dim != latent_dim:
        raise ValueError(
            f"statistics hold {statistics.latent_dim} latents, the model has {latent_dim}"
        )
    dead = statistics.sd < MIN_SD
    half = n_sd * np.where(dead, 1.0, statistics.sd)
    return SliderRanges(
        low=statistics.mean - half, high=statistics.mean + half, mode=mode, prior_fallback=dead
    )


def interpolation_codes(start: np.ndarray, end: np.ndarray, n_frames: int) -> np.ndarray:
    """(n_frames, L) codes on the straight line from start (frame 0) to end (last frame)."""
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    if start.shape != end.shape or start.ndim != 1:
        raise ValueError(f"two codes of one shape (L,) are needed, got {start.shape}, {end.shape}")
    if n_frames < 2:
        raise ValueError(f"an interpolation needs at least 2 frames, got {n_frames}")
    t = np.linspace(0.0, 1.0, n_frames)[:, None]
    return (1.0 - t) * start + t * end


def decode_codes(model: LatentModel, codes: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Images for (n, L) codes, decoded in batches: (n, *input_shape), or (n, C, ...) if C > 1."""
    import torch

    codes = np.atleast_2d(np.asarray(codes, dtype=np.float32))
    config = model.config
    out_shape = (*(() if config.channels == 1 else (config.channels,)), *config.input_shape)
    images = np.empty((len(codes), *out_shape), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(codes), batch_size):
            batch = model.decode(torch.from_numpy(codes[start : start + batch_size]))
            images[start : start + len(batch)] = (
                batch.float().cpu().numpy().reshape(len(batch), *out_shape)
            )
    return images


def traversal_values(ranges: SliderRanges, latents: Sequence[int], n_values: int) -> np.ndarray:
    """(rows, n_values): n_values evenly spaced over each chosen latent's slider range."""
    if n_values < 2:
        raise ValueError(f"a traversal needs at least 2 values per latent, got {n_values}")
    rows = np.asarray(latents, dtype=int)
    return np.linspace(ranges.low[rows], ranges.high[rows], n_values, axis=1)


def traversal_grid(
    model: LatentModel,
    base: np.ndarray,
    latents: Sequence[int],
    values: np.ndarray,
    batch_size: int = 32,
) -> TraversalGrid:
    """Decode base with latent latents[r] set to values[r, c] (values (n,) is shared by rows)."""
    base = np.asarray(base, dtype=np.float64)
    rows = np.asarray(latents, dtype=int)
    if base.shape != (model.latent_dim,):
        raise ValueError(f"base code must have shape ({model.latent_dim},), got {base.shape}")
    if rows.size == 0 or rows.min() < 0 or rows.max() >= model.latent_dim:
        raise ValueError(f"latents must be in 0..{model.latent_dim - 1}, got {rows.tolist()}")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = np.broadcast_to(values, (len(rows), len(values)))
    if values.shape[0] != len(rows):
        raise ValueError(f"values need one row per latent ({len(rows)}), got {values.shape}")
    n_values = values.shape[1]
    codes = np.repeat(base[None, :], len(rows) * n_values, axis=0)
    codes[np.arange(codes.shape[0]), np.repeat(rows, n_values)] = values.reshape(-1)
    images = decode_codes(model, codes, batch_size)
    return TraversalGrid(
        images=images.reshape(len(rows), n_values, *images.shape[1:]),
        latents=rows,
        values=np.array(values),
        base=base,
    )
