"""The projective fields dock's 3D view (viewer.dims.ndisplay == 3).

The opaque image and labels volumes would hide the colour volume, so while a result is shown
they are hidden (and shown again on leaving 3D or when the colour layer is removed); the colour
volume is rendered as a maximum projection (each ray shows its strongest voxel's hue), inside a
faint surface of the brain (the population mean at the brain-mask level) with the outlined ROIs
as surfaces. The meshes come from marching cubes and are kept while their input stays the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainvae.napari.widgets.projective_layers import COLOUR_LAYER, OWN_KINDS, ProjectiveLayers

BRAIN_SURFACE_LAYER = "brain surface (3D context)"
ROI_SURFACE_LAYER = "ROI outlines (3D surfaces)"
SURFACE_LAYERS = (BRAIN_SURFACE_LAYER, ROI_SURFACE_LAYER)
BRAIN_SURFACE_OPACITY = 0.2
BRAIN_LEVEL = 0.1
"""The brain surface sits where the mean reaches this fraction of its maximum (the default
brain mask's level, brain_mask_from_images)."""
ROI_SURFACE_OPACITY = 0.35
EVERY_ROI_OPACITY = 0.05
"""Every ROI outlined in 3D: their surfaces fill the brain, so each is faint, under the colours."""
RENDERING_3D = "mip"
"""The colour volume in 3D: each ray shows its voxel of largest brightness x opacity in that
voxel's own hue (a translucent blend would mix the hues of a whole ray into grey)."""
FLOOR_3D = 0.5
"""In 3D only voxels above this share of their colour limit show (opacity rising from 0 there
to 1 at the limit): a field spread over the brain otherwise fills the view like fog."""
KEEP_IN_3D = ("roi_highlight",)
"""Kinds of other docks' layers that stay shown in 3D: the Receptive fields dock's ROI
highlight is an outline, not an opaque volume."""


def faded_for_3d(image: np.ndarray) -> np.ndarray:
    """An RGBA volume's opacity rescaled so only voxels above FLOOR_3D of their limit show."""
    image[..., 3] = np.clip((image[..., 3] - FLOOR_3D) / (1.0 - FLOOR_3D), 0.0, 1.0)
    return image


class Projective3DView:
    """Hides other volumes, renders the colours as a maximum projection and adds the brain and
    ROI surfaces while the result is shown in 3D; undoes it all on leaving."""

    def __init__(self, viewer: Any, layers: ProjectiveLayers) -> None:
        self._viewer = viewer
        self._layers = layers
        self._hidden: list[Any] = []  # layers hidden on entering 3D
        self.active = False
        self._brain_mesh: tuple[Any, Any] | None = None  # (mean image, (vertices, faces))
        self._roi_mesh: tuple[Any, Any] | None = None  # (key, (vertices, faces))

    def forget_meshes(self) -> None:
        """A new result: the kept meshes belong to the old one."""
        self._brain_mesh = self._roi_mesh = None

    def enter(self, mean: np.ndarray, rois: np.ndarray | None, key: Any, rgb: tuple) -> None:
        """Hide the opaque volumes (others' once, on entering), render the colours as a maximum
        projection, and draw the brain and the outlined ROIs (`rois`, kept by `key`) as
        surfaces in the outline colour `rgb`."""
        from napari.layers import Image, Labels

        from brainvae.napari.layer_metadata import stored_metadata

        layers = self._viewer.layers
        colour = layers[COLOUR_LAYER]
        volume = colour.ndim == 3
        own_2d = () if not volume else ("projective_underlay", "projective_outlines")
        entering = not self.active
        self.active = True
        for layer in list(layers):
            kind = stored_metadata(layer.metadata).get("kind")
            # others' volumes once, on entering (a user may show one again); ours each time
            # (a new result or outline layer is made visible)
            hide = kind in own_2d or (
                entering
                and kind not in (*OWN_KINDS, *KEEP_IN_3D)
                and isinstance(layer, Image | Labels)
            )
            if hide and layer.visible:
                layer.visible = False
                self._hidden.append(layer)
        if entering:
            self._frame(colour)
        colour.rendering = RENDERING_3D
        if not volume:
            return
        self._show_brain_surface(mean)
        self.show_roi_surface(rois, key, rgb)

    def leave(self) -> None:
        """Show again what entering 3D hid (if still there) and drop the 3D surfaces."""
        self._layers.remove(*SURFACE_LAYERS)
        hidden, self._hidden = self._hidden, []
        for layer in hidden:
            if layer in self._viewer.layers:
                layer.visible = True
        self.active = False

    def _frame(self, layer: Any) -> None:
        """Fit the 3D view to the result (a hidden decode may sit beside the brain and would
        shrink it): napari's fit to all layers, then centred and zoomed on this one."""
        viewer = self._viewer
        viewer.reset_view()
        offset = viewer.dims.ndim - layer.ndim
        displayed = [axis - offset for axis in viewer.dims.displayed if axis >= offset]
        if len(displayed) != 3:
            return
        every = np.asarray(viewer.layers.extent.world)[:, list(viewer.dims.displayed)]
        own = np.asarray(layer.extent.world)[:, displayed]
        size = float(np.max(own[1] - own[0]))
        camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari 0.9
        if size > 0:
            camera.center = tuple(float(v) for v in own.mean(axis=0))
            camera.zoom = camera.zoom * float(np.max(every[1] - every[0])) / size

    def _show_brain_surface(self, mean: np.ndarray) -> None:
        """The population mean's surface at the brain-mask level, faint, as context."""
        if self._brain_mesh is None or self._brain_mesh[0] is not mean:
            self._brain_mesh = (mean, brain_surface(mean))
        mesh = self._brain_mesh[1]
        if mesh is None or BRAIN_SURFACE_LAYER in self._viewer.layers:
            return
        self._add_surface(mesh, BRAIN_SURFACE_LAYER, (0.8, 0.8, 0.8), BRAIN_SURFACE_OPACITY, True)

    def show_roi_surface(self, rois: np.ndarray | None, key: Any, rgb: tuple) -> None:
        """The outlined ROIs (one, or each of all: key[1] is None) as surfaces in the outline
        colour; the mesh is kept while the key stays the same (a fine atlas takes a moment)."""
        self._layers.remove(ROI_SURFACE_LAYER)
        if rois is None:
            return
        if self._roi_mesh is None or self._roi_mesh[0] != key:
            self._roi_mesh = (key, labels_surface(rois))
        mesh = self._roi_mesh[1]
        if mesh is None:
            return
        if key[1] is None:  # every ROI: they fill the brain, so faint and under the colours
            self._add_surface(mesh, ROI_SURFACE_LAYER, rgb, EVERY_ROI_OPACITY, True)
        else:
            self._add_surface(mesh, ROI_SURFACE_LAYER, rgb, ROI_SURFACE_OPACITY, False)

    def _add_surface(
        self,
        mesh: tuple[np.ndarray, np.ndarray],
        name: str,
        rgb: tuple,
        opacity: float,
        below: bool,
    ) -> None:
        """A one-colour surface on the result's grid, under the colour volume (context) or
        above it (outlines)."""
        from napari.utils.colormaps import Colormap

        vertices, faces = mesh
        flat = Colormap([[*rgb, 1.0], [*rgb, 1.0]], name=f"brainvae {name}")
        layer = self._viewer.add_surface(
            (vertices, faces, np.ones(len(vertices), dtype=np.float32)),
            name=name,
            colormap=flat,
            contrast_limits=(0.0, 1.0),
            opacity=opacity,
            blending="translucent_no_depth",
            shading="smooth",
            metadata={"brainvae": {"kind": "projective_surface"}},
            **self._layers.on_grid(),
        )
        if below:
            layers = self._viewer.layers
            layers.move(layers.index(layer), layers.index(COLOUR_LAYER))


def _surface(volume: np.ndarray, level: float, outside: float) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, faces) in voxel coordinates of `volume` at `level`; padded by one voxel of
    `outside` (below the level) so the surface closes at the grid's edge."""
    from skimage.measure import marching_cubes

    padded = np.pad(volume, 1, constant_values=outside)
    vertices, faces, _normals, _values = marching_cubes(padded, level=level)
    return (vertices - 1.0).astype(np.float32), faces.astype(np.int64)


