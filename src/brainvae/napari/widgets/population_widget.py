"""Population analysis dock: ask the population questions of a model's latent space (issue 17)
and browse the population on its latent map.

It only orchestrates: the form builds a PopulationRequest (every default read from it), Run
drains `population_run` in a napari worker on the latent explorer's codes of the population
when the viewer's state holds them (no re-encoding), else on codes encoded in the worker, and
population_plots shows the result. The latent map (population_map) is linked to the viewer
(population_link): a clicked point moves the population's scan slider there, shows its table
row and sends its code to the latent explorer (state.code); the scan under the slider is
ringed on the map; two groups drawn on it become layers under the scans (population_groups).
Export writes the result folder as `brainvae population` does. The result stays in this dock:
no other dock uses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    LineEdit,
    PushButton,
    SpinBox,
)

from brainvae.napari.widgets.analysis_dock import AnalysisDock
from brainvae.napari.widgets.collapsible import CollapsibleSection
from brainvae.napari.widgets.population_form import (
    DRAG_CHOICES,
    NO_CLASS,
    PopulationRun,
    analysis_job,
    column_choices,
    map_choices,
    request_of,
)
from brainvae.napari.widgets.population_groups import GroupComparison
from brainvae.napari.widgets.population_link import MapLink
from brainvae.napari.widgets.population_map import LatentMapPanel
from brainvae.napari.widgets.population_plots import PopulationResults
from brainvae.napari.widgets.subject_info import SubjectInfo

if TYPE_CHECKING:
    import napari

EXPORT_SUBFOLDER = "population_analysis"


class PopulationAnalysisWidget(MapLink, AnalysisDock):
    """Classify, check acquisition bias, score measures, and browse the latent map."""

    STATE_FIELD = "questions"

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        from brainvae.population import VALIDATION_SCHEMES, PopulationRequest
        from brainvae.population.brain_scores import REGRESSIONS

        super().__init__(napari_viewer, "Choose a class column or measures, then Run.")
        defaults = PopulationRequest()
        self._pending: tuple[str | None, dict[str, Any]] = (None, {})
        self._run_layer_name: str | None = None
        self._placement: dict[str, Any] = {}
        self.comparison = GroupComparison(self._viewer, self._say, self.fail, self.guarded)

        self.class_column = ComboBox(label="class column", choices=self._class_choices)
        self.merge = LineEdit(
            label="merge classes",
            value="; ".join(f"{old}={new}" for old, new in defaults.merge.items()),
            tooltip="classes to merge, then = and the new name; several with ';', e.g. "
            "leuko_1,leuko_2,leuko_3=leuko",
        )
        self.regress = LineEdit(
            label="measures",
            value=", ".join(defaults.regress),
            tooltip="numeric columns to predict from the latents (brain scores), comma "
            "separated, e.g. age, lesion_load_ml",
        )
        self.regression = ComboBox(
            label="regression", choices=REGRESSIONS, value=defaults.regression
        )
        self.validation = ComboBox(
            label="validation", choices=VALIDATION_SCHEMES, value=defaults.validation,
            tooltip="auto: subject-grouped cross-validation below 1,000 subjects, else the "
            "train/test split; cv or split to choose",
        )  # fmt: skip
        self.folds = SpinBox(label="folds", min=2, max=100, value=defaults.folds)
        self.shrinkage = LineEdit(
            label="LDA shrinkage",
            value="none" if defaults.shrinkage is None else str(defaults.shrinkage),
            tooltip="none (plain LDA, as published), auto (Ledoit-Wolf) or a number in [0, 1]",
        )
        self.all_latents = CheckBox(label="all latents (inactive too)", value=defaults.all_latents)
        self.reference = CheckBox(label="PCA-of-images reference", value=defaults.reference)
        self.n_bootstrap = SpinBox(
            label="bootstrap resamples", min=1, max=100_000, value=defaults.n_bootstrap
        )
        self.n_permutations = SpinBox(
            label="permutations", min=1, max=100_000, value=defaults.n_permutations
        )
        self.statistics_options = CollapsibleSection(
            "Validation and statistics",
            [self.validation, self.folds, self.shrinkage, self.all_latents, self.reference,
             self.n_bootstrap, self.n_permutations],
        )  # fmt: skip
        self.map_method = ComboBox(label="map", choices=map_choices(), value=defaults.map_method)
        self.map_x = SpinBox(label="map latent x", min=1, max=4096, value=1, visible=False)
        self.map_y = SpinBox(label="map latent y", min=1, max=4096, value=2, visible=False)
        self.colour_by = ComboBox(label="colour by", choices=self._colour_choices)
        self.drag = ComboBox(label="left drag", choices=DRAG_CHOICES, value="pan")
        self.shape = ComboBox(label="group shape", choices=("box", "lasso"), value="box")
        self.clear_groups_button = PushButton(text="Clear groups")
        self.export_folder = FileEdit(label="export to", mode="d")
        self.export_button = PushButton(text="Export tables, figures and summary")
        self.extend(
            [
                self.model_source, self.run_folder, self.population, self.class_column,
                self.merge, self.regress, self.regression, self.statistics_options, self.map_method,
                self.map_x, self.map_y, self.buttons, self.progress, self.status,
                self.colour_by, self.drag, self.shape, self.clear_groups_button,
            ]
        )  # fmt: skip
        form = getattr(self, "inner", None) or self.native
        layout = form.layout()
        self.map = LatentMapPanel()
        layout.addWidget(self.map.widget)
        self.subject = SubjectInfo()
        self.subject.native.horizontalHeader().setStretchLastSection(True)  # whole file names
        layout.addWidget(self.subject.native)
        self.results = PopulationResults(layout)
        export_row = Container(widgets=[self.export_folder, self.export_button])
        layout.addWidget(export_row.native)
        self._export_row = export_row

        self.map.on_click = self.select_scan
        self.map.describe = self.describe_scan
        self.map.on_group = self._on_group
        self.map_method.changed.connect(self._on_map_method)
        self.map_x.changed.connect(lambda *_: self._redraw_map())
        self.map_y.changed.connect(lambda *_: self._redraw_map())
        self.colour_by.changed.connect(lambda *_: self._colour_map())
        self.drag.changed.connect(self._on_drag_mode)
        self.shape.changed.connect(self._on_drag_mode)
        self.clear_groups_button.changed.connect(lambda *_: self.clear_groups())
        self.export_button.changed.connect(lambda *_: self.export())
        self.population.changed.connect(self._refresh_columns)
        self._viewer.layers.events.inserted.connect(self._refresh_choices)
        self._viewer.layers.events.removed.connect(self._refresh_choices)
        self._viewer.dims.events.current_step.connect(self._on_step)
        if defaults.classify is not None:
            self.class_column.value = defaults.classify
        else:
            self._refresh_columns()

    # ---- choices ---------------------------------------------------------------------------
    def _class_choices(self, *_args) -> list[str]:
        return [*column_choices(self._population_table()), NO_CLASS]

    def _colour_choices(self, *_args) -> list[str]:
        return column_choices(self._population_table())

    def _refresh_choices(self, *_args) -> None:
        self.population.reset_choices()
        self._refresh_columns()

    def _refresh_columns(self, *_args) -> None:
        """Another population or its table: its columns; the first categorical-looking one
        becomes the class column when there was no table before."""
        from brainvae.population import PopulationRequest

        had_table = len(self.class_column.choices) > 1
        self.class_column.reset_choices()
        self.colour_by.reset_choices()
        columns = [c for c in self.class_column.choices if c != NO_CLASS]
        if not had_table and columns and PopulationRequest().classify is None:
            self.class_column.value = columns[0]

    def _on_map_method(self, *_args) -> None:
        latents = self.map_method.value == "latents"
        self.map_x.visible = self.map_y.visible = latents
        if latents or self.map_method.value == self._shown_method():
            self._redraw_map()
        elif self.last_run is not None:
            self.status.value = f"Press Run to compute the {self.map_method.value} map."

    def _on_drag_mode(self, *_args) -> None:
        mode = self.drag.value
        self.map.set_select(None if mode == "pan" else mode, str(self.shape.value))

    # ---- the request -----------------------------------------------------------------------
    def chosen_request(self) -> Any:
        """The form as a PopulationRequest (errors name the field)."""
        return request_of(self)

    # ---- running ---------------------------------------------------------------------------
    def run(self, *_args) -> None:
        """Ask the form's questions in a worker, on the explorer's codes when it holds them."""
        from brainvae.napari.widgets.explorer_population import stack_placement

        if self._worker is not None:
            return
        try:
            model, layer, population = self.model_and_population()
            request = self.chosen_request()
        except Exception as err:  # noqa: BLE001 - any input problem goes to the user
            self.fail(err)
            return
        statistics = self._state.statistics_for(model, population)
        self._pending = (layer.name, stack_placement(layer))
        how = "the latent explorer's codes" if statistics is not None else "encoding first"
        self.start(
            analysis_job, model, population, request, statistics,
            message=f"Analysing {population.n_scans} scans ({how})...",
        )  # fmt: skip

    def progress_of(self, report: Any) -> tuple[int, int]:
        """The stage in the status line; the bar counts steps (or scans while encoding)."""
        return self.staged_progress(report)

    def show_result(self, run: PopulationRun) -> None:
        self._run_layer_name, self._placement = self._pending
        analysis = run.analysis
        self.results.show(analysis)
        if analysis.request.classify and analysis.request.classify in self.colour_by.choices:
            self.colour_by.value = analysis.request.classify
        self.map_x.max = self.map_y.max = int(run.codes.shape[1])
        self.clear_groups()
        self._redraw_map()
        source = "the latent explorer's codes" if run.reused_codes else "codes encoded here"
        parts = []
        if analysis.classification is not None:
            parts.append(analysis.classification.describe())
        parts += [score.describe() for score in analysis.scores]
        warned = f" {len(analysis.warnings())} warning(s) below." if analysis.warnings() else ""
        self.status.value = f"Done on {source}. " + "; ".join(parts) + "." + warned
        self._on_step()

    def _say(self, text: str) -> None:
        if not self._closed:
            self.status.value = text

    # ---- groups ----------------------------------------------------------------------------
    def _groups(self) -> dict[str, np.ndarray]:
        return dict(self.map.groups)

    def select_group(self, name: str, rows: Any) -> None:
        """Make population rows `rows` group `name` ("A" or "B"), as a drawn shape does."""
        self.map.show_group(name, np.asarray(rows, dtype=np.int64))
        self._on_group(name, np.asarray(rows, dtype=np.int64))

    def select_class_groups(self, column: str, value_a: Any, value_b: Any) -> None:
        """Group A: the scans whose `column` is value_a; group B: value_b."""
        values = self._run_table()[column].astype(str).to_numpy()
        self.select_group("A", np.flatnonzero(values == str(value_a)))
        self.select_group("B", np.flatnonzero(values == str(value_b)))

    def clear_groups(self) -> None:
        self.map.groups = {}
        for item in self.map.group_items.values():
            item.setData([], [])

    def _on_group(self, name: str, rows: np.ndarray) -> None:
        """A group was drawn: compare A (and B) in a worker; the layers follow."""
        run = self.last_run
        groups = self._groups()
        if run is None or "A" not in groups:
            self.status.value = f"Group {name}: {len(rows)} scans. Draw group A too."
            return
        layer = self._run_layer()
        if layer is None:
            self.fail(ValueError("the population layer of the last run is gone: Run again"))
            return
        if len(rows) == 0:
            self.fail(ValueError(f"group {name} is empty: draw around some points"))
            return
        self.comparison.compare(
            layer, run.codes, groups["A"], groups.get("B"), run.model, self._placement
        )

    @property
    def busy(self) -> bool:
        """True while the analysis, an export or a group comparison runs."""
        return self._worker is not None or self.comparison.busy

    @property
    def last_contrast(self) -> Any:
        """The last comparison of the groups (brainvae.population.GroupContrast)."""
        return self.comparison.last

    def scroll_to_map(self) -> None:
        """Scroll the dock so the latent map is at its top (the form above it out of view)."""
        from qtpy.QtWidgets import QApplication, QScrollArea

        QApplication.processEvents()  # the form laid out, so the map's place is known
        if isinstance(self.native, QScrollArea):
            self.native.verticalScrollBar().setValue(self.map.widget.y())

    # ---- export ----------------------------------------------------------------------------
    def export(self, folder: str | Path | None = None) -> Path | None:
        """Write the last result into FOLDER/population_analysis (tables as CSV, figures as
        PNG, a summary JSON, as `brainvae population` does) in a worker (the figures take a
        moment); returns the folder it is written to, None when nothing started."""
        from brainvae.exports.population_folder import write_population_results

        run = self.last_run
        if run is None:
            return self.export_destination(folder)  # says what is missing
        return self.export_in_worker(
            folder,
            EXPORT_SUBFOLDER,
            "the population analysis",
            lambda target, info: write_population_results(
                target, run.analysis, info, True, run.population.table
            ),
        )

    def closing(self) -> None:
        self._viewer.dims.events.current_step.disconnect(self._on_step)
        self.comparison.quit()


if __name__ == "__main__":  # a demo: the 2D sample population with the sample model
    import napari

    from brainvae.napari.launch import build_viewer, raise_dock

    viewer, _docks = build_viewer(2)
    raise_dock(viewer, "Population analysis")
    napari.run()
