"""The receptive fields dock's plots: the ROI x latent impact heatmap (inactive latents greyed;
per ROI voxel, raw KL, or each row scaled), the latent x latent covariance over the same
latents, and one (ROI, latent)'s Gaussians across the weights.

With many latents (256) the heatmaps show those with the largest impact (32 by default) or
all of them in a sideways-scrolling plot; `shown_latents` maps each column back to its latent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainvae.napari.widgets.gaussians_plot import GaussiansPlot
from brainvae.napari.widgets.heatmap import Heatmap, top_columns

DEFAULT_LATENTS_SHOWN = 32
"""Latents the heatmaps show by default: the largest impacts; more make unreadable columns in
a dock (all of them scroll sideways when asked)."""
IMPACT_VIEWS = (
    ("KL per ROI voxel (what separation scores)", "per_voxel"),
    ("raw KL (nats)", "raw"),
    ("each ROI's row scaled to its largest", "row_scaled"),
)
IMPACT_TITLE = "Impact (KL) of each ROI on each latent"
COVARIANCE_TITLE = "Covariance A of the latents' impact profiles"
MIN_CELL_WIDTH = 14  # pixels per column when every latent is shown (the plot scrolls)


def impact_shown(result: Any, view: str) -> np.ndarray:
    """The impact matrix as chosen: per ROI voxel, raw KL, or each row scaled to 1."""
    shown = result.impact_per_voxel if view == "per_voxel" else result.impact
    if view == "row_scaled":
        peak = np.max(np.abs(shown), axis=1, keepdims=True)
        shown = np.divide(shown, peak, out=np.zeros_like(shown), where=peak > 0)
    return shown


class ReceptivePlots:
    """The impact and covariance heatmaps and the Gaussians plot, stacked in `layout`."""

    def __init__(self, layout: Any) -> None:
        self.impact_plot = Heatmap(IMPACT_TITLE, row_name="ROI", column_name="latent")
        self.covariance_plot = Heatmap(
            COVARIANCE_TITLE,
            colormap="CET-D1",
            symmetric=True,
            row_name="latent",
            column_name="latent",
        )
        self.gaussians_plot = GaussiansPlot()
        layout.addWidget(self.impact_plot.scroll_area)
        layout.addWidget(self.covariance_plot.scroll_area)
        layout.addWidget(self.gaussians_plot.widget)
        self.shown_latents = np.zeros(0, dtype=int)  # latent index of each heatmap column

    def show(self, run: Any, view: str, count: int | None) -> None:
        """The impact heatmap (and the covariance) over the latents shown: all (count None),
        else the `count` with the largest shown impact on any ROI, in latent order."""
        result, scores = run.result, run.scores
        values = impact_shown(result, view)
        shown = top_columns(values, count)
        self.shown_latents = shown
        names = [result.latent_names[k] for k in shown]
        inactive = ~np.asarray(result.active)[shown]
        part = (
            ""
            if shown.size == len(result.latent_names)
            else f" ({shown.size} of {len(result.latent_names)} latents: the largest impacts)"
        )
        self.impact_plot.set_title(IMPACT_TITLE + part)
        self.impact_plot.set_matrix(values[:, shown], result.roi_names, names, inactive)
        self.impact_plot.raw = result.impact[:, shown]
        if scores is None:
            self.covariance_plot.clear()
        else:
            self.covariance_plot.set_title(COVARIANCE_TITLE + part)
            self.covariance_plot.set_matrix(
                np.asarray(scores.covariance)[np.ix_(shown, shown)], names, names, inactive
            )
        cell = None
        if count is None:  # every name readable, the plot scrolls sideways
            cell = max(self.impact_plot.label_cell_width() + 6, MIN_CELL_WIDTH)
        self.impact_plot.set_cell_width(cell)
        self.covariance_plot.set_cell_width(cell)

    def show_gaussians(self, result: Any, row: int, latent: int) -> None:
        """The fitted Gaussians of one (ROI, latent) across the weights."""
        self.gaussians_plot.show(
            result.means[row, :, latent],
            result.variances[row, :, latent],
            result.weights,
            f"{result.roi_names[row]}, {result.latent_names[latent]}: "
            f"impact {result.impact[row, latent]:.3g}",
            variance_floor=float(result.variance_floor[latent]),
        )

    def save_pngs(self, folder: Any) -> None:
        """impact.png, covariance.png and gaussians.png, as drawn now."""
        self.impact_plot.save_png(folder / "impact.png")
        self.covariance_plot.save_png(folder / "covariance.png")
        self.gaussians_plot.save_png(folder / "gaussians.png")
