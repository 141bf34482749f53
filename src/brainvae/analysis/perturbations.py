"""The perturbations of a receptive field: x~ = x0 + w * p, with p confined to one ROI.

Vectorised over a batch; the noise field and the blurred images are made once per batch by the
caller and shared by every ROI and weight.
"""

from __future__ import annotations

import numpy as np

from brainvae.errors import ReceptiveFieldError

PERTURBATION_KINDS = ("remove", "add", "noise", "blur")
"""remove: p = -x0 in the ROI (w = 1 blanks it, the paper's default); add: p = amplitude in the
ROI; noise: p = amplitude * N(0, 1) in the ROI (fixed seed); blur: p = G_sigma * x0 - x0 in the
ROI (w = 1 replaces the ROI by its blurred self, sigma = amplitude voxels)."""

DEFAULT_AMPLITUDE = {"remove": 1.0, "add": 0.5, "noise": 0.2, "blur": 2.0}
"""Per-kind scale of p: intensity for add, noise sd for noise, Gaussian sigma (voxels) for blur;
remove ignores it (p = -x0 whatever the data's range)."""

NOISE_SEED = 0
"""Seed of the noise perturbation: the same noise field per image for every ROI and weight."""


def check_kind(kind: str) -> None:
    """Raise a ReceptiveFieldError for a kind that is not one of PERTURBATION_KINDS."""
    if kind not in PERTURBATION_KINDS:
        raise _unknown(kind)


def _unknown(kind: str) -> ReceptiveFieldError:
    return ReceptiveFieldError(
        f"unknown perturbation kind {kind!r}; expected one of {PERTURBATION_KINDS}"
    )


def perturb(
    batch: np.ndarray,
    mask: np.ndarray,
    weight: float,
    kind: str,
    amplitude: float,
    noise: np.ndarray | None = None,
    blurred: np.ndarray | None = None,
) -> np.ndarray:
    """x0 + w * p for a (B, ...) batch, p confined to the (spatial) mask; vectorised.

    noise (for kind "noise") and blurred (for kind "blur") are computed once per batch by the
    caller and shared by every ROI and weight.
    """
    m = mask.astype(batch.dtype)
    if kind == "remove":
        return batch * (1.0 - weight * m)
    if kind == "add":
        return batch + (weight * amplitude) * m
    if kind == "noise":
        if noise is None:
            raise ReceptiveFieldError("the noise perturbation needs the batch's noise field")
        return batch + (weight * amplitude) * (m * noise)
    if kind == "blur":
        if blurred is None:
            raise ReceptiveFieldError("the blur perturbation needs the batch's blurred images")
        return batch + weight * (m * (blurred - batch))
    raise _unknown(kind)


def blur(batch: np.ndarray, sigma: float, spatial_dims: int) -> np.ndarray:
    """A (B, ...) batch blurred over its last spatial_dims axes (Gaussian, sigma voxels)."""
    from scipy.ndimage import gaussian_filter

    sigmas = (0.0,) * (batch.ndim - spatial_dims) + (float(sigma),) * spatial_dims
    return gaussian_filter(batch, sigma=sigmas, mode="nearest").astype(batch.dtype, copy=False)
