"""The two groups drawn on the latent map, as napari layers beside the scans: each group's mean
image ("group A mean", "group B mean") and what the model thinks separates them ("decoded B - A":
decode(mean code of B) - decode(mean code of A), a diverging colour map centred at 0).

The layers sit on the population's grid (its scale and units), in a row below the scan (A, B,
B - A from left to right in the displayed plane), so the scan being browsed and the explorer's
decode beside it stay visible and the canvas holds them at a readable size; in 3D they are
volumes. The camera is fitted when a group layer first appears, never when one is updated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from brainvae.napari.layer_roles import tagged

GROUP_A_LAYER = "group A mean"
GROUP_B_LAYER = "group B mean"
DIFFERENCE_LAYER = "decoded B - A"
GROUP_KIND = "population_group"
LABELS_LAYER = "group labels"
DIVERGING_NAME = "blue-black-red (B - A)"


def diverging_colormap() -> Any:
    """Blue below 0, black at 0, red above: 0 reads as 'no difference' on the dark canvas."""
    from napari.utils.colormaps import Colormap

    colours = [[0.25, 0.55, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.3, 0.2, 1.0]]
    return Colormap(colors=colours, name=DIVERGING_NAME)


def symmetric_limits(image: np.ndarray) -> tuple[float, float]:
    """(-m, m) with m the largest |value| (1e-6 at least), so 0 is the middle colour."""
    reach = float(np.nanmax(np.abs(image))) if np.size(image) else 0.0
    reach = max(reach, 1e-6)
    return -reach, reach


def row_below_translate(
    viewer: Any, shape: tuple[int, ...], placement: dict[str, Any], column: int
) -> tuple[float, ...]:
    """The translate of the `column`-th image of a row below the scan: shifted down the
    displayed plane's rows by the scan's height plus a gap, and along its columns by
    `column` widths plus gaps (the gap: GAP_FRACTION of the scan's width)."""
    from brainvae.napari.widgets.decode_placement import GAP_FRACTION, plane_axes

    ndim = len(shape)
    scale = np.asarray(placement.get("scale", (1.0,) * ndim), dtype=float)
    translate = np.asarray(placement.get("translate", (0.0,) * ndim), dtype=float).copy()
    offset = max(viewer.dims.ndim, ndim) - ndim
    rows_axis, columns_axis = (axis - offset for axis in plane_axes(viewer))
    if min(rows_axis, columns_axis) < 0:
        return tuple(translate)
    height = shape[rows_axis] * abs(scale[rows_axis])
    width = shape[columns_axis] * abs(scale[columns_axis])
    gap = GAP_FRACTION * width
    translate[rows_axis] += height + gap
    translate[columns_axis] += column * (width + gap)
    return tuple(float(v) for v in translate)


def show_below_scan(
    viewer: Any,
    name: str,
    image: np.ndarray,
    limits: tuple[float, float],
    translate: tuple[float, ...],
    placement: dict[str, Any],
    kind: str,
    tag: str,
) -> tuple[Any, bool]:
    """The image layer `name` showing `image` below the scan: updated in place when it exists
    with the same shape, else added on the population's grid (grey, or the diverging colour
    map for kind "diverging"); whether it is new. In 3D a grey image is drawn by its brightest
    voxel and a signed one averaged along the ray, so gains (red) and losses (blue) both show."""
    layers = viewer.layers
    if name in layers and layers[name].data.shape == image.shape:
        layer = layers[name]
        layer.data = image
        layer.contrast_limits = limits
        layer.translate = translate
        return layer, False
    if name in layers:
        layers.remove(name)
    on_grid = {k: placement[k] for k in ("scale", "units") if placement.get(k)}
    layer = viewer.add_image(
        image,
        name=name,
        colormap=diverging_colormap() if kind == "diverging" else "gray",
        contrast_limits=limits,
        translate=translate,
        rendering="average" if kind == "diverging" else "mip",
        metadata=tagged(tag),
        **on_grid,
    )
    return layer, True


def label_on_canvas(
    viewer: Any, name: str, layers: list[Any], texts: list[str], tag: str, size: int = 9
) -> None:
    """Each text written above its layer's top-left corner (empty texts left out): a 2D points
    layer `name` of invisible points carrying text, which napari shows on every slice of the
    trailing plane; updated in place when it holds as many labels, removed when nothing is
    shown or another plane is displayed (rolled dims). The selection is kept: the labels are
    not for editing."""
    from brainvae.napari.widgets.decode_placement import plane_axes

    kept = [(layer, text) for layer, text in zip(layers, texts, strict=True) if text]
    ndim = viewer.dims.ndim
    if not kept or sorted(plane_axes(viewer)) != [ndim - 2, ndim - 1]:
        if name in viewer.layers:
            viewer.layers.remove(name)
        return
    corners = np.array([np.asarray(layer.translate, dtype=float)[-2:] for layer, _ in kept])
    labels = {"label": [text for _, text in kept]}
    if name in viewer.layers and len(viewer.layers[name].data) == len(corners):
        viewer.layers[name].data = corners
        viewer.layers[name].features = labels
        return
    if name in viewer.layers:
        viewer.layers.remove(name)
    selected = list(viewer.layers.selection)
    units = getattr(kept[0][0], "units", None)
    viewer.add_points(
        corners,
        name=name,
        size=0.0,
        features=labels,
        text={"string": "{label}", "color": "white", "size": size, "anchor": "lower_left"},
        metadata=tagged(tag),
        **({"units": tuple(units)[-2:]} if units is not None else {}),
    )
    viewer.layers.selection = set(selected)


def contrast_job(images: Any, codes: np.ndarray, rows_a: Any, rows_b: Any, model: Any) -> Any:
    """The groups' comparison (runs in a worker: it reads every scan of both groups)."""
    from brainvae.population import group_contrast

    return group_contrast(images, codes, rows_a, rows_b, model=model)


class GroupLayers:
    """Adds or updates the group layers of one viewer."""

    def __init__(self, viewer: Any) -> None:
        self._viewer = viewer
        self._made = False  # whether the last show made a new layer

    def show(self, contrast: Any, placement: dict[str, Any], anchor: Any) -> list[Any]:
        """Group A's mean (and, with B, B's mean and the decoded difference) in a row below the
        scan; the camera fitted to them and `anchor` (the population layer) when one is new.
        Returns the layers shown."""
        self._made = False
        shown = [self._show(GROUP_A_LAYER, contrast.mean_image_a, placement, 0, "gray")]
        if contrast.mean_image_b is not None:
            shown.append(self._show(GROUP_B_LAYER, contrast.mean_image_b, placement, 1, "gray"))
            difference = contrast.decoded_difference
            if difference is not None:
                shown.append(self._show(DIFFERENCE_LAYER, difference, placement, 2, "diverging"))
        else:
            self.remove(GROUP_B_LAYER, DIFFERENCE_LAYER)
        self._label(shown)
        if self._made and anchor is not None:  # all in view; updates keep the camera
            self._viewer.fit_to_view()
        return shown

    def _label(self, shown: list[Any]) -> None:
        """Each group layer's name written on the canvas above its top-left corner."""
        names = [layer.name for layer in shown]
        label_on_canvas(self._viewer, LABELS_LAYER, shown, names, GROUP_KIND, size=10)

    def remove(self, *names: str) -> None:
        for name in names:
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)

    def _show(
        self, name: str, image: np.ndarray, placement: dict[str, Any], column: int, kind: str
    ) -> Any:
        image = np.asarray(image, dtype=np.float32)
        if kind == "diverging":
            limits = symmetric_limits(image)
        else:
            low, high = float(np.min(image)), float(np.max(image))
            limits = (low, high if high > low else low + 1.0)
        translate = row_below_translate(self._viewer, image.shape, placement, column)
        layer, new = show_below_scan(
            self._viewer, name, image, limits, translate, placement, kind, GROUP_KIND
        )
        self._made = self._made or new
        return layer


