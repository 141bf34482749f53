"""How the plugin's labels layers look: the chosen ROI outlined on top, the atlas faint in 3D.

`highlight_roi` shows one ROI (a clicked impact cell or row, a chosen atlas region) as an
outline in a colour no projective band takes, in a layer kept at the top of the layer list so
no opaque image (a decoded brain, a colour map) hides it, and moves the sliders to the ROI's
centre slice (the camera's zoom and pan stay). `follow_display` makes the viewer switch the
labels layers between their 2D and 3D looks: in 2D the highlight is a contour and the atlas
keeps its own settings; in 3D napari cannot draw contours, so the highlight becomes a surface
and the atlas a faint one that leaves the anatomy readable. Both docks (receptive and
projective fields) can call these; napari only, no Qt.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any

import numpy as np

from brainvae.napari.layer_metadata import NAMESPACE
from brainvae.napari.layer_roles import ATLAS_NAMES, entries_of, kind_of

HIGHLIGHT_LAYER = "ROI highlight"
HIGHLIGHT_KIND = "roi_highlight"
HIGHLIGHT_COLOUR = (0.0, 1.0, 0.0)
"""Pure green: not one of the projective bands (magenta, cyan, yellow) and, like the
projective dock's ROI outlines, a colour the paper scheme never paints."""
HIGHLIGHT_COLOUR_NAME = "green"
HIGHLIGHT_CONTOUR = 1  # voxels: one voxel of border, drawn in the displayed plane
HIGHLIGHT_OPACITY = 1.0
ATLAS_OPACITY_3D = 0.15
"""In 3D an atlas is drawn as the surfaces of its regions, the outer ones wrapping the brain:
at this opacity the anatomy stays readable through them (judged on the 3D sample)."""

CONTOUR_3D_WARNING = "Contours are not displayed during 3D rendering"

_FOLLOWED: weakref.WeakSet = weakref.WeakSet()
LOOK_2D = "look_2d"  # metadata entry: an atlas's (opacity, contour) in 2D while 3D shows


def is_highlight(layer: Any) -> bool:
    """True for the highlight layer (not an ROI layer a user would run on)."""
    return kind_of(layer) == HIGHLIGHT_KIND


def is_atlas(layer: Any) -> bool:
    """A labels layer with region names: the population's ROI atlas."""
    from napari.layers import Labels

    return isinstance(layer, Labels) and ATLAS_NAMES in entries_of(layer)


def highlight_roi(viewer: Any, source: Any, label: int, name: str, labels: Any = None) -> Any:
    """Outline ROI `label` of the labels layer `source` (or of `labels`, an array on its grid,
    e.g. the ROIs a run perturbed) on top of every layer, and move the sliders to its centre
    slice. Returns the highlight layer, or None when no voxel has the label."""
    from napari.utils.colormaps import DirectLabelColormap

    from brainvae.analysis.roi_outline import roi_location, roi_mask

    array = np.asarray(source.data if labels is None else labels)
    location = roi_location(array, label)
    if location is None:
        clear_highlight(viewer)
        return None
    follow_display(viewer)
    mask = roi_mask(array, label).astype(np.uint8)
    placement = {
        "scale": tuple(source.scale),
        "translate": tuple(source.translate),
        "units": tuple(source.units),
        "axis_labels": tuple(source.axis_labels),
    }
    metadata = {"kind": HIGHLIGHT_KIND, "label": int(label), "name": str(name)}
    layer = _highlight_layer(viewer)
    if layer is not None and (
        layer.data.shape != mask.shape
        or not np.allclose(layer.scale, placement["scale"])
        or not np.allclose(layer.translate, placement["translate"])
    ):
        viewer.layers.remove(layer)
        layer = None
    if layer is None:
        selected, active = set(viewer.layers.selection), viewer.layers.selection.active
        layer = viewer.add_labels(
            mask,
            name=HIGHLIGHT_LAYER,
            opacity=HIGHLIGHT_OPACITY,
            blending="translucent_no_depth",  # drawn over opaque images, in 2D and 3D
            metadata={NAMESPACE: metadata},
            **placement,
        )
        layer.colormap = DirectLabelColormap(
            color_dict={None: [*HIGHLIGHT_COLOUR, 1.0], 0: [0.0, 0.0, 0.0, 0.0]}
        )
        layer.editable = False
        viewer.layers.selection.clear()  # the user's selection stays (no paint on the outline)
        viewer.layers.selection.update(selected)
        viewer.layers.selection.active = active
    else:
        layer.data = mask
        layer.metadata[NAMESPACE] = metadata
    layer.features = {"index": [0, 1], "name": ["", f"{name} (highlighted)"]}
    layer.visible = True
    _apply_look(layer, viewer.dims.ndisplay)
    keep_on_top(viewer)
    show_centre_slice(viewer, layer, location.centre)
    return layer


