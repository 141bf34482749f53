"""The latent explorer's layers: the live decode and its grey exports, on the GUI thread.

The decode layer is overwritten in place while its grid stays the same (half the cost of
`layer.data = ...`), and placed where "decode shown" wants it (decode_placement); exports
(interpolations, traversal grids) go right of the scan and the decode without moving the
camera. Every layer is grey, in the population's contrast when it fits the model, and in the
scene's units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from magicgui.widgets import ComboBox

from brainvae.napari.layer_roles import DECODE, kind_of, tagged
from brainvae.napari.widgets.decode_placement import (
    BESIDE,
    PLACEMENT_CHOICES,
    DecodePlacement,
    beside_translate,
)

DECODED_LAYER = "latent decode"
GRID_LAYER = "traversal grid"
SEE_EXPORT = "pan right, or use View > Fit to View (the home button) to see everything."


class DecodeDisplay:
    """Shows decoded images in a viewer: the live decode and the exports beside it.

    `population_layer_shown` gives the population layer the decode stands beside (or None);
    `limits` arguments are the population's contrast limits, or None for the image's own.
    `mode_choice` is the "decode shown" row: beside the scan, over it, or only while moving.
    """

    def __init__(self, viewer: Any, population_layer_shown: Callable[[], Any]) -> None:
        self._viewer = viewer
        self._population_layer_shown = population_layer_shown
        self.placer = DecodePlacement(viewer, population_layer_shown)
        self.mode_choice = ComboBox(
            label="decode shown",
            choices=PLACEMENT_CHOICES,
            value=BESIDE,
            tooltip=(
                "Where the decoded brain goes: beside the scan (both visible), over the scan "
                "(covers it), or over the scan only while a slider moves (hidden a second "
                "after the last change)"
            ),
        )

    def show_decode(self, image: np.ndarray, placement: dict[str, Any], limits) -> Any:
        """Show a decoded image: into our own layer when it fits, else in a new one."""
        layers = self._viewer.layers
        layer = layers[DECODED_LAYER] if DECODED_LAYER in layers else None
        if layer is not None and _can_overwrite(layer, image, placement):
            # Our own preview array: copy in and redraw. Half the cost of `layer.data = ...`,
            # whose data-event listeners (thumbnail, dims) took ~10 ms per drag step here.
            # Only pixels change: never the layer's place, never the camera.
            np.copyto(layer.data, image)
            layer.refresh(extent=False, highlight=False)
        else:
            layer = self._add_decode_layer(image, placement, limits)
        self.placer.after_decode(layer)
        return layer

    def _add_decode_layer(self, image: np.ndarray, placement: dict[str, Any], limits) -> Any:
        """A new decode layer where "decode shown" wants it (beside the scan by default)."""
        if DECODED_LAYER in self._viewer.layers:
            self._viewer.layers.remove(DECODED_LAYER)
        exports = self.export_layers()
        translate = self.placer.translate_for(image.shape, placement, ignore=exports)
        layer = self._add_grey_layer(image, DECODED_LAYER, placement, translate, limits)
        self.placer.place(layer, placement, ignore=exports)  # the camera is fitted once
        _show_a_slice_of(self._viewer, layer)
        return layer

    def place_decode(self, placement: dict[str, Any]) -> None:
        """Put the decode layer where the mode wants it (after a change of mode, population
        or axis order); decodes themselves never move it."""
        if DECODED_LAYER not in self._viewer.layers:
            return
        layer = self._viewer.layers[DECODED_LAYER]
        scale = placement.get("scale", np.ones(layer.ndim))
        if kind_of(layer) != DECODE or not np.allclose(layer.scale, scale):
            return  # a decode on another grid: the next decode replaces it, placed anew
        self.placer.place(layer, placement, ignore=self.export_layers())

    def export_layers(self) -> list:
        """Our layers other than the decode (interpolations, traversal grids)."""
        return [
            layer
            for layer in self._viewer.layers
            if layer.name != DECODED_LAYER and kind_of(layer) == DECODE
        ]

    def show_export(self, name: str, data: np.ndarray, placement: dict[str, Any], limits) -> None:
        """An export (interpolation, traversal grid) as a layer right of the scan and the
        decode, never over them, and without moving the camera: in place when it exists."""
        layers = self._viewer.layers
        if name in layers:
            layer = layers[name]
            if layer.data.shape == data.shape and tuple(layer.scale) == tuple(
                placement.get("scale", layer.scale)
            ):
                layer.data = data
                return
            layers.remove(name)
        anchor = self._population_layer_shown()
        if anchor is None and DECODED_LAYER in layers:
            anchor = layers[DECODED_LAYER]
        translate = beside_translate(self._viewer, data.shape, placement, anchor)
        self._add_grey_layer(data, name, placement, translate, limits)

    def _add_grey_layer(
        self, data: np.ndarray, name: str, placement: dict, translate, limits
    ) -> Any:
        """A grey image layer of ours at `translate`, in the given contrast (else the data's
        own), in the scene's units (napari warns when a scene mixes units)."""
        return self._viewer.add_image(
            data,
            name=name,
            colormap="gray",
            contrast_limits=limits if limits is not None else _robust_limits(data),
            rgb=False,
            metadata=tagged(DECODE),
            **{"units": _scene_units(self._viewer, data.ndim), **placement, "translate": translate},
        )

    def stop(self) -> None:
        """Stop the placement's timer (the dock is closing)."""
        self.placer.stop()


