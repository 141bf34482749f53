"""What the analysis docks (receptive and projective fields) read from the viewer.

The model (the latent explorer's, or a run folder), the population stack layers and their
scans' table, the labels layers (painted ROIs first, atlases last), the placement (scale,
translate, units) of a layer on a population's grid and the grid its scans live on (for
NIfTI exports). Plain functions, so both docks ask the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from brainvae.napari.widgets.paths import optional_path

EXPLORER_MODEL = "The latent explorer's model"
RUN_FOLDER = "Run folder"


def chosen_model(viewer: Any, source: str, folder: Any) -> Any:
    """The latent explorer's model, or the model saved in the run folder."""
    if source == RUN_FOLDER:
        path = optional_path(folder)
        if path is None:
            raise ValueError("choose a run folder (config.json + weights.safetensors)")
        from brainvae.models import load_model

        return load_model(path).eval()
    from brainvae.napari.widgets.latent_explorer import explorers_of

    models = [e.model for e in explorers_of(viewer) if e.model is not None]
    if not models:
        raise ValueError("no model in the latent explorer: load one there, or choose 'Run folder'")
    return models[0]


def population_layers(viewer: Any) -> list[Any]:
    """The population stacks (first axis: scans) that the Population data dock added."""
    from brainvae.napari.layer_metadata import stored_metadata

    return [
        layer
        for layer in viewer.layers
        if stored_metadata(layer.metadata).get("kind") == "population"
    ]


def population_layer(viewer: Any, name: str | None) -> Any:
    """The named population layer, or a ValueError telling the user to load one."""
    if name is None or name not in viewer.layers:
        raise ValueError("load a population first (the Population data dock)")
    return viewer.layers[name]


def population_table(layer: Any) -> Any:
    """The scans' metadata table of a population layer, or None when it has none."""
    from brainvae.napari.widgets.latent_explorer import _layer_table

    try:
        return _layer_table(layer)
    except Exception:  # noqa: BLE001 - without a table the scans are still usable
        return None


def atlas_layers(viewer: Any) -> list[Any]:
    """Labels layers that carry region names (the sample atlas)."""
    from napari.layers import Labels

    return [
        layer
        for layer in viewer.layers
        if isinstance(layer, Labels) and "atlas_names" in layer.metadata.get("brainvae", {})
    ]


def labels_layer_names(viewer: Any) -> list[str]:
    """Every labels layer, painted ROI layers first and atlases last (not the highlight of a
    clicked ROI: it only shows one)."""
    from napari.layers import Labels

    from brainvae.napari.label_view import is_highlight

    names = [
        layer.name
        for layer in viewer.layers
        if isinstance(layer, Labels) and not is_highlight(layer)
    ]
    atlas = [layer.name for layer in atlas_layers(viewer)]
    return [name for name in names if name not in atlas] + atlas


def label_names(layer: Any) -> dict[int, str]:
    """{label: name} of a labels layer: atlas names, painted ROI names, else roi_<label>."""
    info = layer.metadata.get("brainvae", {})
    stored = {**info.get("atlas_names", {}), **info.get("roi_names", {})}
    present = [int(v) for v in np.unique(np.asarray(layer.data)) if v != 0]
    named = {int(k): str(v) for k, v in stored.items()}
    return {label: named.get(label, f"roi_{label}") for label in present}


def spatial_placement(layer: Any) -> dict[str, Any]:
    """scale / translate / axis labels / units of a population stack's scan axes (its first
    dropped): a layer made with them overlays the scans, in the same units (mm), so napari
    finds the layers' units consistent."""
    return {
        "scale": tuple(layer.scale[1:]),
        "translate": tuple(layer.translate[1:]),
        "axis_labels": tuple(layer.axis_labels[1:]),
        "units": tuple(layer.units[1:]),
    }


def population_grid(layer: Any) -> tuple[np.ndarray, tuple[int, ...]]:
    """(affine, squeezed axes) of a population's scans: from the sample folder's metadata or
    the prepared dataset behind the layer; else rebuilt from the layer's scale and translate."""
    from brainvae.napari.layer_metadata import (
        affine_from_scale_translate,
        stored_metadata,
    )

    entries = stored_metadata(layer.metadata)
    if "affine" in entries:
        squeezed = tuple(int(a) for a in entries.get("squeezed_axes", []))
        return np.asarray(entries["affine"], dtype=float), squeezed
    if "dataset" in entries and Path(entries["dataset"]).is_dir():
        from brainvae.data.dataset import PreparedDataset

        dataset = PreparedDataset.open(entries["dataset"])
        return dataset.maps_affine(), tuple(dataset.squeezed_axes)
    scale = np.asarray(layer.scale[1:], dtype=float)
    translate = np.asarray(layer.translate[1:], dtype=float)
    squeezed = (0,) if len(scale) == 2 else ()
    return affine_from_scale_translate(scale, translate, squeezed, False), squeezed
