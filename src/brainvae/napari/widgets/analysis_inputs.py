"""What the analysis docks (receptive and projective fields) read from the viewer.

The model (the viewer's model in use, or a run folder), the population stack layers and their
scans' table, the labels layers (painted ROIs first, atlases last), the placement (scale,
translate, units) of a layer on a population's grid and the grid its scans live on (for
NIfTI exports). Plain functions, so both docks ask the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainvae.analysis.roi_masks import roi_name
from brainvae.napari.layer_roles import (
    ATLAS_NAMES,
    ROI_NAMES,
    atlas_names_of,
    entries_of,
    population_of,
)
from brainvae.napari.viewer_state import state_of
from brainvae.napari.widgets.paths import optional_path

EXPLORER_MODEL = "The latent explorer's model"
RUN_FOLDER = "Run folder"


def chosen_model(viewer: Any, source: str, folder: Any) -> Any:
    """The viewer's model in use (loaded in the latent explorer or just trained), or the
    model saved in the run folder."""
    if source == RUN_FOLDER:
        path = optional_path(folder)
        if path is None:
            raise ValueError("choose a run folder (config.json + weights.safetensors)")
        from brainvae.models import load_model

        return load_model(path).eval()
    in_use = state_of(viewer).model
    if in_use is None:
        raise ValueError(
            "no model in use: load one in the latent explorer (or train one), or choose "
            "'Run folder'"
        )
    return in_use.model


def population_layer(viewer: Any, name: str | None) -> Any:
    """The named population layer, or a ValueError telling the user to load one."""
    if name is None or name not in viewer.layers:
        raise ValueError("load a population first (the Population data dock)")
    return viewer.layers[name]


def population_table(layer: Any) -> Any:
    """The scans' metadata table of a population layer, or None when it has none."""
    population = population_of(layer)
    return None if population is None else population.table


def atlas_layers(viewer: Any) -> list[Any]:
    """Labels layers that carry region names (the sample atlas)."""
    from napari.layers import Labels

    return [
        layer
        for layer in viewer.layers
        if isinstance(layer, Labels) and atlas_names_of(layer) is not None
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
    info = entries_of(layer)
    stored = {**info.get(ATLAS_NAMES, {}), **info.get(ROI_NAMES, {})}
    present = [int(v) for v in np.unique(np.asarray(layer.data)) if v != 0]
    named = {int(k): str(v) for k, v in stored.items()}
    return {label: named.get(label, roi_name(label)) for label in present}


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
    """(affine, squeezed axes) of a population's scans (its Population's grid)."""
    population = population_of(layer)
    if population is None:
        raise ValueError(f"{layer.name}: not a population stack")
    return np.asarray(population.affine, dtype=float), tuple(population.squeezed_axes)
