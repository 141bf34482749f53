"""What every analysis dock (receptive fields, projective fields) does the same way: the model
(the latent explorer's or a run folder) and the population it runs on, Run and Cancel
buttons, a progress bar and a status line, one napari worker at a time whose reports move the
bar, errors as a status line plus a notification, and the worker stopped when the dock
closes. Subclasses build the rest of their form and call `start`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from magicgui.widgets import ComboBox, Container, FileEdit, Label, ProgressBar, PushButton

from brainvae.napari.widgets.analysis_inputs import (
    EXPLORER_MODEL,
    RUN_FOLDER,
    chosen_model,
    population_layer,
    population_layers,
    population_table,
)
from brainvae.napari.widgets.scroll_dock import ScrollableContainer


class AnalysisDock(ScrollableContainer):
    """A form whose Run starts one background analysis; subclasses define the rest."""

    def __init__(self, napari_viewer: Any, prompt: str) -> None:
        super().__init__()
        self._viewer = napari_viewer
        self._real_viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self._worker: Any = None
        self._closed = False
        self.last_run: Any = None
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
        self.status = Label(label="status", value=prompt)
        self.status.native.setWordWrap(True)
        from qtpy.QtWidgets import QSizePolicy

        # a long status wraps at the dock's width instead of widening the dock
        self.status.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.native.destroyed.connect(self._on_destroyed)

    def _population_choices(self, *_args) -> list[str]:
        return [layer.name for layer in population_layers(self._viewer)]

    def _on_model_source(self, *_args) -> None:
        self.run_folder.visible = self.model_source.value == RUN_FOLDER

    def chosen_model(self) -> Any:
        """The latent explorer's model, or the run folder's."""
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
        from napari.qt.threading import create_worker

        self.progress.value = 0
        self.status.value = message
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self._worker = create_worker(
            function,
            *args,
            _connect={
                "yielded": self._on_progress,
                "returned": self._on_result,
                "errored": self.fail,
                "finished": self._on_finished,
            },
        )

    def show_result(self, run: Any) -> None:  # pragma: no cover - every dock defines it
        raise NotImplementedError

    def progress_of(self, report: Any) -> tuple[int, int]:
        """(done, total) of one progress report (a dock may also say more in its status)."""
        return int(report.done), int(report.total)

    def cancel(self, *_args) -> None:
        if self._worker is not None:
            self._worker.quit()
            self.status.value = "Cancelled."

    def _on_progress(self, report: Any) -> None:
        if self._closed:
            return
        done, total = self.progress_of(report)
        self.progress.max = total
        self.progress.value = done

    def _on_result(self, run: Any) -> None:
        if not self._closed:
            self.last_run = run
            self.show_result(run)

    def _on_finished(self) -> None:
        self._worker = None
        if not self._closed:
            self.run_button.enabled, self.cancel_button.enabled = True, False

    def fail(self, err: BaseException) -> None:
        """An input or computation problem: the status line says it, and a notification."""
        if self._closed:
            return
        from napari.utils.notifications import show_error

        self.status.value = f"Error: {err}"
        show_error(f"brainvae: {err}")

    def _on_destroyed(self, *_args) -> None:
        self._closed = True
        self.closing()
        if self._worker is not None:
            self._worker.quit()

    def closing(self) -> None:
        """Hook: let go of viewer callbacks when the dock closes."""
