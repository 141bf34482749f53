"""Evaluation dock: which model removes the artefacts, how well each run reconstructs held-out
scans, and where a sweep's metrics level off (issue 19).

It only orchestrates. The runs are the viewer's model in use and any run folders
(evaluation_runs); the dataset is a population layer (prepared once into the dataset cache
when it was read from a folder of scans) or a prepared dataset folder. Compare drains the
denoising comparison (brainvae.usecases.denoise_run, every default DenoiseRequest's) in a
napari worker, then shows the summary table and a plain verdict (evaluation_tables) and the
montage as layers below the scan (evaluation_montage). Evaluate runs
brainvae.usecases.evaluate_run on each run into a second table. Show sweep draws a sweep
folder's metrics (evaluation_sweep). Export writes the folder `brainvae denoise` writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
)

from brainvae.napari.layer_roles import population_layers, population_of
from brainvae.napari.widgets.collapsible import CollapsibleSection
from brainvae.napari.widgets.dock_base import DockBase, wrapping
from brainvae.napari.widgets.evaluation_montage import MontageLayers, artefact_slices
from brainvae.napari.widgets.evaluation_runs import IN_USE_NAME, RunList
from brainvae.napari.widgets.evaluation_sweep import SweepPlot
from brainvae.napari.widgets.evaluation_tables import (
    DENOISING_COLUMNS,
    EVALUATION_COLUMNS,
    ResultTable,
    denoising_rows,
    evaluation_rows,
    verdict_lines,
)
from brainvae.napari.widgets.paths import optional_path
from brainvae.napari.widgets.scroll_dock import ScrollableContainer
from brainvae.napari.workers.evaluation import (
    DatasetSource,
    compare_job,
    evaluate_job,
    export_job,
)

if TYPE_CHECKING:
    import napari

DATASET_FOLDER = "Prepared dataset folder"
SPLITS = ("test", "val", "train")
EXPORT_SUBFOLDER = "denoising"


class EvaluationWidget(DockBase, ScrollableContainer):
    """Denoising comparison, run evaluation and sweep report of the chosen runs."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        from brainvae.evaluation.artefacts import ARTEFACTS
        from brainvae.usecases.denoise_run import DenoiseRequest

        super().__init__()
        self.setup_dock(napari_viewer, "Choose the runs and a dataset, then Compare.")
        defaults = DenoiseRequest()
        self.last_comparison: Any = None
        self.last_evaluation: list[Any] = []
        self._placement: dict[str, Any] = {}
        self.montage = MontageLayers(self._viewer)
        self.runs = RunList()
        self.dataset = ComboBox(label="dataset", choices=self._dataset_choices,
                                tooltip="a population layer, or a prepared dataset folder")  # fmt: skip
        self.dataset_folder = FileEdit(label="dataset folder", mode="d", visible=False)
        self.artefact_boxes = {
            name: CheckBox(text=name, value=name in defaults.artefacts) for name in ARTEFACTS
        }
        self.artefacts = Container(
            widgets=list(self.artefact_boxes.values()), layout="horizontal", labels=False
        )
        self.artefacts.margins = (0, 0, 0, 0)
        self.artefacts.label = "artefacts"
        self.severity = FloatSpinBox(
            label="severity", min=0.0, max=10.0, step=0.25, value=defaults.severity,
            tooltip="1: the phantom's artefacts; 2: blobs twice as bright and wide, bands "
            "twice as wide, grid lines twice as deep",
        )  # fmt: skip
        self.split = ComboBox(label="split", choices=SPLITS, value=defaults.split)
        self.montage_scan = SpinBox(
            label="montage scan", min=0, max=100_000, value=defaults.montage_scan,
            tooltip="the scan of the split (0-based) the montage shows",
        )  # fmt: skip
        self.seed = SpinBox(label="seed", min=0, max=2**31 - 1, value=defaults.seed,
                            tooltip="where the artefacts go, each scan its own draws")  # fmt: skip
        self.more = CollapsibleSection("Montage scan and seed", [self.montage_scan, self.seed])
        self.compare_button = PushButton(text="Compare")
        self.evaluate_button = PushButton(text="Evaluate")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.buttons = Container(
            widgets=[self.compare_button, self.evaluate_button, self.cancel_button],
            layout="horizontal", labels=False,
        )  # fmt: skip
        self.progress = ProgressBar(label="progress", value=0, max=1)
        self.summary_table = ResultTable(DENOISING_COLUMNS)
        self.verdict = wrapping(Label(value=""))
        self.verdict.visible = False
        self.evaluation_table = ResultTable(EVALUATION_COLUMNS, max_rows=8)
        self.sweep_folder = FileEdit(label="sweep folder", mode="d")
        self.sweep_button = PushButton(text="Show sweep report")
        self.sweep_plot = SweepPlot()
        self.sweep_text = wrapping(Label(value=""))
        self.sweep_text.visible = False
        self.export_folder = FileEdit(label="export to", mode="d")
        self.export_button = PushButton(text="Export the comparison (as brainvae denoise)")
        self.extend(
            [
                *self.runs.widgets(), self.dataset, self.dataset_folder, self.artefacts,
                self.severity, self.split, self.more, self.buttons, self.progress, self.status,
            ]
        )  # fmt: skip
        layout = self.inner.layout()
        layout.insertWidget(self.index(self.runs.buttons) + 1, self.runs.list)
        for widget in (self.summary_table.native, self.verdict.native,
                       self.evaluation_table.native):  # fmt: skip
            layout.addWidget(widget)
        sweep_form = Container(widgets=[self.sweep_folder, self.sweep_button,
                                        self.sweep_plot.metric, self.sweep_plot.along])  # fmt: skip
        export_row = Container(widgets=[self.export_folder, self.export_button])
        for widget in (sweep_form.native, self.sweep_plot.widget, self.sweep_text.native,
                       export_row.native):  # fmt: skip
            layout.addWidget(widget)
        self._rows = (sweep_form, export_row)

        self.runs.add_button.changed.connect(lambda *_: self.add_run())
        self.dataset.changed.connect(self._on_dataset)
        self.compare_button.changed.connect(lambda *_: self.compare())
        self.evaluate_button.changed.connect(lambda *_: self.evaluate())
        self.cancel_button.changed.connect(lambda *_: self.cancel())
        self.sweep_button.changed.connect(lambda *_: self.show_sweep())
        self.sweep_plot.metric.changed.connect(lambda *_: self._say_inflection())
        self.sweep_plot.along.changed.connect(lambda *_: self._say_inflection())
        self.export_button.changed.connect(lambda *_: self.export())
        self._viewer.layers.events.inserted.connect(self._refresh_datasets)
        self._viewer.layers.events.removed.connect(self._refresh_datasets)
        self._state.events.model.connect(self._say_model)
        self._refresh_datasets()
        self._say_model()

    # ---- choices ---------------------------------------------------------------------------
    def _dataset_choices(self, *_args) -> list[str]:
        return [layer.name for layer in population_layers(self._viewer)] + [DATASET_FOLDER]

    def _refresh_datasets(self, *_args) -> None:
        """Offer the population layers now in the viewer; pick the newest one while the folder
        choice stands with no folder given (as the Training dock does)."""
        if self._closed:
            return
        self.dataset.reset_choices()
        layers = [choice for choice in self.dataset.choices if choice != DATASET_FOLDER]
        if (
            layers
            and self.dataset.value == DATASET_FOLDER
            and optional_path(self.dataset_folder.value) is None
        ):
            self.dataset.value = layers[-1]
        self._on_dataset()

    def _on_dataset(self, *_args) -> None:
        self.dataset_folder.visible = self.dataset.value == DATASET_FOLDER

    def _say_model(self, *_args) -> None:
        """The check box names the model in use (or says none is loaded)."""
        if self._closed:
            return
        in_use = self._state.model
        self.runs.use_model.text = (
            "model in use (none loaded)"
            if in_use is None
            else f"model in use: {in_use.label or IN_USE_NAME}"
        )

    def closing(self) -> None:
        self._state.events.model.disconnect(self._say_model)

    def add_run(self, folder: Any = None) -> Path | None:
        """Add a run folder to the list (the field's, or `folder`); a problem goes to the
        status line."""
        try:
            added = self.runs.add(folder)
        except ValueError as err:
            self.fail(err)
            return None
        self.status.value = f"Added {added.name}."
        return added

    def chosen_artefacts(self) -> tuple[str, ...]:
        return tuple(name for name, box in self.artefact_boxes.items() if box.value)

    def chosen_request(self) -> Any:
        """The form as a DenoiseRequest (errors say what is missing)."""
        from brainvae.usecases.denoise_run import DenoiseRequest

        artefacts = self.chosen_artefacts()
        if not artefacts:
            raise ValueError("tick at least one artefact")
        return DenoiseRequest(
            artefacts=artefacts, severity=float(self.severity.value), split=str(self.split.value),
            seed=int(self.seed.value), batch=DenoiseRequest().batch,
            montage_scan=int(self.montage_scan.value),
        )  # fmt: skip

    def dataset_source(self) -> DatasetSource:
        """Where the scans come from (a population layer's dataset or folder, or the folder
        field); also remembers where the montage goes (that population's grid)."""
        from brainvae.napari.widgets.explorer_population import stack_placement

        if self.dataset.value == DATASET_FOLDER:
            folder = optional_path(self.dataset_folder.value)
            if folder is None:
                raise ValueError("choose a prepared dataset folder, or a population layer")
            self._placement = self._first_population_placement()
            return DatasetSource(prepared=folder)
        name = self.dataset.value
        if name is None or name not in self._viewer.layers:
            raise ValueError("load a population (the Population data dock) or choose "
                             f"'{DATASET_FOLDER}'")  # fmt: skip
        layer = self._viewer.layers[name]
        population = population_of(layer)
        if population is None:
            raise ValueError(f"{name}: this layer's population cannot be read; load it again")
        self._placement = stack_placement(layer)
        if population.dataset is not None:
            return DatasetSource(prepared=Path(population.dataset))
        if population.folder is None:
            raise ValueError(f"{name}: no prepared dataset or folder of scans to compare on")
        return DatasetSource(population_folder=Path(population.folder),
                             ndim=population.images.ndim - 1)  # fmt: skip

    def _first_population_placement(self) -> dict[str, Any]:
        """Where a dataset folder's montage goes: below the first population layer's scan, on
        its grid (else below the origin)."""
        from brainvae.napari.widgets.explorer_population import stack_placement

        layers = population_layers(self._viewer)
        return stack_placement(layers[0]) if layers else {}

    # ---- running ---------------------------------------------------------------------------
    def _start(self, function: Any, *args: Any, message: str, returned: Any) -> None:
        self.progress.value = 0
        self.status.value = message
        self._set_running(True)
        self.start_worker(
            function, *args, yielded=self._on_step, returned=returned,
            finished=lambda: self._set_running(False),
        )  # fmt: skip

    def _set_running(self, running: bool) -> None:
        if self._closed:
            return
        for button in (self.compare_button, self.evaluate_button, self.export_button):
            button.enabled = not running
        self.cancel_button.enabled = running

    def _on_step(self, step: Any) -> None:
        self.status.value = f"{step.stage[0].upper()}{step.stage[1:]}..."
        self.progress.max = max(int(step.total), 1)
        self.progress.value = min(int(step.done), self.progress.max)

    def compare(self) -> None:
        """Run the denoising comparison of the chosen runs in a worker."""
        if self._worker is not None:
            return
        try:
            choices = self.runs.choices(self._state.model)
            source = self.dataset_source()
            request = self.chosen_request()
        except Exception as err:  # noqa: BLE001 - any input problem goes to the user
            self.fail(err)
            return
        names = ", ".join(choice.name for choice in choices)
        self._start(
            compare_job, choices, source, request, returned=self._on_compared,
            message=f"Comparing {names} on the {request.split} split...",
        )  # fmt: skip

    def _on_compared(self, result: Any) -> None:
        comparison = result.run.comparison
        self.last_comparison = result
        self.summary_table.show_rows(denoising_rows(comparison.summary()))
        self.verdict.value = "\n".join(verdict_lines(comparison))
        self.verdict.visible = True
        self.montage.show(result.montage, comparison.columns, self._placement)
        scan = result.run.request.montage_scan
        axis, slices = artefact_slices(self._viewer, result.changed, comparison.brain_mask)
        where = ", ".join(f"{artefact} at {index}" for artefact, index in slices.items())
        look = f" Move the '{axis}' slider to see each artefact: {where}." if slices else ""
        self.status.value = (
            f"Done: {comparison.n_scans} {result.run.request.split} scans, severity "
            f"{comparison.severity:g}. Scores: each reconstruction of the corrupted scan "
            "against the clean one; reproduced: the share of the artefact passed through (0 "
            f"removed, 100 % copied). Below the scan: scan {scan} of the split, a row per "
            f"artefact.{look}"
        )

    def evaluate(self) -> None:
        """Score each chosen run's reconstructions of the split and its prior samples."""
        if self._worker is not None:
            return
        try:
            choices = self.runs.choices(self._state.model)
            source = self.dataset_source()
        except Exception as err:  # noqa: BLE001 - any input problem goes to the user
            self.fail(err)
            return
        split = str(self.split.value)
        self._start(
            evaluate_job, choices, source, split, int(self.seed.value),
            returned=self._on_evaluated, message=f"Evaluating on the {split} split...",
        )  # fmt: skip

    def _on_evaluated(self, found: list[Any]) -> None:
        self.last_evaluation = list(found)
        self.evaluation_table.show_rows(evaluation_rows(found))
        first = found[0].evaluation if found else None
        scans = f"{first.n_scans} {first.split} scans" if first is not None else "no scan"
        self.status.value = (
            f"Evaluated on {scans}: reconstruction scores inside the brain mask (CW-SSIM, SSIM "
            "higher is better; MSE lower), PCA-FD: prior samples against the scans (lower is "
            "better), active: latents that vary over the scans."
        )

    def cancel(self) -> None:
        if self.cancel_worker():
            self.status.value = "Cancelled."

    # ---- the sweep report ------------------------------------------------------------------
    def show_sweep(self, folder: Any = None) -> Any:
        """Gather a sweep folder's cells (their metrics.json files) and draw them."""
        from brainvae.evaluation.sweep_report import gather_sweep

        chosen = optional_path(folder if folder is not None else self.sweep_folder.value)
        if chosen is None:
            self.fail(ValueError("choose a sweep folder (made by brainvae sweep)"))
            return None
        if folder is not None:
            self.sweep_folder.value = chosen
        try:
            sweep = gather_sweep(chosen)
        except Exception as err:  # noqa: BLE001 - an unreadable folder goes to the user
            self.fail(err)
            return None
        self.sweep_plot.show_sweep(sweep)
        self._say_inflection()
        missing = f"; cells without metrics: {', '.join(sweep.missing)}" if sweep.missing else ""
        self.status.value = f"Sweep {chosen.name}: {len(sweep.table)} cells{missing}."
        return sweep

    def _say_inflection(self) -> None:
        """Where the drawn metric levels off, per series, in words under the plot."""
        plot = self.sweep_plot
        if plot.sweep is None or not plot.series:
            self.sweep_text.visible = False
            return
        along = plot.along.value
        name = "L" if along == "latent_dim" else "beta"
        other = "beta" if along == "latent_dim" else "L"
        parts = []
        for key, (x, _y, reached) in plot.rings.items():
            words = "levels off at" if reached else "still improving at the grid's end,"
            parts.append(f"{other} = {key:g}: {words} {name} = {x:g}")
        self.sweep_text.value = (
            "Inflection (ringed; a square: no plateau within the grid): " + "; ".join(parts)
            if parts
            else "This metric has no better direction: no inflection is marked."
        )
        self.sweep_text.visible = True

    # ---- export ----------------------------------------------------------------------------
    def export(self, folder: Any = None) -> Path | None:
        """Write the last comparison into FOLDER/denoising as `brainvae denoise` does (tables,
        montage figure, NIfTI, summary.json) in a worker; the folder, or None."""
        result = self.last_comparison
        if result is None:
            self.fail(ValueError("compare first"))
            return None
        chosen = optional_path(folder if folder is not None else self.export_folder.value)
        if chosen is None:
            self.fail(ValueError("choose a folder in 'export to' first"))
            return None
        if self._worker is not None:
            return None
        target = Path(chosen) / EXPORT_SUBFOLDER
        info = {
            "dataset": str(result.run.dataset.path),
            "runs_given": [str(loaded.path) for loaded in result.run.runs.values()],
            "written_by": "the napari Evaluation dock",
        }
        self._start(
            export_job, target, result, info, message=f"Writing {target}...",
            returned=lambda written: setattr(self.status, "value", f"Saved the comparison in "
                                             f"{written}"),
        )  # fmt: skip
        return target

    @property
    def busy(self) -> bool:
        """True while a comparison, an evaluation or an export runs."""
        return self._worker is not None


if __name__ == "__main__":  # a demo: the 2D sample population with the sample model
    import napari

    from brainvae.napari.launch import build_viewer

    viewer, _docks = build_viewer(2)
    viewer.window.add_plugin_dock_widget("napari-brainvae", "Evaluation", tabify=True)
    napari.run()
