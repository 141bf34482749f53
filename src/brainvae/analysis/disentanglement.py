"""Disentanglement scores from an ROI x latent impact matrix (receptive fields).

Two numbers, over the ACTIVE latents only (an inactive latent's scale-free impact can read as a
strong field that the decoder never uses, see latent_activity):

- separation, the one to read: 1 - the mean cosine similarity between the impact profiles
  (the non-negative columns of I, over ROIs) of every pair of active latents. In [0, 1]: 1 when
  no two latents answer to the same ROI (a perfectly local model, at any number of ROIs), 0
  when every latent answers to the same ROIs in the same proportions, 0.5 for two latents that
  share one of the two ROIs each answers to. Scaling a latent's impacts does not change it, and
  nothing is centred, so two disjoint latents are never mistaken for opposite ones.
- published_s, Liu et al.'s s = Tr(A) / (sum(A) - Tr(A)), A the latent x latent covariance of
  the impact profiles over ROIs, kept exactly as published. Read it for what the formula gives,
  not as "higher is better": the ideal one-hot model (each latent answers to its own ROI,
  as many ROIs as latents) gets s = -1; L identical profiles get +1 / (L - 1); near-cancelling
  covariances make it huge or change its sign; normalising impacts per ROI makes it -1 for
  every model.

Both can also be computed on the impact per ROI voxel (raw impact grows with ROI size: a large
ROI moves every latent more), which ReceptiveField.impact_per_voxel gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HEADLINE_SCORE = "separation"
"""The score `brainvae receptive`, the dock and the README put first."""

ZERO_PROFILE_TOLERANCE = 1e-12
"""A latent whose largest impact is below this times the largest impact of all (or exactly
zero) has no profile: it answers to no ROI, and no direction can be compared with others."""


@dataclass(frozen=True)
class DisentanglementScores:
    """Both scores of one impact matrix over the scored latents, with what they came from.

    scored: (L,) the latents the scores use (active, with a non-zero profile); covariance:
    (L, L) A over all latents (scores use the scored block); cosine: (L, L) cosine similarity of
    the profiles (NaN for latents without a profile); separation: in [0, 1] (NaN with fewer
    than 2 scored latents); published: s over the scored latents (may be +-inf; NaN with
    fewer than 2 scored latents, where it would only be Tr / 0).
    """

    covariance: np.ndarray
    cosine: np.ndarray
    separation: float
    published: float
    scored: np.ndarray
    zero_profiles: np.ndarray

    @property
    def n_scored(self) -> int:
        return int(self.scored.sum())


def impact_covariance(impact: np.ndarray) -> np.ndarray:
    """A: the latent x latent covariance of the columns of the (R, L) impact matrix over ROIs.

    Unbiased (ddof 1, as numpy.cov); s is a ratio, unchanged by the ddof. A single ROI gives
    no covariance (one point per latent): a ValueError says so.
    """
    impact = _checked(impact)
    if impact.shape[0] < 2:
        raise ValueError(
            f"{impact.shape[0]} ROI(s): the covariance of impact profiles over ROIs needs at "
            "least 2 ROIs (with one, every latent's profile is a single number)"
        )
    return np.atleast_2d(np.cov(impact, rowvar=False))


def _checked(impact: np.ndarray) -> np.ndarray:
    impact = np.asarray(impact, dtype=np.float64)
    if impact.ndim != 2:
        raise ValueError(f"the impact matrix must be (ROIs, latents), got shape {impact.shape}")
    if not np.all(np.isfinite(impact)):
        raise ValueError("the impact matrix holds NaN or Inf values")
    return impact


def published_score(covariance: np.ndarray) -> float:
    """s = Tr(A) / (sum(A) - Tr(A)), exactly as published (Liu et al.).

    One-hot profiles give -1, identical ones +1 / (L - 1) (see the module's docstring). A zero
    denominator gives +inf (or -inf) when the trace is non-zero, and NaN when A is all zero.
    """
    covariance = np.asarray(covariance, dtype=np.float64)
    trace = float(np.trace(covariance))
    off_diagonal = float(covariance.sum()) - trace
    if off_diagonal == 0.0:
        return float(np.sign(trace) * np.inf) if trace != 0.0 else float("nan")
    return trace / off_diagonal


def zero_profiles(impact: np.ndarray) -> np.ndarray:
    """(L,) latents whose impact is zero (to rounding) in every ROI: they answer to nothing."""
    impact = np.clip(_checked(impact), 0.0, None)
    peak = impact.max(axis=0) if impact.size else np.zeros(impact.shape[1])
    largest = float(peak.max()) if peak.size else 0.0
    return (peak <= 0.0) | (peak <= ZERO_PROFILE_TOLERANCE * largest)


def cosine_similarity(impact: np.ndarray) -> np.ndarray:
    """(L, L) uncentred cosine similarity of the non-negative impact columns; NaN rows and
    columns for latents without a profile. KL impacts are >= 0; rounding below 0 is clipped."""
    impact = np.clip(_checked(impact), 0.0, None)
    norms = np.linalg.norm(impact, axis=0)
    norms = np.where(zero_profiles(impact), np.nan, norms)
    similarity = (impact.T @ impact) / np.outer(norms, norms)
    return np.clip(similarity, 0.0, 1.0)


def separation(impact: np.ndarray, active: np.ndarray | None = None) -> float:
    """1 - mean cosine similarity over distinct pairs of scored latents (see module docstring).

    active: (L,) which latents to score (default all); latents without a profile are left out.
    NaN when fewer than 2 latents remain.
    """
    impact = _checked(impact)
    keep = _scored(impact, active)
    if keep.sum() < 2:
        return float("nan")
    similarity = cosine_similarity(impact[:, keep])
    n = similarity.shape[0]
    mean_off_diagonal = (similarity.sum() - np.trace(similarity)) / (n * (n - 1))
    return float(np.clip(1.0 - mean_off_diagonal, 0.0, 1.0))


def _scored(impact: np.ndarray, active: np.ndarray | None) -> np.ndarray:
    keep = ~zero_profiles(impact)
    if active is not None:
        active = np.asarray(active, dtype=bool).reshape(-1)
        if active.shape != (impact.shape[1],):
            raise ValueError(
                f"{active.size} activity flags for an impact matrix of {impact.shape[1]} latents"
            )
        keep &= active
    return keep


def disentanglement_scores(
    impact: np.ndarray, active: np.ndarray | None = None
) -> DisentanglementScores:
    """Separation and published s of an (R, L) impact matrix (R >= 2), over the active latents
    that answer to at least one ROI (all latents when active is None)."""
    impact = _checked(impact)
    covariance = impact_covariance(impact)
    keep = _scored(impact, active)
    scored_block = covariance[np.ix_(keep, keep)]
    published = published_score(scored_block) if keep.sum() >= 2 else float("nan")
    return DisentanglementScores(
        covariance=covariance,
        cosine=cosine_similarity(impact),
        separation=separation(impact, active),
        published=published,
        scored=keep,
        zero_profiles=zero_profiles(impact),
    )
