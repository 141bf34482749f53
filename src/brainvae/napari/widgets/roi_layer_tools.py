"""The receptive fields dock's ROI layer tools: a new labels layer to paint on, an atlas region
copied in as a named ROI (and outlined while it is chosen), ROI names typed as label=name
pairs, names shown on hover, and a re-run after each paint stroke when asked.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainvae.napari.widgets.analysis_inputs import atlas_layers, label_names, spatial_placement

ROI_LAYER = "ROIs"


class RoiLayerTools:
    """Edits the viewer's ROI layer for a dock (its population, ROI and atlas combo boxes,
    status line and fail)."""

    def __init__(self, dock: Any) -> None:
        """dock: the ReceptiveFieldWidget whose form these tools serve."""
        self._dock = dock
        self._viewer = dock._viewer
        self._watched_layer: Any = None
        self.on_stroke: Any = None  # called (no arguments) when a paint stroke ends

    def atlas_choices(self) -> list[tuple[str, int]]:
        """(region name, label) of the first ROI atlas in the viewer, by label."""
        atlases = atlas_layers(self._viewer)
        if not atlases:
            return []
        names = atlases[0].metadata["brainvae"]["atlas_names"]
        return [(str(name), int(label)) for label, name in sorted(names.items(), key=_label_key)]

    def chosen_rois(self, name: str | None, typed: str) -> tuple[np.ndarray, dict[int, str]]:
        """The named layer's labels and a {label: name} for every label painted in it (typed
        label=name pairs first, then the layer's stored names, else roi_<label>)."""
        if name is None or name not in self._viewer.layers:
            raise ValueError("no ROI layer: press 'New ROI layer' and paint, or add atlas regions")
        layer = self._viewer.layers[name]
        labels = np.asarray(layer.data)
        present = [int(v) for v in np.unique(labels) if v != 0]
        if not present:
            raise ValueError(f"the ROI layer {name!r} is empty: paint at least one ROI")
        stored = label_names(layer)  # atlas region names, painted ROIs' names, else roi_<label>
        names = parse_names(typed)
        return labels, {label: names.get(label, stored[label]) for label in present}

    def new_roi_layer(self) -> Any:
        """An empty labels layer on the population's grid, ready to paint label 1."""
        dock = self._dock
        try:
            population = dock._population_layer()
        except ValueError as err:
            dock.fail(err)
            return None
        shape = tuple(population.data.shape[1:])
        if ROI_LAYER in self._viewer.layers:
            self._viewer.layers.remove(ROI_LAYER)
        layer = self._viewer.add_labels(
            np.zeros(shape, dtype=np.int32),
            name=ROI_LAYER,
            metadata={"brainvae": {"kind": "rois", "roi_names": {}}},
            **spatial_placement(population),  # the population's grid and units (mm)
        )
        layer.selected_label = 1
        layer.mode = "paint"
        dock.roi_layer.value = ROI_LAYER
        dock.status.value = "Paint an ROI (label 1); a new label number paints another ROI."
        return layer

    def add_atlas_region(self) -> None:
        """Copy the chosen atlas region into the ROI layer as a new label, with its name."""
        dock = self._dock
        atlases = atlas_layers(self._viewer)
        if not atlases or dock.atlas_region.value is None:
            dock.fail(ValueError("no ROI atlas in the viewer (the Population data dock adds one)"))
            return
        atlas = atlases[0]
        if ROI_LAYER not in self._viewer.layers and self.new_roi_layer() is None:
            return
        layer = self._viewer.layers[ROI_LAYER]
        if layer.data.shape != atlas.data.shape:
            dock.fail(ValueError("the ROI layer and the atlas are on different grids"))
            return
        region = int(dock.atlas_region.value)
        mask = np.asarray(atlas.data) == region
        label = int(np.asarray(layer.data).max()) + 1
        data = np.array(layer.data, copy=True)
        data[mask & (data == 0)] = label
        layer.data = data
        name = atlas_name(atlas, region)
        roi_names(layer)[label] = str(name)
        refresh_features(layer)
        dock.roi_layer.value = ROI_LAYER
        dock.status.value = f"Added {name} as ROI {label} ({int(mask.sum())} voxels)."

    def show_atlas_region(self) -> Any:
        """Outline the atlas region chosen in the list (before adding it as an ROI)."""
        atlases = atlas_layers(self._viewer)
        if not atlases or self._dock.atlas_region.value is None:
            return None
        from brainvae.napari.label_view import highlight_roi

        region = int(self._dock.atlas_region.value)
        return highlight_roi(self._viewer, atlases[0], region, atlas_name(atlases[0], region))

    def watch(self, name: str | None) -> None:
        """Follow paint strokes on the named layer (Labels' paint event ends a stroke)."""
        if self._watched_layer is not None:
            try:
                self._watched_layer.events.paint.disconnect(self._on_paint)
            except (TypeError, ValueError, RuntimeError):
                pass
            self._watched_layer = None
        if name is not None and name in self._viewer.layers:
            layer = self._viewer.layers[name]
            if hasattr(layer.events, "paint"):
                layer.events.paint.connect(self._on_paint)
                self._watched_layer = layer

    def _on_paint(self, *_args) -> None:
        if self.on_stroke is not None:
            self.on_stroke()


def atlas_name(atlas: Any, region: int) -> str:
    """An atlas region's name (stored with int or str keys), else 'region N'."""
    names = atlas.metadata["brainvae"]["atlas_names"]
    return str(names.get(region) or names.get(str(region)) or f"region {region}")


def roi_names(layer: Any) -> dict:
    """The layer's {label: name} store in its metadata (made when missing)."""
    info = layer.metadata.setdefault("brainvae", {})
    return info.setdefault("roi_names", {})


def refresh_features(layer: Any) -> None:
    """ROI names as the labels layer's features, so napari shows them on hover."""
    import pandas as pd

    names = {int(k): str(v) for k, v in roi_names(layer).items()}
    labels = sorted({0, *names})
    layer.features = pd.DataFrame(
        {"index": labels, "name": [names.get(k, "background" if k == 0 else "") for k in labels]}
    )


def parse_names(text: str) -> dict[int, str]:
    """'1=ventricles, 2=lesions' -> {1: 'ventricles', 2: 'lesions'}."""
    names: dict[int, str] = {}
    for part in str(text or "").split(","):
        if not part.strip():
            continue
        label, sep, name = part.partition("=")
        if not sep or not label.strip().isdigit() or not name.strip():
            raise ValueError(f"ROI names: {part.strip()!r} is not label=name")
        names[int(label)] = name.strip()
    return names


def _label_key(item: tuple[Any, Any]) -> int:
    return int(item[0])
