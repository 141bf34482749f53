"""A live pyqtgraph plot of training and validation losses, updated in place per point.

Until the first point it shows a sentence saying what will appear, not empty axes. The axes
name their units (x: optimiser steps or epochs, as the run is counted; y: the loss per image,
in nats for a likelihood), and pyqtgraph's SI-prefix rescaling is off, so a tick reads as the
number in the run's history.csv. The active-latent count of each epoch has its own axis on
the right. The legend sits inside the plot's top-right corner and explains the encoding
(colour: loss term; dashed: validation; thin grey: each step) in a few lines.
"""

from __future__ import annotations

import math
from typing import Any

from brainvae.napari.widgets.plot_panel import PlotPanel

SERIES = {
    # name: (pen colour, dashed, what it is)
    "train_loss": ("#f0f0f0", False, "training total"),
    "train_reconstruction": ("#4fc3f7", False, "training reconstruction"),
    "train_kl": ("#ffb74d", False, "training KL"),
    "val_loss": ("#f0f0f0", True, "validation total"),
    "val_reconstruction": ("#4fc3f7", True, "validation reconstruction"),
    "val_kl": ("#ffb74d", True, "validation KL"),
    "batch_loss": ("#888888", False, "each step's total"),
}
ACTIVE = "active_units"
"""The series of active-latent counts (one per epoch), drawn against the right-hand axis."""
ACTIVE_COLOUR = "#81c784"
X_UNITS = {"steps": "optimiser step", "epochs": "epoch"}
MIN_HEIGHT = 150
"""Pixels: the plot's least height; it grows with the dock."""

FOCUS_MIN_EPOCHS = 3.0
"""From this many epochs on, the y axis leaves out the first tenth of the run (FOCUS_SKIP)."""
FOCUS_SKIP = 0.1


def loss_axis_label(
    likelihood: str, gaussian_sigma: float | None, learn_sigma: bool = False
) -> str:
    """The y axis title for a model's loss: every loss term is summed over voxels and
    averaged over images; a likelihood (Bernoulli, Gaussian with a sigma) gives nats, a
    Gaussian without a sigma a plain squared error (plus the KL in nats)."""
    if likelihood == "gaussian" and gaussian_sigma is None and not learn_sigma:
        return "loss per image (squared error + KL)"
    return "loss per image (nats)"


