"""The population's latent map as a pyqtgraph scatter: one point per scan, coloured by a column
(a palette with a legend for categories, a colour map for numbers), the scans held out for
testing drawn larger and ringed, the scan shown in the viewer highlighted, and two groups
drawn with a box or a lasso.

The panel knows nothing of napari: a click calls `on_click(row)` and a drawn group calls
`on_group(name, rows)`, rows being population rows; the dock connects them to the viewer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
    "#edc948", "#76b7b2", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
"""Tableau 10: distinguishable categories on the dark plot."""
HIGHLIGHT = "#ffff00"
GROUP_PENS = {"A": "#00e5ff", "B": "#ff40ff"}
"""Group A and B outlines (cyan, magenta): no category colour takes them."""
POINT_SIZE, TEST_SIZE = 7, 10


def points_inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which (N, 2) points lie inside a closed polygon (K, 2) (even-odd rule)."""
    points = np.asarray(points, dtype=np.float64)
    polygon = np.asarray(polygon, dtype=np.float64)
    inside = np.zeros(len(points), dtype=bool)
    if len(polygon) < 3:
        return inside
    x, y = points[:, 0], points[:, 1]
    for (x1, y1), (x2, y2) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < at)
    return inside


def point_colours(values: Any, categorical: bool) -> tuple[list[Any], list[tuple[str, Any]]]:
    """A colour per point and the legend [(text, colour)]: a palette over the categories, or
    viridis from the lowest to the highest value (missing values grey)."""
    import pandas as pd
    import pyqtgraph as pg

    series = pd.Series(values).reset_index(drop=True)
    grey = pg.mkColor("#808080")
    if categorical:
        levels = sorted(series.dropna().astype(str).unique())
        colours = {level: pg.mkColor(PALETTE[i % len(PALETTE)]) for i, level in enumerate(levels)}
        per_point = [grey if pd.isna(v) else colours[str(v)] for v in series]
        return per_point, [(level, colours[level]) for level in levels]
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    finite = numbers[np.isfinite(numbers)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = high - low or 1.0
    cmap = pg.colormap.get("viridis")
    per_point = [
        cmap.map((v - low) / span, mode="qcolor") if np.isfinite(v) else grey for v in numbers
    ]
    legend = [(f"{low:.3g} (lowest)", cmap.map(0.0, mode="qcolor")),
              (f"{high:.3g} (highest)", cmap.map(1.0, mode="qcolor"))]  # fmt: skip
    return per_point, legend


def _selecting_view_box() -> Any:
    """A pyqtgraph ViewBox whose left drag draws a box or a lasso while `selecting` is set (else
    it pans); the drawn shape goes to `on_shape(polygon (K, 2) in data coordinates)`."""
    import pyqtgraph as pg
    from qtpy.QtCore import QPointF, QRectF, Qt
    from qtpy.QtGui import QPainterPath
    from qtpy.QtWidgets import QGraphicsPathItem

    class SelectingViewBox(pg.ViewBox):
        def __init__(self) -> None:
            super().__init__()
            self.selecting: str | None = None  # "A", "B" or None (drag pans)
            self.drawn_shape = "box"
            self.on_shape: Callable[[np.ndarray], None] | None = None
            self._lasso: list[tuple[float, float]] = []
            self._path = QGraphicsPathItem()
            self._path.setPen(pg.mkPen("#ffffff", width=1.5, style=Qt.PenStyle.DashLine))
            self._path.setZValue(1e6)
            self.addItem(self._path, ignoreBounds=True)
            self._path.hide()

        def mouseDragEvent(self, ev, axis=None):  # noqa: N802 - pyqtgraph's name
            if self.selecting is None or ev.button() != Qt.MouseButton.LeftButton:
                super().mouseDragEvent(ev, axis)
                return
            ev.accept()
            if self.drawn_shape == "box":
                if not ev.isFinish():
                    self.updateScaleBox(ev.buttonDownPos(), ev.pos())
                    return
                self.rbScaleBox.hide()
                rect = self.childGroup.mapRectFromParent(
                    QRectF(QPointF(ev.buttonDownPos()), QPointF(ev.pos()))
                )
                polygon = np.array(
                    [[rect.left(), rect.top()], [rect.right(), rect.top()],
                     [rect.right(), rect.bottom()], [rect.left(), rect.bottom()]]
                )  # fmt: skip
            else:
                if ev.isStart():
                    start = self.mapToView(ev.buttonDownPos())
                    self._lasso = [(start.x(), start.y())]
                here = self.mapToView(ev.pos())
                self._lasso.append((here.x(), here.y()))
                path = QPainterPath(QPointF(*self._lasso[0]))
                for point in self._lasso[1:]:
                    path.lineTo(QPointF(*point))
                path.closeSubpath()
                self._path.setPath(path)
                self._path.show()
                if not ev.isFinish():
                    return
                self._path.hide()
                polygon = np.array(self._lasso)
            if self.on_shape is not None:
                self.on_shape(polygon)

    return SelectingViewBox()


class LatentMapPanel:
    """The scatter of the population's scans (see the module docstring)."""

    def __init__(self, min_height: int = 320) -> None:
        import pyqtgraph as pg
        from qtpy.QtWidgets import QSizePolicy

        self.view_box = _selecting_view_box()
        self.widget = pg.PlotWidget(viewBox=self.view_box)
        self.widget.setMinimumHeight(min_height)
        self.widget.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
        self.plot_item = self.widget.getPlotItem()
        self.plot_item.showGrid(x=True, y=True, alpha=0.15)
        for side in ("left", "bottom"):
            self.widget.getAxis(side).enableAutoSIPrefix(False)
        self.scatter = pg.ScatterPlotItem(pxMode=True, hoverable=True, tip=self._tip)
        self.scatter.sigClicked.connect(self._on_scatter_clicked)
        self.widget.addItem(self.scatter)
        self.group_items = {
            name: pg.ScatterPlotItem(
                pxMode=True, size=12, symbol="s" if name == "A" else "t",
                pen=pg.mkPen(colour, width=1.2), brush=None,
            )
            for name, colour in GROUP_PENS.items()
        }  # fmt: skip
        for item in self.group_items.values():
            self.widget.addItem(item)
        self.highlight_item = pg.ScatterPlotItem(
            pxMode=True, size=22, symbol="o", pen=pg.mkPen(HIGHLIGHT, width=3), brush=None
        )
        self.widget.addItem(self.highlight_item)
        self.legend = self.plot_item.addLegend(offset=(-8, 8), labelTextSize="9pt")
        self.legend.setBrush(pg.mkBrush(0, 0, 0, 160))
        self.view_box.on_shape = self._on_shape
        self.on_click: Callable[[int], None] | None = None
        self.on_group: Callable[[str, np.ndarray], None] | None = None
        self.describe: Callable[[int], str] | None = None  # a scan's hover text, by row
        self.coordinates = np.zeros((0, 2))
        self.rows = np.zeros(0, dtype=np.int64)  # population row of each point
        self.groups: dict[str, np.ndarray] = {}
        self.highlighted: int | None = None
        self.widget.hide()

    # ---- content ---------------------------------------------------------------------------
    def set_points(
        self,
        coordinates: np.ndarray,
        rows: np.ndarray,
        held_out: np.ndarray,
        x_label: str,
        y_label: str,
        title: str = "",
    ) -> None:
        """The scans at (N, 2) `coordinates` (population `rows`; non-finite ones are left
        out); `held_out` (N,) marks the scans predicted by a model that never saw them."""
        coordinates = np.asarray(coordinates, dtype=np.float64)
        finite = np.isfinite(coordinates).all(axis=1)
        self.coordinates = coordinates[finite]
        self.rows = np.asarray(rows, dtype=np.int64)[finite]
        self._held_out = np.asarray(held_out, dtype=bool)[finite]
        self.plot_item.setLabel("bottom", x_label)
        self.plot_item.setLabel("left", y_label)
        self.plot_item.setTitle(title)
        self.groups = {}
        for item in self.group_items.values():
            item.setData([], [])
        self.widget.show()

    def colour_by(self, values: Sequence[Any], categorical: bool, name: str) -> None:
        """Colour the points by one value per population row (`values` indexed by row)."""
        import pyqtgraph as pg

        colours, legend = point_colours(np.asarray(values, dtype=object)[self.rows], categorical)
        test = self._held_out
        self.scatter.setData(
            x=self.coordinates[:, 0],
            y=self.coordinates[:, 1],
            data=self.rows,
            brush=[pg.mkBrush(c) for c in colours],
            size=np.where(test, TEST_SIZE, POINT_SIZE),
            pen=[pg.mkPen("#ffffff", width=1) if t else pg.mkPen(None) for t in test],
            symbol="o",
        )
        self.legend.clear()
        self.legend.setParentItem(self.plot_item.vb)
        for text, colour in legend:
            sample = pg.ScatterPlotItem(size=9, brush=pg.mkBrush(colour), pen=None)
            self.legend.addItem(sample, f"{name} = {text}" if not categorical else text)
        self.legend.addItem(self.highlight_item, "scan in the viewer")
        for group, item in self.group_items.items():
            self.legend.addItem(item, f"group {group}")
        self._show_highlight()

    # ---- the scan shown and the groups -----------------------------------------------------
    def highlight(self, row: int | None) -> None:
        """Ring the point of population row `row` (None, or a row not on the map: no ring)."""
        self.highlighted = None if row is None else int(row)
        self._show_highlight()

    def _show_highlight(self) -> None:
        found = (
            np.flatnonzero(self.rows == self.highlighted) if self.highlighted is not None else []
        )
        if len(found):
            x, y = self.coordinates[found[0]]
            self.highlight_item.setData([x], [y])
        else:
            self.highlight_item.setData([], [])

    def highlighted_position(self) -> tuple[float, float] | None:
        """Where the ring is drawn (None: no ring)."""
        x, y = self.highlight_item.getData()
        return (float(x[0]), float(y[0])) if len(x) else None

    def set_select(self, group: str | None, shape: str = "box") -> None:
        """A left drag draws group `group` ("A"/"B") as a box or a lasso; None: it pans."""
        self.view_box.selecting = group
        self.view_box.drawn_shape = shape

    def select_polygon(self, group: str, polygon: np.ndarray) -> np.ndarray:
        """Make the points inside `polygon` (data coordinates) group `group`; their rows."""
        rows = self.rows[points_inside(self.coordinates, polygon)]
        self.show_group(group, rows)
        if self.on_group is not None:
            self.on_group(group, rows)
        return rows

    def show_group(self, group: str, rows: np.ndarray) -> None:
        """Outline group `group`'s points."""
        rows = np.asarray(rows, dtype=np.int64)
        self.groups[group] = rows
        shown = np.isin(self.rows, rows)
        self.group_items[group].setData(self.coordinates[shown, 0], self.coordinates[shown, 1])

    def _on_shape(self, polygon: np.ndarray) -> None:
        if self.view_box.selecting is not None:
            self.select_polygon(self.view_box.selecting, polygon)

    def _tip(self, x: float, y: float, data: Any) -> str:
        """The hover text of a point: the dock's description of its scan, else its row."""
        row = int(data)
        return self.describe(row) if self.describe is not None else f"scan {row}"

    def _on_scatter_clicked(self, _item: Any, points: Sequence[Any], *_event: Any) -> None:
        """A point was clicked: its population row goes to on_click."""
        if len(points) and self.on_click is not None:
            self.on_click(int(points[0].data()))

    def point_of_row(self, row: int) -> Any:
        """The scatter's point (a pyqtgraph SpotItem) of population row `row`."""
        found = np.flatnonzero(self.rows == int(row))
        if not len(found):
            raise ValueError(f"scan {row} is not on the map")
        return self.scatter.points()[int(found[0])]

    def save_png(self, path: Any) -> None:
        if not self.widget.grab().save(str(path), "PNG"):
            raise OSError(f"{path}: could not write the PNG")
