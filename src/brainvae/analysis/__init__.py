"""Analyses of a trained latent model: pure functions over arrays and a model, small results.

Nothing here imports napari or Qt, and nothing here writes a file (brainvae.exports does);
the napari docks call these functions (often in a background worker) and only turn their
results into layers.
"""

from __future__ import annotations

from brainvae.analysis.latent_space import (
    RANGE_MODES,
    LatentStatistics,
    SliderRanges,
    TraversalGrid,
    decode_codes,
    interpolation_codes,
    population_latents,
    slider_ranges,
    traversal_grid,
    traversal_values,
)
from brainvae.analysis.traversal_pictures import traversal_animation_frames, traversal_mosaic

__all__ = [
    "RANGE_MODES",
    "LatentStatistics",
    "SliderRanges",
    "TraversalGrid",
    "decode_codes",
    "interpolation_codes",
    "population_latents",
    "slider_ranges",
    "traversal_animation_frames",
    "traversal_grid",
    "traversal_mosaic",
    "traversal_values",
]