def with_leading_axis(placement: dict[str, Any], name: str) -> dict[str, Any]:
    """Placement of a stack: a unit axis called `name` in front of the spatial ones."""
    out = dict(placement)
    if "scale" in out:
        out["scale"] = (1.0, *out["scale"])
    if "translate" in out:
        out["translate"] = (0.0, *out["translate"])
    if "axis_labels" in out:
        out["axis_labels"] = (name, *out["axis_labels"])
    if "units" in out:
        out["units"] = ("pixel", *out["units"])  # frames are counted, like the scans
    return out


def _can_overwrite(layer, image: np.ndarray, placement: dict[str, Any]) -> bool:
    """True when a layer holds this dock's own writable array of the image's shape and scale
    (where it stands is the placement's business, not the decode's)."""
    data = layer.data
    return (
        kind_of(layer) == DECODE
        and isinstance(data, np.ndarray)
        and data.flags.writeable
        and data.shape == image.shape
        and data.dtype == image.dtype
        and np.allclose(layer.scale, placement.get("scale", np.ones(image.ndim)))
    )


def _show_a_slice_of(viewer: Any, layer: Any) -> None:
    """A new decoded volume: move the depth sliders to its middle only when they stand outside
    it (a leftover edge slice would show nothing); the scan's own slice is left alone."""
    from brainvae.napari.widgets.view import centre_slices

    extent = layer.extent.world
    offset = viewer.dims.ndim - extent.shape[1]
    hidden = [axis for axis in range(extent.shape[1]) if offset + axis not in viewer.dims.displayed]
    point = viewer.dims.point
    if any(not extent[0, a] <= point[offset + a] <= extent[1, a] for a in hidden):
        centre_slices(viewer, layer)


def _scene_units(viewer: Any, ndim: int) -> tuple[str, ...]:
    """Units for a decode shown before any population: the scene's (napari warns when a
    scene mixes units), else millimetres, the units of every layer this plugin makes."""
    for layer in viewer.layers:
        if layer.name != DECODED_LAYER and len(layer.units) >= ndim:
            return tuple(str(unit) for unit in layer.units[-ndim:])
    return ("mm",) * ndim


def _robust_limits(data: np.ndarray) -> list[float]:
    from brainvae.napari.layer_metadata import contrast_limits

    return contrast_limits(data)
