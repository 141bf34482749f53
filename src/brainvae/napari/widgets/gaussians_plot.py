"""The fitted Gaussians of one latent across perturbation weights, for one ROI (the paper's
Figure 3C): one density curve per weight, coloured from the lowest weight to the highest."""

from __future__ import annotations

import numpy as np


class GaussiansPlot:
    """N(mean_w, variance_w) densities of one latent's codes, a curve per weight w."""

    def __init__(self) -> None:
        import pyqtgraph as pg

        self.widget = pg.PlotWidget(title="Codes across weights")
        self.widget.setMinimumHeight(180)
        self.widget.setLabel("bottom", "latent value")
        self.widget.setLabel("left", "density")
        self.legend = self.widget.addLegend(offset=(-10, 10))
        self.curves: list = []

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
        for k, (mean, sd, weight) in enumerate(zip(means, sds, weights, strict=True)):
            density = np.exp(-0.5 * ((grid - mean) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
            colour = colours.map(k / max(len(weights) - 1, 1), mode="qcolor")
            self.curves.append(
                self.widget.plot(
                    grid, density, pen=pg.mkPen(colour, width=2), name=f"w = {weight:g}"
                )
            )
        self.widget.setTitle(title)

    def clear(self) -> None:
        for curve in self.curves:
            self.widget.removeItem(curve)
        self.legend.clear()
        self.curves = []

    def save_png(self, path) -> None:
        if not self.widget.grab().save(str(path), "PNG"):
            raise OSError(f"{path}: could not write the PNG")
