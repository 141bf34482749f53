"""The Training dock's reconstructions: validation scans above their reconstructions in the
dock's second tab, and, when the user asks, as a layer beside the brain that never moves the
camera. A mixin of TrainingWidget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicgui.widgets import CheckBox

from brainvae.napari.layer_roles import (
    EPOCH,
    TRAINING_PREVIEW,
    entries_of,
    population_layers,
    population_of,
    tagged,
)

PREVIEW_S = 5.0
"""New reconstructions replace the shown ones at most this often (a redraw each)."""
PREVIEW_LAYER = "validation previews (top: input, below: reconstruction)"
RECONSTRUCTIONS_TAB = 1
"""The results tabs: the loss plot (0), then the reconstructions (1)."""


class TrainingPreviews:
    """Showing the reconstructions (mixed into TrainingWidget)."""

    def _show_preview(self, preview: Any) -> None:
        """Draw the reconstructions in the dock (the viewer's camera stays on the brain); keep
        the viewer's preview layer current if the user asked for one."""
        mosaic = preview.mosaic()
        self._preview_mosaic = (mosaic, preview.epoch)
        when = "PCA fit" if preview.epoch == 0 else f"Epoch {preview.epoch}"
        self.previews.show(
            mosaic,
            f"{when}: {preview.split} scans (top) and their reconstructions (below).",
            pixel_size=tuple(self._preview_placement["scale"][-2:]),
        )
        tab = "reconstructions" + ("" if preview.epoch == 0 else f" (epoch {preview.epoch})")
        self.results.setTabText(RECONSTRUCTIONS_TAB, tab)
        if not self.plot.has_points:  # PCA: nothing to plot; the reconstructions are the news
            self.results.setCurrentIndex(RECONSTRUCTIONS_TAB)
        if PREVIEW_LAYER in self._viewer.layers:  # the user asked for it: keep it current
            self.show_preview_layer()

    def show_preview_layer(self, *_args) -> None:
        """Put the latest reconstructions in the viewer as a layer beside the brain, on its
        grid, without moving the camera; later previews update it in place."""
        if self._preview_mosaic is None:
            return
        layer = self._put_preview_layer()
        beside = len(self._viewer.layers) > 1
        self.previews.caption.setText(
            self.previews.caption.text().split(" Also in the viewer")[0]
            + (" Also in the viewer, right of the brain: zoom out or press Home." if beside
               else " Also in the viewer.")
        )  # fmt: skip
        self.previews.caption.setToolTip(f"The viewer's layer: '{layer.name}'")

    def _put_preview_layer(self) -> Any:
        """Replace the preview layer's data in place (or add it beside the population) and
        leave the camera where it was: napari frames the first layer added, and only that."""
        data, epoch = self._preview_mosaic
        name = PREVIEW_LAYER
        camera = _camera(self._viewer)
        view = (tuple(camera.center), camera.zoom, tuple(camera.angles))
        others = [layer for layer in self._viewer.layers if layer.name != name]
        if name in self._viewer.layers and self._viewer.layers[name].data.shape == data.shape:
            layer = self._viewer.layers[name]
            layer.data = data
            layer.contrast_limits = _limits(data)
        else:
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)
            selected = set(self._viewer.layers.selection)
            layer = self._viewer.add_image(
                data,
                name=name,
                colormap="gray",
                contrast_limits=_limits(data),
                **self._beside_population(data.shape),
            )
            layer.metadata.update(tagged(TRAINING_PREVIEW))
            self._viewer.layers.selection = selected  # the user's selection stays
        if others:  # the brain being inspected keeps its size and place on the screen
            camera.center, camera.zoom, camera.angles = view
        entries_of(layer)[EPOCH] = epoch
        return layer

    def _beside_population(self, shape: tuple[int, ...]) -> dict[str, Any]:
        """The population's grid, moved right of its layer and clear of any other layer
        there (the explorer's decoded brain), so the previews hide nothing; without such a
        layer, one image width and a margin right of the grid's origin."""
        from brainvae.napari.widgets.decode_placement import beside_translate

        placement = dict(self._preview_placement)
        population = self._population_layer()
        if population is not None:
            placement["translate"] = beside_translate(self._viewer, shape, placement, population)
            return placement
        scale = tuple(placement["scale"])
        translate = list(placement.get("translate", (0.0,) * len(scale)))
        translate[-1] += (self._sample_width + 8) * scale[-1]
        placement["translate"] = tuple(translate)
        return placement

    def _population_layer(self) -> Any:
        """The viewer's layer of the dataset being trained on, if one is open."""
        if self._dataset_path is None:
            return None
        for layer in population_layers(self._viewer):
            found = self._dataset_of(population_of(layer))
            if found is not None and found.resolve() == Path(self._dataset_path).resolve():
                return layer
        return None


def results_tabs(plot_panel: Any, previews: Any, log_scale: CheckBox) -> Any:
    """The loss plot and the reconstructions as two tabs (one stretchy area under the form);
    the tab bar's corner holds the shown tab's one control (log scale; show in viewer)."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QHBoxLayout, QTabWidget, QWidget

    class ResultsTabs(QTabWidget):
        """Asks for its least height only, for any width: the scroll area sizes a form with
        wrapping labels by its preferred height, and a plot's (or image's) 480-pixel wish
        would make the dock scroll where they could shrink. Spare height still goes to them
        (layout stretch)."""

        def sizeHint(self):  # noqa: N802 - Qt's name
            hint = super().sizeHint()
            hint.setHeight(self.minimumSizeHint().height())
            return hint

        def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt's name
            return False

    tabs = ResultsTabs()
    tabs.addTab(plot_panel, "loss")
    tabs.addTab(previews.widget, "reconstructions")
    corner = QWidget()
    layout = QHBoxLayout(corner)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(log_scale.native)
    layout.addWidget(previews.show_in_viewer)
    tabs.setCornerWidget(corner, Qt.Corner.TopRightCorner)

    def show_controls(index: int) -> None:
        log_scale.native.setVisible(index == 0)
        previews.show_in_viewer.setVisible(index == RECONSTRUCTIONS_TAB)

    tabs.currentChanged.connect(show_controls)
    show_controls(0)
    return tabs


def _camera(viewer: Any) -> Any:
    """The viewer's camera (napari 0.9 moved it to viewer.scene; older napari has no scene)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def _limits(data: Any) -> tuple[float, float]:
    import numpy as np

    low, high = float(np.min(data)), float(np.max(data))
    return (low, high if high > low else low + 1.0)