def mask_surface(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(vertices, faces) in voxel coordinates of a 3D mask's boundary; None if it is empty."""
    mask = np.asarray(mask, dtype=np.float32)
    if mask.ndim != 3 or not mask.any():
        return None
    return _surface(mask, 0.5, 0.0)


def labels_surface(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """One mesh of every label's own boundary (each cut out by its bounding box, so a fine
    atlas stays fast; neighbours' shared borders drawn once for each); None without labels."""
    labels = np.asarray(labels)
    if labels.ndim != 3:
        return None
    from scipy.ndimage import find_objects

    vertices, faces, count = [], [], 0
    for label, box in enumerate(find_objects(labels.astype(np.int64)), start=1):
        if box is None:
            continue
        mesh = mask_surface(labels[box] == label)
        if mesh is None:
            continue
        vertices.append(mesh[0] + np.array([part.start for part in box], dtype=np.float32))
        faces.append(mesh[1] + count)
        count += len(mesh[0])
    if not vertices:
        return None
    return np.concatenate(vertices), np.concatenate(faces)


def brain_surface(mean_image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The brain's outer surface: the population mean, smoothed by one voxel, at the brain
    mask's level (10 % of its maximum, as brain_mask_from_images); None for a 2D image or a
    mean with no positive voxel."""
    from scipy.ndimage import gaussian_filter

    mean = np.asarray(mean_image, dtype=np.float32)
    if mean.ndim != 3 or not np.any(mean > 0):
        return None
    smooth = gaussian_filter(mean, 1.0)
    return _surface(smooth, BRAIN_LEVEL * float(smooth.max()), min(float(smooth.min()), 0.0))
