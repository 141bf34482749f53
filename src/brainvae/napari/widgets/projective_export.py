"""The projective fields dock's exports: the run's folder (as `brainvae projective` writes it,
plus the two heatmaps as PNG) and the publication figure (brainvae.figures.projective_figure),
drawn in a napari worker so the dock stays responsive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from brainvae.napari.widgets.paths import optional_path
from brainvae.napari.widgets.projective_layers import COLOUR_LAYER

FIGURE_SLICES = (("each latent's largest variance", "largest"), ("through the cursor", "cursor"))
FIGURE_LATENTS = (("every swept latent", "all"), ("the shown latent", "shown"))


def export_form() -> tuple[Any, ...]:
    """The dock's export widgets: figure file, figure of, figure slices, the figure button,
    export folder and the folder button."""
    from magicgui.widgets import ComboBox, FileEdit, PushButton

    figure_file = FileEdit(
        label="figure file", mode="w", filter="*.png *.pdf *.svg",
        tooltip="PNG at 300 dpi, or PDF / SVG (vector text) by the suffix; 180 mm wide",
    )  # fmt: skip
    figure_latents = ComboBox(label="figure of", choices=FIGURE_LATENTS, value="all")
    figure_slices = ComboBox(
        label="figure slices", choices=FIGURE_SLICES, value="largest",
        tooltip="3D results: the axial, coronal and sagittal slices drawn per latent, through "
        "each latent's largest variance or through the point last pointed at on the canvas",
    )  # fmt: skip
    figure_button = PushButton(text="Export figure...")
    export_folder = FileEdit(label="export to", mode="d")
    export_button = PushButton(text="Export maps (NIfTI), figure (PNG), matrix (CSV)")
    return figure_file, figure_latents, figure_slices, figure_button, export_folder, export_button


class ProjectiveExports:
    """Writes the dock's last sweep: its folder, or its figure in a worker (one at a time)."""

    def __init__(self, dock: Any) -> None:
        """dock: the ProjectiveFieldWidget (its last run, form and status)."""
        self._dock = dock
        self.worker: Any = None  # the figure being drawn, else None

    def export(self, folder: str | Path | None = None) -> Path | None:
        """Write the last sweep into FOLDER/projective_fields as `brainvae projective` does:
        band maps and colour composites as NIfTI on the population's grid, the montage PNG,
        projective.csv and summary.json; plus the two heatmaps as PNG. Replaced whole."""
        from brainvae.exports.projective_folder import write_projective_results
        from brainvae.napari.widgets.analysis_inputs import population_grid

        dock = self._dock
        chosen = dock.export_destination(folder)
        if chosen is None:
            return None
        target = chosen / "projective_fields"
        run = dock.last_run
        try:
            affine, squeezed = population_grid(dock._population_layer())
            write_projective_results(
                target,
                run.result,
                run.colour,
                run.limits,
                run.scheme,
                affine,
                squeezed,
                matrix=run.matrix,
                roi_names=run.roi_names,
                extra={"population": dock.population.value},
                overwrite=True,
                also=dock.heatmaps.save_pngs,
                limits_mode=run.limits_mode,
                activity=run.activity,
                asymmetry=run.asymmetry,
                mean_image=run.mean_image,
            )
        except Exception as err:  # noqa: BLE001 - a full disk or a read-only folder
            dock.fail(err)
            return None
        dock.status.value = f"Saved maps, montage and tables in {target}"
        return target

    def figure_options(self) -> dict[str, Any]:
        """What projective_figure draws from the last result: which latents, which slices
        (None: each latent's largest variance), over the mean brain on the population's grid."""
        from brainvae.napari.widgets.analysis_inputs import population_grid

        dock = self._dock
        run = dock.last_run
        affine, squeezed = population_grid(dock._population_layer())
        latents = None
        if dock.figure_latents.value == "shown":
            latents = [int(dock.shown.value)]
        slices = None
        if dock.figure_slices.value == "cursor" and len(run.result.spatial_shape) == 3:
            slices = self.cursor_slices()
        return {
            "scheme": run.scheme,
            "limits_mode": run.limits_mode,
            "mean_image": run.mean_image,
            "affine": affine,
            "squeezed_axes": squeezed,
            "active": run.active,
            "slices": slices,
            "latents": latents,
        }

    def cursor_slices(self) -> tuple[int, ...]:
        """The grid indices of the point last pointed at (clipped into the grid)."""
        viewer = self._dock._viewer
        shape = self._dock.last_run.result.spatial_shape
        layer = viewer.layers[COLOUR_LAYER] if COLOUR_LAYER in viewer.layers else None
        if layer is None:
            raise ValueError("the colour map is not shown: run again to pick slices there")
        position = np.asarray(layer.world_to_data(viewer.cursor.position))
        index = np.round(position[-len(shape) :]).astype(int)
        return tuple(int(np.clip(i, 0, n - 1)) for i, n in zip(index, shape, strict=True))

    def export_figure(self, path: str | Path | None = None) -> Any:
        """Write the publication figure of the last result (PNG at 300 dpi, PDF or SVG by the
        suffix) in a worker; returns the worker (None when nothing could start)."""
        from napari.qt.threading import create_worker

        from brainvae.exports.figures import save_projective_figure
        from brainvae.figures.projective_figure import FIGURE_SUFFIXES

        dock = self._dock
        if dock.last_run is None:
            dock.fail(ValueError("run the analysis first"))
            return None
        if self.worker is not None:
            return None
        chosen = optional_path(path if path is not None else dock.figure_file.value)
        if chosen is None or chosen.is_dir():
            dock.fail(ValueError("choose a figure file (.png, .pdf or .svg) first"))
            return None
        if chosen.suffix.lower() not in FIGURE_SUFFIXES:
            chosen = chosen.with_suffix(".png")
        run = dock.last_run
        try:
            options = self.figure_options()
        except Exception as err:  # noqa: BLE001 - no population, or no colour layer
            dock.fail(err)
            return None
        dock.figure_button.enabled = False
        dock.status.value = f"Drawing the figure into {chosen}..."
        self.worker = create_worker(
            save_projective_figure,
            chosen,
            run.result,
            run.colour,
            run.limits,
            **options,
            _connect={
                "returned": self._saved,
                "errored": dock.fail,
                "finished": self._finished,
            },
        )
        return self.worker

    def _saved(self, path: Path) -> None:
        if not self._dock._closed:
            self._dock.status.value = f"Saved the figure {path}"

    def _finished(self) -> None:
        self.worker = None
        if not self._dock._closed:
            self._dock.figure_button.enabled = True

    def quit(self) -> None:
        """The dock closes: stop drawing."""
        if self.worker is not None:
            self.worker.quit()
