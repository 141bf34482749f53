"""Reconstruction previews drawn inside a dock, so the viewer's camera on the brain never moves.

A pyqtgraph image of a mosaic (scans along the top row, each one's reconstruction below it)
with a caption, and a button the coordinating dock places and connects to put the same
mosaic in the viewer as a layer. Before the first mosaic it shows a line of text instead of
an empty box.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_IMAGE_HEIGHT = 120
"""Pixels: four 2D tiles stay readable; the image grows with the dock."""


class PreviewPanel:
    """The widget (`widget`): its image and caption. `show_in_viewer` is a QPushButton,
    enabled once a mosaic is shown, that the owner places where there is room and connects
    (this panel knows nothing of napari)."""

    def __init__(self, placeholder: str) -> None:
        import pyqtgraph as pg
        from qtpy.QtWidgets import QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

        self.widget = QWidget()
        layout = QVBoxLayout(self.widget)
        layout.setContentsMargins(4, 4, 4, 4)
        self.placeholder = QLabel(placeholder)
        self.placeholder.setWordWrap(True)
        self.view_widget = pg.GraphicsLayoutWidget()
        self.view_widget.setMinimumHeight(MIN_IMAGE_HEIGHT)
        self.view_widget.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
        self.view = self.view_widget.addViewBox(lockAspect=True, invertY=True)
        self.view.setDefaultPadding(0.02)
        self.image = pg.ImageItem(axisOrder="row-major")  # rows down, as napari shows them
        self.view.addItem(self.image)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.show_in_viewer = QPushButton("show in viewer")
        self.show_in_viewer.setToolTip(
            "Add these images to the viewer as a layer beside the brain; the view stays as it is"
        )
        for part in (self.placeholder, self.view_widget, self.caption):
            layout.addWidget(part)
        layout.setStretch(1, 1)
        self._shape: tuple[int, ...] | None = None
        self._showing(False)

    def show(
        self, mosaic: np.ndarray, caption: str, pixel_size: tuple[float, float] = (1.0, 1.0)
    ) -> None:
        """Draw a 2D mosaic, or the middle slice of a 3D one (first axis), at the scans' pixel
        size (rows, columns: millimetres keep anisotropic voxels in proportion)."""
        from qtpy.QtCore import QRectF

        mosaic = np.asarray(mosaic, dtype=np.float32)
        picture = mosaic if mosaic.ndim == 2 else mosaic[mosaic.shape[0] // 2]
        if mosaic.ndim == 3:
            caption += f" Middle slice ({mosaic.shape[0] // 2 + 1} of {mosaic.shape[0]})."
        low, high = float(np.min(picture)), float(np.max(picture))
        self.image.setImage(picture, levels=(low, high if high > low else low + 1.0))
        rows, columns = picture.shape
        self.image.setRect(QRectF(0.0, 0.0, columns * pixel_size[1], rows * pixel_size[0]))
        if self._shape != mosaic.shape:  # a new layout: frame it (and keep framing it as the
            self.view.enableAutoRange()  # dock resizes) until the user zooms; then theirs
            self._shape = mosaic.shape
        self.caption.setText(caption)
        self._showing(True)

    def clear(self) -> None:
        """Back to the placeholder text."""
        self.image.clear()
        self._shape = None
        self._showing(False)

    @property
    def shown(self) -> bool:
        """Whether a mosaic is shown (not the placeholder)."""
        return self._shape is not None

    def picture(self) -> Any:
        """The 2D array drawn now (None before the first mosaic)."""
        return self.image.image

    def _showing(self, image: bool) -> None:
        self.placeholder.setVisible(not image)
        for part in (self.view_widget, self.caption):
            part.setVisible(image)
        self.show_in_viewer.setEnabled(image)
