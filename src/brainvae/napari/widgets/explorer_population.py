"""The population the latent explorer encodes: its scans, table and stack layer, the scan
under the viewer's slider, one scan's code, and what the status line says once it is encoded.

`ExplorerScans` holds the population and the "population" row choosing its stack layer; the
explorer decides when to encode it (a worker).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox

from brainvae.napari.layer_roles import population_layers, population_of
from brainvae.napari.widgets.decode_placement import same_layer

if TYPE_CHECKING:
    import pandas as pd

    from brainvae.analysis.latent_activity import LatentActivity
    from brainvae.analysis.latent_space import LatentStatistics
    from brainvae.data.population import Population
    from brainvae.models.base import LatentModel


class ExplorerScans:
    """(N, *shape) images with their table, their placement (the stack layer's scale,
    translate, axis labels and units without the scan axis), their contrast limits and the
    stack layer showing them; codes of single scans encoded before the whole population.

    `combo` lists the viewer's population stacks; choosing one calls `use_layer(layer,
    population)` (the explorer then calls `use` with the layer's scans)."""

    def __init__(self, viewer: Any, use_layer: Callable[[Any, Population | None], None]) -> None:
        self._viewer = viewer
        self._use_layer = use_layer
        self.images: np.ndarray | None = None
        self.metadata: pd.DataFrame | None = None
        self.placement: dict[str, Any] = {}
        self.display_limits: list[float] | None = None
        self.layer: Any = None  # the stack layer showing the images
        self.population: Population | None = None  # the chosen layer's, when it has one
        self._scan_codes: dict[int, np.ndarray] = {}
        self.combo = ComboBox(
            label="population",
            choices=self._layer_names,
            tooltip="The stack layer whose scans are encoded (ranges, Encode current)",
        )
        self.combo.changed.connect(self._on_layer_chosen)

    def _layer_names(self, *_args: Any) -> list[str]:
        return [layer.name for layer in population_layers(self._viewer)]

    def on_layers_changed(self, *_args: Any) -> None:
        """Layers came or went: list the stacks, forget a removed one, take the first when
        there is no population yet."""
        self.combo.reset_choices()
        if self.layer_shown() is None:  # removed from the viewer
            self.layer = None
        if self.images is None and self.combo.value is not None:
            self._on_layer_chosen(self.combo.value)

    def _on_layer_chosen(self, name: str | None) -> None:
        if name is None or name not in self._viewer.layers:
            return
        layer = self._viewer.layers[name]
        if not same_layer(layer, self.layer):
            self._use_layer(layer, population_of(layer))

    def use(self, images: np.ndarray, metadata: Any, placement: dict[str, Any] | None) -> None:
        """New scans: their contrast from every ~16th scan, their layer found in the viewer."""
        from brainvae.napari.layer_metadata import contrast_limits

        self.images = images
        self.metadata = metadata
        self.placement = dict(placement or {})
        step = max(1, len(images) // 16)
        self.display_limits = contrast_limits(np.asarray(images[::step]))
        self.layer = _matching_layer(population_layers(self._viewer), images)
        self._scan_codes.clear()

    def layer_shown(self) -> Any:
        """The stack layer when it is in the viewer, else None."""
        layer = self.layer
        return layer if layer is not None and layer in self._viewer.layers else None

    def fits(self, model: LatentModel | None) -> bool:
        """Whether there are scans and a model, and the scans fit it (else a ValueError
        saying why, when there are both)."""
        from brainvae.analysis.latent_space import check_images_fit

        if model is None or self.images is None:
            return False
        check_images_fit(model, np.shape(self.images))
        return True

    def scan_under_slider(self) -> int:
        """Scan under the viewer's slider for the population stack (its first axis)."""
        n_scans = len(self.images) if self.images is not None else 1
        return _scan_under_slider(self._viewer, self.layer, n_scans)

    def code_of_scan(
        self, model: LatentModel, statistics: LatentStatistics | None, index: int
    ) -> np.ndarray:
        """Posterior mean of one scan: from the encoded population, else encoded now."""
        if statistics is not None:
            return statistics.codes[index].astype(np.float64)
        if index not in self._scan_codes:
            self._scan_codes[index] = _encode_scan(model, self.images, index)
        return self._scan_codes[index]

    def forget_codes(self) -> None:
        """Another model: scans encoded by the last one no longer count."""
        self._scan_codes.clear()

    def description(self, index: int) -> str:
        """' (subject_id sub-01, session 1)' for a scan whose table has those columns."""
        return _scan_description(self.metadata, index)

    def preprocessing_note(self, model: LatentModel) -> str | None:
        """How the scans' preprocessing or intensities differ from the model's training data."""
        return _preprocessing_note(model, self.images, self.layer)


def stack_placement(layer: Any) -> dict[str, Any]:
    """Scale, translate, axis labels and units of a stack layer's scans (its first axis off)."""
    return {
        "scale": tuple(layer.scale[1:]),
        "translate": tuple(layer.translate[1:]),
        "axis_labels": tuple(layer.axis_labels[1:]),
        "units": tuple(str(unit) for unit in layer.units[1:]),  # mm: one unit per scene
    }


def _matching_layer(layers: list, images: np.ndarray) -> Any:
    """The population stack showing these images (the same array, else the same shape)."""
    for layer in layers:
        if layer.data is images:
            return layer
    for layer in layers:
        if tuple(layer.data.shape) == tuple(np.shape(images)):
            return layer
    return None


def _scan_under_slider(viewer: Any, layer: Any, n_scans: int) -> int:
    """Scan under the viewer's slider for the population stack (its first axis)."""
    if layer is not None and layer in viewer.layers:
        axis = viewer.dims.ndim - layer.ndim
        step = viewer.dims.current_step[axis] if axis >= 0 else 0
    else:
        step = viewer.dims.current_step[0] if viewer.dims.ndim else 0
    return int(np.clip(step, 0, n_scans - 1))


def _scan_description(table: pd.DataFrame | None, index: int) -> str:
    """' (subject_id sub-01, session 1)' for a scan with those columns, else ''."""
    if table is None or not 0 <= index < len(table):
        return ""
    row = table.iloc[index]
    parts = [f"{key} {row[key]}" for key in ("subject_id", "session") if key in row]
    return f" ({', '.join(parts)})" if parts else ""


def _encode_scan(model: LatentModel, images: np.ndarray, index: int) -> np.ndarray:
    """Posterior mean (L,) of one scan, encoded now (float64)."""
    import torch

    from brainvae.analysis.latent_space import check_images_fit

    check_images_fit(model, np.shape(images))
    with torch.inference_mode():
        image = np.asarray(images[index : index + 1], dtype=np.float32)
        mu = model.encode(image)[0]
    return mu[0].float().cpu().numpy().astype(np.float64)


def _preprocessing_note(model: LatentModel, images: np.ndarray, layer: Any) -> str | None:
    """How the population's preprocessing or intensities differ from the model's training
    data (empty when they agree): a model trained on other intensities decodes nonsense."""
    from brainvae.data.fingerprint import preprocessing_warning

    population = population_of(layer)
    dataset = population.dataset if population is not None else None
    return preprocessing_warning(model.config, images, dataset)


def activity_text(activity: LatentActivity, filtered: bool) -> str:
    """How many latents are active; the inactive ones named when few (a 1,000-latent model
    would fill the dock with names)."""
    text = f"{activity.n_active} of {activity.latent_dim} latents active"
    names = activity.inactive_names
    if not names:
        return text
    listed = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return text + (
        f"; inactive: {listed} (their posterior means vary by <= {activity.threshold:g} over "
        f"the {activity.n_images} scans, so the decoder cannot use them"
        + ("; 'active latents only' hides them)" if filtered else ")")
    )
