"""Receptive fields dock: paint ROIs (or pick atlas regions), perturb them across the
population, and see which latents answer.

It only orchestrates: reads the ROI labels layer, the population stack and a model (the latent
explorer's, or a run folder), runs brainvae.analysis.receptive_field in a napari worker, and
shows the ROI x latent impact matrix (inactive latents greyed), the latent x latent covariance
with both scores over the active latents, and one (ROI, latent)'s Gaussians across weights.
With many latents (256) the heatmaps show those with the largest impact (32 by default, or all
in a sideways-scrolling plot). Clicking an impact cell (or an ROI's name beside it, or choosing
an atlas region) outlines that ROI on top of the canvas and moves the sliders to its centre
slice; a cell also selects that latent in the explorer.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FileEdit,
    LineEdit,
    PushButton,
    SpinBox,
)

from brainvae.cli.receptive import LongRunTimer, long_run_note
from brainvae.napari.widgets.analysis_dock import AnalysisDock
from brainvae.napari.widgets.analysis_inputs import (
    atlas_layers,
    label_names,
    labels_layer_names,
    spatial_placement,
)
from brainvae.napari.widgets.heatmap import top_columns
from brainvae.napari.widgets.paths import optional_path

if TYPE_CHECKING:
    import napari

ROI_LAYER = "ROIs"
ALL_SCANS = "all scans"
KINDS = (
    ("remove and scale (w = 1 blanks the ROI)", "remove"),
    ("add intensity", "add"),
    ("Gaussian noise", "noise"),
    ("blur", "blur"),
)
TRUST_NOTE = (
    "separation: 1 = every latent answers to its own ROIs, 0 = all to the same ones; the "
    "published s gives -1 to a perfectly local model (docs/analysis_details.md: 'Which score to read')"
)
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
NAMES_LISTED = 8  # latent names a status line lists before "and N more"
MIN_CELL_WIDTH = 14  # pixels per column when every latent is shown (the plot scrolls)

_OPEN: weakref.WeakSet = weakref.WeakSet()


def receptive_docks_of(viewer: Any) -> list[ReceptiveFieldWidget]:
    """The open Receptive fields docks of this viewer (the projective dock shows their impact)."""
    target = getattr(viewer, "__wrapped__", viewer)  # plugins get a public-only proxy
    return [d for d in list(_OPEN) if not d._closed and d._real_viewer is target]


class ReceptiveFieldWidget(AnalysisDock):
    """Paint-and-perturb: which latents respond to which brain regions."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(napari_viewer, "Paint ROIs or add atlas regions, then Run.")
        _OPEN.add(self)
        self._roi_labels: tuple[int, ...] = ()  # label value of each result row
        self._run_rois: tuple[Any, np.ndarray] | None = None  # (ROI layer, labels) of the run
        self._shown_latents = np.zeros(0, dtype=int)  # latent index of each heatmap column
        self._watched_layer: Any = None
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

        from brainvae.napari.widgets.gaussians_plot import GaussiansPlot
        from brainvae.napari.widgets.heatmap import Heatmap

        self.impact_plot = Heatmap(IMPACT_TITLE, row_name="ROI", column_name="latent")
        self.covariance_plot = Heatmap(
            COVARIANCE_TITLE,
            colormap="CET-D1",
            symmetric=True,
            row_name="latent",
            column_name="latent",
        )
        self.gaussians_plot = GaussiansPlot()
        form = getattr(self, "inner", None) or self.native  # a scrolling dock's form, if any
        layout = form.layout()
        layout.addWidget(self.impact_plot.scroll_area)
        layout.addWidget(self.covariance_plot.scroll_area)
        layout.addWidget(self.gaussians_plot.widget)
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

    def _atlas_layers(self) -> list[Any]:
        return atlas_layers(self._viewer)

    def _atlas_choices(self, *_args) -> list[tuple[str, int]]:
        atlases = self._atlas_layers()
        if not atlases:
            return []
        names = atlases[0].metadata["brainvae"]["atlas_names"]
        return [(str(name), int(label)) for label, name in sorted(names.items(), key=_label_key)]

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
            weights = [
                float(v) for v in str(self.weights.value).replace(";", ",").split(",") if v.strip()
            ]
        except ValueError as err:
            raise ValueError(f"weights: {self.weights.value!r} is not a list of numbers") from err
        return weights

    def chosen_rois(self) -> tuple[np.ndarray, dict[int, str]]:
        """The ROI layer's labels and a {label: name} for every label painted in it."""
        name = self.roi_layer.value
        if name is None or name not in self._viewer.layers:
            raise ValueError("no ROI layer: press 'New ROI layer' and paint, or add atlas regions")
        layer = self._viewer.layers[name]
        labels = np.asarray(layer.data)
        present = [int(v) for v in np.unique(labels) if v != 0]
        if not present:
            raise ValueError(f"the ROI layer {name!r} is empty: paint at least one ROI")
        stored = label_names(layer)  # atlas region names, painted ROIs' names, else roi_<label>
        typed = _parse_names(self.roi_names.value)
        names = {label: typed.get(label, stored[label]) for label in present}
        return labels, names

    # ---- ROI layers ------------------------------------------------------------------------
    def new_roi_layer(self, *_args) -> Any:
        """An empty labels layer on the population's grid, ready to paint label 1."""
        try:
            population = self._population_layer()
        except ValueError as err:
            self.fail(err)
            return None
        shape = tuple(population.data.shape[1:])
        if ROI_LAYER in self._viewer.layers:
            self._viewer.layers.remove(ROI_LAYER)
        layer = self._viewer.add_labels(
            np.zeros(shape, dtype=np.int32),
            name=ROI_LAYER,
            metadata={"brainvae": {"kind": "rois", "roi_names": {}}},
            **spatial_placement(population),  # the population's grid and units (mm)
        )
        layer.selected_label = 1
        layer.mode = "paint"
        self.roi_layer.value = ROI_LAYER
        self.status.value = "Paint an ROI (label 1); a new label number paints another ROI."
        return layer

    def add_atlas_region(self, *_args) -> None:
        """Copy the chosen atlas region into the ROI layer as a new label, with its name."""
        atlases = self._atlas_layers()
        if not atlases or self.atlas_region.value is None:
            self.fail(ValueError("no ROI atlas in the viewer (the Population data dock adds one)"))
            return
        atlas = atlases[0]
        if ROI_LAYER not in self._viewer.layers and self.new_roi_layer() is None:
            return
        layer = self._viewer.layers[ROI_LAYER]
        if layer.data.shape != atlas.data.shape:
            self.fail(ValueError("the ROI layer and the atlas are on different grids"))
            return
        region = int(self.atlas_region.value)
        mask = np.asarray(atlas.data) == region
        label = int(np.asarray(layer.data).max()) + 1
        data = np.array(layer.data, copy=True)
        data[mask & (data == 0)] = label
        layer.data = data
        name = _atlas_name(atlas, region)
        _roi_names(layer)[label] = str(name)
        _refresh_features(layer)
        self.roi_layer.value = ROI_LAYER
        self.status.value = f"Added {name} as ROI {label} ({int(mask.sum())} voxels)."

    def show_atlas_region(self) -> Any:
        """Outline the atlas region chosen in the list (before adding it as an ROI)."""
        atlases = self._atlas_layers()
        if not atlases or self.atlas_region.value is None:
            return None
        from brainvae.napari.label_view import highlight_roi

        region = int(self.atlas_region.value)
        name = _atlas_name(atlases[0], region)
        return highlight_roi(self._viewer, atlases[0], region, name)

    def _watch_roi_layer(self, *_args) -> None:
        """Re-run after each paint stroke when asked (Labels' paint event ends a stroke)."""
        if self._watched_layer is not None:
            try:
                self._watched_layer.events.paint.disconnect(self._on_paint)
            except (TypeError, ValueError, RuntimeError):
                pass
            self._watched_layer = None
        name = self.roi_layer.value
        if name is not None and name in self._viewer.layers:
            layer = self._viewer.layers[name]
            if hasattr(layer.events, "paint"):
                layer.events.paint.connect(self._on_paint)
                self._watched_layer = layer

    def _on_paint(self, *_args) -> None:
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
        """The latents the heatmaps show, in latent order: every one when asked, else those
        with the largest shown impact on any ROI (latents_shown of them)."""
        count = None if self.all_latents.value else int(self.latents_shown.value)
        return top_columns(self._impact_shown(), count)

    def _impact_shown(self) -> np.ndarray:
        """The impact matrix as chosen: per ROI voxel, raw KL, or each row scaled to 1."""
        result = self.last_run.result
        shown = result.impact_per_voxel if self.impact_view.value == "per_voxel" else result.impact
        if self.impact_view.value == "row_scaled":
            peak = np.max(np.abs(shown), axis=1, keepdims=True)
            shown = np.divide(shown, peak, out=np.zeros_like(shown), where=peak > 0)
        return shown

    def _on_all_latents(self, *_args) -> None:
        self.latents_shown.enabled = not self.all_latents.value
        self._show_impact()

    def _show_impact(self) -> None:
        """The impact heatmap (and the covariance) over the shown latents."""
        if self.last_run is None:
            return
        result, scores = self.last_run.result, self.last_run.scores
        shown = self.shown_latent_indices()
        self._shown_latents = shown
        names = [result.latent_names[k] for k in shown]
        inactive = ~np.asarray(result.active)[shown]
        part = (
            ""
            if shown.size == len(result.latent_names)
            else f" ({shown.size} of {len(result.latent_names)} latents: the largest impacts)"
        )
        self.impact_plot.set_title(IMPACT_TITLE + part)
        self.impact_plot.set_matrix(
            self._impact_shown()[:, shown], result.roi_names, names, inactive
        )
        self.impact_plot.raw = result.impact[:, shown]
        if scores is None:
            self.covariance_plot.clear()
        else:
            self.covariance_plot.set_title(COVARIANCE_TITLE + part)
            self.covariance_plot.set_matrix(
                np.asarray(scores.covariance)[np.ix_(shown, shown)], names, names, inactive
            )
        cell = None
        if self.all_latents.value:  # every name readable, the plot scrolls sideways
            cell = max(self.impact_plot.label_cell_width() + 6, MIN_CELL_WIDTH)
        self.impact_plot.set_cell_width(cell)
        self.covariance_plot.set_cell_width(cell)

    def show_gaussians(self, row: int, latent: int) -> None:
        """The fitted Gaussians of one (ROI, latent) across the weights."""
        result = self.last_run.result
        self.gaussians_plot.show(
            result.means[row, :, latent],
            result.variances[row, :, latent],
            result.weights,
            f"{result.roi_names[row]}, {result.latent_names[latent]}: "
            f"impact {result.impact[row, latent]:.3g}",
            variance_floor=float(result.variance_floor[latent]),
        )

    def _on_impact_click(self, row: int, column: int) -> None:
        """A heatmap cell: its column is the column-th latent shown."""
        if 0 <= column < len(self._shown_latents):
            self.select_cell(row, int(self._shown_latents[column]))

    def select_cell(self, row: int, latent: int) -> None:
        """An impact cell was clicked: show its Gaussians, outline the ROI and select it, and
        select the latent in the explorer."""
        if self.last_run is None:
            return
        self.show_gaussians(row, latent)
        self.select_row(row, gaussians=False)
        from brainvae.napari.widgets.latent_explorer import explorers_of

        for explorer in explorers_of(self._viewer):
            explorer.highlight_latent(latent)

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
        """Write the last run into FOLDER/receptive_fields: impact.csv, covariance.csv,
        gaussians.csv and summary.json (as `brainvae receptive` writes them), and the three
        plots as PNG. The subfolder is replaced whole, never the chosen folder."""
        from brainvae.analysis.receptive_report import receptive_summary, write_receptive_tables
        from brainvae.data.io.output_folder import atomic_output_folder

        if self.last_run is None:
            self.fail(ValueError("run the analysis first"))
            return None
        chosen = optional_path(folder if folder is not None else self.export_folder.value)
        if chosen is None:
            self.fail(ValueError("choose a folder in 'export to' first"))
            return None
        target = chosen / "receptive_fields"
        try:
            result = self.last_run.result
            info = receptive_summary(result, {"population": self.population.value})
            with atomic_output_folder(target, overwrite=True) as folder:
                write_receptive_tables(folder, result, info)
                self.impact_plot.save_png(folder / "impact.png")
                self.covariance_plot.save_png(folder / "covariance.png")
                self.gaussians_plot.save_png(folder / "gaussians.png")
        except Exception as err:  # noqa: BLE001 - a full disk or a read-only folder
            self.fail(err)
            return None
        self.status.value = f"Saved tables and plots in {target}"
        return target


