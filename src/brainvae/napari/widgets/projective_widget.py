"""Projective fields dock: sweep each latent and see, over the atlas, where the brain changes.

It only orchestrates: reads the model (the viewer's model in use, or a run folder), the
population (for the base code and each latent's spread) and an ROI labels layer, runs the
sweep in a napari worker (brainvae.analysis.projective_field), and shows one latent's colour
map at a time (projective_layers; in 3D projective_3d), the legend, canvas line and cursor
bands (projective_text), the ROI x latent enrichment beside the receptive impact per ROI voxel
when the viewer holds a receptive field of the same model on the same ROIs
(projective_heatmaps), and writes the run's folder or its publication figure
(projective_export).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Label, Slider

from brainvae.napari.layer_roles import population_of
from brainvae.napari.widgets import projective_inputs as inputs
from brainvae.napari.widgets import projective_text as text
from brainvae.napari.widgets.analysis_dock import AnalysisDock
from brainvae.napari.widgets.analysis_inputs import labels_layer_names, spatial_placement
from brainvae.napari.widgets.projective_3d import (
    FLOOR_3D,
    ROI_SURFACE_LAYER,
    SURFACE_LAYERS,
    Projective3DView,
    faded_for_3d,
)
from brainvae.napari.widgets.projective_export import ProjectiveExports, export_form
from brainvae.napari.widgets.projective_heatmaps import FieldHeatmaps
from brainvae.napari.widgets.projective_layers import (
    COLOUR_LAYER,
    OUTLINE_LAYER,
    UNDERLAY_LAYER,
    ProjectiveLayers,
    bands_at,
    outlined_labels,
    outlined_row,
)

if TYPE_CHECKING:
    import napari


class ProjectiveFieldWidget(AnalysisDock):
    """Sweep latents one at a time and overlay where the decoded brain changes."""

    STATE_FIELD = "projective"

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        from brainvae.analysis.projective_colour import DEFAULT_COLOUR_LIMITS

        super().__init__(napari_viewer, "Choose latents and press Run.")
        self._rois: np.ndarray | None = None  # the labels the last run's matrix used
        self._model: Any = None  # the last run's model (a receptive result must share it)
        self._pending: tuple[dict[str, Any], np.ndarray | None, Any] = ({}, None, None)
        # a receptive field run after this sweep is compared with it at once
        self._state.events.receptive.connect(self._on_receptive_published)
        self.layers_shown = ProjectiveLayers(self._viewer)
        self.view_3d = Projective3DView(self._viewer, self.layers_shown)
        self.exports = ProjectiveExports(self)

        (
            self.latents, self.base, self.preset, self.low, self.high, self.step, self.split,
            self.units,
        ) = inputs.sweep_form(self._base_choices)  # fmt: skip
        self.scheme = ComboBox(
            label="colours", choices=inputs.SCHEMES, value="paper",
            tooltip="paper (Fig. 3A): cyan = small positive c, magenta = small negative c, "
            "yellow = large |c|; rgb: green = small positive, red = small negative, blue = large",
        )  # fmt: skip
        self.limits = ComboBox(
            label="colour limits", choices=inputs.LIMIT_CHOICES, value=DEFAULT_COLOUR_LIMITS
        )
        self.legend = Label(label="legend", value="")
        self.legend.native.setWordWrap(True)
        from qtpy.QtCore import Qt

        self.legend.native.setTextFormat(Qt.TextFormat.RichText)  # coloured swatches
        self.rois = ComboBox(label="ROIs", choices=self._roi_choices)
        self.shown = Slider(label="latent shown", min=0, max=0, value=0, enabled=False)
        self.outline_all = CheckBox(
            label="outline every ROI",
            value=False,
            tooltip="Off: only the ROI of the clicked heatmap cell (at first the shown latent's "
            "most enriched ROI); a fine atlas on a coarse grid is nearly all borders.",
        )
        self.cursor = Label(label="at cursor", value="")
        self.cursor.native.setWordWrap(True)
        (
            self.figure_file, self.figure_latents, self.figure_slices, self.figure_button,
            self.export_folder, self.export_button,
        ) = export_form()  # fmt: skip
        self.extend(
            [
                self.model_source, self.run_folder, self.population, self.latents, self.base,
                self.preset, self.low, self.high, self.step, self.split, self.units,
                self.scheme, self.limits, self.rois, self.buttons, self.progress, self.status,
                self.shown, self.legend, self.outline_all,
                self.cursor, self.figure_file, self.figure_latents, self.figure_slices,
                self.figure_button, self.export_folder, self.export_button,
            ]
        )  # fmt: skip

        self.heatmaps = FieldHeatmaps(on_click=self.select_cell)
        self.projective_plot = self.heatmaps.projective_plot
        self.receptive_plot = self.heatmaps.receptive_plot
        form = getattr(self, "inner", None) or self.native  # a scrolling dock's form, if any
        form.layout().addWidget(self.heatmaps.widget)
        self._outlined_row: int | None = None  # ROI row outlined; None: the most enriched

        self.apply_preset()
        self.preset.changed.connect(self.apply_preset)
        self.population.changed.connect(lambda *_: self.base.reset_choices())
        self.shown.changed.connect(lambda *_: self._show_colour())
        self.outline_all.changed.connect(lambda *_: self._refresh_outlines())
        self.scheme.changed.connect(lambda *_: self._recolour())
        self.limits.changed.connect(lambda *_: self._recolour())
        self._show_legend()
        self.export_button.changed.connect(lambda *_: self.export())
        self.figure_button.changed.connect(lambda *_: self.export_figure())
        self._viewer.layers.events.inserted.connect(self._refresh_choices)
        self._viewer.layers.events.removed.connect(self._refresh_choices)
        self._viewer.layers.events.removed.connect(self._on_layer_removed)
        self._viewer.dims.events.ndisplay.connect(self._on_ndisplay)
        self._viewer.mouse_move_callbacks.append(self._on_mouse_move)

    # ---- choices and inputs ----------------------------------------------------------------
    def _base_choices(self, *_args) -> list[tuple[str, str]]:
        return inputs.base_choices(self._population_table())

    def _roi_choices(self, *_args) -> list[str]:
        return [*labels_layer_names(self._viewer), inputs.NO_ROIS]

    def _refresh_choices(self, *_args) -> None:
        for combo in (self.population, self.base, self.rois):
            combo.reset_choices()

    def apply_preset(self, *_args) -> None:
        """Fill range, step, split and units from the chosen preset."""
        from brainvae.analysis.projective_sweep import SweepSettings

        settings = SweepSettings.preset(self.preset.value)
        self.low.value, self.high.value = settings.low, settings.high
        self.step.value, self.split.value = settings.step, settings.split
        self.units.value = settings.units

    def chosen_settings(self) -> Any:
        """The sweep settings of the form, checked (a clear error for a bad range)."""
        from brainvae.analysis.projective_sweep import SweepSettings

        settings = SweepSettings(
            low=float(self.low.value),
            high=float(self.high.value),
            step=float(self.step.value),
            split=float(self.split.value),
            units=str(self.units.value),
        )
        settings.validate()
        return settings

    def chosen_latents(self, latent_dim: int) -> list[int]:
        """0-based indices from the 1-based field; all latents when it is empty."""
        return inputs.latent_indices(self.latents.value, latent_dim)

    def chosen_rois(self) -> tuple[np.ndarray | None, dict[int, str] | None]:
        name = self.rois.value
        if name in (None, inputs.NO_ROIS) or name not in self._viewer.layers:
            return None, None
        return inputs.rois_of(self._viewer.layers[name])

    # ---- running ---------------------------------------------------------------------------
    def run(self, *_args) -> None:
        """Sweep every chosen latent in a napari worker; progress per batch of decodes."""
        from brainvae.napari.workers.projective import projective_run

        if self._worker is not None:
            return
        try:
            model = self.chosen_model()
            layer = self._population_layer()
            latents = self.chosen_latents(model.latent_dim)
            settings = self.chosen_settings()
            rois, names = self.chosen_rois()
        except Exception as err:  # noqa: BLE001 - any input problem goes to the user
            self.fail(err)
            return
        # shown with the result (a cancelled run leaves the last result's grid and ROIs alone)
        self._pending = (spatial_placement(layer), rois, model)
        self.start(
            projective_run,
            model,
            layer.data,
            self._population_table(),
            latents,
            str(self.base.value),
            settings,
            str(self.scheme.value),
            rois,
            names,
            32,  # decodes per batch
            str(self.limits.value),
            # the latent explorer's encoding of this population under this model, if any
            self._state.statistics_for(model, population_of(layer)),
            message=f"Sweeping {len(latents)} latent(s), {settings.values().size} decodes each...",
        )

    def progress_of(self, report: Any) -> tuple[int, int]:
        """Decodes done of all; the status names the latent being swept (once per latent)."""
        sweeping = (
            f"Sweeping z{report.latent + 1} ({report.latents_done + 1} of {report.n_latents})"
        )
        if not self.status.value.startswith(sweeping):
            self.status.value = f"{sweeping}..."
        return int(report.decodes_done), int(report.total_decodes)

    def show_result(self, run: Any) -> None:
        placement, self._rois, self._model = self._pending
        self.layers_shown.placement = placement
        result = run.result
        self.shown.max = result.n_latents - 1
        self.shown.enabled = result.n_latents > 1
        self._outlined_row = None
        self.shown.value = 0
        self.figure_slices.enabled = len(result.spatial_shape) == 3
        # a new population or grid: made afresh
        self.layers_shown.remove(COLOUR_LAYER, UNDERLAY_LAYER, OUTLINE_LAYER, *SURFACE_LAYERS)
        self.view_3d.forget_meshes()
        self._show_colour()
        self.status.value = text.result_text(run)
        if run.matrix is not None:
            self.heatmaps.show_projective(run)
            self.status.value += " " + self._show_receptive(run)

    def _on_receptive_published(self, *_args) -> None:
        run = self.last_run
        if not self._closed and run is not None and run.matrix is not None:
            self.status.value = text.result_text(run) + " " + self._show_receptive(run)

    def _show_receptive(self, run: Any) -> str:
        """The viewer's receptive field of this sweep's model beside the enrichment."""
        receptive = self._state.result_for("receptive", self._model)
        return self.heatmaps.show_receptive(run, None if receptive is None else receptive.result)

    def model_of(self, run: Any) -> Any:
        return self._model  # set from the request when the result was shown

    # ---- layers ----------------------------------------------------------------------------
    def _show_legend(self) -> None:
        self.legend.value = text.legend_html(
            str(self.scheme.value), str(self.limits.value), self._outline_colour()
        )

    def _outline_colour(self) -> tuple[tuple[float, float, float], str]:
        from brainvae.analysis.projective_colour import outline_colour

        return outline_colour(str(self.scheme.value))

    def _recolour(self) -> None:
        """New colours for the last sweep (another scheme or limits rule), and the legend."""
        self._show_legend()
        if self.last_run is None:
            return
        from dataclasses import replace

        from brainvae.analysis.projective_colour import colour_composite

        mode = str(self.limits.value)
        colour, limits = colour_composite(
            self.last_run.result.colour_bands, str(self.scheme.value), mode=mode
        )
        self.last_run = replace(
            self.last_run, colour=colour, limits=limits, scheme=str(self.scheme.value),
            limits_mode=mode,
        )  # fmt: skip
        self.layers_shown.recolour_outlines(self._outline_colour()[0])
        self.layers_shown.remove(ROI_SURFACE_LAYER)
        self._show_colour()

    def show_latent_index(self, index: int) -> None:
        """Show the colour map of the index-th swept latent (a heatmap column was clicked)."""
        if self.last_run is not None and 0 <= index < self.last_run.result.n_latents:
            self.shown.value = index

    def _show_colour(self) -> None:
        """The shown latent's colour map as an RGBA layer (hue, opacity = strength) over the
        dimmed mean brain, the outlines above it, the canvas line, and the 3D view's layers."""
        from brainvae.analysis.projective_colour import rgba_overlay

        if self.last_run is None:
            return
        index = int(self.shown.value)
        image = rgba_overlay(self.last_run.colour[index])
        if self._viewer.dims.ndisplay == 3 and image.ndim == 4:
            image = faded_for_3d(image)
        name = self.last_run.result.latent_names[index]
        inactive = "" if self.last_run.active[index] else ", INACTIVE: means little"
        self.shown.label = f"latent shown ({name}{inactive})"
        self.layers_shown.show_colour(image, self.last_run.mean_image)
        self.layers_shown.show_outlines(self.outlined_rois(), self._outline_colour()[0])
        self.layers_shown.raise_outlines()  # outlines stay on top of the colours
        self._set_cursor_text()
        self._apply_view()

    def select_cell(self, row: int, latent: int) -> None:
        """A heatmap cell was clicked: show that latent's colours and outline that ROI."""
        self._outlined_row = row
        if int(self.shown.value) == latent:
            self._refresh_outlines()
        self.show_latent_index(latent)

    def _refresh_outlines(self) -> None:
        """Other ROIs outlined: the 2D borders, the 3D surfaces and the canvas line."""
        self.layers_shown.show_outlines(self.outlined_rois(), self._outline_colour()[0])
        self._apply_view()

    def _outlined_row_now(self) -> int | None:
        """The ROI row outlined alone; None when every ROI is outlined."""
        every_roi = bool(self.outline_all.value)
        return outlined_row(self.last_run, self._outlined_row, int(self.shown.value), every_roi)

    def outlined_rois(self) -> np.ndarray | None:
        """The labels to outline: every ROI, or one (clicked, else the shown latent's most
        enriched ROI, else all when there is no matrix or the latent is inactive)."""
        return outlined_labels(self._rois, self.last_run, self._outlined_row_now())

    # ---- cursor ----------------------------------------------------------------------------
    def _on_mouse_move(self, _viewer: Any, _event: Any) -> None:
        self._set_cursor_text()

    def cursor_values(self) -> tuple[str, np.ndarray] | None:
        """(ROI name, the four bands per unit var(c)) at the mouse, or None off the map."""
        if self.last_run is None or COLOUR_LAYER not in self._viewer.layers:
            return None
        layer = self._viewer.layers[COLOUR_LAYER]
        position = self._viewer.cursor.position
        return bands_at(layer, position, self.last_run, int(self.shown.value), self._rois)

    def _set_cursor_text(self) -> None:
        if not self._closed:
            self.cursor.value = text.cursor_text(self.cursor_values())

    # ---- the canvas line and the 3D view ---------------------------------------------------
    def canvas_text(self) -> str:
        """The line on the canvas: which latent, what each colour and the opacity mean, and
        which ROI the outline shows."""
        run = self.last_run
        if run is None:
            return ""
        in_3d = self._viewer.dims.ndisplay == 3 and len(run.result.spatial_shape) == 3
        outline = None
        if self._rois is not None and run.roi_names:
            row = self._outlined_row_now()
            outline = "every ROI" if row is None else run.roi_names[row]
        index = int(self.shown.value)
        return text.canvas_text(run, index, in_3d, outline, FLOOR_3D, self._outline_colour()[1])

    def _on_ndisplay(self, *_args) -> None:
        """Entering or leaving 3D: the colours' opacity rule and the layers shown change."""
        if self._closed:
            return
        if self.last_run is not None and COLOUR_LAYER in self._viewer.layers:
            self._show_colour()
        else:
            self._apply_view()

    def _on_layer_removed(self, event: Any) -> None:
        """The user removed the colour layer: the result is no longer shown, so the layers
        hidden for 3D come back and the 3D surfaces and canvas line go."""
        from brainvae.napari.layer_metadata import stored_metadata

        layer = getattr(event, "value", None)
        if self.layers_shown.replacing or self._closed or layer is None:
            return
        if stored_metadata(layer.metadata).get("kind") == "projective_field":
            self.view_3d.leave()
            text.show_canvas_text(self._viewer, None)

    def _apply_view(self) -> None:
        """2D or 3D as the viewer is, for the result shown (nothing without one)."""
        shown = self.last_run is not None and COLOUR_LAYER in self._viewer.layers
        text.show_canvas_text(self._viewer, self.canvas_text() if shown else None)
        if shown and self._viewer.dims.ndisplay == 3:
            key = (id(self._rois), self._outlined_row_now())
            rgb = self._outline_colour()[0]
            self.view_3d.enter(self.last_run.mean_image, self.outlined_rois(), key, rgb)
        else:
            self.view_3d.leave()

    # ---- exports ---------------------------------------------------------------------------
    def export(self, folder: str | Path | None = None) -> Path | None:
        """Write the last sweep into FOLDER/projective_fields (ProjectiveExports.export)."""
        return self.exports.export(folder)

    def figure_options(self) -> dict[str, Any]:
        """What the publication figure draws from the last result."""
        return self.exports.figure_options()

    def export_figure(self, path: str | Path | None = None) -> Any:
        """Draw the publication figure in a worker; returns it (None when nothing started)."""
        return self.exports.export_figure(path)

    def closing(self) -> None:
        if self._on_mouse_move in self._viewer.mouse_move_callbacks:
            self._viewer.mouse_move_callbacks.remove(self._on_mouse_move)
        self._viewer.dims.events.ndisplay.disconnect(self._on_ndisplay)
        self._viewer.layers.events.removed.disconnect(self._on_layer_removed)
        self.view_3d.leave()
        text.show_canvas_text(self._viewer, None)
        self.exports.quit()
