"""Turn a population (prepared dataset or sample folder) into napari layer data.

The stack's first axis walks scans ("scan"); the other axes carry millimetre scale
and translate from the grid's affine, so the atlas and template overlay it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

LayerData = tuple[Any, dict[str, Any], str]


def _atlas_layer(atlas: np.ndarray, names: dict[int, str], placement: dict[str, Any]) -> LayerData:
    import pandas as pd

    labels = sorted(set(np.unique(atlas).tolist()) | {0})
    features = pd.DataFrame(
        {
            "index": labels,
            "name": [names.get(int(i), "background" if i == 0 else f"label {i}") for i in labels],
        }
    )
    kwargs = {
        "name": "ROI atlas",
        "opacity": 0.4,
        "features": features,
        "metadata": {"brainvae": {"atlas_names": names}},
        **placement,
    }
    return atlas.astype(np.int32), kwargs, "labels"


def folder_layer_data(population, name: str) -> list[LayerData]:
    """Layers for a PopulationFolder: the scans as one stack, then template and atlas."""
    from brainvae.napari.layer_metadata import volume_placement

    placement = volume_placement(population.grid)
    stack_kwargs = {
        "name": name,
        "colormap": "gray",
        "contrast_limits": _contrast(population.images),
        "scale": (1.0, *placement["scale"]),
        "translate": (0.0, *placement["translate"]),
        "axis_labels": ("scan", *placement["axis_labels"]),
        "metadata": {
            "brainvae": {
                "kind": "population",
                "folder": str(population.folder),
                "table": population.table,
                "affine": np.asarray(population.grid.affine).tolist(),
                "squeezed_axes": list(population.grid.squeezed_axes),
            }
        },
    }
    layers: list[LayerData] = [(population.images, stack_kwargs, "image")]
    if population.template is not None:
        layers.append(
            (
                population.template,
                {"name": "template", "colormap": "gray", "visible": False, **placement},
                "image",
            )
        )
    if population.atlas is not None:
        layers.append(_atlas_layer(population.atlas, population.atlas_names, placement))
    return layers


def dataset_layer_data(
    dataset, atlas: Path | None = None, name: str | None = None
) -> list[LayerData]:
    """Layers for a PreparedDataset (memory-mapped stack) and an optional atlas file."""
    from brainvae.data.io.nifti import read_nifti
    from brainvae.data.population_folder import read_atlas_names
    from brainvae.napari.layer_metadata import affine_placement

    placement = affine_placement(
        dataset.affine, spatial_shape=tuple(dataset.sample_shape), axis_names=dataset.axis_names
    )
    stack_kwargs = {
        "name": name or f"population ({Path(dataset.path).name})",
        "colormap": "gray",
        "contrast_limits": _contrast(dataset.images),
        "scale": (1.0, *placement["scale"]),
        "translate": (0.0, *placement["translate"]),
        "axis_labels": ("scan", *placement["axis_labels"]),
        "metadata": {"brainvae": {"kind": "population", "dataset": str(dataset.path)}},
    }
    layers: list[LayerData] = [(dataset.images, stack_kwargs, "image")]
    if atlas is not None and Path(atlas).is_file():
        volume = read_nifti(atlas)
        names_path = Path(atlas).with_name("atlas_labels.csv")
        names = read_atlas_names(names_path) if names_path.is_file() else {}
        if tuple(volume.data.shape) == tuple(dataset.sample_shape):
            layers.append(_atlas_layer(volume.data, names, placement))
        else:
            from brainvae.errors import DataFileError

            raise DataFileError(
                atlas,
                f"atlas shape {volume.data.shape} does not match the samples' {tuple(dataset.sample_shape)}",
            )
    return layers


def _contrast(images: np.ndarray) -> tuple[float, float]:
    """Contrast limits from a strided subsample (cheap on a memory-mapped stack)."""
    step = max(1, len(images) // 16)
    sample = np.asarray(images[::step], dtype=np.float32)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return (0.0, 1.0)
    low, high = float(finite.min()), float(finite.max())
    return (low, high if high > low else low + 1.0)
