"""What the Aging and disease dock shows of a result, beside the layers: the analysis in plain
lines (pairs, each direction's fit and stability, how well the aging position follows age),
an orange warning for every direction that resampling the subjects turns (stability below
directions.STABLE), and a grouped bar plot of each latent's loading on tau_a and each tau_d.

`LongitudinalResults` owns these widgets and fills them from a LongitudinalAnalysis; it knows
nothing of napari.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainvae.napari.widgets.plot_panel import PlotPanel

WARNING_COLOUR = "#ff9800"
DIRECTION_COLOURS = ("#4e79a7", "#e15759", "#59a14f", "#b07aa1", "#edc948", "#76b7b2")
"""tau_a first, then one colour per tau_d (cycled)."""
BAR_SPAN = 0.8
"""Share of the space between two latents that one latent's group of bars takes."""


def stability_warning(name: str, stability: float) -> str | None:
    """A plain sentence when a direction is not stable (or its stability unknown), else None."""
    from brainvae.longitudinal.directions import STABLE

    if not np.isfinite(stability):
        return (
            f"{name}: stability unknown (too few subjects with two visits to split in halves); "
            "read its loadings and trajectory with care."
        )
    if stability >= STABLE:
        return None
    limit = float(np.degrees(np.arccos(STABLE)))
    seen = float(np.degrees(np.arccos(np.clip(stability, -1.0, 1.0))))
    return (
        f"{name} is not stable: resampling the subjects turns it by more than {limit:.0f}\u00b0 "
        f"(two random halves of the subjects give directions with mean cosine {stability:.2f}, "
        f"about {seen:.0f}\u00b0 apart)."
    )


UNSTABLE_NOTE = "An unstable direction's loadings and trajectory may not hold in another sample."


def stability_warnings(directions: Any) -> list[str]:
    """One warning per unstable direction: tau_a, then each tau_d."""
    found = [stability_warning(f"tau_a (aging, from {directions.control})",
                               directions.stability_a)]  # fmt: skip
    for group in directions.tau_d:
        stability = directions.stability_d.get(group, float("nan"))
        found.append(stability_warning(f"tau_d ({group})", stability))
    return [w for w in found if w is not None]


class LoadingsPlot(PlotPanel):
    """Each latent's component of tau_a and of each tau_d: grouped bars, a legend."""

    def __init__(self) -> None:
        super().__init__(
            title="loading of each latent on each direction", min_height=230,
            plain_axes=("left",),
        )  # fmt: skip
        self.widget.setMaximumHeight(330)
        self.widget.setLabel("left", "loading (unit vector)")
        self.legend = self.widget.addLegend(offset=(-10, 10))
        self.bars: dict[str, Any] = {}  # column of the loadings table -> its BarGraphItem
        self.set_shown(False)

    def show_loadings(self, loadings: Any) -> None:
        """`loadings`: latent x direction table (LongitudinalAnalysis.loadings())."""
        import pyqtgraph as pg

        self.clear_content()
        latents = np.arange(len(loadings.index), dtype=float)
        width = BAR_SPAN / max(len(loadings.columns), 1)
        for number, column in enumerate(loadings.columns):
            colour = DIRECTION_COLOURS[number % len(DIRECTION_COLOURS)]
            offset = (number - (len(loadings.columns) - 1) / 2) * width
            bars = pg.BarGraphItem(
                x=latents + offset, height=loadings[column].to_numpy(dtype=float),
                width=width, brush=pg.mkBrush(colour), pen=None, name=str(column),
            )  # fmt: skip
            self.widget.addItem(bars)  # named: the plot's legend lists it
            self.bars[str(column)] = bars
        axis = self.widget.getAxis("bottom")
        axis.setTicks([[(float(i), str(name)) for i, name in enumerate(loadings.index)]])
        self.widget.addLine(y=0, pen=pg.mkPen("#888888", width=1))
        self.widget.setXRange(-0.6, len(latents) - 0.4, padding=0)
        self.set_shown(len(latents) > 0)

    def heights(self, column: str) -> np.ndarray:
        """The bar heights drawn for one direction (what a user reads)."""
        return np.asarray(self.bars[column].opts["height"], dtype=float)

    def clear_content(self) -> None:
        self.widget.clear()
        self.legend.clear()
        self.bars = {}


class LongitudinalResults:
    """The result widgets, added to a dock's layout in reading order."""

    def __init__(self, layout: Any) -> None:
        from magicgui.widgets import Label

        from brainvae.napari.widgets.dock_base import wrapping

        self.summary = wrapping(Label(value=""))
        self.warnings = wrapping(Label(value=""))
        self.warnings.native.setStyleSheet(f"color: {WARNING_COLOUR};")
        self.loadings = LoadingsPlot()
        for widget in (self.summary.native, self.warnings.native, self.loadings.widget):
            layout.addWidget(widget)
        self.clear()

    def clear(self) -> None:
        for label in (self.summary, self.warnings):
            label.value = ""
            label.visible = False
        self.loadings.clear()

    def show(self, analysis: Any) -> None:
        """Fill every widget from one LongitudinalAnalysis."""
        self.clear()
        self.summary.value = "\n".join(analysis.describe())
        self.summary.visible = True
        warnings = stability_warnings(analysis.directions)
        if warnings:
            lines = [f"\u26a0 {w}" for w in warnings] + [UNSTABLE_NOTE]
            self.warnings.value = "\n".join(lines)
            self.warnings.visible = True
        self.loadings.show_loadings(analysis.loadings())
