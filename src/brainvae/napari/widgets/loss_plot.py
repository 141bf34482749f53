"""A live pyqtgraph plot of training and validation losses, updated in place per point."""

from __future__ import annotations

import math
from typing import Any

SERIES = {
    # name: (pen colour, dashed, label)
    "train_loss": ("#f0f0f0", False, "train total"),
    "train_reconstruction": ("#4fc3f7", False, "train reconstruction"),
    "train_kl": ("#ffb74d", False, "train KL"),
    "val_loss": ("#f0f0f0", True, "val total"),
    "val_reconstruction": ("#4fc3f7", True, "val reconstruction"),
    "val_kl": ("#ffb74d", True, "val KL"),
    "batch_loss": ("#888888", False, "batch loss"),
}


FOCUS_MIN_EPOCHS = 3.0
"""From this many epochs on, the y axis leaves out the first tenth of the run (FOCUS_SKIP)."""
FOCUS_SKIP = 0.1


class LossPlot:
    """Loss curves against epoch: each series keeps its points and gets setData, never a redraw.

    batch_loss runs at fractional epochs (epoch - 1 + batch / n_batches), so the plot moves
    within an epoch too. Non-finite or (in log scale) non-positive values are left out. In
    linear scale the y axis follows the later epochs (focus_range) until the user zooms.
    """

    def __init__(self) -> None:
        import pyqtgraph as pg

        from brainvae.training.progress import VALIDATION_NOTE, VALIDATION_TAG

        self.widget = pg.PlotWidget()
        self.widget.setMinimumHeight(220)
        self.widget.setLabel("bottom", "epoch")
        self.widget.setLabel("left", "loss per image")
        self.widget.addLegend(offset=(-10, 10))
        self.widget.showGrid(x=True, y=True, alpha=0.2)
        self.widget.setToolTip(
            f"Dashed: validation losses ({VALIDATION_NOTE}, which samples z). "
            "Solid: training means per epoch; grey: each batch's loss."
        )
        self.points: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in SERIES}
        self.curves: dict[str, Any] = {}
        for name, (colour, dashed, label) in SERIES.items():
            from qtpy.QtCore import Qt

            style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
            width = 1 if name == "batch_loss" else 2
            pen = pg.mkPen(colour, width=width, style=style)
            symbol = None if name == "batch_loss" else "o"
            if name.startswith("val_"):  # scored at z = mu: say so beside the sampled train ones
                label = f"{label} {VALIDATION_TAG}"
            self.curves[name] = self.widget.plot(
                [], [], pen=pen, name=label, symbol=symbol, symbolSize=5, symbolBrush=colour
            )
        self.log = False
        self.focus = True  # y range over the later epochs until the user zooms or pans
        self.widget.getViewBox().sigRangeChangedManually.connect(self._user_moved)

    def add(self, name: str, x: float, y: float | None, draw: bool = True) -> None:
        """Append one point to a series and update that curve only (later, if not draw)."""
        if y is None or not math.isfinite(y):
            return
        xs, ys = self.points[name]
        xs.append(float(x))
        ys.append(float(y))
        if draw:
            self._refresh(name)

    def add_epoch(self, report: Any, draw: bool = True) -> None:
        """The per-epoch means of an EpochReport (validation ones when there are)."""
        for name in SERIES:
            if name != "batch_loss":
                self.add(name, report.epoch, getattr(report, name, None), draw=draw)

    def add_batch(self, report: Any, draw: bool = True) -> None:
        """One optimiser step's loss at its fractional epoch (drawn now, or at the next draw)."""
        x = report.epoch - 1 + report.batch / max(report.n_batches, 1)
        self.add("batch_loss", x, report.loss, draw=draw)

    def draw(self) -> None:
        """Push every series' points to its curve (after adds with draw=False)."""
        for name in SERIES:
            self._refresh(name)
        self._focus_y()

    def focus_range(self) -> tuple[float, float] | None:
        """The y range of the points after the first tenth of the epochs (at least the first
        epoch): the first steps' losses are often orders of magnitude above the rest and
        would flatten every later curve. None when there is too little to cut."""
        every = [(x, y) for xs, ys in self.points.values() for x, y in zip(xs, ys, strict=True)]
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
        for name in SERIES:
            if name in history:
                xs, ys = self.points[name]
                for epoch, value in zip(history["epoch"], history[name], strict=True):
                    if value is not None and math.isfinite(float(value)):
                        xs.append(float(epoch))
                        ys.append(float(value))
                self._refresh(name)
        self._focus_y()

    def set_log(self, log: bool) -> None:
        """Log-scale y axis (losses span orders of magnitude early in training)."""
        self.log = bool(log)
        self.widget.setLogMode(x=False, y=self.log)
        for name in SERIES:
            self._refresh(name)
        self._focus_y()

    def clear(self) -> None:
        """Forget every point."""
        self.focus = True
        for name in SERIES:
            self.points[name] = ([], [])
            self._refresh(name)

    def count(self, name: str) -> int:
        """How many points a series shows."""
        return len(self.points[name][0])

    def _refresh(self, name: str) -> None:
        xs, ys = self.points[name]
        if self.log:
            kept = [(x, y) for x, y in zip(xs, ys, strict=True) if y > 0]
            xs, ys = [x for x, _ in kept], [y for _, y in kept]
        self.curves[name].setData(xs, ys)
