"""The aging direction tau_a and the disease direction tau_d in a latent space, from pairs of
visits (Ouyang et al., IEEE TMI 2022, post hoc on a trained model's posterior means).

With dz = z_later - z_earlier for a pair, tau_a maximises the mean cosine between the control
pairs' dz and tau_a over unit vectors; tau_d maximises the mean cosine between a patient
pair's dz_d = dz - (dz . tau_a) tau_a and tau_d. Both have a closed form: the sum of cosines
sum_i (dz_i / |dz_i|) . tau is largest, over unit tau, at the normalised sum of the unit
vectors dz_i / |dz_i| (Cauchy-Schwarz). So no optimiser is needed, and tau_d, a sum of
vectors orthogonal to tau_a, is orthogonal to it by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brainvae.errors import PopulationAnalysisError

DEFAULT_SPLITS = 200
"""Random halvings of the subjects for each direction's stability."""
STABLE = 0.8
"""Stability (mean cosine between the directions of two disjoint halves of the subjects) from
which a direction is called stable. Halves, not bootstrap resamples: two bootstrap resamples
share about 63 % of their subjects, so even directions of pure noise agree with cosine 0.5
between them, while two halves of pure noise agree with cosine 0 on average."""


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row divided by its norm; zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def mean_cosine_direction(changes: np.ndarray) -> np.ndarray:
    """The unit vector maximising the mean cosine with the rows of `changes` (N, L):
    the normalised sum of their unit vectors. Refused when they cancel out."""
    total = unit_rows(np.asarray(changes, dtype=np.float64)).sum(axis=0)
    norm = np.linalg.norm(total)
    if norm <= 1e-12 * max(len(changes), 1):
        raise PopulationAnalysisError("the changes cancel out: no direction to learn")
    return total / norm


def disease_changes(changes: np.ndarray, tau_a: np.ndarray) -> np.ndarray:
    """dz_d = dz - (dz . tau_a) tau_a: each change with its aging part removed."""
    return changes - np.outer(changes @ tau_a, tau_a)


def stability(halves: tuple[np.ndarray, np.ndarray]) -> float:
    """Mean cosine between the unit directions of the first and second halves (B, L) each."""
    first, second = halves
    if len(first) == 0:
        return float("nan")
    return float(np.mean(np.sum(first * second, axis=1)))


@dataclass(frozen=True)
class Directions:
    """tau_a (from the control pairs) and one tau_d per disease group, with how stable each is
    over random halvings of the subjects and how much of each pair's change each explains."""

    tau_a: np.ndarray  # (L,)
    tau_d: dict[str, np.ndarray]  # group -> (L,)
    control: str
    stability_a: float
    stability_d: dict[str, float]
    objective_a: float  # mean cos(dz, tau_a) over control pairs
    objective_d: dict[str, float]  # mean cos(dz_d, tau_d) over the group's pairs
    share_a: np.ndarray  # (P,) (dz . tau_a)^2 / |dz|^2 for every pair
    share_d: dict[str, np.ndarray]  # group -> (P,) (dz . tau_d)^2 / |dz|^2
    n_pairs: dict[str, int] = field(default_factory=dict)

    def angle_degrees(self, group: str) -> float:
        """Angle between tau_a and a group's tau_d (90 by construction, up to rounding)."""
        cosine = float(np.clip(self.tau_a @ self.tau_d[group], -1.0, 1.0))
        return float(np.degrees(np.arccos(cosine)))


def learn_directions(
    codes: np.ndarray,
    earlier: np.ndarray,
    later: np.ndarray,
    groups: np.ndarray,
    subjects: np.ndarray,
    control: str,
    n_splits: int = DEFAULT_SPLITS,
    seed: int = 0,
) -> Directions:
    """tau_a from the pairs whose group is `control`, tau_d for every other group; stability
    from `n_splits` random halvings of each group's subjects."""
    codes = np.asarray(codes, dtype=np.float64)
    groups = np.asarray(groups).astype(str)
    present = sorted(str(g) for g in set(groups))
    if control not in present:
        raise PopulationAnalysisError(
            f"control group {control!r} has no pair of visits; the groups with pairs are: "
            f"{', '.join(present)}"
        )
    changes = codes[later] - codes[earlier]
    is_control = groups == control
    tau_a = mean_cosine_direction(changes[is_control])
    rng = np.random.default_rng(seed)
    stability_a = stability(_halves(changes[is_control], subjects[is_control], None,
                                    n_splits, rng))  # fmt: skip
    unit = unit_rows(changes)
    tau_d, stability_d, objective_d, share_d = {}, {}, {}, {}
    counts = {control: int(is_control.sum())}
    for group in present:
        if group == control:
            continue
        chosen = groups == group
        counts[group] = int(chosen.sum())
        residual = disease_changes(changes[chosen], tau_a)
        try:
            tau_d[group] = mean_cosine_direction(residual)
        except PopulationAnalysisError:
            continue  # no change beyond aging in this group: no disease direction
        stability_d[group] = stability(
            _halves(changes[chosen], subjects[chosen], tau_a, n_splits, rng)
        )
        objective_d[group] = float((unit_rows(residual) @ tau_d[group]).mean())
        share_d[group] = (unit @ tau_d[group]) ** 2
    return Directions(
        tau_a=tau_a,
        tau_d=tau_d,
        control=control,
        stability_a=stability_a,
        stability_d=stability_d,
        objective_a=float((unit[is_control] @ tau_a).mean()),
        objective_d=objective_d,
        share_a=(unit @ tau_a) ** 2,
        share_d=share_d,
        n_pairs=counts,
    )


def _halves(changes, subjects, tau_a, n_splits, rng) -> tuple[np.ndarray, np.ndarray]:
    """Directions (n_splits, L) from each random half of the subjects and from the other half
    (all of a subject's pairs go together); for a disease group the aging direction is held
    fixed and removed from each change first."""
    names, subject_of = np.unique(subjects, return_inverse=True)
    if n_splits < 1 or len(names) < 2:
        return np.zeros((0, changes.shape[1])), np.zeros((0, changes.shape[1]))
    unit_sum = np.zeros((len(names), changes.shape[1]))
    vectors = changes if tau_a is None else disease_changes(changes, tau_a)
    np.add.at(unit_sum, subject_of, unit_rows(vectors))  # each subject's summed unit changes
    ranks = np.argsort(rng.random((n_splits, len(names))), axis=1).argsort(axis=1)
    first = (ranks < len(names) // 2).astype(np.float64)
    return unit_rows(first @ unit_sum), unit_rows((1.0 - first) @ unit_sum)
