"""Data: volume I/O, preprocessing, population datasets and the phantom population.

The names a user needs from Python, loaded on first use (nibabel and scipy stay unimported
until then, so napari's plugin discovery does not pay for them):

    from brainvae.data import PreparedDataset, prepare_dataset, Population
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_FACE = {
    "PreparedDataset": "brainvae.data.dataset",
    "Population": "brainvae.data.population",
    "PreprocessConfig": "brainvae.data.preprocessing",
    "prepare_dataset": "brainvae.data.prepare",
    "PrepareProgress": "brainvae.data.prepare",
    "PopulationConfig": "brainvae.data.phantom",
    "build_population": "brainvae.data.phantom",
    "sample_data_dir": "brainvae.data.sample",
    "sample_population_dir": "brainvae.data.sample",
}

__all__ = sorted(_FACE)


def __getattr__(name: str) -> Any:
    """The face's names, imported from their modules when first asked for."""
    if name not in _FACE:
        raise AttributeError(f"module 'brainvae.data' has no attribute {name!r}")
    value = getattr(import_module(_FACE[name]), name)
    globals()[name] = value
    return value
