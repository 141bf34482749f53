"""Training dock: pick a dataset and a model, train in the background, watch the loss fall.

It only orchestrates: reads the form into a ModelChoice and a TrainConfig, runs
brainvae.napari.workers.train.train_run in a napari worker, and turns what it yields into
plot points, a progress bar and, in the dock's reconstructions tab, validation images above
their reconstructions. The viewer's camera never moves: the reconstructions go into the
viewer only when the user asks (a layer beside the brain, the view left as it was).
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import Container

from brainvae.napari.task_list import task_list, task_status
from brainvae.napari.viewer_state import ModelInUse
from brainvae.napari.widgets.dock_base import DockBase
from brainvae.napari.widgets.paths import optional_path
from brainvae.napari.widgets.scrolling import scroll_body
from brainvae.napari.widgets.training_data import NotPrepared, TrainingData
from brainvae.napari.widgets.training_form import (
    TrainingForm,
    new_run_folder,
    run_axes,
)
from brainvae.napari.widgets.training_previews import (
    PREVIEW_S,
    RECONSTRUCTIONS_TAB,
    TrainingPreviews,
    results_tabs,
)

if TYPE_CHECKING:
    import napari

REDRAW_S = 1.0
"""The plot, labels and progress redraw at most this often during training. Each redraw of a
napari window repaints it whole while holding the GIL (28-47 ms with software OpenGL under
Xvfb); redrawing per batch slowed training in the dock 4x (benchmarks/bench_training_dock.py)."""


class TrainingWidget(TrainingForm, TrainingData, TrainingPreviews, DockBase, Container):
    """Train a beta-VAE, VAE, Soft-IntroVAE or PCA on a prepared population, with live plots."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=False)
        self.setup_dock(napari_viewer, "Choose a dataset and press Start.")
        self._cancel = threading.Event()
        self._started = 0.0
        self._last_result: Any = None
        self._run_dir: Path | None = None
        self._last_draw = 0.0
        self._last_preview_shown = 0.0
        self._latest_batch: Any = None  # the newest batch report not yet shown
        self._verdict: Any = None  # the last run's TrainingVerdict (did the model learn?)
        self._latest_epoch: Any = None  # the newest epoch report not yet shown, if newer
        self._pending_preview: Any = None
        self._task_id: Any = None  # the running training in napari's task list
        from qtpy.QtCore import QTimer

        self._redraw_timer = QTimer()
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.timeout.connect(self._redraw)
        self._preview_placement: dict[str, Any] = {}  # the population's grid
        self._dataset_path: Path | None = None  # the dataset of the run being shown
        self._prepared: dict[Any, Path] = {}  # population folder -> dataset prepared here
        self._tasks: Any = None  # napari's task list, when a training registered in it
        self._sample_width = 0  # its scans' width in pixels
        self._preview_mosaic: tuple[Any, int] | None = None  # the newest shown, with its epoch

        buttons, monitor = self._build_form()
        from brainvae.napari.widgets.loss_plot import LossPlot
        from brainvae.napari.widgets.preview_panel import PreviewPanel

        self.plot = LossPlot()
        self.previews = PreviewPanel(
            "After each epoch, validation scans (top row) and their reconstructions (below) "
            "appear here; the viewer's view of the brain stays as it is."
        )
        self.results = results_tabs(self.plot.panel, self.previews, self.log_scale)
        self.body = Container(widgets=[self.form, self.advanced, buttons, monitor], labels=False)
        self.body.margins = (4, 4, 4, 4)
        self.append(self.body)
        self.body.native.layout().addWidget(self.results, 1)  # the plot takes spare height
        # Not Container(scrollable=True): napari docks self.native and leaves that scroll area
        # behind, still resizing the dock's widget to its own 638 x 478 viewport (the right of
        # the dock was cut off). The scroll area goes inside self.native instead.
        self.scroll_area = scroll_body(self, self.body)
        self.margins = (0, 0, 0, 0)

        self.dataset.changed.connect(self._on_dataset_changed)
        self.family.changed.connect(self._on_family_changed)
        self.likelihood.changed.connect(self._on_family_changed)
        self.length_unit.changed.connect(self._on_family_changed)
        self.device.changed.connect(self._show_device)
        for field in (self.family, self.likelihood, self.length_unit, self.latent):
            field.changed.connect(self._label_plot)
        self.start_button.changed.connect(self.start)
        self.stop_button.changed.connect(self.stop)
        self.resume_button.changed.connect(self.resume)
        self.reset_button.changed.connect(self.reset)
        self.load_button.changed.connect(self.load_run)
        self.log_scale.changed.connect(lambda value: self.plot.set_log(value))
        self.previews.show_in_viewer.clicked.connect(self.show_preview_layer)
        self._viewer.layers.events.inserted.connect(self._refresh_datasets)
        self._viewer.layers.events.removed.connect(self._refresh_datasets)
        self._on_dataset_changed()
        self._on_family_changed()
        self._show_device()
        self._label_plot()

    # ---- form ------------------------------------------------------------
    # ---- buttons ---------------------------------------------------------
    def start(self, *_args) -> None:
        """Train a new run in the run folder (refused when it holds one: Resume or Reset)."""
        self._launch(resume=False)

    def resume(self, *_args) -> None:
        """Continue the run in the run folder from its last checkpoint, up to `epochs`."""
        self._launch(resume=True)

    def stop(self, *_args) -> None:
        """Ask the trainer to stop after the current batch; it writes a checkpoint first."""
        if self._worker is not None:
            self._cancel.set()
            self.status.value = "Stopping after this batch (a checkpoint is written)..."

    def reset(self, *_args) -> None:
        """Forget the plot and progress and point at a fresh run folder (files are kept)."""
        if self._worker is not None:
            self.status.value = "Stop training before Reset."
            return
        self.plot.clear()
        self.previews.clear()
        self._preview_mosaic = None
        self.results.setTabText(RECONSTRUCTIONS_TAB, "reconstructions")
        self.progress.value = 0
        self.run_folder.value = new_run_folder()
        self._run_dir = None
        self.status.value = "Reset: Start trains a new run in the new run folder."

    def load_run(self, *_args) -> None:
        """Show a finished or stopped run's loss history (the run folder field says which)."""
        from brainvae.training import RunFolder
        from brainvae.training.history import read_history

        folder = optional_path(self.run_folder.value)
        history = None if folder is None else RunFolder(folder).history
        if history is None or not history.is_file():
            self.fail(ValueError(f"{folder}: no {RunFolder.HISTORY} here; choose a run folder"))
            return
        try:
            rows = read_history(history)  # an empty or damaged file: a message, not a crash
        except Exception as err:  # noqa: BLE001 - DataFileError naming the file
            self.fail(err)
            return
        self.plot.set_axes(self.length_unit.value, *run_axes(folder))
        self.plot.load_history(rows)
        self._run_dir = folder
        self.status.value = f"Loaded {folder.name}: {len(rows)} epoch(s)."

    # ---- running ---------------------------------------------------------
    def _launch(self, resume: bool) -> None:
        from napari.qt.threading import create_worker

        from brainvae.napari.population_layers import dataset_placement
        from brainvae.napari.workers.train import train_run

        if self._worker is not None:
            return
        try:
            try:
                opened = self.open_dataset()
            except NotPrepared as missing:
                self._prepare_then_launch(missing.population, resume)
                return
            dataset = opened.path
            choice = self.model_choice()
            config = self.train_config()
            run_dir = optional_path(self.run_folder.value)
            if run_dir is None:
                raise ValueError("choose a run folder")
        except Exception as err:  # noqa: BLE001 - any form error goes to the user
            self.fail(err)
            return
        self.plot.clear()
        self._label_plot()  # the form's units, for this run's curves
        from brainvae.training import RunFolder

        if resume and RunFolder(run_dir).history.is_file():
            from brainvae.training.history import read_history

            try:
                self.plot.load_history(read_history(RunFolder(run_dir).history))
            except Exception as err:  # noqa: BLE001 - a damaged history: say so, don't resume
                self.fail(err)
                return
        self._preview_placement = dict(dataset_placement(opened))
        self._dataset_path, self._sample_width = opened.path, int(opened.scan_shape[-1])
        self._cancel = threading.Event()
        self._verdict = None
        self._started = time.monotonic()
        self._run_dir = run_dir
        self._set_running(True)
        self.status.value = ("Resuming " if resume else "Starting ") + f"{run_dir.name}..."
        self._last_draw = self._last_preview_shown = 0.0
        self._tasks = tasks = task_list(self)  # kept: the dock may be gone when it ends
        self._task_id = None if tasks is None else tasks._register_task_status(
            "napari-brainvae", task_status("PENDING"), f"training {run_dir.name}",
            cancel_callback=self._stop_for_close,
        )  # fmt: skip
        self._worker = create_worker(
            train_run,
            choice,
            dataset,
            config,
            run_dir,
            resume=resume,
            cancel=self._cancel,
            preview_every=int(self.preview_every.value),
            _connect={
                "yielded": self._on_report,
                "returned": self._on_finished,
                "errored": self.fail,
                "finished": lambda: self._set_running(False),
            },
        )

    def _set_running(self, running: bool) -> None:
        if not running:
            self._worker = None
            self._redraw_timer.stop()
            self._set_task_status("CANCELLED")  # ended without a result (napari quit it)
        if self._closed:  # the dock is gone; the worker's last signals have no widget
            return
        self.start_button.enabled = not running
        self.reset_button.enabled = not running
        self.load_button.enabled = not running
        self.stop_button.enabled = running
        self.resume_button.enabled = not running and self.family.value != "pca"

    def _on_report(self, report: Any) -> None:
        """Record the worker's reports as they come; show them at most every REDRAW_S (GUI thread)."""
        if self._closed:  # the dock is gone; the worker's last signals have no widget
            return
        from brainvae.napari.workers.train import Preview
        from brainvae.training import BatchReport, EpochReport
        from brainvae.training.verdict import TrainingVerdict

        if isinstance(report, BatchReport):
            self.plot.add_batch(report, draw=False)
            self._latest_batch, self._latest_epoch = report, None
        elif isinstance(report, EpochReport):
            self.plot.add_epoch(report, draw=False)
            self._latest_epoch = report
        elif isinstance(report, Preview):
            self._pending_preview = report
        elif isinstance(report, TrainingVerdict):
            self._verdict = report
        wait = REDRAW_S - (time.monotonic() - self._last_draw)
        if wait <= 0:
            self._redraw()
        elif not self._redraw_timer.isActive():  # the newest state is shown when it is due
            self._redraw_timer.start(int(wait * 1000) + 1)

    def _redraw(self, final: bool = False) -> None:
        """Show the newest report: plot curves, progress bars, status; and a due preview
        (final: training ended, so the last preview is shown whenever it came)."""
        if self._closed:
            return
        self._redraw_timer.stop()
        self._last_draw = time.monotonic()
        self.plot.draw()
        batch, self._latest_batch = self._latest_batch, None
        epoch, self._latest_epoch = self._latest_epoch, None
        if batch is not None:
            self.progress.max = batch.n_batches
            self.progress.value = batch.batch
            eta = "" if not math.isfinite(batch.eta_s) else f", ETA {_duration(batch.eta_s)}"
            self.status.value = (
                f"epoch {batch.epoch}/{self.epochs.value}, batch {batch.batch}/"
                f"{batch.n_batches}: loss {batch.loss:.4g}, "
                f"{batch.images_per_s:.0f} images/s{eta}"
            )
            self._set_task_status("BUSY", f"epoch {batch.epoch}/{self.epochs.value}")
        if epoch is not None:  # came after the batch: its summary is the newer news
            from brainvae.training.progress import VALIDATION_TAG

            val = "" if epoch.val_loss is None else f", val {VALIDATION_TAG} {epoch.val_loss:.4g}"
            self.status.value = (
                f"epoch {epoch.epoch}/{self.epochs.value} done: train {epoch.train_loss:.4g}"
                f"{val}, {epoch.active_units} active latent(s)"
            )
        due = self._last_draw - self._last_preview_shown >= PREVIEW_S
        if self._pending_preview is not None and (due or final):
            self._show_preview(self._pending_preview)
            self._pending_preview = None
            self._last_preview_shown = self._last_draw

    def _on_finished(self, result: Any) -> None:
        if self._closed:  # the dock is gone; the worker's last signals have no widget
            return
        self._last_result = result
        self._redraw(final=True)
        cancelled = not isinstance(result, Path) and result.reason == "cancelled"
        self._set_task_status("CANCELLED" if cancelled else "COMPLETED")
        seconds = time.monotonic() - self._started
        if isinstance(result, Path):  # PCA
            self.status.value = f"Fitted PCA in {seconds:.1f} s; saved to {result}."
        elif result.reason == "cancelled":
            self.status.value = (
                f"Stopped after {result.epochs_completed} complete epoch(s); checkpoint saved "
                f"in {result.run_dir.name}. Resume continues from it."
            )
        else:
            verdict = self._verdict.describe() + " " if self._verdict is not None else ""
            self.status.value = (
                f"{verdict}Done: {result.epochs_completed} epoch(s), {result.step} steps in "
                f"{seconds:.1f} s; saved to {result.run_dir}."
            )
            self.status.tooltip = self.status.value  # the whole verdict, past the 5 lines
            if self._verdict is not None and not self._verdict.learned:
                from napari.utils.notifications import show_warning

                show_warning(f"brainvae: {self._verdict.describe()}")
        self._hand_to_explorers(result if isinstance(result, Path) else result.run_dir)

    def _hand_to_explorers(self, run_dir: Path) -> None:
        """Make the model just trained (or stopped) the viewer's model in use: the latent
        explorer shows it and the analysis docks work with it."""
        from brainvae.models import load_model

        try:
            model = load_model(run_dir).eval()
        except Exception as err:  # noqa: BLE001 - the run folder is still there to load
            self.status.value += f" Its model could not be loaded: {err}"
            return
        self._state.model = ModelInUse(model, run_dir, run_dir.name)
        self.status.value += " It is now the model in use (latent explorer, analysis docks)."

    def fail(self, err: BaseException) -> None:
        """The status line and a notification say it; the plot shows what was done."""
        if self._closed:  # the dock is gone; the worker's last signals have no widget
            return
        self._redraw(final=True)
        self._set_task_status("FAILED", str(err))
        super().fail(err)

    def _set_task_status(self, status: str, description: str = "") -> None:
        """Keep napari's task list current: it names a running training when asking before
        the viewer closes."""
        if self._task_id is None:
            return
        name = self._run_dir.name if self._run_dir is not None else "run"
        text = f"training {name}" + (f": {description}" if description else "")
        if self._tasks is not None:
            self._tasks._update_task_status(self._task_id, task_status(status), text)
        if status not in ("PENDING", "BUSY"):
            self._task_id = None

    def _stop_for_close(self) -> bool:
        """napari cancels busy tasks when its window closes (after asking the user), before it
        quits its workers: stop training now, so the engine writes its checkpoint (napari
        would abort the generator between two yields and skip it)."""
        if self._worker is not None and not self._closed:
            self.status.value = "Viewer closing: stopping training and writing a checkpoint..."
        self._stop_and_wait()
        return True

    def closing(self) -> None:
        """Closing the dock stops training cleanly (a checkpoint is written)."""
        self._stop_and_wait()

    def _stop_and_wait(self) -> None:
        """Cancel the running training and block until its worker has written and ended."""
        worker = self._worker
        if worker is None:
            return
        self._cancel.set()
        _wait_until_done(worker, seconds=60.0)

    @property
    def last_result(self) -> Any:
        """The last finished training's TrainResult (or the PCA run folder)."""
        return self._last_result

    @property
    def run_dir(self) -> Path | None:
        """The run folder last trained or loaded."""
        return self._run_dir


def _wait_until_done(worker: Any, seconds: float) -> None:
    """Block until the worker's thread ends (it stops within one batch once cancelled)."""
    deadline = time.monotonic() + seconds
    while worker.is_running and time.monotonic() < deadline:
        time.sleep(0.01)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
