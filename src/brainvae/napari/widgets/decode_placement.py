"""Where the explorer's decoded brain (and its exports) go, so the scan stays in view.

An opaque decode on top of the population hid the scan being browsed: moving the scan slider
changed no pixel. By default the decode now sits beside the scan, shifted along the last
displayed (left-right) axis by the scan's width plus a small gap, past any other layer already
there. The camera is fitted to scan and decode once, when the decode first appears beside a
population; later decodes only change pixels, never the camera. "over the scan" puts it back
on top; "only while a slider moves" shows it on top while the code changes and hides it about
a second after the last change.

The geometry (`slot_beside`) is a pure function over boxes; `DecodePlacement` applies it to
napari layers on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BESIDE, OVER, WHILE_MOVING = "beside", "over", "while_moving"
PLACEMENT_CHOICES = (
    ("beside the scan", BESIDE),
    ("over the scan", OVER),
    ("only while a slider moves", WHILE_MOVING),
)
GAP_FRACTION = 0.05
"""Gap between the scan and what is placed beside it, as a fraction of the scan's width."""
HIDE_AFTER_MS = 1000
"""In "only while a slider moves", the decode hides this long after the last change."""


@dataclass(frozen=True)
class Box:
    """An axis-aligned world box over some viewer axes: low and high edges (pixel edges)."""

    low: np.ndarray
    high: np.ndarray

    def overlaps(self, other: Box) -> bool:
        return bool(np.all(self.low < other.high) and np.all(other.low < self.high))

    def shifted(self, axis: int, offset: float) -> Box:
        step = np.zeros_like(self.low)
        step[axis] = offset
        return Box(self.low + step, self.high + step)


def slot_beside(box: Box, anchor: Box, obstacles: Sequence[Box], axis: int, gap: float) -> float:
    """How far to shift `box` along `axis` so it starts `gap` right of `anchor` and overlaps
    none of the obstacles (each one in the way pushes it past its right edge plus the gap)."""
    offset = float(anchor.high[axis] + gap - box.low[axis])
    for _ in range(len(obstacles) + 1):
        placed = box.shifted(axis, offset)
        blocking = [o for o in obstacles if placed.overlaps(o)]
        if not blocking:
            break
        right = max(float(o.high[axis]) for o in blocking)
        offset = right + gap - float(box.low[axis])
    return offset


def same_layer(first: Any, second: Any) -> bool:
    """Identity of two layers, seen through napari's public-only proxies (a plugin dock's
    viewer hands out a new proxy object on every access, so `is` alone says False). A layer
    hashes to its id and a proxy hashes like what it wraps."""
    if first is None or second is None:
        return first is second
    return first is second or hash(first) == hash(second)


def plane_axes(viewer: Any) -> tuple[int, ...]:
    """The viewer axes that make the screen's plane: the last two displayed (rows, columns)."""
    return tuple(viewer.dims.displayed[-2:])


def layer_box(layer: Any, viewer_ndim: int, axes: Sequence[int]) -> Box | None:
    """A layer's world box over the given viewer axes (None when it lacks one of them).

    napari's world extent runs between pixel centres; images and labels are drawn half a
    pixel further each way, which counts here.
    """
    extent = np.asarray(layer.extent.world, dtype=float)
    offset = viewer_ndim - extent.shape[1]
    columns = [axis - offset for axis in axes]
    if min(columns) < 0:
        return None
    half = 0.5 * np.abs(np.asarray(layer.scale, dtype=float)) if _is_raster(layer) else 0.0
    low, high = extent[0] - half, extent[1] + half
    return Box(low[columns], high[columns])


def image_box(
    shape: Sequence[int],
    scale: Sequence[float],
    translate: Sequence[float],
    viewer_ndim: int,
    axes: Sequence[int],
) -> Box | None:
    """The box an image of this shape and placement would cover (pixel edges)."""
    scale_, translate_ = np.asarray(scale, dtype=float), np.asarray(translate, dtype=float)
    offset = viewer_ndim - len(shape)
    columns = [axis - offset for axis in axes]
    if min(columns) < 0:
        return None
    low = translate_ - 0.5 * np.abs(scale_)
    high = translate_ + (np.asarray(shape, dtype=float) - 0.5) * np.abs(scale_)
    return Box(low[columns], high[columns])


