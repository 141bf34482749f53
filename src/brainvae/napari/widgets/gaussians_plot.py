"""The fitted Gaussians of one latent across perturbation weights, for one ROI (the paper's
Figure 3C): one density curve per weight, coloured from the lowest weight to the highest.

The axes say what they show (latent value; probability density, in plain numbers: no
pyqtgraph "x0.001" prefix), the legend lies inside the plot over headroom kept free above
the curves, and the plot stays hidden until it has curves to show.
"""

from __future__ import annotations

import math

import numpy as np

from brainvae.napari.widgets.plot_panel import PlotPanel

LEGEND_COLUMNS = 3  # weights per legend row: five weights take two short rows
HEADROOM_PER_LEGEND_ROW = 0.22  # fraction of the peak density kept free per legend row


class GaussiansPlot(PlotPanel):
    """N(mean_w, variance_w) densities of one latent's codes, a curve per weight w."""

    def __init__(self) -> None:
        super().__init__("Codes across weights", min_height=220, plain_axes=("left", "bottom"))
        self.widget.setLabel("bottom", "latent value")
        self.widget.setLabel("left", "probability density")
        self.legend = self.widget.addLegend(offset=(5, 5), labelTextSize="8pt")
        self.legend.setColumnCount(LEGEND_COLUMNS)
        self.curves: list = []
        self.set_shown(False)

    def show(
        self,
        means: np.ndarray,
        variances: np.ndarray,
        weights: np.ndarray,
        title: str,
        variance_floor: float = 1e-12,
    ) -> None:
        """means, variances, weights: (W,) for one (ROI, latent)."""
        import pyqtgraph as pg

        self.clear()
        means = np.asarray(means, dtype=np.float64)
        sds = np.sqrt(np.maximum(np.asarray(variances, dtype=np.float64), variance_floor))
        low = float(np.min(means - 4 * sds))
        high = float(np.max(means + 4 * sds))
        grid = np.linspace(low, high, 400)
        colours = pg.colormap.get("coolwarm" if "coolwarm" in pg.colormap.listMaps() else "viridis")
        peak = 0.0
        for k, (mean, sd, weight) in enumerate(zip(means, sds, weights, strict=True)):
            density = np.exp(-0.5 * ((grid - mean) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
            peak = max(peak, float(density.max()))
            colour = colours.map(k / max(len(weights) - 1, 1), mode="qcolor")
            self.curves.append(
                self.widget.plot(
                    grid, density, pen=pg.mkPen(colour, width=2), name=f"w = {weight:g}"
                )
            )
        rows = math.ceil(len(self.curves) / LEGEND_COLUMNS)
        headroom = 1.0 + HEADROOM_PER_LEGEND_ROW * (rows + 1)  # the legend sits above the peaks
        self.widget.setXRange(low, high, padding=0.02)
        self.widget.setYRange(0.0, (peak or 1.0) * headroom, padding=0)
        self.widget.setTitle(title)
        self.set_shown(True)

    def legend_inside(self) -> bool:
        """True when the whole legend lies within the plotting area (nothing cut off)."""
        box = self.widget.getViewBox().sceneBoundingRect()
        legend = self.legend.sceneBoundingRect()
        return bool(self.curves) and box.contains(legend)

    def clear_content(self) -> None:
        """No curves and no legend entries."""
        for curve in self.curves:
            self.widget.removeItem(curve)
        self.legend.clear()
        self.curves = []
