"""Ground-truth phantom population: the real MNI152 template altered by known factors.

grid = get_grid(2)                       # 2D coronal slice or 3D volume, cached
image = render(ScanFactors(age=70), grid).image
build_population(PopulationConfig(dims=2, n_subjects=160, seed=0), "out/")
"""

from brainvae.data.phantom.atlas import ATLAS_LABELS
from brainvae.data.phantom.deform import warp_jacobian
from brainvae.data.phantom.factors import (
    Lesion,
    PopulationConfig,
    ScanFactors,
    age_effects,
    sample_population,
)
from brainvae.data.phantom.grid import PhantomGrid, get_grid
from brainvae.data.phantom.population import build_population, read_factors
from brainvae.data.phantom.render import Rendered, reference_factors, render

__all__ = [
    "ATLAS_LABELS",
    "Lesion",
    "PhantomGrid",
    "PopulationConfig",
    "Rendered",
    "ScanFactors",
    "age_effects",
    "build_population",
    "get_grid",
    "read_factors",
    "reference_factors",
    "render",
    "sample_population",
    "warp_jacobian",
]
