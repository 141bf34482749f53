"""A sweep report's metric in the Evaluation dock: one pyqtgraph plot of the chosen metric
against L (one line per beta) or against beta (one line per L), each series' inflection
ringed (brainvae.evaluation.sweep_report's rule, as `brainvae sweep-report` draws it: a ring
where the series levels off, a square on the last point when it still improves at the grid's
end). The metric and the axis are chosen in two combo boxes; knows nothing of napari."""

from __future__ import annotations

from typing import Any

import numpy as np
from magicgui.widgets import ComboBox

from brainvae.napari.widgets.plot_panel import PlotPanel

SERIES_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2")
AXIS_WORDS = {"latent_dim": "latent size L", "beta": "beta"}
SERIES_WORDS = {"latent_dim": "beta = {:g}", "beta": "L = {:g}"}
RING_SIZE = 18


def log_axis(values: np.ndarray) -> bool:
    """A log axis when every value is positive and they span a factor of 4 or more (the
    report's figures' rule)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return bool(len(values) and values.min() > 0 and values.max() / values.min() >= 4)


class SweepPlot(PlotPanel):
    """The chosen metric of a SweepTable against L or beta, inflections ringed."""

    def __init__(self) -> None:
        super().__init__(min_height=240, plain_axes=("left", "bottom"))
        self.widget.setMaximumHeight(360)
        self.legend = self.widget.addLegend(offset=(-10, 10))
        self.metric = ComboBox(label="metric", choices=[], tooltip="the sweep's metric to draw")
        self.along = ComboBox(label="against", choices=[],
                              tooltip="L with a line per beta, or beta with a line per L")  # fmt: skip
        self.sweep: Any = None
        self.series: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self.rings: dict[float, tuple[float, float, bool]] = {}
        self.metric.visible = self.along.visible = False  # until a sweep is shown
        self.metric.changed.connect(lambda *_: self.draw())
        self.along.changed.connect(lambda *_: self.draw())
        self.set_shown(False)

    def show_sweep(self, sweep: Any) -> None:
        """A gathered sweep (sweep_report.SweepTable): its metrics and axes offered, the first
        metric drawn against L."""
        from brainvae.evaluation.sweep_report import METRICS

        self.sweep = None  # no drawing while the choices change
        metrics = sweep.metrics()
        axes = sweep.axes() or ["latent_dim"]
        self.metric.choices = [(METRICS[m].label, m) for m in metrics]
        self.along.choices = [(AXIS_WORDS[a], a) for a in axes]
        self.sweep = sweep
        self.metric.visible = self.along.visible = True
        if metrics:
            self.metric.value = metrics[0]
        self.along.value = axes[0]
        self.draw()

    def draw(self) -> None:
        """Draw the chosen metric (nothing before a sweep is shown)."""
        import pyqtgraph as pg

        from brainvae.evaluation.sweep_report import METRICS

        self.clear_content()
        sweep, metric, along = self.sweep, self.metric.value, self.along.value
        if sweep is None or metric is None or along is None:
            self.set_shown(False)
            return
        self.series = sweep.series(metric, along)
        points = sweep.inflection(metric, along)
        grid = np.asarray(sweep.latents if along == "latent_dim" else sweep.betas, dtype=float)
        logarithmic = log_axis(grid)
        self.widget.setLogMode(x=logarithmic, y=False)
        for number, (key, (x, y)) in enumerate(self.series.items()):
            colour = SERIES_COLOURS[number % len(SERIES_COLOURS)]
            keep = np.isfinite(y)
            self.widget.plot(
                x[keep], y[keep], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=7,
                symbolBrush=colour, symbolPen=None, name=SERIES_WORDS[along].format(key),
            )  # fmt: skip
            point = points.get(key)
            if point is not None and point.x is not None:
                at = float(y[np.flatnonzero(x == point.x)[0]])
                self.rings[key] = (float(point.x), at, bool(point.plateau_reached))
                self.widget.plot(
                    [point.x], [at], pen=None, symbol="o" if point.plateau_reached else "s",
                    symbolSize=RING_SIZE, symbolBrush=None, symbolPen=pg.mkPen(colour, width=2),
                )  # fmt: skip
        ticks = [(float(np.log10(v)) if logarithmic else float(v), f"{v:g}") for v in grid]
        self.widget.getAxis("bottom").setTicks([ticks])
        found = METRICS.get(metric)
        better = {True: " (higher is better)", False: " (lower is better)"}.get(
            None if found is None else found.higher_is_better, ""
        )
        self.widget.setLabel("left", (found.label if found else metric) + better)
        self.widget.setLabel("bottom", AXIS_WORDS[along])
        self.set_shown(bool(self.series))

    def clear_content(self) -> None:
        self.widget.clear()
        self.legend.clear()
        self.series, self.rings = {}, {}
