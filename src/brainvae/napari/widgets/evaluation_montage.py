"""The denoising montage as napari layers beside the scans: one row per artefact below the scan,
and in each row the clean scan, its corrupted version and each model's reconstruction of it
("denoising leakage: corrupted", "denoising leakage: PCA"...); the canvas names the columns
above the first row and each row by its artefact.

The rows follow population_groups' placement (`row_below_translate`, `show_below_scan`): on
the population's grid (its scale and units) below the scan, so the scan being browsed stays
visible; in 3D they are volumes. Every picture shares one grey range, so the same grey means
the same value in the input and in every reconstruction. A new comparison replaces the layers
of the last one; the camera is fitted when layers are added.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainvae.napari.widgets.longitudinal_layers import shared_limits
from brainvae.napari.widgets.population_groups import row_below_translate, show_below_scan

MONTAGE_KIND = "evaluation_montage"
LABELS_LAYER = "denoising labels"


def montage_name(artefact: str, column: str) -> str:
    """The layer of one picture: "denoising grid: corrupted", "denoising grid: PCA"."""
    return f"denoising {artefact}: {column}"


def artefact_slices(
    viewer: Any, changed: dict[str, np.ndarray], brain: np.ndarray | None = None
) -> tuple[str, dict[str, int]]:
    """Volumes shown as slices: (the slider's axis label, {artefact: the slice along it that
    shows most of the artefact beside unchanged brain}, the exported montage's rule:
    denoising_figure.visible_slices; else the slice it changed most), so the status can say
    where to look; ("", {}) for 2D scans or when the plane shown is not across the volume."""
    from brainvae.figures.denoising_figure import visible_slices

    first = next(iter(changed.values()), None)
    if first is None or first.ndim != 3 or viewer.dims.ndisplay != 2:
        return "", {}
    ndim = viewer.dims.ndim
    offset = ndim - first.ndim
    hidden = [a for a in range(offset, ndim) if a not in viewer.dims.displayed]
    if len(hidden) != 1:
        return "", {}
    axis = hidden[0] - offset
    others = tuple(a for a in range(3) if a != axis)
    found = {}
    for artefact, where in changed.items():
        where = np.asarray(where, bool)
        scores = visible_slices(where, brain, axis)
        counts = where.sum(axis=others)
        if scores.any():
            found[artefact] = int(np.argmax(scores))
        elif counts.any():
            found[artefact] = int(np.argmax(counts))
    return str(viewer.dims.axis_labels[hidden[0]]), found


class MontageLayers:
    """Adds and removes the montage layers of one viewer."""

    def __init__(self, viewer: Any) -> None:
        self._viewer = viewer
        self.names: list[str] = []
        self._artefacts: list[str] = []

    def show(
        self, montage: dict[str, np.ndarray], columns: tuple[str, ...], placement: dict[str, Any]
    ) -> list[Any]:
        """Each artefact's row of pictures (montage {artefact: (C, *spatial)}, C in `columns`
        order) below the scan placed by `placement` (a population layer's scale, translate and
        units of one scan). Returns the layers shown."""
        wanted = [montage_name(a, c) for a in montage for c in columns]
        self.remove(*[layer.name for layer in self._ours() if layer.name not in wanted])
        limits = shared_limits([np.asarray(p, dtype=np.float32) for p in montage.values()])
        row = dict(placement)
        shown, made = [], False
        for artefact, pictures in montage.items():
            shape = pictures.shape[1:]
            for column, (label, image) in enumerate(zip(columns, pictures, strict=True)):
                translate = row_below_translate(self._viewer, shape, row, column)
                layer, new = show_below_scan(
                    self._viewer, montage_name(artefact, label),
                    np.asarray(image, dtype=np.float32), limits, translate, row, "gray",
                    MONTAGE_KIND,
                )  # fmt: skip
                shown.append(layer)
                made = made or new
            row = {**row, "translate": row_below_translate(self._viewer, shape, row, 0)}
        self.names = [layer.name for layer in shown]
        self._artefacts = list(montage)
        self._label(shown, tuple(columns))
        if made:
            self._viewer.fit_to_view()
        return shown

    def _ours(self) -> list[Any]:
        from brainvae.napari.layer_roles import kind_of

        return [layer for layer in self._viewer.layers if kind_of(layer) == MONTAGE_KIND]

    def label_texts(self, rows: int, columns: tuple[str, ...]) -> list[str]:
        """What is written above each picture, short enough for a laptop's canvas: the first
        row's pictures by column ("corrupted", each model), each row's clean scan by its
        artefact ("grid: clean"), nothing over the others (the layer list has every name)."""
        texts = []
        for row in range(rows):
            for column, label in enumerate(columns):
                if column == 0:
                    texts.append(f"{self._artefacts[row]}: {label}")
                else:
                    texts.append(label if row == 0 else "")
        return texts

    def _label(self, shown: list[Any], columns: tuple[str, ...]) -> None:
        """The label_texts above the pictures' top-left corners, as the other docks label
        their rows; skipped unless the scans' plane shows."""
        from brainvae.napari.widgets.population_groups import label_on_canvas

        texts = self.label_texts(len(self._artefacts), columns) if shown else []
        label_on_canvas(self._viewer, LABELS_LAYER, shown, texts, MONTAGE_KIND)

    def remove(self, *names: str) -> None:
        for name in names:
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)
