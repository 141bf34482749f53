"""Population questions asked of a trained latent space: do the diagnoses separate (LDA,
with a PCA-of-images reference), is that disease or acquisition (the bias check), which
latents track a measure (brain scores), and the latent map with group contrasts.

Pure functions over arrays and tables, each returning a small result; no napari, no files.
"""

from brainvae.population.acquisition_bias import BiasCheck, NuisanceCheck, acquisition_bias
from brainvae.population.analysis import PopulationAnalysis, PopulationProgress, analyse_population
from brainvae.population.brain_scores import BrainScore, brain_score
from brainvae.population.classification import Classification, classify
from brainvae.population.group_contrast import GroupContrast, group_contrast
from brainvae.population.latent_map import MAP_METHODS, LatentMap, latent_map
from brainvae.population.request import PopulationRequest
from brainvae.population.validation import VALIDATION_SCHEMES, Folds, plan_folds

__all__ = [
    "MAP_METHODS",
    "VALIDATION_SCHEMES",
    "BiasCheck",
    "BrainScore",
    "Classification",
    "Folds",
    "GroupContrast",
    "LatentMap",
    "NuisanceCheck",
    "PopulationAnalysis",
    "PopulationProgress",
    "PopulationRequest",
    "acquisition_bias",
    "analyse_population",
    "brain_score",
    "classify",
    "group_contrast",
    "latent_map",
    "plan_folds",
]