class LossPlot(PlotPanel):
    """Loss curves against optimiser steps or epochs; each series keeps its points and gets
    setData, never a redraw.

    Every point is kept at both its epoch (batch_loss at epoch - 1 + batch / n_batches) and
    its optimiser step, so the x unit can change without losing points. Non-finite or (in
    log scale) non-positive values are left out. In linear scale the y axis follows the later
    epochs (focus_range) until the user zooms. `panel` is the widget to place: the plot, or
    a placeholder sentence until there is a point to draw.
    """

    def __init__(self) -> None:
        import pyqtgraph as pg
        from qtpy.QtCore import Qt

        from brainvae.training.progress import VALIDATION_NOTE

        # zoomable (a long run's curves are explored); ticks read as history.csv's numbers
        super().__init__(
            min_height=MIN_HEIGHT,
            zoomable=True,
            plain_axes=("left", "bottom", "right"),
            grows=True,
            placeholder=True,
        )
        self.widget.showGrid(x=True, y=True, alpha=0.2)
        item = self.widget.getPlotItem()
        self.widget.setToolTip(
            f"Dashed: validation losses ({VALIDATION_NOTE}, which samples z). "
            "Solid: training means per epoch; thin grey: each optimiser step's loss. "
            "Green, right axis: latents active after each epoch. Losses are per image, "
            "summed over voxels."
        )
        # every series' points as (epoch, optimiser step, value)
        self.points: dict[str, list[tuple[float, float, float]]] = {
            name: [] for name in (*SERIES, ACTIVE)
        }
        self.curves: dict[str, Any] = {}
        for name, (colour, dashed, _label) in SERIES.items():
            style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
            width = 1 if name == "batch_loss" else 2
            pen = pg.mkPen(colour, width=width, style=style)
            symbol = None if name == "batch_loss" else "o"
            self.curves[name] = self.widget.plot(
                [], [], pen=pen, symbol=symbol, symbolSize=5, symbolBrush=colour
            )
        self._add_active_axis(pg, item)
        # two columns, three rows: the legend fits the plot's least height
        self.legend = pg.LegendItem(
            offset=(-4, 4), brush=(20, 20, 20, 190), labelTextSize="8pt", colCount=2
        )
        self.legend.setParentItem(item.getViewBox())  # inside the plot area, top right
        self._legend_entries = self._legend_keys(pg)
        self._legend_shown: tuple[str, ...] = ()
        self.x_unit = "epochs"
        self.y_label = "loss per image (nats)"
        self.latent_dim: int | None = None
        self._placeholder_text: str | None = None
        self.steps_per_epoch: int | None = None
        self.log = False
        self.focus = True  # y range over the later epochs until the user zooms or pans
        self.widget.getViewBox().sigRangeChangedManually.connect(self._user_moved)
        self._label_axes()
        self.set_shown(False)

    # ---- set-up ----------------------------------------------------------
    def _add_active_axis(self, pg: Any, item: Any) -> None:
        """A second view under the loss view (so the mouse zooms the losses), sharing its x
        axis, for the active-latent counts against the right-hand axis."""
        item.showAxis("right")
        self.active_view = pg.ViewBox(enableMouse=False)
        item.scene().addItem(self.active_view)
        item.getAxis("right").linkToView(self.active_view)
        self.active_view.setXLink(item.getViewBox())
        self.active_view.setZValue(item.zValue() - 1)
        self.active_curve = pg.PlotDataItem(
            [],
            [],
            pen=pg.mkPen(ACTIVE_COLOUR, width=1),
            symbol="s",
            symbolSize=5,
            symbolBrush=ACTIVE_COLOUR,
            symbolPen=None,
        )
        self.active_view.addItem(self.active_curve)
        main = item.getViewBox()

        def follow() -> None:
            self.active_view.setGeometry(main.sceneBoundingRect())

        main.sigResized.connect(follow)
        follow()

    def _legend_keys(self, pg: Any) -> dict[str, tuple[Any, str, tuple[str, ...]]]:
        """Legend entries: (a sample line, its text, the series whose points bring it in)."""
        from qtpy.QtCore import Qt

        from brainvae.training.progress import VALIDATION_TAG

        def sample(colour: str, width: int = 2, dashed: bool = False, symbol: str | None = "o"):
            style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
            return pg.PlotDataItem(
                [], [], pen=pg.mkPen(colour, width=width, style=style), symbol=symbol,
                symbolSize=5, symbolBrush=colour, symbolPen=None,
            )  # fmt: skip

        return {
            "total": (sample("#f0f0f0"), "total", ("train_loss", "val_loss")),
            "reconstruction": (
                sample("#4fc3f7"),
                "reconstruction",
                ("train_reconstruction", "val_reconstruction"),
            ),  # fmt: skip
            "kl": (sample("#ffb74d"), "KL", ("train_kl", "val_kl")),
            "validation": (
                sample("#bbbbbb", dashed=True, symbol=None),
                f"validation {VALIDATION_TAG}",
                ("val_loss", "val_reconstruction", "val_kl"),
            ),
            "batch": (sample("#888888", width=1, symbol=None), "each step", ("batch_loss",)),
            "active": (sample(ACTIVE_COLOUR, width=1, symbol="s"), "active latents", (ACTIVE,)),
        }

    def set_axes(
        self, x_unit: str, y_label: str | None = None, latent_dim: int | None = None
    ) -> None:
        """Count the run in "steps" or "epochs"; name the loss's unit; the active-latent
        axis spans 0 to latent_dim."""
        if x_unit not in X_UNITS:
            raise ValueError(f"x_unit must be one of {', '.join(X_UNITS)}, got {x_unit!r}")
        self.x_unit = x_unit
        if y_label is not None:
            self.y_label = y_label
        if latent_dim is not None:
            self.latent_dim = int(latent_dim)
        self._label_axes()
        self.draw()

    def set_placeholder(self, text: str | None) -> None:
        """What to say before the first point (None: what the plot will show)."""
        self._placeholder_text = text
        self._label_axes()

    def _label_axes(self) -> None:
        self.widget.setLabel("bottom", X_UNITS[self.x_unit])
        self.widget.setLabel("left", self.y_label)
        self.widget.setLabel("right", "active latents")
        self.placeholder.setText(
            self._placeholder_text
            or f"The loss curves appear here once training starts: the {self.y_label} "
            f"against the {X_UNITS[self.x_unit]}, with the latents active after each epoch."
        )
        self._range_active()

    def _range_active(self) -> None:
        """The right axis spans 0 to the number of latents (whole numbers only)."""
        counts = [value for _, _, value in self.points.get(ACTIVE, [])]
        top = max([self.latent_dim or 0, *counts, 1])
        self.active_view.setYRange(0, top, padding=0.05)
        step = max(1, math.ceil(top / 4))
        self.widget.getPlotItem().getAxis("right").setTickSpacing(step, step)

    # ---- points ----------------------------------------------------------
    def add(
        self, name: str, x: float, y: float | None, draw: bool = True, step: float | None = None
    ) -> None:
        """Append one point (x in epochs; step: the optimiser step, when known) to a series
        and update that curve only (later, if not draw)."""
        if y is None or not math.isfinite(y):
            return
        if step is None and self.steps_per_epoch is not None:
            step = x * self.steps_per_epoch
        self.points[name].append((float(x), math.nan if step is None else float(step), float(y)))
        if draw:
            self._refresh(name)
            self._update_legend()
            self.set_shown(True)

    def add_epoch(self, report: Any, draw: bool = True) -> None:
        """The per-epoch means of an EpochReport (validation ones when there are) and its
        active-latent count."""
        for name in SERIES:
            if name != "batch_loss":
                self.add(name, report.epoch, getattr(report, name, None), draw=draw)
        active = getattr(report, ACTIVE, None)
        if active is not None:
            self.add(ACTIVE, report.epoch, float(active), draw=draw)

    def add_batch(self, report: Any, draw: bool = True) -> None:
        """One optimiser step's loss at its fractional epoch and its step (drawn now, or at
        the next draw)."""
        n_batches = max(report.n_batches, 1)
        self.steps_per_epoch = n_batches
        x = report.epoch - 1 + report.batch / n_batches
        step = (report.epoch - 1) * n_batches + report.batch
        self.add("batch_loss", x, report.loss, draw=draw, step=step)

    def draw(self) -> None:
        """Push every series' points to its curve (after adds with draw=False)."""
        for name in (*SERIES, ACTIVE):
            self._refresh(name)
        self._update_legend()
        self._range_active()
        self._focus_y()
        self.set_shown(self.has_points)

    @property
    def has_points(self) -> bool:
        """Whether any series has a point (the plot shows curves, not the placeholder)."""
        return any(self.points[name] for name in (*SERIES, ACTIVE))

    @property
    def showing_curves(self) -> bool:
        """Whether the curves are shown (else the placeholder sentence)."""
        return self.shown

    def focus_range(self) -> tuple[float, float] | None:
        """The y range of the points after the first tenth of the epochs (at least the first
        epoch): the first steps' losses are often orders of magnitude above the rest and
        would flatten every later curve. None when there is too little to cut."""
        every = [(epoch, y) for name in SERIES for epoch, _, y in self.points[name]]
        if not every:
            return None
        last = max(x for x, _ in every)
        if last < FOCUS_MIN_EPOCHS:
            return None
        cut = max(1.0, FOCUS_SKIP * last)
        kept = [y for x, y in every if x > cut and (y > 0 or not self.log)]
        if not kept:
            return None
        return min(kept), max(kept)

    def _focus_y(self) -> None:
        span = self.focus_range() if self.focus and not self.log else None
        if span is None:
            self.widget.enableAutoRange(y=True)
            return
        low, high = span
        pad = 0.05 * (high - low) or 0.05 * abs(high) or 1.0
        self.widget.setYRange(low - pad, high + pad, padding=0)

    def _user_moved(self, *_args) -> None:
        self.focus = False  # the user's zoom wins from now on (until clear())

    def load_history(self, history: Any) -> None:
        """Replace the curves by a run's history.csv (a pandas DataFrame)."""
        self.clear()
        epochs = [float(epoch) for epoch in history["epoch"]]
        steps = [float(step) for step in history["step"]] if "step" in history else []
        steps = steps or [math.nan] * len(epochs)
        if epochs and epochs[0] > 0 and math.isfinite(steps[0]):
            self.steps_per_epoch = round(steps[0] / epochs[0])
        for name in (*SERIES, ACTIVE):
            if name not in history:
                continue
            for epoch, step, value in zip(epochs, steps, history[name], strict=True):
                if value is not None and math.isfinite(float(value)):
                    known = step if math.isfinite(step) else None
                    self.add(name, epoch, float(value), draw=False, step=known)
        self.draw()

    def set_log(self, log: bool) -> None:
        """Log-scale y axis (losses span orders of magnitude early in training)."""
        self.log = bool(log)
        self.widget.setLogMode(x=False, y=self.log)
        self.widget.getPlotItem().getAxis("right").setLogMode(False, False)  # counts stay linear
        for name in SERIES:
            self._refresh(name)
        self._focus_y()

    def clear_content(self) -> None:
        """Forget every point (clear() shows the placeholder sentence again)."""
        self.focus = True
        self.steps_per_epoch = None
        for name in self.points:
            self.points[name] = []
            self._refresh(name)
        self._update_legend()

    def count(self, name: str) -> int:
        """How many points a series holds."""
        return len(self.points[name])

    def legend_texts(self) -> list[str]:
        """The legend's lines, top to bottom."""
        return [label.text for _, label in self.legend.items]

    def _refresh(self, name: str) -> None:
        column = 0 if self.x_unit == "epochs" else 1
        kept = [
            (point[column], point[2])
            for point in self.points[name]
            if math.isfinite(point[column]) and (point[2] > 0 or not self.log or name == ACTIVE)
        ]
        curve = self.active_curve if name == ACTIVE else self.curves[name]
        curve.setData([x for x, _ in kept], [y for _, y in kept])

    def _update_legend(self) -> None:
        """List the entries whose series have points, in a fixed order."""
        shown = tuple(
            key
            for key, (_, _, series) in self._legend_entries.items()
            if any(self.points[name] for name in series)
        )
        if shown == self._legend_shown:
            return
        self.legend.clear()
        for key in shown:
            sample, text, _ = self._legend_entries[key]
            self.legend.addItem(sample, text)
        for sample, _label in self.legend.items:  # a click would hide nothing on the plot
            from qtpy.QtCore import Qt

            sample.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._legend_shown = shown
