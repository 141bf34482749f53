"""The longitudinal questions asked together of one encoded population: pairs of visits, the
aging and disease directions with their stability, each latent's loading, and each group's
simulated trajectory over an age range (as codes; the use case decodes them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from brainvae.errors import PopulationAnalysisError
from brainvae.longitudinal.directions import Directions, learn_directions
from brainvae.longitudinal.pairs import VisitPairs, visit_pairs
from brainvae.longitudinal.request import LongitudinalRequest, check_request
from brainvae.longitudinal.simulation import AgeScale, Trajectory, age_scale, trajectory


@dataclass(frozen=True)
class LongitudinalAnalysis:
    request: LongitudinalRequest
    pairs: VisitPairs
    directions: Directions
    scale: AgeScale
    trajectories: dict[str, Trajectory]
    latent_names: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def loadings(self) -> pd.DataFrame:
        """Latent x direction: each latent's component of tau_a and of each tau_d."""
        columns = {"tau_a": self.directions.tau_a}
        columns.update({f"tau_d ({g})": v for g, v in self.directions.tau_d.items()})
        table = pd.DataFrame(columns, index=list(self.latent_names))
        table.index.name = "latent"
        return table

    def describe(self) -> list[str]:
        d = self.directions
        lines = [
            f"{self.pairs.n_pairs} pairs of visits ({', '.join(f'{g} {n}' for g, n in d.n_pairs.items())})",
            f"tau_a (aging, from {d.control}): mean cosine with the control changes "
            f"{d.objective_a:.2f}, stability {_stability(d.stability_a)}",
        ]
        for group, tau in d.tau_d.items():
            lines.append(
                f"tau_d ({group}): mean cosine {d.objective_d[group]:.2f}, stability "
                f"{_stability(d.stability_d[group])}, angle to tau_a {d.angle_degrees(group):.1f} deg; "
                f"largest loading {self.latent_names[int(np.argmax(np.abs(tau)))]}"
            )
        lines.append(
            f"aging position vs age among controls: r = {self.scale.r:.2f} "
            f"({self.scale.slope:.3g} per year)"
        )
        return lines + list(self.notes)


def _stability(value: float) -> str:
    """A stability as printed: the number, or why there is none."""
    return "not measured" if not np.isfinite(value) else f"{value:.2f}"


def default_years(ages: np.ndarray) -> tuple[float, float]:
    """The 10th and 90th percentile of the controls' ages, rounded to whole years."""
    low, high = np.nanpercentile(ages, [10, 90])
    return (float(np.floor(low)), float(np.ceil(high)))


def analyse_longitudinal(
    codes: np.ndarray, table: pd.DataFrame, request: LongitudinalRequest
) -> LongitudinalAnalysis:
    """Pairs, directions, age scale and trajectories of (N, L) codes with one table row each."""
    codes = np.asarray(codes, dtype=np.float64)
    table = table.reset_index(drop=True)
    if len(table) != len(codes):
        raise PopulationAnalysisError(
            f"the subjects table has {len(table)} rows for {len(codes)} scans"
        )
    check_request(request, table)
    pairs = visit_pairs(
        table, request.group, request.subject, request.age, request.order, request.pairing
    )
    directions = learn_directions(
        codes, pairs.earlier, pairs.later, pairs.group, pairs.subject, request.control,
        request.n_splits, request.seed,
    )  # fmt: skip
    groups = table[request.group].astype(str).to_numpy()
    ages = pd.to_numeric(table[request.age], errors="coerce").to_numpy(dtype=float)
    controls = groups == request.control
    scale = age_scale(codes[controls], ages[controls], directions.tau_a)
    first, last = request.years or default_years(ages[controls])
    if request.frames < 2 or not last > first:
        raise PopulationAnalysisError(
            f"a trajectory needs at least 2 frames over a range of ages; got {request.frames} "
            f"frames from {first} to {last}"
        )
    years = np.linspace(first, last, request.frames)
    trajectories = {
        request.control: trajectory(
            codes[controls], years, scale, directions.tau_a, None, request.control
        )  # fmt: skip
    }
    for group, tau_d in directions.tau_d.items():
        members = groups == group
        trajectories[group] = trajectory(
            codes[members], years, scale, directions.tau_a, tau_d, group
        )
    notes = tuple(pairs.notes())
    names = tuple(f"z{i + 1}" for i in range(codes.shape[1]))
    return LongitudinalAnalysis(request, pairs, directions, scale, trajectories, names, notes)
