"""What the viewer shows when a dock adds a volume: its middle slices, not a leftover one."""

from __future__ import annotations

from typing import Any


def centre_slices(viewer: Any, layer: Any, displayed: int = 2) -> None:
    """Move the viewer's sliders for the layer's non-displayed spatial axes to their middle.

    The first axis of a stack layer (scans, frames) is left alone when the layer has more
    than 3 axes; a 2D image has nothing to move.
    """
    extent = layer.extent.world  # (2, layer.ndim): world min and max per axis
    ndim = extent.shape[1]
    first = 1 if ndim > 3 else 0
    offset = viewer.dims.ndim - ndim
    for axis in range(first, ndim - displayed):
        viewer.dims.set_point(offset + axis, float(extent[:, axis].mean()))
