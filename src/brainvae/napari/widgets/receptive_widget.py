"""Receptive fields dock: paint ROIs (or pick atlas regions), perturb them across the
population, and see which latents answer.

It only orchestrates: reads the ROI labels layer (roi_layer_tools makes and fills one), the
population stack and a model (the viewer's model in use, or a run folder), runs
brainvae.analysis.receptive_field in a napari worker, and shows the impact, covariance and
Gaussians plots (receptive_plots) and a status (receptive_text). Clicking an impact cell (or an
ROI's name beside it, or choosing an atlas region) outlines that ROI on top of the canvas and
moves the sliders to its centre slice; a cell also makes its latent the viewer's chosen one.
The run is published in the viewer's state; receptive_export writes it to a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FileEdit, LineEdit, PushButton, SpinBox

from brainvae.napari.widgets.analysis_dock import AnalysisDock
from brainvae.napari.widgets.analysis_inputs import labels_layer_names
from brainvae.napari.widgets.receptive_export import export_run
from brainvae.napari.widgets.receptive_plots import (
    DEFAULT_LATENTS_SHOWN,
    IMPACT_VIEWS,
    ReceptivePlots,
)
from brainvae.napari.widgets.receptive_text import result_text
from brainvae.napari.widgets.roi_layer_tools import ROI_LAYER, RoiLayerTools
from brainvae.number_lists import number_list
from brainvae.usecases.receptive_run import LongRunTimer, long_run_note

if TYPE_CHECKING:
    import napari

ALL_SCANS = "all scans"
KINDS = (
    ("remove and scale (w = 1 blanks the ROI)", "remove"),
    ("add intensity", "add"),
    ("Gaussian noise", "noise"),
    ("blur", "blur"),
)


class ReceptiveFieldWidget(AnalysisDock):
    """Paint-and-perturb: which latents respond to which brain regions."""

    STATE_FIELD = "receptive"

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(napari_viewer, "Paint ROIs or add atlas regions, then Run.")
        self._roi_labels: tuple[int, ...] = ()  # label value of each result row
        self._run_rois: tuple[Any, np.ndarray] | None = None  # (ROI layer, labels) of the run
        self.roi_tools = RoiLayerTools(self)
        self.roi_tools.on_stroke = self._on_paint
        self._long_run: tuple[Any, int, int, int] | None = None  # timer and counts of a run

        self.scans = ComboBox(label="scans", choices=self._scan_choices)
        self.roi_layer = ComboBox(label="ROI layer", choices=self._labels_choices)
        self.new_rois_button = PushButton(text="New ROI layer (paint on it)")
        self.atlas_region = ComboBox(label="atlas region", choices=self._atlas_choices)
        self.add_region_button = PushButton(text="Add region as ROI")
        self.roi_names = LineEdit(
            label="ROI names",
            tooltip="label=name pairs, comma separated, e.g. 1=ventricles, 2=lesion zone; "
            "labels without a name are called roi_<label>",
        )
        self.kind = ComboBox(label="perturbation", choices=KINDS, value="remove")
        self.weights = LineEdit(label="weights w", value="-1, -0.5, 0, 0.5, 1")
        self.one_sided = CheckBox(label="one-sided KL (lowest -> highest w)", value=False)
        self.rerun = CheckBox(label="re-run when a stroke ends", value=False)
        self.impact_view = ComboBox(
            label="impact shown",
            choices=IMPACT_VIEWS,
            value="per_voxel",
            tooltip="Large ROIs (cortex) have impacts 100x those of small ones (ventricles): "
            "per voxel divides by the ROI's size; scaled rows show which latents answer to "
            "each ROI. Hover shows the raw KL. Greyed columns are inactive latents.",
        )
        self.latents_shown = SpinBox(
            label="latents shown",
            value=DEFAULT_LATENTS_SHOWN,
            min=1,
            max=4096,
            tooltip="The heatmaps show the latents with the largest impact on any ROI (in "
            "latent order); hover a cell for its ROI, latent and value.",
        )
        self.all_latents = CheckBox(label="all latents (scroll sideways)", value=False)
        self.export_folder = FileEdit(label="export to", mode="d")
        self.export_button = PushButton(text="Export tables (CSV, JSON) and plots (PNG)")
        self.extend(
            [
                self.model_source, self.run_folder, self.population, self.scans,
                self.roi_layer, self.new_rois_button, self.atlas_region,
                self.add_region_button, self.roi_names, self.kind, self.weights,
                self.one_sided, self.rerun, self.buttons, self.impact_view,
                self.latents_shown, self.all_latents, self.progress, self.status,
                self.export_folder, self.export_button,
            ]
        )  # fmt: skip

        form = getattr(self, "inner", None) or self.native  # a scrolling dock's form, if any
        self.plots = ReceptivePlots(form.layout())
        self.impact_plot = self.plots.impact_plot
        self.covariance_plot = self.plots.covariance_plot
        self.gaussians_plot = self.plots.gaussians_plot
        self.impact_plot.on_click = self._on_impact_click
        self.impact_plot.on_row_click = self.select_row
        self.impact_view.changed.connect(lambda *_: self._show_impact())
        self.latents_shown.changed.connect(lambda *_: self._show_impact())
        self.all_latents.changed.connect(self._on_all_latents)
        self.atlas_region.native.activated.connect(lambda *_: self.show_atlas_region())

        self.population.changed.connect(lambda *_: self.scans.reset_choices())
        self.roi_layer.changed.connect(self._watch_roi_layer)
        self.new_rois_button.changed.connect(self.new_roi_layer)
        self.add_region_button.changed.connect(self.add_atlas_region)
        self.export_button.changed.connect(lambda *_: self.export())
        self._viewer.layers.events.inserted.connect(self._refresh_choices)
        self._viewer.layers.events.removed.connect(self._refresh_choices)
        self._watch_roi_layer()
        from brainvae.napari.label_view import follow_display

        follow_display(self._viewer)  # the atlas faint in 3D, a highlighted ROI on top

    # ---- choices ---------------------------------------------------------------------------
    def _scan_choices(self, *_args) -> list[str]:
        table = self._population_table()
        splits = []
        if table is not None and "split" in table:
            splits = [f"{split} split" for split in sorted(set(map(str, table["split"])))]
        return [ALL_SCANS, *splits]

    def _labels_choices(self, *_args) -> list[str]:
        return labels_layer_names(self._viewer)

    def _atlas_choices(self, *_args) -> list[tuple[str, int]]:
        return self.roi_tools.atlas_choices()

    def _refresh_choices(self, *_args) -> None:
        for combo in (self.population, self.scans, self.roi_layer, self.atlas_region):
            combo.reset_choices()
        if ROI_LAYER in self._viewer.layers and self.roi_layer.value != ROI_LAYER:
            self.roi_layer.value = ROI_LAYER
        self._watch_roi_layer()

    # ---- inputs ----------------------------------------------------------------------------
    def chosen_indices(self) -> np.ndarray | None:
        """Rows of the population to perturb (None: all)."""
        if self.scans.value in (None, ALL_SCANS):
            return None
        split = str(self.scans.value).removesuffix(" split")
        table = self._population_table()
        return np.flatnonzero(np.asarray(table["split"].astype(str) == split))

    def chosen_weights(self) -> list[float]:
        try:
            weights = number_list(str(self.weights.value))
        except ValueError as err:
            raise ValueError(f"weights: {self.weights.value!r} is not a list of numbers") from err
        return weights

    def chosen_rois(self) -> tuple[np.ndarray, dict[int, str]]:
        """The ROI layer's labels and a {label: name} for every label painted in it."""
        return self.roi_tools.chosen_rois(self.roi_layer.value, self.roi_names.value)

    # ---- ROI layers ------------------------------------------------------------------------
    def new_roi_layer(self, *_args) -> Any:
        """An empty labels layer on the population's grid, ready to paint label 1."""
        return self.roi_tools.new_roi_layer()

    def add_atlas_region(self, *_args) -> None:
        """Copy the chosen atlas region into the ROI layer as a new label, with its name."""
        self.roi_tools.add_atlas_region()

    def show_atlas_region(self) -> Any:
        """Outline the atlas region chosen in the list (before adding it as an ROI)."""
        return self.roi_tools.show_atlas_region()

    def _watch_roi_layer(self, *_args) -> None:
        """Re-run after each paint stroke when asked."""
        self.roi_tools.watch(self.roi_layer.value)

    def _on_paint(self) -> None:
        """A stroke ended. napari can announce it before the pixels are written, so the run
        starts on the next turn of the event loop, when they are."""
        if self.rerun.value and self._worker is None and not self._closed:
            from qtpy.QtCore import QTimer

            QTimer.singleShot(0, self._rerun_after_paint)

    def _rerun_after_paint(self) -> None:
        if self.rerun.value and self._worker is None and not self._closed:
            self.run()

    # ---- running ---------------------------------------------------------------------------
    def run(self, *_args) -> None:
        """Perturb every ROI at every weight across the chosen scans, in a napari worker."""
        from brainvae.napari.workers.receptive import receptive_run

        if self._worker is not None:
            return
        try:
            model = self.chosen_model()
            population = self._population_layer()
            rois, names = self.chosen_rois()
            weights = self.chosen_weights()
            indices = self.chosen_indices()
        except Exception as err:  # noqa: BLE001 - any input problem goes to the user
            self.fail(err)
            return
        self._roi_labels = tuple(sorted(names))
        self._run_rois = (self._viewer.layers[self.roi_layer.value], np.array(rois, copy=True))
        n_images = len(population.data) if indices is None else len(indices)
        self._long_run = (LongRunTimer(), len(names), len(weights), n_images)
        self.start(
            receptive_run,
            model,
            population.data,
            rois,
            names,
            weights,
            self.kind.value,
            bool(self.one_sided.value),
            indices,
            message=f"Perturbing {len(names)} ROI(s) at {len(weights)} weights...",
        )

    def progress_of(self, report: Any) -> tuple[int, int]:
        """(done, total); a run timed to take over a minute says how long in the status."""
        if self._long_run is not None:
            timer, n_rois, n_weights, n_images = self._long_run
            seconds = timer.long_run_s(report)
            if seconds is not None:
                note = long_run_note(seconds, n_rois, n_weights, n_images)
                self.status.value = f"{self.status.value} {note[0].upper()}{note[1:]}."
        return int(report.done), int(report.total)

    def show_result(self, run: Any) -> None:
        result = run.result
        self._show_impact()
        self.status.value = result_text(result, run.scores)
        active = np.flatnonzero(result.active)
        first = int(active[np.argmax(result.impact[0, active])]) if active.size else 0
        self.show_gaussians(0, first)

    def shown_latent_indices(self) -> np.ndarray:
        """The latents the heatmaps show, in latent order (each heatmap column's latent)."""
        return self.plots.shown_latents

    def _on_all_latents(self, *_args) -> None:
        self.latents_shown.enabled = not self.all_latents.value
        self._show_impact()

    def _show_impact(self) -> None:
        """The impact heatmap (and the covariance) over the shown latents."""
        if self.last_run is not None:
            count = None if self.all_latents.value else int(self.latents_shown.value)
            self.plots.show(self.last_run, str(self.impact_view.value), count)

    def show_gaussians(self, row: int, latent: int) -> None:
        """The fitted Gaussians of one (ROI, latent) across the weights."""
        self.plots.show_gaussians(self.last_run.result, row, latent)

    def _on_impact_click(self, row: int, column: int) -> None:
        """A heatmap cell: its column is the column-th latent shown."""
        shown = self.plots.shown_latents
        if 0 <= column < len(shown):
            self.select_cell(row, int(shown[column]))

    def select_cell(self, row: int, latent: int) -> None:
        """An impact cell was clicked: show its Gaussians, outline the ROI and select it, and
        make the latent the viewer's chosen one (the latent explorer brings its slider up)."""
        if self.last_run is None:
            return
        self.show_gaussians(row, latent)
        self.select_row(row, gaussians=False)
        self._state.latent = None  # the same latent clicked again still reaches the explorer
        self._state.latent = int(latent)

    def select_row(self, row: int, gaussians: bool = True) -> Any:
        """An ROI of the last run was chosen (its row's name clicked): outline it on top of the
        canvas at its centre slice and select its label in the ROI layer; the Gaussians show
        its most affected active latent. Returns the highlight layer."""
        if self.last_run is None or not 0 <= row < len(self._roi_labels):
            return None
        result = self.last_run.result
        if gaussians:
            self.show_gaussians(row, int(result.most_affected_latents(row)[0]))
        label = self._roi_labels[row]
        self._state.roi = int(label)
        layer, labels = self._run_rois if self._run_rois is not None else (None, None)
        if layer is None or layer not in self._viewer.layers:
            return None
        layer.selected_label = label
        self._viewer.layers.selection.active = layer
        from brainvae.napari.label_view import highlight_roi

        highlight = highlight_roi(self._viewer, layer, label, result.roi_names[row], labels)
        self.status.value = (
            f"{result.roi_names[row]} (ROI {label}) outlined in green on the canvas. "
            + result_text(result, self.last_run.scores)
        )
        return highlight

    # ---- exports ---------------------------------------------------------------------------
    def export(self, folder: str | Path | None = None) -> Path | None:
        """Write the last run into FOLDER/receptive_fields (tables as `brainvae receptive`
        writes them, and the three plots as PNG); the subfolder is replaced whole."""
        chosen = self.export_destination(folder)
        if chosen is None:
            return None
        try:
            target = export_run(chosen, self.last_run, self.population.value, self.plots)
        except Exception as err:  # noqa: BLE001 - a full disk or a read-only folder
            self.fail(err)
            return None
        self.status.value = f"Saved tables and plots in {target}"
        return target