def contrast_text(contrast: Any) -> str:
    """What the group layers show, in words."""
    text = f"Group A: {len(contrast.rows_a)} scans (mean in '{GROUP_A_LAYER}')"
    if contrast.rows_b is None:
        return text + ". Draw group B to see what separates them."
    return text + (
        f"; group B: {len(contrast.rows_b)} scans. '{DIFFERENCE_LAYER}' shows what the model "
        "thinks separates them: decode(mean code B) - decode(mean code A); red where B is "
        "brighter, blue where darker."
    )


class GroupComparison:
    """Compares the groups drawn on the map in a napari worker and shows the layers.

    say(text): the dock's status line; fail(error): its error report; guarded(callback): the
    callback skipped once the dock is closed."""

    def __init__(
        self,
        viewer: Any,
        say: Callable[[str], None],
        fail: Callable[[BaseException], None],
        guarded: Callable[[Callable[..., Any]], Callable[..., Any]],
    ) -> None:
        self.layers = GroupLayers(viewer)
        self._say, self._fail, self._guarded = say, fail, guarded
        self._workers: set[Any] = set()
        self._latest = 0  # number of the last comparison asked: older results are dropped
        self.last: Any = None  # the last GroupContrast shown

    @property
    def busy(self) -> bool:
        return bool(self._workers)

    def compare(
        self,
        layer: Any,
        codes: np.ndarray,
        rows_a: np.ndarray,
        rows_b: np.ndarray | None,
        model: Any,
        placement: dict[str, Any],
    ) -> None:
        """Group A (and B) of the population `layer` (scans) with their `codes`, decoded by
        `model`; the layers go beside `layer` on its grid (`placement`)."""
        from napari.qt.threading import create_worker

        sizes = f"group A: {len(rows_a)} scans" + (
            f", group B: {len(rows_b)} scans" if rows_b is not None else ""
        )
        self._say(f"Comparing {sizes}...")
        self._latest += 1
        number = self._latest

        def show(contrast: Any) -> None:
            if number != self._latest:
                return  # a newer drawing is being compared
            self.last = contrast
            self.layers.show(contrast, placement, layer)
            self._say(contrast_text(contrast))

        def finished() -> None:
            self._workers.discard(worker)

        worker = create_worker(
            contrast_job, layer.data, codes, rows_a, rows_b, model,
            _connect={"returned": self._guarded(show), "errored": self._fail,
                      "finished": finished},
        )  # fmt: skip
        self._workers.add(worker)

    def quit(self) -> None:
        for worker in list(self._workers):
            worker.quit()
