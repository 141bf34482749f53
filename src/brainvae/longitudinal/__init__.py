"""Aging and disease in a latent space: pairs of visits, the directions tau_a and tau_d
(Ouyang et al. 2022, post hoc), their stability, and simulated trajectories of each group.

Pure functions over codes and the subjects table; decoding and files live in the use case
(brainvae.usecases.longitudinal_run) and the exports.
"""

from brainvae.longitudinal.analysis import LongitudinalAnalysis, analyse_longitudinal
from brainvae.longitudinal.directions import Directions, learn_directions
from brainvae.longitudinal.pairs import VisitPairs, visit_pairs
from brainvae.longitudinal.request import LongitudinalRequest
from brainvae.longitudinal.simulation import (
    AgeScale,
    Trajectory,
    age_scale,
    control_codes,
    disease_codes,
    trajectory,
)

__all__ = [
    "AgeScale",
    "Directions",
    "LongitudinalAnalysis",
    "LongitudinalRequest",
    "Trajectory",
    "VisitPairs",
    "age_scale",
    "analyse_longitudinal",
    "control_codes",
    "disease_codes",
    "learn_directions",
    "trajectory",
    "visit_pairs",
]