def _is_raster(layer: Any) -> bool:
    from napari.layers import Image, Labels

    return isinstance(layer, Image | Labels)


def beside_translate(
    viewer: Any,
    shape: Sequence[int],
    placement: dict[str, Any],
    anchor: Any,
    ignore: Sequence[Any] = (),
) -> tuple[float, ...]:
    """The translate that puts an image of `shape` right of the `anchor` layer (plus a gap)
    along the last displayed axis, clear of every layer but those in `ignore`."""
    ndim = len(shape)
    scale = tuple(placement.get("scale", (1.0,) * ndim))
    translate = list(placement.get("translate", (0.0,) * ndim))
    axes = plane_axes(viewer)
    viewer_ndim = max(viewer.dims.ndim, ndim)
    box = image_box(shape, scale, translate, viewer_ndim, axes)
    anchor_box = layer_box(anchor, viewer_ndim, axes) if anchor is not None else None
    if box is None or anchor_box is None:
        return tuple(translate)
    obstacles = [
        found
        for layer in viewer.layers
        if not any(same_layer(layer, other) for other in (anchor, *ignore))
        if (found := layer_box(layer, viewer_ndim, axes)) is not None
    ]
    gap = GAP_FRACTION * float(anchor_box.high[-1] - anchor_box.low[-1])
    offset = slot_beside(box, anchor_box, obstacles, axis=len(axes) - 1, gap=gap)
    translate[axes[-1] - (viewer_ndim - ndim)] += offset
    return tuple(translate)


class DecodePlacement:
    """Puts the explorer's decode layer beside or over the scan and keeps the camera still.

    viewer: the napari viewer; population: a callable giving the population layer (or None);
    mode: one of BESIDE, OVER, WHILE_MOVING.
    """

    def __init__(self, viewer: Any, population: Callable[[], Any], mode: str = BESIDE) -> None:
        from qtpy.QtCore import QTimer

        self._viewer = viewer
        self._population = population
        self.mode = mode
        self._fitted_for: Any = None  # the population layer the camera was fitted to, once
        self._hide_timer = QTimer()
        self._hide_timer.setSingleShot(True)
        self._hide_timer.setInterval(HIDE_AFTER_MS)
        self._hide_timer.timeout.connect(self._hide)
        self._layer: Any = None

    def translate_for(
        self, shape: Sequence[int], placement: dict[str, Any], ignore: Sequence[Any] = ()
    ) -> tuple[float, ...]:
        """Where a new decode of this shape goes in the current mode."""
        base = tuple(placement.get("translate", (0.0,) * len(shape)))
        if self.mode != BESIDE:
            return base
        return beside_translate(self._viewer, shape, placement, self._population(), ignore)

    def place(self, layer: Any, placement: dict[str, Any], ignore: Sequence[Any] = ()) -> None:
        """Move the decode layer where the mode wants it; fit the camera to scan and decode
        the first time they stand side by side (never again for that population)."""
        self._layer = layer
        translate = self.translate_for(layer.data.shape, placement, (layer, *ignore))
        if not np.allclose(layer.translate, translate):
            layer.translate = translate
        if self.mode == WHILE_MOVING:
            layer.visible = self._hide_timer.isActive()
        else:
            layer.visible = True
        population = self._population()
        if (
            self.mode == BESIDE
            and population is not None
            and not same_layer(self._fitted_for, population)
        ):
            self._fitted_for = population  # held: its id (hash) stays its own
            self._viewer.fit_to_view(layers=[population, layer])

    def after_decode(self, layer: Any) -> None:
        """A new image was shown: in WHILE_MOVING, show it and hide it after a quiet second."""
        self._layer = layer
        if self.mode == WHILE_MOVING:
            layer.visible = True
            self._hide_timer.start()

    def stop(self) -> None:
        """No more hiding (the dock is closing)."""
        import contextlib

        with contextlib.suppress(RuntimeError):  # Qt already deleted it (teardown)
            self._hide_timer.stop()

    def _hide(self) -> None:
        layer = self._layer
        if layer is not None and self.mode == WHILE_MOVING and layer in self._viewer.layers:
            layer.visible = False
