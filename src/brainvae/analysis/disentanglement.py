"""Disentanglement scores from an ROI x latent impact matrix (receptive fields, METHODS.md 3).

The published score (Liu et al.) is s = Tr(A) / (sum(A) - Tr(A)), A the latent x latent
covariance of the latents' impact profiles (the columns of I, over ROIs). It is reported exactly
as published, but it is not a number to compare models with:

- A has rank at most R - 1 (R ROIs: covariances over R points), and its off-diagonal entries can
  be negative, so the denominator can be zero, tiny, or negative: s is unbounded and flips sign
  (PCA on three phantom populations gave +16.9, -1.7 and -6.6). Normalising the impacts per ROI
  makes every row of A sum to zero, so s = -1 exactly, whatever the model.

The bounded companion, profile_independence, is 1 - mean |r| over the distinct pairs of latents,
r the correlation between two latents' impact profiles (r_ij = A_ij / sqrt(A_ii A_jj)). It lies
in [0, 1]: 1 when no two latents answer to the same pattern of ROIs, 0 when every latent's
profile is a scaled copy (or mirror) of every other's. Taking |r| stops negative covariances from
cancelling positive ones, and the correlation removes each latent's overall impact scale, so one
loud latent cannot dominate; it does not change when impacts are rescaled per latent or globally.
Trust it over s for comparisons across models and populations. Two limits, documented: with
more latents than R - 1 the profiles cannot all be uncorrelated, so the attainable maximum is
below 1 (compare models on the same ROIs and latent count); and latents whose profile is constant
over the ROIs (zero impact everywhere: dead latents) have no correlation; they are left out of
the score and reported, and it is NaN when fewer than two latents remain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONSTANT_PROFILE_TOLERANCE = 1e-12
"""A latent whose impact-profile variance is below this times the largest one (or exactly zero)
counts as constant: it answers to no ROI in particular and has no correlation with others."""


@dataclass(frozen=True)
class DisentanglementScores:
    """Both scores of one impact matrix, with what they were computed from.

    covariance: (L, L) A; published: s (may be +-inf or NaN, see published_score);
    profile_independence: the bounded companion in [0, 1] (NaN with < 2 varying latents);
    abs_correlation: (L, L) |r| (NaN rows and columns for constant latents);
    constant_latents: (L,) latents left out of the bounded score.
    """

    covariance: np.ndarray
    published: float
    profile_independence: float
    abs_correlation: np.ndarray
    constant_latents: np.ndarray


def impact_covariance(impact: np.ndarray) -> np.ndarray:
    """A: the latent x latent covariance of the columns of the (R, L) impact matrix over ROIs.

    Unbiased (ddof 1, as numpy.cov); the scores below are ratios, unchanged by the ddof.
    A single ROI gives no covariance (one point per latent): a ValueError says so.
    """
    impact = np.asarray(impact, dtype=np.float64)
    if impact.ndim != 2:
        raise ValueError(f"the impact matrix must be (ROIs, latents), got shape {impact.shape}")
    if impact.shape[0] < 2:
        raise ValueError(
            f"{impact.shape[0]} ROI(s): the covariance of impact profiles over ROIs needs at "
            "least 2 ROIs (with one, every latent's profile is a single number)"
        )
    if not np.all(np.isfinite(impact)):
        raise ValueError("the impact matrix holds NaN or Inf values")
    return np.atleast_2d(np.cov(impact, rowvar=False))


def published_score(covariance: np.ndarray) -> float:
    """s = Tr(A) / (sum(A) - Tr(A)), exactly as published (Liu et al.).

    Unbounded and sign-flipping (see the module's docstring). A zero denominator gives +inf
    (or -inf) when the trace is non-zero, and NaN when A is all zero.
    """
    covariance = np.asarray(covariance, dtype=np.float64)
    trace = float(np.trace(covariance))
    off_diagonal = float(covariance.sum()) - trace
    if off_diagonal == 0.0:
        return float(np.sign(trace) * np.inf) if trace != 0.0 else float("nan")
    return trace / off_diagonal


def constant_profiles(covariance: np.ndarray) -> np.ndarray:
    """(L,) latents whose impact profile does not vary over the ROIs (zero variance in A)."""
    variance = np.diag(np.asarray(covariance, dtype=np.float64))
    largest = float(variance.max()) if variance.size else 0.0
    return (variance <= 0.0) | (variance <= CONSTANT_PROFILE_TOLERANCE * largest)


def absolute_correlation(covariance: np.ndarray) -> np.ndarray:
    """|r_ij| = |A_ij| / sqrt(A_ii A_jj); NaN rows and columns for constant latents."""
    covariance = np.asarray(covariance, dtype=np.float64)
    constant = constant_profiles(covariance)
    sd = np.sqrt(np.where(constant, np.nan, np.diag(covariance)))
    correlation = np.abs(covariance) / np.outer(sd, sd)
    return np.clip(correlation, 0.0, 1.0)  # rounding can push |r| a hair above 1; NaN stays


def profile_independence(covariance: np.ndarray) -> float:
    """The bounded companion of s: 1 - mean |r| over distinct pairs of non-constant latents.

    In [0, 1], higher = more disentangled; NaN when fewer than 2 latents vary over the ROIs.
    """
    correlation = absolute_correlation(covariance)
    keep = ~constant_profiles(covariance)
    if keep.sum() < 2:
        return float("nan")
    kept = correlation[np.ix_(keep, keep)]
    n = kept.shape[0]
    mean_off_diagonal = (kept.sum() - np.trace(kept)) / (n * (n - 1))
    return float(np.clip(1.0 - mean_off_diagonal, 0.0, 1.0))


def disentanglement_scores(impact: np.ndarray) -> DisentanglementScores:
    """A, s and the bounded companion of an (R, L) impact matrix (R >= 2)."""
    covariance = impact_covariance(impact)
    return DisentanglementScores(
        covariance=covariance,
        published=published_score(covariance),
        profile_independence=profile_independence(covariance),
        abs_correlation=absolute_correlation(covariance),
        constant_latents=constant_profiles(covariance),
    )
