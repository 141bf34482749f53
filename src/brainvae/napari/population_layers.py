"""Turn a population (prepared dataset or sample folder) into napari layer data.

The stack's first axis walks scans ("scan"); the other axes carry millimetre scale,
translate and units from the grid's affine, so the atlas and template overlay it, and so do
the files the plugin's reader opens (same units: napari finds them consistent).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

LayerData = tuple[Any, dict[str, Any], str]


def stack_layer_data(
    images: np.ndarray, name: str, placement: dict[str, Any], metadata: dict[str, Any]
) -> LayerData:
    """The scans as one image layer: a "scan" axis in front of the spatial axes."""
    from brainvae.napari.layer_metadata import INDEX_UNIT, contrast_limits
    from brainvae.napari.layer_roles import POPULATION, tagged

    step = max(1, len(images) // 16)  # a few scans suffice; a memory map stays unread
    placement = with_units(placement)
    kwargs = {
        "name": name,
        "colormap": "gray",
        "rgb": False,
        "contrast_limits": contrast_limits(np.asarray(images[::step])),
        "scale": (1.0, *placement["scale"]),
        "translate": (0.0, *placement["translate"]),
        "axis_labels": ("scan", *placement["axis_labels"]),
        "units": (INDEX_UNIT, *placement["units"]),
        "metadata": tagged(POPULATION, **metadata),
    }
    return images, kwargs, "image"


def with_units(placement: dict[str, Any]) -> dict[str, Any]:
    """The placement with units for its spatial axes: its own, else mm (every placement here
    comes from a scan's affine, in millimetres)."""
    from brainvae.napari.layer_metadata import SPATIAL_UNIT

    if "units" in placement:
        return dict(placement)
    return {**placement, "units": [SPATIAL_UNIT] * len(placement["scale"])}


def atlas_layer_data(
    atlas: np.ndarray, names: dict[int, str], placement: dict[str, Any]
) -> LayerData:
    """An ROI atlas as a labels layer whose features carry the region names (shown on hover).
    Its regions are filled at 0.4 opacity in 2D; in 3D, where the outer regions wrap the
    brain, the docks make it fainter (brainvae.napari.label_view)."""
    import pandas as pd

    from brainvae.napari.layer_metadata import NAMESPACE
    from brainvae.napari.layer_roles import ATLAS_NAMES

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
        "metadata": {NAMESPACE: {ATLAS_NAMES: names}},
        **with_units(placement),
    }
    return atlas.astype(np.int32), kwargs, "labels"


def folder_layer_data(population, name: str) -> list[LayerData]:
    """Layers for a PopulationFolder: the scans as one stack, then template and atlas."""
    from brainvae.data.population import Population
    from brainvae.napari.layer_metadata import volume_placement
    from brainvae.napari.layer_roles import FOLDER, POPULATION_VALUE, TABLE

    placement = volume_placement(population.grid)
    metadata = {
        FOLDER: str(population.folder),
        TABLE: population.table,
        "affine": np.asarray(population.grid.affine).tolist(),
        "squeezed_axes": list(population.grid.squeezed_axes),
        POPULATION_VALUE: Population.from_folder(population),
    }
    layers = [stack_layer_data(population.images, name, placement, metadata)]
    if population.template is not None:
        template_kwargs = {"name": "template", "colormap": "gray", "visible": False, **placement}
        layers.append((population.template, template_kwargs, "image"))
    if population.atlas is not None:
        layers.append(atlas_layer_data(population.atlas, population.atlas_names, placement))
    return layers


def dataset_placement(dataset) -> dict[str, Any]:
    """scale / translate / axis labels of a PreparedDataset's scan axes."""
    from brainvae.napari.layer_metadata import affine_placement

    return affine_placement(
        dataset.affine, spatial_shape=tuple(dataset.scan_shape), axis_names=dataset.axis_names
    )


def dataset_layer_data(dataset, name: str) -> LayerData:
    """The memory-mapped scans of a PreparedDataset as one stack layer."""
    from brainvae.data.population import Population
    from brainvae.napari.layer_roles import DATASET, POPULATION_VALUE

    metadata = {DATASET: str(dataset.path), POPULATION_VALUE: Population.from_dataset(dataset)}
    return stack_layer_data(dataset.images, name, dataset_placement(dataset), metadata)


def atlas_file_layer_data(path: Path, dataset) -> LayerData:
    """An atlas NIfTI (with atlas_labels.csv beside it) over a dataset's scans.

    The atlas must be on the scans' grid (after cropping, block averaging or slicing).
    """
    from brainvae.data.io.nifti import read_nifti
    from brainvae.data.population_folder import read_atlas_names
    from brainvae.errors import DataFileError

    volume = read_nifti(path)
    if tuple(volume.data.shape) != tuple(dataset.scan_shape):
        raise DataFileError(
            path,
            f"atlas shape {volume.data.shape} does not match the prepared scans' "
            f"{tuple(dataset.scan_shape)}; give an atlas in the output grid",
        )
    names_path = Path(path).with_name("atlas_labels.csv")
    names = read_atlas_names(names_path) if names_path.is_file() else {}
    return atlas_layer_data(volume.data, names, dataset_placement(dataset))
