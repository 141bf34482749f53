"""A labelled pyqtgraph heatmap: rows and columns named, a colour bar, values on hover, clicks.

One small class for every matrix a dock shows (ROI x latent impact, latent x latent
covariance): set_matrix replaces the picture in place; on_click(row, column) is called when
the user clicks a cell and on_row_click(row) when a row's name is clicked; hover_text (also the
tooltip) says the cell under the mouse. Columns of inactive latents can be greyed out (a grey
veil over the column, the name in brackets, "inactive" on hover), so a field that means little
never looks like a finding.

Readable at any size: tick labels are thinned so they never overlap (every n-th name shown,
all on hover), the colour bar gets as many ticks as its height holds, and with
`cell_width` set the plot keeps that many pixels per column and scrolls sideways inside
`scroll_area` (e.g. 256 latents). The plot stays hidden while it has no matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from brainvae.napari.widgets.plot_panel import PlotPanel

LABEL_GAP = 6  # pixels between two tick labels
COLOUR_BAR_TICK_SPACING = 28  # pixels per colour bar tick, at least


def label_step(label_size: float, cell_size: float, gap: float = LABEL_GAP) -> int:
    """Label every n-th cell so that labels `label_size` pixels long (plus a gap) never
    overlap on cells `cell_size` pixels apart."""
    if cell_size <= 0:
        return 1
    return max(1, math.ceil((label_size + gap) / cell_size))


def top_columns(matrix: np.ndarray, count: int | None) -> np.ndarray:
    """Indices, in their original order, of the `count` columns with the largest absolute
    value anywhere (NaN counts as 0); all columns when count is None or not smaller."""
    matrix = np.asarray(matrix, dtype=np.float64)
    columns = matrix.shape[1]
    if count is None or count >= columns:
        return np.arange(columns)
    peak = np.nan_to_num(np.abs(matrix), nan=0.0).max(axis=0) if matrix.shape[0] else 0
    order = np.argsort(-np.broadcast_to(peak, (columns,)), kind="stable")
    return np.sort(order[: max(int(count), 1)])


def colour_bar_ticks(low: float, high: float, pixels: float) -> list[tuple[float, str]]:
    """Round values between low and high, at most one per COLOUR_BAR_TICK_SPACING pixels of
    bar, with labels short enough for the bar's axis (3 significant digits)."""
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        return []
    most = max(2, int(pixels // COLOUR_BAR_TICK_SPACING) + 1)
    span = high - low
    raw = span / (most - 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    values = [first + k * step for k in range(int((high - first) / step + 1e-9) + 1)]
    return [(v, _short(v, step)) for v in values if low - 1e-12 <= v <= high + 1e-12]


def _short(value: float, step: float) -> str:
    """A tick label: plain numbers for ordinary magnitudes, else 3 significant digits."""
    if abs(value) < step * 1e-6:
        return "0"
    if 1e-3 <= abs(step) < 1e4:
        decimals = max(0, -math.floor(math.log10(abs(step)) + 1e-9) + 1)
        text = f"{value:.{decimals}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"
    return f"{value:.2g}"


class Heatmap(PlotPanel):
    """matrix[row, column] as coloured cells, row 0 on top, with tick labels from names."""

    def __init__(
        self,
        title: str,
        colormap: str = "viridis",
        symmetric: bool = False,
        row_name: str = "",
        column_name: str = "",
    ) -> None:
        import pyqtgraph as pg

        super().__init__(min_height=200)
        self.set_title(title)
        self.widget.setMinimumWidth(120)  # two side by side still fit a narrow dock
        self.widget.getViewBox().invertY(True)  # row 0 on top, as in a table
        self.image = pg.ImageItem(axisOrder="row-major")
        self.widget.addItem(self.image)
        self.colour_bar = pg.ColorBarItem(
            colorMap=pg.colormap.get(colormap), interactive=False, width=12
        )
        self.colour_bar.setImageItem(self.image, insert_in=self.widget.getPlotItem())
        self.colour_bar.axis.enableAutoSIPrefix(False)  # ticks say the values themselves
        self.symmetric = symmetric
        self.row_name, self.column_name = row_name, column_name
        self.matrix = np.zeros((0, 0))
        self.rows: tuple[str, ...] = ()
        self.columns: tuple[str, ...] = ()
        self.levels = (0.0, 1.0)
        self.row_ticks: list[tuple[float, str]] = []  # (position, name) on the axes now
        self.column_ticks: list[tuple[float, str]] = []
        self.colour_bar_ticks: list[tuple[float, str]] = []  # (value, text) on the colour bar
        self.hover_text = ""
        self.raw: np.ndarray | None = None  # values for hover when the picture is rescaled
        self.inactive = np.zeros(0, dtype=bool)  # per column: a greyed (inactive) latent
        self.cell_width: int | None = None  # pixels per column when scrolling; None: fit
        self._veils: list[Any] = []
        self._scroll_area: Any = None
        self.on_click: Callable[[int, int], None] | None = None
        self.on_row_click: Callable[[int], None] | None = None
        self.widget.scene().sigMouseMoved.connect(self._on_move)
        self.widget.scene().sigMouseClicked.connect(self._on_click)
        self.widget.getViewBox().sigResized.connect(self._relabel)
        self.set_shown(False)

    # ---- layout ----------------------------------------------------------------------------
    @property
    def scroll_area(self) -> Any:
        """The plot in a sideways-scrolling area (made on first use): add this to a dock
        instead of `widget` when many columns may need more room than the dock has."""
        if self._scroll_area is None:
            from qtpy.QtCore import Qt
            from qtpy.QtWidgets import QFrame, QScrollArea

            area = QScrollArea()
            area.setWidgetResizable(True)
            area.setFrameShape(QFrame.Shape.NoFrame)
            area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
            area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            area.setMinimumHeight(self.widget.minimumHeight() + 16)  # room for the scroll bar
            area.setWidget(self.widget)
            self._scroll_area = area
            self.set_shown(self.matrix.size > 0)
        return self._scroll_area

    def set_cell_width(self, pixels: int | None) -> None:
        """Keep `pixels` per column (the plot grows and scrolls sideways), or None to fit the
        columns into the width the plot has."""
        self.cell_width = None if pixels is None else max(int(pixels), 1)
        self._fit_width()

    def label_cell_width(self) -> int:
        """Pixels a column needs to show every column name (the longest one, plus a gap)."""
        if not self.columns:
            return 1
        metrics = self._metrics()
        return max(
            metrics.horizontalAdvance(self.column_label(k)) for k in range(len(self.columns))
        )

    def _fit_width(self) -> None:
        columns = self.matrix.shape[1] if self.matrix.ndim == 2 else 0
        if self.cell_width is None or columns == 0:
            self.widget.setMinimumWidth(120)
            return
        box = self.widget.getViewBox()
        margins = self.widget.width() - box.width() if box.width() > 0 else 0
        margins = max(margins, self._left_axis_width() + 90)  # axis, colour bar and its ticks
        self.widget.setMinimumWidth(int(margins + columns * self.cell_width))

    def _left_axis_width(self) -> int:
        metrics = self._metrics()
        return max((metrics.horizontalAdvance(name) for name in self.rows), default=0) + 20

    def set_shown(self, shown: bool) -> None:
        """Only a plot with a matrix is shown (empty axes mean nothing), with its scroll area."""
        super().set_shown(shown)
        if self._scroll_area is not None:
            self._scroll_area.setVisible(shown)

    def set_title(self, title: str) -> None:
        """The title, at the plot's left edge (seen even when a wide plot scrolls)."""
        self.widget.setTitle(title, justify="left")

    @property
    def shown(self) -> bool:
        """True while the plot has a matrix to show (and is not hidden)."""
        outer = self._scroll_area if self._scroll_area is not None else self.widget
        return not outer.isHidden() and not self.widget.isHidden()

    # ---- content ---------------------------------------------------------------------------
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
        self.levels = (low, high)
        self.image.setImage(np.nan_to_num(matrix, nan=low), levels=(low, high))
        self.colour_bar.setLevels((low, high))
        self.image.setRect(0, 0, matrix.shape[1], matrix.shape[0])
        self._draw_veils()
        self.widget.setXRange(0, max(matrix.shape[1], 1), padding=0)
        self.widget.setYRange(0, max(matrix.shape[0], 1), padding=0)
        self.set_shown(matrix.size > 0)
        self._fit_width()
        self._relabel()

    def column_label(self, column: int) -> str:
        """A column's tick label: its name, bracketed when it is an inactive latent."""
        name = self.columns[column]
        return f"({name})" if self.inactive.size and self.inactive[column] else name

    def shown_labels(self) -> tuple[list[int], list[int]]:
        """(rows, columns) whose names the axes show now (the others only on hover)."""
        return (
            [int(position) for position, text in self.row_ticks if text],
            [int(position) for position, text in self.column_ticks if text],
        )

    def _metrics(self) -> Any:
        from qtpy.QtGui import QFontMetrics

        return QFontMetrics(self.widget.getAxis("bottom").font())

    def _relabel(self, *_args: Any) -> None:
        """Name every n-th row and column so names never overlap at the plot's present size
        (each cell keeps a tick mark), and give the colour bar ticks that fit its height."""
        box = self.widget.getViewBox()
        width, height = float(box.width()), float(box.height())
        n_rows, n_columns = len(self.rows), len(self.columns)
        metrics = self._metrics()
        self.column_ticks, self.row_ticks = [], []
        if n_columns:
            widest = max(metrics.horizontalAdvance(self.column_label(k)) for k in range(n_columns))
            step = label_step(widest, width / n_columns if width > 0 else 0)
            self.column_ticks = _ticks(n_columns, step, self.column_label)
        if n_rows:
            step = label_step(metrics.height(), height / n_rows if height > 0 else 0, gap=2)
            self.row_ticks = _ticks(n_rows, step, self.rows.__getitem__)
        self.widget.getAxis("bottom").setTicks(_levels(self.column_ticks))
        left = self.widget.getAxis("left")
        left.setTicks(_levels(self.row_ticks))
        self.colour_bar_ticks = colour_bar_ticks(*self.levels, height) if n_rows else []
        self.colour_bar.axis.setTicks([self.colour_bar_ticks])
        # pyqtgraph drops a tick label wider than its axis: make each axis as wide as its
        # widest label (the colour bar's is 45 pixels otherwise)
        named_rows = [name for _, name in self.row_ticks if name]
        left.setWidth(_axis_width(metrics, named_rows, left))
        bar_axis = self.colour_bar.axis
        bar_axis.setWidth(_axis_width(metrics, [t for _, t in self.colour_bar_ticks], bar_axis))

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

    def clear_content(self) -> None:
        """No matrix: nothing to show, hover or click (clear() hides the plot)."""
        self.matrix, self.rows, self.columns, self.raw = np.zeros((0, 0)), (), (), None
        self.inactive = np.zeros(0, dtype=bool)
        self._draw_veils()
        self.image.clear()
        self._relabel()
        self._fit_width()

    # ---- mouse -----------------------------------------------------------------------------
    def cell_at(self, scene_pos: Any) -> tuple[int, int] | None:
        """(row, column) under a scene position, or None outside the matrix."""
        if self.matrix.size == 0:
            return None
        point = self.widget.getViewBox().mapSceneToView(scene_pos)
        row, column = int(np.floor(point.y())), int(np.floor(point.x()))
        if 0 <= row < self.matrix.shape[0] and 0 <= column < self.matrix.shape[1]:
            return row, column
        return None

    def row_label_at(self, scene_pos: Any) -> int | None:
        """The row whose name (left of the cells) is under a scene position, else None."""
        if self.matrix.size == 0:
            return None
        axis = self.widget.getAxis("left")
        if not axis.sceneBoundingRect().contains(scene_pos):
            return None
        row = int(np.floor(self.widget.getViewBox().mapSceneToView(scene_pos).y()))
        return row if 0 <= row < self.matrix.shape[0] else None

    def describe(self, row: int, column: int) -> str:
        """The hover text of a cell: its row, its column and its value."""
        values = self.raw if self.raw is not None else self.matrix
        value = f"{values[row, column]:.4g}"
        if self.row_name or self.column_name:
            text = (
                f"{self.row_name} {self.rows[row]}, {self.column_name} {self.columns[column]}: "
                f"{value}"
            )
        else:
            text = f"{self.rows[row]} x {self.columns[column]}: {value}"
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
            return
        row = self.row_label_at(event.scenePos())
        if row is not None and self.on_row_click is not None:
            self.on_row_click(row)


def _ticks(count: int, step: int, label: Callable[[int], str]) -> list[tuple[float, str]]:
    """A tick at every cell centre, named on every step-th cell (from step // 2 on, so no
    name pokes out past the plot's edge, where pyqtgraph would drop it)."""
    first = step // 2
    return [(k + 0.5, label(k) if k % step == first else "") for k in range(count)]


def _axis_width(metrics: Any, labels: Sequence[str], axis: Any) -> int:
    """Pixels a vertical axis needs for its tick marks and its widest label."""
    widest = max((metrics.horizontalAdvance(text) for text in labels), default=0)
    return int(widest + max(axis.style["tickLength"], 0) + axis.style["tickTextOffset"][0] + 8)


def _levels(ticks: list[tuple[float, str]]) -> list[list[tuple[float, str]]]:
    """pyqtgraph tick levels: the named ticks as major ones, the rest as unnamed minor ticks
    (their marks still show where each cell is)."""
    named = [tick for tick in ticks if tick[1]]
    unnamed = [tick for tick in ticks if not tick[1]]
    return [named, unnamed] if unnamed else [named]