def clear_highlight(viewer: Any) -> None:
    """Remove the highlight layer, if any."""
    layer = _highlight_layer(viewer)
    if layer is not None:
        viewer.layers.remove(layer)


def show_centre_slice(viewer: Any, layer: Any, centre: tuple[int, ...]) -> None:
    """Move the sliders of the layer's axes that are not displayed to the voxel `centre`
    (a 3D volume seen as 2D slices goes to the ROI's slice); the camera does not move."""
    world = np.asarray(layer.data_to_world(np.asarray(centre, dtype=float)), dtype=float)
    offset = viewer.dims.ndim - layer.ndim
    displayed = set(viewer.dims.displayed)
    for axis, value in enumerate(world):
        if offset + axis not in displayed:
            viewer.dims.set_point(offset + axis, float(value))


def keep_on_top(viewer: Any) -> None:
    """Move the highlight layer to the top of the layer list (drawn last, over the rest)."""
    layer = _highlight_layer(viewer)
    if layer is None:
        return
    index = viewer.layers.index(layer)
    if index != len(viewer.layers) - 1:
        viewer.layers.move(index, len(viewer.layers))


def follow_display(viewer: Any) -> None:
    """Switch the plugin's labels layers between their 2D and 3D looks whenever the viewer
    does, keep the highlight on top of layers added later, and apply the look now. Calling it
    again for the same viewer does nothing more."""
    from brainvae.napari.viewer_state import state_of

    state = state_of(viewer)  # one per viewer, whichever proxy of it a dock holds
    target = state.viewer
    if state not in _FOLLOWED:
        _FOLLOWED.add(state)
        reference = weakref.ref(state)

        def on_ndisplay(*_args: Any) -> None:
            live = reference()
            if live is not None:
                apply_display(live.viewer)

        def on_inserted(*_args: Any) -> None:
            # on the next turn of the event loop: after every other handler of the insertion
            # has run, and after the code that added the layer has set it up (its contour)
            from qtpy.QtCore import QTimer

            QTimer.singleShot(0, after_insertion)

        def after_insertion() -> None:
            live = reference()
            if live is not None:
                apply_display(live.viewer)
                keep_on_top(live.viewer)

        target.dims.events.ndisplay.connect(on_ndisplay)
        # napari slices the layers in 3D before any plugin hears of it, so a labels layer
        # with a contour warns once, just before on_ndisplay takes the contour away
        warnings.filterwarnings("ignore", message=CONTOUR_3D_WARNING, category=UserWarning)
        target.layers.events.inserted.connect(on_inserted)
    apply_display(target)


def apply_display(viewer: Any) -> None:
    """Give the highlight and every atlas the look of the viewer's current display (2D, 3D)."""
    for layer in list(viewer.layers):
        if is_highlight(layer) or is_atlas(layer):
            _apply_look(layer, viewer.dims.ndisplay)


def _apply_look(layer: Any, ndisplay: int) -> None:
    """2D: the highlight is a contour, an atlas gets back its own opacity and contour. 3D
    (where napari draws no contour): surfaces, the atlas faint."""
    if is_highlight(layer):
        layer.contour = 0 if ndisplay == 3 else HIGHLIGHT_CONTOUR
        return
    entries = layer.metadata.setdefault(NAMESPACE, {})  # the 2D look is kept on the layer
    if ndisplay == 3:
        if LOOK_2D not in entries:
            entries[LOOK_2D] = (float(layer.opacity), int(layer.contour))
        layer.contour = 0
        layer.rendering = "iso_categorical"
        layer.opacity = min(float(layer.opacity), ATLAS_OPACITY_3D)
    elif LOOK_2D in entries:
        opacity, contour = entries.pop(LOOK_2D)
        layer.opacity, layer.contour = opacity, contour


def _highlight_layer(viewer: Any) -> Any:
    for layer in viewer.layers:
        if is_highlight(layer):
            return layer
    return None