def _atlas_name(atlas: Any, region: int) -> str:
    """An atlas region's name (stored with int or str keys), else 'region N'."""
    names = atlas.metadata["brainvae"]["atlas_names"]
    return str(names.get(region) or names.get(str(region)) or f"region {region}")


def result_text(result: Any, scores: Any) -> str:
    """The status after a run: activity first (what the fields can mean), the most affected
    active latent per ROI, encoder-only latents, then the scores over the active latents."""
    from brainvae.analysis.receptive_report import receptive_scores

    parts = [f"{result.n_images} scans, kind {result.kind}. {activity_text(result.activity)}."]
    if result.activity.n_active == 0:
        parts.append(
            "No latent is active: the model has collapsed, and these fields measure noise the "
            "decoder ignores (retrain: more steps, lower beta, a KL warm-up)."
        )
    else:
        top = "; ".join(
            f"{name}: {result.latent_names[result.most_affected_latents(k)[0]]}"
            for k, name in enumerate(result.roi_names)
        )
        parts.append(f"Most affected active latent: {top}.")
    encoder_only = [result.latent_names[k] for k in np.flatnonzero(result.encoder_only())]
    if encoder_only:
        parts.append(
            f"Encoder-only (strong impact, but the decoder does not use them): "
            f"{name_list(encoder_only)}."
        )
    values = receptive_scores(result)
    if scores is None:
        parts.append("One ROI: no covariance or scores (they compare ROIs).")
    elif values["separation"] is None:
        parts.append("Fewer than 2 active latents answer to an ROI: no scores.")
    else:
        parts.append(
            f"Over {len(values['scored_latents'])} active latents: separation = "
            f"{values['separation']:.3f} (impact per ROI voxel), published s = "
            f"{scores.published:.3g} ({TRUST_NOTE})."
        )
    if result.any_floor_hit:
        parts.append("Some variances hit the floor (latents constant after perturbing).")
    return " ".join(parts)


