"""The projective fields dock's 2D layers: one latent's colour map as an RGBA layer (the hue at
full brightness, opacity = the strongest band) over the dimmed population mean, under ROI
outlines drawn in the displayed planes in a colour no band takes.

`ProjectiveLayers` owns the layers' names, the last run's grid and the removal of its own
layers (marked, so the dock can tell them from a user's removal of the result). Which ROI is
outlined and what the cursor points at are plain functions of the run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainvae.figures.panels import ANATOMY_BRIGHTNESS

COLOUR_LAYER = "projective field (colour)"
UNDERLAY_LAYER = "mean brain, dimmed (under the colours)"
UNDERLAY_BRIGHTNESS = ANATOMY_BRIGHTNESS
"""The mean brain under the colours peaks at this grey (as in the exported figure): context that
is never mistaken for a colour; the colours are alpha-blended over it, never added."""
OUTLINE_LAYER = "ROI outlines"
OWN_KINDS = (
    "projective_field",
    "projective_underlay",
    "projective_outlines",
    "projective_surface",
)


class ProjectiveLayers:
    """The colour, underlay and outline layers of the shown result, on the last run's grid."""

    def __init__(self, viewer: Any) -> None:
        self._viewer = viewer
        self.placement: dict[str, Any] = {}  # the last run's grid in the viewer
        self.replacing = False  # our own layer swaps are no removal by the user

    def on_grid(self) -> dict[str, Any]:
        """scale, translate and (when the population has them) units of the last run's grid,
        so our layers overlay the scans and napari finds the units consistent."""
        keys = ("scale", "translate", "units")
        return {key: self.placement[key] for key in keys if self.placement.get(key)}

    def remove(self, *names: str) -> None:
        """Remove our own layers by name (not a user's removal of the result)."""
        self.replacing = True
        try:
            for name in names:
                if name in self._viewer.layers:
                    self._viewer.layers.remove(name)
        finally:
            self.replacing = False

    def show_colour(self, image: np.ndarray, mean: np.ndarray) -> None:
        """The RGBA image in the colour layer (updated in place when its shape is the same),
        else made afresh over the dimmed mean brain."""
        layers = self._viewer.layers
        if COLOUR_LAYER in layers and layers[COLOUR_LAYER].data.shape == image.shape:
            layers[COLOUR_LAYER].data = image
            return
        self.remove(COLOUR_LAYER, UNDERLAY_LAYER)
        peak = float(np.max(mean)) if mean.size else 1.0
        self._viewer.add_image(
            mean,
            name=UNDERLAY_LAYER,
            colormap="gray",
            contrast_limits=(0.0, (peak / UNDERLAY_BRIGHTNESS) if peak > 0 else 1.0),
            metadata={"brainvae": {"kind": "projective_underlay"}},
            **self.on_grid(),
        )
        layer = self._viewer.add_image(
            image,
            name=COLOUR_LAYER,
            rgb=True,
            blending="translucent",
            contrast_limits=(0.0, 1.0),
            metadata={"brainvae": {"kind": "projective_field"}},
            **self.on_grid(),
        )
        if image.ndim == 4:
            from brainvae.napari.widgets.view import centre_slices

            centre_slices(self._viewer, layer)

    def show_outlines(self, rois: np.ndarray | None, rgb: tuple[float, float, float]) -> None:
        """The given ROIs' borders above the colour map (None: no outline layer)."""
        layers = self._viewer.layers
        if rois is None:
            self.remove(OUTLINE_LAYER)
            return
        outlines = in_plane_outlines(rois)
        if OUTLINE_LAYER in layers and layers[OUTLINE_LAYER].data.shape == outlines.shape:
            layers[OUTLINE_LAYER].data = outlines
            return
        self.remove(OUTLINE_LAYER)
        layer = self._viewer.add_labels(
            outlines,
            name=OUTLINE_LAYER,
            opacity=0.9,
            metadata={"brainvae": {"kind": "projective_outlines"}},
            **self.on_grid(),
        )
        layer.colormap = outline_colormap(rgb)

    def raise_outlines(self) -> None:
        """The outlines on top of every layer (above the colours)."""
        layers = self._viewer.layers
        if OUTLINE_LAYER in layers:
            layers.move(layers.index(OUTLINE_LAYER), len(layers))

    def recolour_outlines(self, rgb: tuple[float, float, float]) -> None:
        """The outline colour follows the colour scheme."""
        if OUTLINE_LAYER in self._viewer.layers:
            self._viewer.layers[OUTLINE_LAYER].colormap = outline_colormap(rgb)


def outlined_row(run: Any, clicked: int | None, shown: int, every_roi: bool) -> int | None:
    """The ROI row outlined alone (clicked, else the shown latent's most enriched); None when
    every ROI is outlined (asked, no matrix, or an inactive latent with nothing clicked)."""
    if every_roi or run is None or run.matrix is None:
        return None
    if clicked is None and not run.active[shown]:
        return None  # an inactive latent has no top ROI worth outlining
    if clicked is None:
        column = run.matrix[:, shown]
        return int(np.nanargmax(column)) if np.isfinite(column).any() else 0
    return clicked


def outlined_labels(rois: np.ndarray | None, run: Any, row: int | None) -> np.ndarray | None:
    """The labels to outline: every ROI (row None) or the row's ROI alone; None without ROIs."""
    if rois is None or run is None:
        return None
    if row is None:
        return rois
    label = run.roi_labels[row]
    return np.where(rois == label, label, 0)


def bands_at(
    layer: Any, position: Any, run: Any, shown: int, rois: np.ndarray | None
) -> tuple[str, np.ndarray] | None:
    """(ROI name, the shown latent's four bands per unit var(c)) at a world position of the
    colour layer, or None off the map."""
    data_position = np.asarray(layer.world_to_data(position))
    index = tuple(int(v) for v in np.round(data_position[-layer.ndim :]))
    result = run.result
    shape = result.spatial_shape
    if len(index) != len(shape) or any(not 0 <= i < n for i, n in zip(index, shape, strict=True)):
        return None
    bands = result.band_variance[(shown, slice(None), *index)]
    bands = np.asarray(bands, dtype=np.float64) / result.settings.band_c_variance()
    region = ""
    if rois is not None:
        label = int(rois[index])
        names = dict(zip(run.roi_labels, run.roi_names, strict=True))
        region = names.get(label, "outside the ROIs" if label == 0 else f"label {label}")
    return region, np.asarray(bands, dtype=np.float64)


def outline_colormap(rgb: tuple[float, float, float]) -> Any:
    """Every label in one colour, the background transparent."""
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict={None: [*rgb, 1.0], 0: [0.0, 0.0, 0.0, 0.0]})


def in_plane_outlines(labels: np.ndarray) -> np.ndarray:
    """Each ROI's border within the planes of the last two axes (the slices napari shows):
    a voxel keeps its label where an in-plane neighbour has another label, else 0. napari's
    own contour works in every axis, so in a coarse volume nearly every voxel is a border."""
    labels = np.asarray(labels).astype(np.int32)
    border = np.zeros(labels.shape, dtype=bool)
    for axis in (-2, -1):
        differs = np.diff(labels, axis=axis) != 0
        before = [slice(None)] * labels.ndim
        after = [slice(None)] * labels.ndim
        before[axis], after[axis] = slice(None, -1), slice(1, None)
        border[tuple(before)] |= differs
        border[tuple(after)] |= differs
    return np.where(border, labels, 0).astype(np.int32)
