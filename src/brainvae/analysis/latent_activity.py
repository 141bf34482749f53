"""Which latents a model uses: the one definition of an active latent, shared by every part.

A latent is active when its posterior mean varies over the population: Var_x(E_q(z|x)[z_k])
> ACTIVE_VARIANCE (Burda, Grosse & Salakhutdinov 2016, "active units"). An inactive latent's
code is the same for every scan, so the decoder cannot use it to tell scans apart, whatever its
receptive field says (that field is scale-free: a tiny encoder signal the decoder ignores can
still read as a strong one). Training history, the latent explorer, the receptive and the
projective fields all call latent_activity, so one model gets one answer everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ACTIVE_VARIANCE = 0.01
"""Variance of a latent's posterior means over the population above which it counts as active
(Burda et al.'s threshold, in units of the N(0, 1) prior)."""


@dataclass(frozen=True)
class LatentActivity:
    """Per latent: the population variance of its posterior means and whether it is active.

    variance: (L,) over the n_images scans (ddof 0); active: (L,) variance > threshold.
    """

    variance: np.ndarray
    active: np.ndarray
    threshold: float
    n_images: int

    @property
    def latent_dim(self) -> int:
        return int(self.active.size)

    @property
    def n_active(self) -> int:
        return int(self.active.sum())

    @property
    def inactive_names(self) -> tuple[str, ...]:
        """z-names (1-based) of the inactive latents."""
        return tuple(f"z{k + 1}" for k in np.flatnonzero(~self.active))

    def describe(self) -> str:
        """One line for people: how many latents are active and which are not."""
        text = f"{self.n_active} of {self.latent_dim} latents active"
        if self.n_active < self.latent_dim:
            text += (
                f"; inactive: {', '.join(self.inactive_names)} (their posterior means vary by "
                f"<= {self.threshold:g} over the {self.n_images} scans, so the decoder cannot "
                "use them)"
            )
        return text

    def to_json(self) -> dict:
        """What a summary.json records about activity."""
        return {
            "definition": (
                f"variance of the posterior means over {self.n_images} scans > {self.threshold:g}"
            ),
            "active": [f"z{k + 1}" for k in np.flatnonzero(self.active)],
            "inactive": list(self.inactive_names),
            "code_variance": {
                f"z{k + 1}": float(v) for k, v in enumerate(np.asarray(self.variance))
            },
        }


def activity_from_variance(
    variance: np.ndarray | Sequence[float], n_images: int, threshold: float = ACTIVE_VARIANCE
) -> LatentActivity:
    """Activity from per-latent variances of the posterior means already computed (streamed)."""
    variance = np.asarray(variance, dtype=np.float64).reshape(-1)
    return LatentActivity(
        variance=variance,
        active=variance > threshold,
        threshold=float(threshold),
        n_images=int(n_images),
    )


def latent_activity(codes: np.ndarray, threshold: float = ACTIVE_VARIANCE) -> LatentActivity:
    """Activity of (N, L) posterior means over N scans of a population."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2:
        raise ValueError(f"codes must be (scans, latents), got shape {codes.shape}")
    if len(codes) == 0:
        raise ValueError("no codes: activity is a variance over scans and needs at least one")
    return activity_from_variance(codes.var(axis=0), len(codes), threshold)
