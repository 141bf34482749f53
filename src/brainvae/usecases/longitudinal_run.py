"""The longitudinal analysis as the command line and the dock run it: encode the population
(unless its codes are given), learn the aging and disease directions, and decode each group's
simulated trajectory into images (one frame per age) with its change from the first frame."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from brainvae.data.population import Population
    from brainvae.longitudinal import LongitudinalAnalysis, LongitudinalRequest
    from brainvae.population import PopulationProgress


@dataclass(frozen=True)
class LongitudinalResult:
    """The analysis and, per group, its decoded trajectory (T, *scan shape) and the change
    from the first frame (frames - frames[0])."""

    analysis: LongitudinalAnalysis
    frames: dict[str, np.ndarray]
    trained: dict[str, float] | None = None
    """For a longitudinal VAE, the cosine between each direction it learned in training and
    the one learned here from its codes ("tau_a", "tau_d (<group>)"); None for other models."""

    def change(self, group: str) -> np.ndarray:
        frames = self.frames[group]
        return frames - frames[:1]

    @property
    def years(self) -> np.ndarray:
        return next(iter(self.analysis.trajectories.values())).years


def longitudinal_run(
    model: Any,
    population: Population,
    request: LongitudinalRequest,
    codes: np.ndarray | None = None,
) -> Generator[PopulationProgress, None, LongitudinalResult]:
    """Encode (unless `codes` are given), analyse, decode every group's trajectory."""
    import pandas as pd

    from brainvae.analysis.latent_space import decode_codes
    from brainvae.errors import PopulationAnalysisError
    from brainvae.longitudinal import analyse_longitudinal
    from brainvae.population import PopulationProgress
    from brainvae.usecases.population_run import encode_population

    if population.table is None:
        raise PopulationAnalysisError(
            f"{population.source}: the population has no subjects table (subjects, ages, groups)"
        )
    if codes is None:
        codes, _ = yield from encode_population(model, population.images)
    elif np.shape(codes) != (population.n_scans, model.latent_dim):
        raise PopulationAnalysisError(
            f"codes of shape {np.shape(codes)} do not belong to this population of "
            f"{population.n_scans} scans and this model of {model.latent_dim} latents"
        )
    table = pd.DataFrame(population.table).reset_index(drop=True)
    yield PopulationProgress("aging and disease directions", 0, 2)
    analysis = analyse_longitudinal(codes, table, request)
    yield PopulationProgress("decoding the trajectories", 1, 2)
    frames = {
        group: decode_codes(model, path.codes.astype(np.float32))
        for group, path in analysis.trajectories.items()
    }
    yield PopulationProgress("done", 2, 2)
    return LongitudinalResult(analysis, frames, trained_agreement(model, analysis))


def trained_agreement(model: Any, analysis: LongitudinalAnalysis) -> dict[str, float] | None:
    """Cosines between a longitudinal VAE's trained directions and the post hoc ones (the
    groups both know), or None for a model that learned no directions in training."""
    learned = getattr(model, "learned_directions", None)
    if not callable(learned):
        return None
    trained = learned()
    directions = analysis.directions
    found = {"tau_a": (trained["aging"], directions.tau_a)}
    for group, tau in directions.tau_d.items():
        if group in trained and group != "aging":
            found[f"tau_d ({group})"] = (trained[group], tau)
    return {
        name: float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
        for name, (a, b) in found.items()
    }
