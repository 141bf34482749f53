"""Analyses of a trained latent model: pure functions over arrays and a model, small results.

Nothing here imports napari or Qt; the napari docks call these functions (often in a
background worker) and only turn their results into layers.
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
    save_gif,
    save_png,
    slider_ranges,
    traversal_animation_frames,
    traversal_grid,
    traversal_mosaic,
    traversal_values,
)

__all__ = [
    "RANGE_MODES",
    "LatentStatistics",
    "SliderRanges",
    "TraversalGrid",
    "decode_codes",
    "interpolation_codes",
    "population_latents",
    "save_gif",
    "save_png",
    "slider_ranges",
    "traversal_animation_frames",
    "traversal_grid",
    "traversal_mosaic",
    "traversal_values",
]
