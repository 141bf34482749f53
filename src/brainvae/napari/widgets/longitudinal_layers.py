"""Each group's simulated trajectory as napari layers beside the scans: "aging: <group>" (the
group's decoded brain at the age chosen on the dock's slider) side by side, control first, in a
row below the scan, and under each one "change since <first age>: <group>" (that frame minus
the first; blue-black-red centred at 0), with each layer named on the canvas.

The rows follow population_groups' placement (`row_below_translate`): on the population's grid
(its scale and units), below the scan so the scan stays visible; in 3D they are volumes. All
groups and ages share one contrast range (one for the brains, one symmetric range for the
changes), so the same colour means the same value across groups and as the slider moves. Moving
the slider only replaces the layers' data: no layer is added.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainvae.napari.widgets.population_groups import (
    row_below_translate,
    show_below_scan,
    symmetric_limits,
)

TRAJECTORY_KIND = "longitudinal_trajectory"
LABELS_LAYER = "aging and disease labels"


def years_text(years: float) -> str:
    """An age as a user writes it: 29, 37.7."""
    return f"{years:.1f}".removesuffix(".0")


def aging_name(group: str) -> str:
    return f"aging: {group}"


def change_name(first_age: float, group: str) -> str:
    return f"change since {years_text(first_age)}: {group}"


def shared_limits(stacks: list[np.ndarray]) -> tuple[float, float]:
    """(lowest, highest) over every frame of every group (a positive range)."""
    low = min(float(np.min(s)) for s in stacks)
    high = max(float(np.max(s)) for s in stacks)
    return low, high if high > low else low + 1.0


class TrajectoryLayers:
    """Adds, updates and removes the trajectory layers of one viewer."""

    def __init__(self, viewer: Any) -> None:
        self._viewer = viewer
        self._result: Any = None
        self._index = 0
        self.names: dict[str, tuple[str, str]] = {}  # group -> (aging layer, change layer)

    @property
    def index(self) -> int:
        """The frame (age) shown."""
        return self._index

    def show(self, result: Any, placement: dict[str, Any], index: int = 0) -> list[Any]:
        """Every group's frame `index` and its change since the first frame, below the scan
        (`placement`: the population layer's scale, translate and units of one scan). Layers of
        an earlier result that this one has no use for are removed; the camera is fitted when
        a layer is new. Returns the layers shown."""
        self._result = result
        years = np.asarray(result.years, dtype=float)
        self.names = {g: (aging_name(g), change_name(years[0], g)) for g in result.frames}
        wanted = {name for pair in self.names.values() for name in pair}
        self.remove(*[layer.name for layer in self._ours() if layer.name not in wanted])
        frames = [np.asarray(f, dtype=np.float32) for f in result.frames.values()]
        changes = [f - f[:1] for f in frames]
        image_limits = shared_limits(frames)
        change_limits = symmetric_limits(np.stack(changes))
        shape = frames[0].shape[1:]
        first_row = {**placement, "translate": row_below_translate(
            self._viewer, shape, placement, 0)}  # fmt: skip
        made, shown = False, []
        index = int(np.clip(index, 0, len(years) - 1))
        for column, (group, stack, change) in enumerate(
            zip(result.frames, frames, changes, strict=True)
        ):
            aging, changed = self.names[group]
            for name, image, limits, where, kind in (
                (aging, stack[index], image_limits, placement, "gray"),
                (changed, change[index], change_limits, first_row, "diverging"),
            ):
                layer, new = self._show(name, image, limits, where, column, kind)
                made, shown = made or new, [*shown, layer]
        self._index = index
        self._label()
        if made:  # all in view; a later update keeps the camera
            self._viewer.fit_to_view()
        return shown

    def set_index(self, index: int) -> None:
        """Show frame `index` (an age of the trajectory) in every layer: new data, no layer."""
        if self._result is None:
            return
        years = self._result.years
        index = int(np.clip(index, 0, len(years) - 1))
        layers = self._viewer.layers
        for group, (aging, changed) in self.names.items():
            frames = np.asarray(self._result.frames[group], dtype=np.float32)
            if aging in layers:
                layers[aging].data = frames[index]
            if changed in layers:
                layers[changed].data = frames[index] - frames[0]
        self._index = index
        self._label()

    def _ours(self) -> list[Any]:
        from brainvae.napari.layer_roles import kind_of

        return [layer for layer in self._viewer.layers if kind_of(layer) == TRAJECTORY_KIND]

    def _show(
        self,
        name: str,
        image: np.ndarray,
        limits: tuple[float, float],
        placement: dict[str, Any],
        column: int,
        kind: str,
    ) -> tuple[Any, bool]:
        """The layer `name` showing `image` (updated when it exists with the same shape, else
        new); whether it is new."""
        translate = row_below_translate(self._viewer, image.shape, placement, column)
        return show_below_scan(
            self._viewer, name, image, limits, translate, placement, kind, TRAJECTORY_KIND
        )

    def label_texts(self) -> list[str]:
        """What is written on the canvas above each layer, short enough for a laptop's canvas:
        "ms at 55 y" above a brain, "\u0394 ms 29\u219255 y" (its change since the first age)
        above a change; the layer list holds the full names."""
        years = np.asarray(self._result.years, dtype=float)
        age, first = years_text(years[self._index]), years_text(years[0])
        texts = []
        for group in self.names:
            texts += [f"{group} at {age} y", f"\u0394 {group} {first}\u2192{age} y"]
        return texts

    def _label(self) -> None:
        """Each layer's name and the age on the canvas above its top-left corner: a 2D points
        layer of invisible points carrying text (as population_groups labels its layers),
        updated in place as the age moves. Skipped when another plane is displayed."""
        from brainvae.napari.widgets.population_groups import label_on_canvas

        layers = self._viewer.layers
        names = [n for pair in self.names.values() for n in pair]
        texts = self.label_texts() if any(n in layers for n in names) else []
        pairs = [(layers[n], text) for n, text in zip(names, texts, strict=False) if n in layers]
        label_on_canvas(
            self._viewer, LABELS_LAYER, [p[0] for p in pairs], [p[1] for p in pairs],
            TRAJECTORY_KIND,
        )  # fmt: skip

    def remove(self, *names: str) -> None:
        for name in names:
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)
