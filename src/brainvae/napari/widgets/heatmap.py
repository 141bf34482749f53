"""A labelled pyqtgraph heatmap: rows and columns named, a colour bar, values on hover, clicks.

One small class for every matrix a dock shows (ROI x latent impact, latent x latent
covariance): set_matrix replaces the picture in place; on_click(row, column) is called when
the user clicks a cell; hover_text says the cell under the mouse. Columns of inactive latents
can be greyed out (a grey veil over the column, the name in brackets, "inactive" on hover), so
a field that means little never looks like a finding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


class Heatmap:
    """matrix[row, column] as coloured cells, row 0 on top, with tick labels from names."""

    def __init__(self, title: str, colormap: str = "viridis", symmetric: bool = False) -> None:
        import pyqtgraph as pg

        self.widget = pg.PlotWidget(title=title)
        self.widget.setMinimumHeight(200)
        self.widget.setMinimumWidth(120)  # two side by side still fit a narrow dock
        self.widget.setMouseEnabled(x=False, y=False)
        self.widget.hideButtons()
        self.widget.getViewBox().invertY(True)  # row 0 on top, as in a table
        self.image = pg.ImageItem(axisOrder="row-major")
        self.widget.addItem(self.image)
        self.colour_bar = pg.ColorBarItem(
            colorMap=pg.colormap.get(colormap), interactive=False, width=12
        )
        self.colour_bar.setImageItem(self.image, insert_in=self.widget.getPlotItem())
        self.symmetric = symmetric
        self.matrix = np.zeros((0, 0))
        self.rows: tuple[str, ...] = ()
        self.columns: tuple[str, ...] = ()
        self.hover_text = ""
        self.raw: np.ndarray | None = None  # values for hover when the picture is rescaled
        self.inactive = np.zeros(0, dtype=bool)  # per column: a greyed (inactive) latent
        self._veils: list[Any] = []
        self.on_click: Callable[[int, int], None] | None = None
        self.widget.scene().sigMouseMoved.connect(self._on_move)
        self.widget.scene().sigMouseClicked.connect(self._on_click)

    def set_matrix(
        self,
        matrix: np.ndarray,
        rows: Sequence[str],
        columns: Sequence[str],
        inactive_columns: Sequence[bool] | np.ndarray | None = None,
    ) -> None:
        """Show a (R, C) matrix; NaN cells take the lowest colour; inactive_columns (C,) are
        veiled in grey and their names bracketed."""
        matrix = np.asarray(matrix, dtype=np.float64)
        self.raw = None
        self.matrix, self.rows, self.columns = matrix, tuple(rows), tuple(columns)
        inactive = np.zeros(matrix.shape[1], dtype=bool)
        if inactive_columns is not None:
            inactive = np.asarray(inactive_columns, dtype=bool).reshape(-1)
            if inactive.size != matrix.shape[1]:
                raise ValueError(f"{inactive.size} inactive flags for {matrix.shape[1]} columns")
        self.inactive = inactive
        finite = matrix[np.isfinite(matrix)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if self.symmetric:
            reach = max(abs(low), abs(high)) or 1.0
            low, high = -reach, reach
        if high <= low:
            high = low + 1.0
        self.image.setImage(np.nan_to_num(matrix, nan=low), levels=(low, high))
        self.colour_bar.setLevels((low, high))
        self.image.setRect(0, 0, matrix.shape[1], matrix.shape[0])
        self._draw_veils()
        bottom = self.widget.getAxis("bottom")
        bottom.setTicks([[(k + 0.5, self.column_label(k)) for k in range(len(self.columns))]])
        left = self.widget.getAxis("left")
        left.setTicks([[(k + 0.5, name) for k, name in enumerate(self.rows)]])
        self.widget.setXRange(0, max(matrix.shape[1], 1), padding=0)
        self.widget.setYRange(0, max(matrix.shape[0], 1), padding=0)

    def column_label(self, column: int) -> str:
        """A column's tick label: its name, bracketed when it is an inactive latent."""
        name = self.columns[column]
        return f"({name})" if self.inactive.size and self.inactive[column] else name

    def _draw_veils(self) -> None:
        """A translucent grey rectangle over each inactive column."""
        from qtpy.QtGui import QBrush, QColor, QPen
        from qtpy.QtWidgets import QGraphicsRectItem

        for veil in self._veils:
            self.widget.removeItem(veil)
        self._veils = []
        for column in np.flatnonzero(self.inactive):
            veil = QGraphicsRectItem(float(column), 0.0, 1.0, float(self.matrix.shape[0]))
            veil.setBrush(QBrush(QColor(128, 128, 128, 200)))
            veil.setPen(QPen(QColor(0, 0, 0, 0)))
            veil.setZValue(10)
            self.widget.addItem(veil)
            self._veils.append(veil)

    def clear(self) -> None:
        """No matrix: an empty plot (nothing to hover or click)."""
        self.matrix, self.rows, self.columns, self.raw = np.zeros((0, 0)), (), (), None
        self.inactive = np.zeros(0, dtype=bool)
        self._draw_veils()
        self.image.clear()
        self.widget.getAxis("bottom").setTicks([[]])
        self.widget.getAxis("left").setTicks([[]])

    def cell_at(self, scene_pos: Any) -> tuple[int, int] | None:
        """(row, column) under a scene position, or None outside the matrix."""
        if self.matrix.size == 0:
            return None
        point = self.widget.getViewBox().mapSceneToView(scene_pos)
        row, column = int(np.floor(point.y())), int(np.floor(point.x()))
        if 0 <= row < self.matrix.shape[0] and 0 <= column < self.matrix.shape[1]:
            return row, column
        return None

    def describe(self, row: int, column: int) -> str:
        values = self.raw if self.raw is not None else self.matrix
        text = f"{self.rows[row]} x {self.columns[column]}: {values[row, column]:.4g}"
        if self.inactive.size and self.inactive[column]:
            text += " (inactive latent: the decoder does not use it)"
        return text

    def _on_move(self, scene_pos: Any) -> None:
        cell = self.cell_at(scene_pos)
        self.hover_text = "" if cell is None else self.describe(*cell)
        self.widget.setToolTip(self.hover_text)

    def _on_click(self, event: Any) -> None:
        cell = self.cell_at(event.scenePos())
        if cell is not None and self.on_click is not None:
            self.on_click(*cell)

    def save_png(self, path: Any) -> None:
        """The plot as drawn now (axes, colour bar, cells)."""
        if not self.widget.grab().save(str(path), "PNG"):
            raise OSError(f"{path}: could not write the PNG")
