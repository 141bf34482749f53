"""Aging and disease dock: learn the aging direction tau_a from the controls' pairs of visits
and one disease direction tau_d per other group (Ouyang et al. 2022, post hoc on a trained
model; issue 18), then watch each group's simulated brain age along an age slider.

It only orchestrates: the form builds a LongitudinalRequest (every default read from it), Run
drains `longitudinal_run` in a napari worker on the latent explorer's codes of the population
when the viewer's state holds them (no re-encoding), else on codes encoded in the worker.
longitudinal_results shows the analysis in words (unstable directions in orange) and the
loadings as bars; longitudinal_layers shows each group's decoded brain at the slider's age and
its change since the first age, in rows below the scan. Export writes the result folder as
`brainvae longitudinal` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    Label,
    LineEdit,
    PushButton,
    Slider,
    SpinBox,
)

from brainvae.napari.widgets.analysis_dock import AnalysisDock
from brainvae.napari.widgets.collapsible import CollapsibleSection
from brainvae.napari.widgets.longitudinal_form import (
    BY_AGE,
    LongitudinalRun,
    all_columns,
    column_values,
    combo_text,
    group_columns,
    longitudinal_job,
    request_of,
)
from brainvae.napari.widgets.longitudinal_layers import TrajectoryLayers, years_text
from brainvae.napari.widgets.longitudinal_results import LongitudinalResults

if TYPE_CHECKING:
    import napari

EXPORT_SUBFOLDER = "longitudinal_analysis"


class LongitudinalWidget(AnalysisDock):
    """Aging and disease directions from pairs of visits, and each group's simulated aging."""

    STATE_FIELD = "longitudinal"

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        from qtpy.QtWidgets import QComboBox

        from brainvae.longitudinal import LongitudinalRequest
        from brainvae.longitudinal.pairs import PAIRINGS

        super().__init__(napari_viewer, "Choose the group column and its control value, then Run.")
        defaults = LongitudinalRequest()
        self._pending: dict[str, Any] = {}
        self.layers = TrajectoryLayers(self._viewer)

        self.group_column = ComboBox(
            label="group column", choices=self._group_choices,
            tooltip="the column naming each subject's group (controls and diseases)",
        )  # fmt: skip
        self.control = ComboBox(
            label="control value", choices=self._control_choices,
            tooltip="the group's value for healthy controls: tau_a is learned from their "
            "pairs of visits, every other value gets a disease direction tau_d",
        )  # fmt: skip
        self.control.native.setEditable(True)  # a value may also be typed
        self.control.native.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.subject_column = ComboBox(label="subject column", choices=self._all_choices)
        self.age_column = ComboBox(label="age column", choices=self._all_choices)
        self.order_column = ComboBox(
            label="order column", choices=self._order_choices,
            tooltip="the column ordering a subject's visits (a visit number or a date); "
            f"{BY_AGE}: by the age column",
        )  # fmt: skip
        self.pairing = ComboBox(
            label="pairing", choices=PAIRINGS, value=defaults.pairing,
            tooltip="consecutive visits of a subject, or every ordered pair of its visits",
        )  # fmt: skip
        self.years_from = LineEdit(
            label="years from", value=_years_field(defaults.years, 0),
            tooltip="first age of the simulated trajectories; empty (with 'years to' empty): "
            "the controls' 10th percentile",
        )  # fmt: skip
        self.years_to = LineEdit(
            label="years to", value=_years_field(defaults.years, 1),
            tooltip="last age; empty: the controls' 90th percentile",
        )  # fmt: skip
        self.years_from.native.setPlaceholderText("the controls' 10th percentile")
        self.years_to.native.setPlaceholderText("the controls' 90th percentile")
        self.frames = SpinBox(label="frames (ages)", min=2, max=200, value=defaults.frames)
        self.n_splits = SpinBox(
            label="stability splits", min=1, max=100_000, value=defaults.n_splits,
            tooltip="random halvings of the subjects: each direction's stability is the mean "
            "cosine between the directions of the two halves",
        )  # fmt: skip
        self.columns_section = CollapsibleSection(
            "Subjects, ages and visits",
            [self.subject_column, self.age_column, self.order_column, self.pairing,
             self.n_splits],
        )  # fmt: skip
        self.age_slider = Slider(label="age", min=0, max=1, value=0, readout=False,
                                 enabled=False)  # fmt: skip
        self.age_shown = Label(value="")
        self.age_row = Container(
            widgets=[self.age_slider, self.age_shown], layout="horizontal", labels=False
        )
        self.age_row.margins = (0, 0, 0, 0)
        self.age_row.label = "age (years)"
        self.export_folder = FileEdit(label="export to", mode="d")
        self.export_button = PushButton(text="Export tables, trajectories and summary")
        self.extend(
            [
                self.model_source, self.run_folder, self.population, self.group_column,
                self.control, self.years_from, self.years_to, self.frames,
                self.columns_section, self.buttons, self.progress, self.status, self.age_row,
            ]
        )  # fmt: skip
        form = getattr(self, "inner", None) or self.native
        layout = form.layout()
        self.results = LongitudinalResults(layout)
        export_row = Container(widgets=[self.export_folder, self.export_button])
        layout.addWidget(export_row.native)
        self._export_row = export_row

        self.age_slider.changed.connect(self._on_age)
        self.group_column.changed.connect(self._refresh_values)
        self.export_button.changed.connect(lambda *_: self.export())
        self.population.changed.connect(self._refresh_columns)
        self._viewer.layers.events.inserted.connect(self._refresh_choices)
        self._viewer.layers.events.removed.connect(self._refresh_choices)
        self._refresh_columns()

    # ---- choices ---------------------------------------------------------------------------
    def _group_choices(self, *_args) -> list[str]:
        return group_columns(self._population_table())

    def _control_choices(self, *_args) -> list[str]:
        return column_values(self._population_table(), self.group_column.value)

    def _all_choices(self, *_args) -> list[str]:
        return all_columns(self._population_table())

    def _order_choices(self, *_args) -> list[str]:
        return [BY_AGE, *all_columns(self._population_table())]

    def _refresh_choices(self, *_args) -> None:
        before = self.population.value
        self.population.reset_choices()
        if self.population.value != before or not self.group_column.choices:
            self._refresh_columns()

    def _refresh_columns(self, *_args) -> None:
        """Another population or its table: its columns, each field on the request's default
        when the table has it."""
        from brainvae.longitudinal import LongitudinalRequest

        defaults = LongitudinalRequest()
        for combo, default in (
            (self.group_column, defaults.group),
            (self.subject_column, defaults.subject),
            (self.age_column, defaults.age),
            (self.order_column, defaults.order or BY_AGE),
        ):
            combo.reset_choices()
            if default in combo.choices:
                combo.value = default
        self._refresh_values()

    def _refresh_values(self, *_args) -> None:
        """The group column's values; the request's control value when there is one."""
        from brainvae.longitudinal import LongitudinalRequest

        self.control.reset_choices()
        control = LongitudinalRequest().control
        if control in self.control.choices:
            self.control.value = control

    # ---- the request -----------------------------------------------------------------------
    def chosen_request(self) -> Any:
        """The form as a LongitudinalRequest (errors name the field)."""
        return request_of(self)

    def _check_control(self, request: Any, population: Any) -> None:
        """A control value the group column does not hold is said before any work starts."""
        values = column_values(population.table, request.group)
        if request.control not in values:
            raise ValueError(
                f"control value {request.control!r} is not in column '{request.group}'; "
                f"its values are: {', '.join(values)}"
            )

    # ---- running ---------------------------------------------------------------------------
    def run(self, *_args) -> None:
        """Learn the directions and decode the trajectories in a worker, on the explorer's
        codes when it holds them."""
        from brainvae.napari.widgets.explorer_population import stack_placement

        if self._worker is not None:
            return
        try:
            model, layer, population = self.model_and_population()
            if population.table is None:
                raise ValueError(f"{layer.name}: the population has no subjects table")
            request = self.chosen_request()
            self._check_control(request, population)
        except Exception as err:  # noqa: BLE001 - any input problem goes to the user
            self.fail(err)
            return
        statistics = self._state.statistics_for(model, population)
        self._pending = stack_placement(layer)
        how = "the latent explorer's codes" if statistics is not None else "encoding first"
        self.start(
            longitudinal_job, model, population, request, statistics,
            message=f"Learning aging and disease from {population.n_scans} scans ({how})...",
        )  # fmt: skip

    def progress_of(self, report: Any) -> tuple[int, int]:
        """The stage in the status line; the bar counts steps (or scans while encoding)."""
        return self.staged_progress(report)

    def show_result(self, run: LongitudinalRun) -> None:
        result = run.result
        self.results.show(result.analysis)
        years = np.asarray(result.years, dtype=float)
        self.age_slider.changed.disconnect(self._on_age)
        self.age_slider.max = len(years) - 1
        self.age_slider.value = 0
        self.age_slider.enabled = True
        self.age_slider.changed.connect(self._on_age)
        self.layers.show(result, self._pending, 0)
        self._say_age()
        source = "the latent explorer's codes" if run.reused_codes else "codes encoded here"
        groups = ", ".join(str(g) for g in result.frames)
        self.status.value = (
            f"Done on {source}: trajectories of {groups} from {years_text(years[0])} to "
            f"{years_text(years[-1])} years. Move the age slider; the brains and their change "
            "since the first age are below the scan."
        )

    # ---- the age slider --------------------------------------------------------------------
    @property
    def ages(self) -> np.ndarray:
        """The trajectory's ages (years) the slider steps through (empty before a run)."""
        run = self.last_run
        return np.zeros(0) if run is None else np.asarray(run.result.years, dtype=float)

    def set_age(self, years: float) -> int:
        """Move the slider to the trajectory's age nearest `years`; returns its frame."""
        ages = self.ages
        if ages.size == 0:
            raise ValueError("run the analysis first")
        index = int(np.argmin(np.abs(ages - float(years))))
        self.age_slider.value = index
        return index

    def _on_age(self, *_args) -> None:
        self.layers.set_index(int(self.age_slider.value))
        self._say_age()

    def _say_age(self) -> None:
        ages = self.ages
        if ages.size:
            index = int(self.age_slider.value)
            self.age_shown.value = f"{years_text(ages[index])} y ({index + 1} of {ages.size})"

    # ---- export ----------------------------------------------------------------------------
    def export(self, folder: str | Path | None = None) -> Path | None:
        """Write the last result into FOLDER/longitudinal_analysis (tables, trajectories and a
        summary, as `brainvae longitudinal` does) in a worker; returns the folder it is
        written to, None when nothing started."""
        from brainvae.exports.longitudinal_folder import write_longitudinal_results

        run = self.last_run
        if run is None:
            return self.export_destination(folder)  # says what is missing
        return self.export_in_worker(
            folder,
            EXPORT_SUBFOLDER,
            "the aging and disease analysis",
            lambda target, info: write_longitudinal_results(
                target, run.result, run.population, info, True
            ),
        )

    @property
    def busy(self) -> bool:
        """True while the analysis or an export runs."""
        return self._worker is not None

    @property
    def control_text(self) -> str:
        """The control value as shown (chosen or typed)."""
        return combo_text(self.control)


def _years_field(years: tuple[float, float] | None, end: int) -> str:
    """A years field's text for the request's default: empty for None (the percentiles)."""
    return "" if years is None else f"{years[end]:g}"


if __name__ == "__main__":  # a demo: the 2D sample population with the sample model
    import napari

    from brainvae.napari.launch import build_viewer, raise_dock

    viewer, _docks = build_viewer(2)
    raise_dock(viewer, "Aging and disease")
    napari.run()
