"""What every analysis dock (receptive fields, projective fields) does the same way: the model
(the viewer's model in use or a run folder) and the population it runs on, Run and Cancel
buttons, a progress bar, one napari worker at a time whose reports move the bar, and the run
published in the viewer's state. The status line, errors and the closed guard come from
DockBase. Subclasses build the rest of their form and call `start`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from magicgui.widgets import ComboBox, Container, FileEdit, ProgressBar, PushButton

from brainvae.napari.layer_roles import population_layers, population_of
from brainvae.napari.viewer_state import AnalysisResult
from brainvae.napari.widgets.analysis_inputs import (
    EXPLORER_MODEL,
    RUN_FOLDER,
    chosen_model,
    population_layer,
    population_table,
)
from brainvae.napari.widgets.dock_base import DockBase
from brainvae.napari.widgets.scroll_dock import ScrollableContainer


class AnalysisDock(DockBase, ScrollableContainer):
    """A form whose Run starts one background analysis; subclasses define the rest.

    A finished run is published in the viewer's state under STATE_FIELD, with the model and
    population it belongs to, so other docks can use it without knowing this one.
    """

    STATE_FIELD: str | None = None  # "receptive", "projective", "questions", "longitudinal"

    def __init__(self, napari_viewer: Any, prompt: str) -> None:
        super().__init__()
        self.setup_dock(napari_viewer, prompt)
        self.last_run: Any = None
        self._run_population: Any = None  # the Population of the run going on or last run
        self.model_source = ComboBox(
            label="model", choices=(EXPLORER_MODEL, RUN_FOLDER), value=EXPLORER_MODEL
        )
        self.run_folder = FileEdit(label="run folder", mode="d", visible=False)
        self.population = ComboBox(label="population", choices=self._population_choices)
        self.model_source.changed.connect(self._on_model_source)
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.buttons = Container(
            widgets=[self.run_button, self.cancel_button], layout="horizontal", labels=False
        )
        self.progress = ProgressBar(label="progress", value=0, max=1)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)

    def _population_choices(self, *_args) -> list[str]:
        return [layer.name for layer in population_layers(self._viewer)]

    def _on_model_source(self, *_args) -> None:
        self.run_folder.visible = self.model_source.value == RUN_FOLDER

    def chosen_model(self) -> Any:
        """The viewer's model in use (the latent explorer's), or the run folder's."""
        return chosen_model(self._viewer, self.model_source.value, self.run_folder.value)

    def _population_layer(self) -> Any:
        return population_layer(self._viewer, self.population.value)

    def _population_table(self) -> Any:
        """The chosen population's scan table, or None (no population, or no table)."""
        try:
            return population_table(self._population_layer())
        except ValueError:
            return None

    def run(self, *_args) -> None:  # pragma: no cover - every dock defines it
        raise NotImplementedError

    def start(self, function: Callable[..., Any], *args: Any, message: str) -> None:
        """Run a generator function in a napari worker; its yields move the progress bar and
        its return value goes to show_result."""
        self.progress.value = 0
        self.status.value = message
        self.run_button.enabled, self.cancel_button.enabled = False, True
        try:
            self._run_population = population_of(self._population_layer())
        except ValueError:
            self._run_population = None
        self.start_worker(
            function,
            *args,
            yielded=self._on_progress,
            returned=self._on_result,
            finished=self._on_finished,
        )

    def show_result(self, run: Any) -> None:  # pragma: no cover - every dock defines it
        raise NotImplementedError

    def export_destination(self, folder: Any = None) -> Path | None:
        """The folder an export of the last run goes into (`folder`, else the dock's "export
        to" field); None after the status line said what is missing."""
        from brainvae.napari.widgets.paths import optional_path

        if self.last_run is None:
            self.fail(ValueError("run the analysis first"))
            return None
        chosen = optional_path(folder if folder is not None else self.export_folder.value)
        if chosen is None:
            self.fail(ValueError("choose a folder in 'export to' first"))
        return chosen

    def export_in_worker(
        self, folder: Any, subfolder: str, what: str, write: Callable[[Path, dict], Any]
    ) -> Path | None:
        """Write the last run into FOLDER/subfolder with write(target, info) in a worker (info:
        the model, the population and where the codes came from); returns the folder it is
        written to, None when nothing started."""
        chosen = self.export_destination(folder)
        if chosen is None or self._worker is not None:
            return None
        run = self.last_run
        info = {
            "model": getattr(self._state.model, "label", "") or type(run.model).__name__,
            "population": str(run.population.source),
            "n_scans": int(run.population.n_scans),
            "codes": "latent explorer" if run.reused_codes else "encoded by the dock",
        }
        target = Path(chosen) / subfolder
        self.status.value = f"Writing {target}..."
        self.start_worker(
            write, target, info,
            returned=lambda written: setattr(self.status, "value", f"Saved {what} in {written}"),
        )  # fmt: skip
        return target

    def progress_of(self, report: Any) -> tuple[int, int]:
        """(done, total) of one progress report (a dock may also say more in its status)."""
        return int(report.done), int(report.total)

    def model_and_population(self) -> tuple[Any, Any, Any]:
        """The chosen model, population layer and its Population; ValueError when the layer
        is not a population stack."""
        model = self.chosen_model()
        layer = self._population_layer()
        population = population_of(layer)
        if population is None:
            raise ValueError(f"{layer.name}: not a population stack")
        return model, layer, population

    def staged_progress(self, report: Any) -> tuple[int, int]:
        """A report with a stage: the stage in the status line; the bar counts its steps."""
        self.status.value = f"{report.stage[0].upper()}{report.stage[1:]}..."
        return int(report.done), max(int(report.total), 1)

    def cancel(self, *_args) -> None:
        if self.cancel_worker():
            self.status.value = "Cancelled."

    def _on_progress(self, report: Any) -> None:
        done, total = self.progress_of(report)
        self.progress.max = total
        self.progress.value = done

    def _on_result(self, run: Any) -> None:
        self.last_run = run
        self.show_result(run)
        self.publish(run)

    def model_of(self, run: Any) -> Any:
        """The model a finished run used."""
        return getattr(run, "model", None)

    def publish(self, run: Any) -> None:
        """Put the run in the viewer's state (STATE_FIELD) for the other docks."""
        if self.STATE_FIELD is None:
            return
        result = AnalysisResult(self.model_of(run), self._run_population, run)
        setattr(self._state, self.STATE_FIELD, result)

    def _on_finished(self) -> None:
        if not self._closed:
            self.run_button.enabled, self.cancel_button.enabled = True, False