def activity_text(activity: Any) -> str:
    """Which latents are active, in one line even with 256 latents (a few inactive ones
    named, the rest counted)."""
    inactive = list(activity.inactive_names)
    if len(inactive) <= NAMES_LISTED:
        return activity.describe()
    return (
        f"{activity.n_active} of {activity.latent_dim} latents active; {len(inactive)} inactive: "
        f"{name_list(inactive)} (their posterior means vary by <= {activity.threshold:g} over "
        f"the {activity.n_images} scans, so the decoder cannot use them)"
    )


def name_list(names: list[str]) -> str:
    """Names joined by commas; past NAMES_LISTED, the first ones and how many more."""
    if len(names) <= NAMES_LISTED:
        return ", ".join(names)
    return f"{', '.join(names[:NAMES_LISTED])} and {len(names) - NAMES_LISTED} more"


def _roi_names(layer: Any) -> dict:
    """The layer's {label: name} store in its metadata (made when missing)."""
    info = layer.metadata.setdefault("brainvae", {})
    return info.setdefault("roi_names", {})


def _refresh_features(layer: Any) -> None:
    """ROI names as the labels layer's features, so napari shows them on hover."""
    import pandas as pd

    names = {int(k): str(v) for k, v in _roi_names(layer).items()}
    labels = sorted({0, *names})
    layer.features = pd.DataFrame(
        {"index": labels, "name": [names.get(k, "background" if k == 0 else "") for k in labels]}
    )


def _parse_names(text: str) -> dict[int, str]:
    """'1=ventricles, 2=lesions' -> {1: 'ventricles', 2: 'lesions'}."""
    names: dict[int, str] = {}
    for part in str(text or "").split(","):
        if not part.strip():
            continue
        label, sep, name = part.partition("=")
        if not sep or not label.strip().isdigit() or not name.strip():
            raise ValueError(f"ROI names: {part.strip()!r} is not label=name")
        names[int(label)] = name.strip()
    return names


def _label_key(item: tuple[Any, Any]) -> int:
    return int(item[0])
