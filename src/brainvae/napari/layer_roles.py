"""What a layer is to the docks: its role ("kind") and entries in layer.metadata["brainvae"].

Every dock names roles and metadata keys through these constants and asks through these
functions, so a key is spelled once. A population stack carries its `Population` value
(brainvae.data.population), one kind of layer whatever its origin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from brainvae.napari.layer_metadata import KIND, NAMESPACE, stored_metadata

# roles (the "kind" entry)
POPULATION = "population"  # a stack of scans (first axis: scan)
DECODE = "latent_explorer"  # the latent explorer's decoded image
TRAINING_PREVIEW = "training_preview"
PAINTED_ROIS = "rois"  # a labels layer the Receptive fields dock made for painting
PROJECTIVE_FIELD = "projective_field"
PROJECTIVE_UNDERLAY = "projective_underlay"
PROJECTIVE_OUTLINES = "projective_outlines"
PROJECTIVE_SURFACE = "projective_surface"

# other entries
POPULATION_VALUE = "population_value"  # the layer's Population
DATASET = "dataset"  # str path of the prepared dataset a population stack shows
FOLDER = "folder"  # str path of the population folder a stack was read from
TABLE = "table"  # list of row dicts: a folder population's subjects.csv
ATLAS_NAMES = "atlas_names"  # {label: region name} of an atlas labels layer
ROI_NAMES = "roi_names"  # {label: name} of painted ROIs
EPOCH = "epoch"  # the training epoch a preview shows


def tagged(kind: str, **entries: Any) -> dict[str, Any]:
    """A layer's metadata for this plugin: {"brainvae": {"kind": kind, **entries}}."""
    return {NAMESPACE: {KIND: kind, **entries}}


def kind_of(layer: Any) -> str | None:
    """The role a layer was made for by this plugin, else None."""
    return stored_metadata(getattr(layer, "metadata", None)).get(KIND)


def entries_of(layer: Any) -> dict[str, Any]:
    """This plugin's metadata entries of a layer (a live dict when present, else empty)."""
    return stored_metadata(getattr(layer, "metadata", None))


def population_layers(viewer: Any) -> list[Any]:
    """The population stacks in the viewer, whatever their origin."""
    return [layer for layer in viewer.layers if kind_of(layer) == POPULATION]


def population_of(layer: Any) -> Any:
    """The `Population` a stack layer shows, else None.

    Made once from the layer's entries (the prepared dataset it names, or the folder's table
    and grid) and kept in its metadata, so every dock gets the same object.
    """
    if kind_of(layer) != POPULATION:
        return None
    entries = entries_of(layer)
    found = entries.get(POPULATION_VALUE)
    if found is not None:
        return found
    population = _rebuild(layer, entries)
    if population is not None:
        entries[POPULATION_VALUE] = population
    return population


def _rebuild(layer: Any, entries: dict[str, Any]) -> Any:
    from brainvae.data.population import Population

    if entries.get(DATASET):
        from brainvae.data.dataset import PreparedDataset

        try:
            dataset = PreparedDataset.open(entries[DATASET])
        except Exception:  # noqa: BLE001 - a moved or damaged dataset: the scans still show
            return None
        return Population.from_dataset(dataset)
    import pandas as pd

    from brainvae.napari.layer_metadata import affine_from_scale_translate

    if "affine" in entries:
        affine = np.asarray(entries["affine"], dtype=float)
        squeezed = tuple(int(a) for a in entries.get("squeezed_axes", []))
    else:  # a stack made elsewhere: its grid from the layer's scale and translate
        scale = np.asarray(layer.scale[1:], dtype=float)
        translate = np.asarray(layer.translate[1:], dtype=float)
        squeezed = (0,) if len(scale) == 2 else ()
        affine = affine_from_scale_translate(scale, translate, squeezed, False)
    table = entries.get(TABLE)
    folder = entries.get(FOLDER)
    return Population(
        images=layer.data,
        table=None if table is None else pd.DataFrame(table),
        affine=affine,
        squeezed_axes=squeezed,
        folder=Path(folder) if folder and folder != "None" else None,
    )


def atlas_names_of(layer: Any) -> dict[int, str] | None:
    """{label: region name} of an atlas labels layer, else None."""
    names = entries_of(layer).get(ATLAS_NAMES)
    return None if names is None else {int(k): str(v) for k, v in names.items()}
