"""The projective fields dock's two heatmaps side by side: the ROI x latent enrichment of the
sweep, and the receptive impact per ROI voxel on the same ROIs (when the viewer holds a
receptive field of the same model), with where the two fields disagree in words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from brainvae.napari.widgets.heatmap import Heatmap

NO_RECEPTIVE = "Run the Receptive fields dock with the same model and ROIs to compare both fields."


class FieldHeatmaps:
    """Enrichment (left) and receptive impact (right); a click on a cell calls on_click(row,
    latent index among the swept ones)."""

    def __init__(self, on_click: Callable[[int, int], None]) -> None:
        from qtpy.QtWidgets import QHBoxLayout, QWidget

        self.projective_plot = Heatmap("Projective (enrichment)")
        self.receptive_plot = Heatmap("Receptive (KL/voxel, scaled)")
        self.widget = QWidget()
        row = QHBoxLayout(self.widget)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.projective_plot.widget)
        row.addWidget(self.receptive_plot.widget)
        self.projective_plot.on_click = on_click
        self.receptive_plot.on_click = on_click

    def show_projective(self, run: Any) -> None:
        """The sweep's enrichment matrix, inactive latents greyed."""
        self.projective_plot.set_matrix(
            run.matrix, run.roi_names, run.result.latent_names, inactive_columns=~run.active
        )

    def show_receptive(self, run: Any, receptive: Any) -> str:
        """The receptive impact per ROI voxel on the same ROIs beside the enrichment, and where
        the two fields disagree (rank correlation over ROIs, active latents only); the
        sentence to add to the status."""
        from brainvae.analysis.projective_maps import field_agreement

        if receptive is None or tuple(receptive.roi_names) != tuple(run.roi_names):
            self.receptive_plot.clear()
            return NO_RECEPTIVE
        latents = run.result.latents
        impact = receptive.impact[:, latents]
        per_voxel = receptive.impact_per_voxel[:, latents]
        # each latent's impact per ROI voxel scaled to its largest: the profile the agreement
        # ranks (raw KLs grow with ROI size, so the cortex row would hide the rest); hover:
        # the KL per voxel
        peak = np.max(np.abs(per_voxel), axis=0, keepdims=True)
        scaled = np.divide(per_voxel, peak, out=np.zeros_like(per_voxel), where=peak > 0)
        self.receptive_plot.set_matrix(
            scaled, receptive.roi_names, run.result.latent_names, inactive_columns=~run.active
        )
        self.receptive_plot.raw = per_voxel
        if len(run.roi_names) < 3:
            return "Comparing the fields needs at least 3 ROIs."
        agreement = field_agreement(run.matrix, impact, receptive.roi_sizes, active=run.active)
        names = run.result.latent_names
        flagged = [
            f"{names[k]} (rho {agreement.rho[k]:.2f})" for k in np.flatnonzero(agreement.disagree)
        ]
        text = (
            "Receptive (impact per ROI voxel) and projective fields disagree for: "
            + ", ".join(flagged)
            + "."
            if flagged
            else "Receptive (impact per ROI voxel) and projective fields agree for every active "
            "latent."
        )
        if agreement.inactive.any():
            skipped = ", ".join(names[k] for k in np.flatnonzero(agreement.inactive))
            text += f" Not compared (inactive): {skipped}."
        return text

    def save_pngs(self, folder: Any) -> None:
        """projective.png, and receptive_impact.png when a receptive field is shown."""
        self.projective_plot.save_png(folder / "projective.png")
        if self.receptive_plot.matrix.size:
            self.receptive_plot.save_png(folder / "receptive_impact.png")
