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

from brainvae.napari.widgets.collapsible import CollapsibleSection, align_label_widths
from brainvae.napari.widgets.paths import optional_path, user_cache_dir
from brainvae.napari.widgets.scrolling import scroll_body

if TYPE_CHECKING:
    import napari

FAMILIES = (("beta-VAE", "beta_vae"), ("VAE (beta = 1)", "vae"), ("Soft-IntroVAE", "soft_intro_vae"), ("PCA baseline", "pca"))  # fmt: skip
ARCHITECTURES = ("small", "mouse2d", "flair3d", "ct2d")
FOLDER_CHOICE = "Folder below"
REDRAW_S = 1.0
"""The plot, labels and progress redraw at most this often during training. Each redraw of a
napari window repaints it whole while holding the GIL (28-47 ms with software OpenGL under
Xvfb); redrawing per batch slowed training in the dock 4x (benchmarks/bench_training_dock.py)."""
PREVIEW_S = 5.0
"""New reconstructions replace the shown ones at most this often (a redraw each)."""
PREVIEW_LAYER = "validation previews (top: input, below: reconstruction)"
RECONSTRUCTIONS_TAB = 1
"""The results tabs: the loss plot (0), then the reconstructions (1)."""
PCA_PLACEHOLDER = (
    "PCA is fitted in one go, so it has no loss curve: its reconstructions are in the "
    "reconstructions tab."
)


def default_runs_root() -> Path:
    """Where runs go unless the user picks a folder."""
    return user_cache_dir("runs")


class TrainingWidget(Container):
    """Train a beta-VAE, VAE, Soft-IntroVAE or PCA on a prepared population, with live plots."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=False)
        self._viewer = napari_viewer
        self._worker = None
        self._cancel = threading.Event()
        self._started = 0.0
        self._last_result: Any = None
        self._run_dir: Path | None = None
        self._closed = False
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
        self._sample_width = 0  # its scans' width in pixels
        self._preview_mosaic: tuple[Any, int] | None = None  # the newest shown, with its epoch

        # Every default is the library's default recipe (training.recipe.DEFAULT_RECIPE), the
        # same as `brainvae train` and TrainConfig(): it learns on 50 to 5,000 scans. Imported
        # here: brainvae.training pulls in torch, which napari's start-up should not pay for.
        from brainvae.training.recipe import DEFAULT_RECIPE as recipe

        self.dataset = ComboBox(
            label="dataset",
            choices=self._dataset_choices,
            tooltip="A population layer loaded by the Population data dock, or a folder",
        )
        self.dataset_folder = FileEdit(
            label="dataset folder", mode="d", tooltip="A folder made by `brainvae prepare`"
        )
        self.family = ComboBox(label="model", choices=FAMILIES, value="beta_vae")
        self.architecture = ComboBox(
            label="network",
            choices=ARCHITECTURES,
            value=recipe.architecture,
            tooltip="small: quick on a CPU, sized to the input; mouse2d / flair3d / ct2d: the "
            "published nets",
        )
        self.latent = SpinBox(label="latents (L)", min=1, max=512, value=8)
        self.beta = FloatSpinBox(
            label="beta",
            min=0.0001,
            max=1000.0,
            step=0.5,
            value=recipe.beta,
            tooltip="KL weight (it rises from 0 over the first "
            f"{recipe.kl_warmup_steps} steps: a KL warm-up against collapse)",
        )
        self.likelihood = ComboBox(
            label="likelihood",
            choices=(("Gaussian (squared error)", "gaussian"), ("Bernoulli (BCE)", "bernoulli")),
            value=recipe.likelihood,
        )
        self.sigma = FloatSpinBox(
            label="sigma",
            min=0.001,
            max=10.0,
            step=0.01,
            value=recipe.gaussian_sigma,
            tooltip="The Gaussian likelihood's noise sd in image units: smaller weighs "
            "reconstruction more against the KL (too large and every scan decodes to the mean)",
        )
        self.sigma.native.setDecimals(3)
        self.length_unit = ComboBox(
            label="train for",
            choices=(("optimiser steps", "steps"), ("epochs", "epochs")),
            value="steps",
            tooltip="Steps suit any population size (48 volumes are 3 steps an epoch at batch "
            "16); the steps are rounded up to whole epochs",
        )
        self.steps = SpinBox(label="steps", min=1, max=10_000_000, value=recipe.steps)
        self.epochs = SpinBox(label="epochs", min=1, max=100000, value=100)
        self.batch = SpinBox(label="batch size", min=1, max=4096, value=recipe.batch_size)
        self.lr = FloatSpinBox(label="learning rate", min=1e-6, max=1.0, step=1e-4, value=recipe.lr)
        self.lr.native.setDecimals(6)
        self.device = ComboBox(label="device", choices=self._device_choices, value="auto")
        self.device_info = Label(label="", value="")
        _wrapping(self.device_info)  # a long torch build note must not widen the dock
        self.run_folder = FileEdit(
            label="run folder",
            mode="d",
            value=_new_run_folder(),
            tooltip="Where config.json, weights, history.csv and checkpoints/ go",
        )
        self.checkpoint_every = SpinBox(
            label="checkpoint every",
            min=1,
            value=5,
            tooltip="Stop and closing always write one; each costs a disk write of the model",
        )
        self.preview_every = SpinBox(
            label="preview every",
            min=1,
            value=1,
            tooltip="How often the reconstructions tab gets new reconstructions",
        )
        for folder in (self.dataset_folder, self.run_folder):
            folder.choose_btn.text = "Choose..."  # not "Choose directory": the dock stays narrow
        self.start_button = PushButton(text="Start")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.resume_button = PushButton(text="Resume")
        self.reset_button = PushButton(text="Reset")
        self.load_button = PushButton(
            text="Load run", tooltip="Show the loss history of the run in the run folder"
        )
        buttons = Container(
            widgets=[
                self.start_button, self.stop_button, self.resume_button, self.reset_button,
                self.load_button,
            ],
            layout="horizontal",
            labels=False,
        )  # fmt: skip
        buttons.margins = (0, 0, 0, 0)
        self.log_scale = CheckBox(text="log scale", value=False)
        self.progress = ProgressBar(label="epoch progress", value=0, max=1)
        self.status = Label(label="status", value="Choose a dataset and press Start.")
        _fixed_lines(self.status, lines=5)

        # What a new user sets stays in sight; the recipe's knobs fold away (issue 14: the
        # dock fits a 1366 x 768 screen).
        self.form = Container(
            widgets=[
                self.dataset, self.dataset_folder, self.family, self.latent, self.beta,
                self.length_unit, self.steps, self.epochs, self.run_folder,
            ],
            labels=True,
        )  # fmt: skip
        self.advanced = CollapsibleSection(
            "advanced settings",
            [
                self.architecture, self.likelihood, self.sigma, self.batch, self.lr,
                self.device, self.device_info, self.checkpoint_every, self.preview_every,
            ],
            tooltip="Network, likelihood, batch size, learning rate, device, checkpoints: "
            "the defaults are the library's recipe",
        )  # fmt: skip
        monitor = Container(widgets=[self.progress, self.status], labels=True)
        for part in (self.form, monitor):
            part.margins = (0, 0, 0, 0)
        align_label_widths([self.form, self.advanced.fields, monitor])

        from brainvae.napari.widgets.loss_plot import LossPlot
        from brainvae.napari.widgets.preview_panel import PreviewPanel

        self.plot = LossPlot()
        self.previews = PreviewPanel(
            "After each epoch, validation scans (top row) and their reconstructions (below) "
            "appear here; the viewer's view of the brain stays as it is."
        )
        self.results = _results_tabs(self.plot.panel, self.previews, self.log_scale)
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
        self.native.destroyed.connect(self._stop_when_closed)
        self._on_dataset_changed()
        self._on_family_changed()
        self._show_device()
        self._label_plot()

    # ---- form ------------------------------------------------------------
    def _dataset_choices(self, *_args) -> list[str]:
        names = [layer.name for layer in self._viewer.layers if _layer_dataset(layer) is not None]
        return [*names, FOLDER_CHOICE]

    def _refresh_datasets(self, *_args) -> None:
        """Offer the population layers now in the viewer; pick a new one if none was chosen."""
        self.dataset.reset_choices()
        layers = [c for c in self.dataset.choices if c != FOLDER_CHOICE]
        if (
            layers
            and self.dataset.value == FOLDER_CHOICE
            and not optional_path(self.dataset_folder.value)
        ):
            self.dataset.value = layers[-1]
        self._on_dataset_changed()

    def _on_dataset_changed(self, *_args) -> None:
        self.dataset_folder.visible = self.dataset.value == FOLDER_CHOICE

    def _on_family_changed(self, *_args) -> None:
        """Show only the options that apply (PCA has no beta, epochs or batches)."""
        family = self.family.value
        neural = family != "pca"
        self.beta.visible = family == "beta_vae"
        self.advanced.visible = neural  # PCA has none of these settings
        for widget in (
            self.architecture, self.likelihood, self.length_unit, self.batch, self.lr,
            self.device, self.device_info, self.checkpoint_every, self.preview_every,
        ):  # fmt: skip
            widget.visible = neural
        self.sigma.visible = neural and self.likelihood.value == "gaussian"
        self.steps.visible = neural and self.length_unit.value == "steps"
        self.epochs.visible = neural and self.length_unit.value == "epochs"
        self.resume_button.enabled = neural and self._worker is None

    def _label_plot(self, *_args) -> None:
        """Axis titles and the placeholder follow the form until a run's curves are drawn;
        then only the x unit does (it switches the drawn curves between steps and epochs)."""
        from brainvae.napari.widgets.loss_plot import loss_axis_label

        if self.plot.has_points:
            self.plot.set_axes(self.length_unit.value)
            return
        self.plot.set_placeholder(PCA_PLACEHOLDER if self.family.value == "pca" else None)
        self.plot.set_axes(
            self.length_unit.value,
            loss_axis_label(self.likelihood.value, float(self.sigma.value)),
            latent_dim=int(self.latent.value),
        )

    def _device_choices(self, *_args) -> list[str]:
        import torch

        choices = ["auto", "cpu"]
        if torch.cuda.is_available():
            choices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        backend = getattr(torch.backends, "mps", None)
        if backend is not None and backend.is_available():
            choices.append("mps")
        return choices

    def _show_device(self, *_args) -> None:
        """Say which device "auto" means, and why there is no GPU when torch sees none."""
        import torch

        from brainvae.training import describe_device, resolve_device

        text = describe_device(resolve_device(self.device.value))
        if not torch.cuda.is_available() and self.device.value in ("auto", "cpu"):
            build = "a CPU-only torch build" if torch.version.cuda is None else "no CUDA device"
            text += f" (torch sees no GPU: {build})"
        self.device_info.value = text

    def dataset_path(self) -> Path:
        """The prepared dataset to train on; errors say what to choose."""
        return self.open_dataset().path

    def open_dataset(self):
        """The chosen PreparedDataset; a folder that is not one is refused here, named."""
        from brainvae.data.dataset import PreparedDataset

        if self.dataset.value == FOLDER_CHOICE:
            folder = optional_path(self.dataset_folder.value)
            if folder is None:
                raise ValueError("choose a prepared dataset folder, or load a population first")
        else:
            folder = Path(_layer_dataset(self._viewer.layers[self.dataset.value]))
        return PreparedDataset.open(folder)

    def model_choice(self):
        from brainvae.napari.workers.train import ModelChoice

        family = self.family.value
        by_steps = self.length_unit.value == "steps"
        return ModelChoice(
            family="beta_vae" if family == "vae" else family,
            architecture=self.architecture.value,
            latent_dim=int(self.latent.value),
            beta=1.0 if family in ("vae", "soft_intro_vae") else float(self.beta.value),
            likelihood=self.likelihood.value,
            gaussian_sigma=float(self.sigma.value),
            steps=int(self.steps.value) if by_steps else None,
            epochs=None if by_steps else int(self.epochs.value),
        )

    def train_config(self):
        from brainvae.training import TrainConfig

        by_steps = self.length_unit.value == "steps"
        return TrainConfig(
            epochs=None if by_steps else int(self.epochs.value),
            steps=int(self.steps.value) if by_steps else None,
            batch_size=int(self.batch.value),
            lr=float(self.lr.value),
            device=self.device.value,
            checkpoint_every=int(self.checkpoint_every.value),
        )

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
        self.run_folder.value = _new_run_folder()
        self._run_dir = None
        self.status.value = "Reset: Start trains a new run in the new run folder."

    def load_run(self, *_args) -> None:
        """Show a finished or stopped run's loss history (the run folder field says which)."""
        from brainvae.training import HISTORY_FILE
        from brainvae.training.history import read_history

        folder = optional_path(self.run_folder.value)
        history = None if folder is None else folder / HISTORY_FILE
        if history is None or not history.is_file():
            self._fail(ValueError(f"{folder}: no {HISTORY_FILE} here; choose a run folder"))
            return
        try:
            rows = read_history(history)  # an empty or damaged file: a message, not a crash
        except Exception as err:  # noqa: BLE001 - DataFileError naming the file
            self._fail(err)
            return
        self.plot.set_axes(self.length_unit.value, *_run_axes(folder))
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
            opened = self.open_dataset()
            dataset = opened.path
            choice = self.model_choice()
            config = self.train_config()
            run_dir = optional_path(self.run_folder.value)
            if run_dir is None:
                raise ValueError("choose a run folder")
        except Exception as err:  # noqa: BLE001 - any form error goes to the user
            self._fail(err)
            return
        self.plot.clear()
        self._label_plot()  # the form's units, for this run's curves
        if resume and (run_dir / "history.csv").is_file():
            from brainvae.training.history import read_history

            try:
                self.plot.load_history(read_history(run_dir / "history.csv"))
            except Exception as err:  # noqa: BLE001 - a damaged history: say so, don't resume
                self._fail(err)
                return
        self._preview_placement = dict(dataset_placement(opened))
        self._dataset_path, self._sample_width = opened.path, int(opened.sample_shape[-1])
        self._cancel = threading.Event()
        self._verdict = None
        self._started = time.monotonic()
        self._run_dir = run_dir
        self._set_running(True)
        self.status.value = ("Resuming " if resume else "Starting ") + f"{run_dir.name}..."
        self._last_draw = self._last_preview_shown = 0.0
        self._task_id = _window(self._viewer)._register_task_status(
            "napari-brainvae", _status("PENDING"), f"training {run_dir.name}",
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
                "errored": self._fail,
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

    def _show_preview(self, preview: Any) -> None:
        """Draw the reconstructions in the dock (the viewer's camera stays on the brain); keep
        the viewer's preview layer current if the user asked for one."""
        mosaic = preview.mosaic()
        self._preview_mosaic = (mosaic, preview.epoch)
        when = "PCA fit" if preview.epoch == 0 else f"Epoch {preview.epoch}"
        self.previews.show(
            mosaic,
            f"{when}: {preview.split} scans (top) and their reconstructions (below).",
            pixel_size=tuple(self._preview_placement["scale"][-2:]),
        )
        tab = "reconstructions" + ("" if preview.epoch == 0 else f" (epoch {preview.epoch})")
        self.results.setTabText(RECONSTRUCTIONS_TAB, tab)
        if not self.plot.has_points:  # PCA: nothing to plot; the reconstructions are the news
            self.results.setCurrentIndex(RECONSTRUCTIONS_TAB)
        if PREVIEW_LAYER in self._viewer.layers:  # the user asked for it: keep it current
            self.show_preview_layer()

    def show_preview_layer(self, *_args) -> None:
        """Put the latest reconstructions in the viewer as a layer beside the brain, on its
        grid, without moving the camera; later previews update it in place."""
        if self._preview_mosaic is None:
            return
        layer = self._put_preview_layer()
        beside = len(self._viewer.layers) > 1
        self.previews.caption.setText(
            self.previews.caption.text().split(" Also in the viewer")[0]
            + (" Also in the viewer, right of the brain: zoom out or press Home." if beside
               else " Also in the viewer.")
        )  # fmt: skip
        self.previews.caption.setToolTip(f"The viewer's layer: '{layer.name}'")

    def _put_preview_layer(self) -> Any:
        """Replace the preview layer's data in place (or add it beside the population) and
        leave the camera where it was: napari frames the first layer added, and only that."""
        data, epoch = self._preview_mosaic
        name = PREVIEW_LAYER
        camera = _camera(self._viewer)
        view = (tuple(camera.center), camera.zoom, tuple(camera.angles))
        others = [layer for layer in self._viewer.layers if layer.name != name]
        if name in self._viewer.layers and self._viewer.layers[name].data.shape == data.shape:
            layer = self._viewer.layers[name]
            layer.data = data
            layer.contrast_limits = _limits(data)
        else:
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)
            selected = set(self._viewer.layers.selection)
            layer = self._viewer.add_image(
                data,
                name=name,
                colormap="gray",
                contrast_limits=_limits(data),
                **self._beside_population(data.shape),
            )
            layer.metadata["brainvae"] = {"kind": "training_preview"}
            self._viewer.layers.selection = selected  # the user's selection stays
        if others:  # the brain being inspected keeps its size and place on the screen
            camera.center, camera.zoom, camera.angles = view
        layer.metadata["brainvae"]["epoch"] = epoch
        return layer

    def _beside_population(self, shape: tuple[int, ...]) -> dict[str, Any]:
        """The population's grid, moved right of its layer and clear of any other layer
        there (the explorer's decoded brain), so the previews hide nothing; without such a
        layer, one image width and a margin right of the grid's origin."""
        from brainvae.napari.widgets.decode_placement import beside_translate

        placement = dict(self._preview_placement)
        population = self._population_layer()
        if population is not None:
            placement["translate"] = beside_translate(self._viewer, shape, placement, population)
            return placement
        scale = tuple(placement["scale"])
        translate = list(placement.get("translate", (0.0,) * len(scale)))
        translate[-1] += (self._sample_width + 8) * scale[-1]
        placement["translate"] = tuple(translate)
        return placement

    def _population_layer(self) -> Any:
        """The viewer's layer of the dataset being trained on, if one is open."""
        for layer in self._viewer.layers:
            found = _layer_dataset(layer)
            if found is not None and self._dataset_path is not None:
                if Path(found).resolve() == Path(self._dataset_path).resolve():
                    return layer
        return None

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
        """Show the model just trained (or stopped) in the viewer's latent explorer, if open."""
        from brainvae.napari.widgets.latent_explorer import RUN_FOLDER, explorers_of

        for explorer in explorers_of(self._viewer):
            explorer.model_source.value = RUN_FOLDER
            explorer.run_folder.value = run_dir
            explorer.set_model(run_dir)
        if explorers_of(self._viewer):
            self.status.value += " The latent explorer now shows it."

    def _fail(self, err: BaseException) -> None:
        if self._closed:  # the dock is gone; the worker's last signals have no widget
            return
        from napari.utils.notifications import show_error

        self._redraw(final=True)
        self._set_task_status("FAILED", str(err))
        self.status.value = f"Error: {err}"
        show_error(f"brainvae: {err}")

    def _set_task_status(self, status: str, description: str = "") -> None:
        """Keep napari's task list current: it names a running training when asking before
        the viewer closes."""
        if self._task_id is None:
            return
        name = self._run_dir.name if self._run_dir is not None else "run"
        text = f"training {name}" + (f": {description}" if description else "")
        _window(self._viewer)._update_task_status(self._task_id, _status(status), text)
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

    def _stop_when_closed(self, *_args) -> None:
        """Closing the dock stops training cleanly (a checkpoint is written)."""
        self._closed = True
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


def _results_tabs(plot_panel: Any, previews: Any, log_scale: CheckBox) -> Any:
    """The loss plot and the reconstructions as two tabs (one stretchy area under the form);
    the tab bar's corner holds the shown tab's one control (log scale; show in viewer)."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QHBoxLayout, QTabWidget, QWidget

    class ResultsTabs(QTabWidget):
        """Asks for its least height only, for any width: the scroll area sizes a form with
        wrapping labels by its preferred height, and a plot's (or image's) 480-pixel wish
        would make the dock scroll where they could shrink. Spare height still goes to them
        (layout stretch)."""

        def sizeHint(self):  # noqa: N802 - Qt's name
            hint = super().sizeHint()
            hint.setHeight(self.minimumSizeHint().height())
            return hint

        def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt's name
            return False

    tabs = ResultsTabs()
    tabs.addTab(plot_panel, "loss")
    tabs.addTab(previews.widget, "reconstructions")
    corner = QWidget()
    layout = QHBoxLayout(corner)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(log_scale.native)
    layout.addWidget(previews.show_in_viewer)
    tabs.setCornerWidget(corner, Qt.Corner.TopRightCorner)

    def show_controls(index: int) -> None:
        log_scale.native.setVisible(index == 0)
        previews.show_in_viewer.setVisible(index == RECONSTRUCTIONS_TAB)

    tabs.currentChanged.connect(show_controls)
    show_controls(0)
    return tabs


def _run_axes(folder: Path) -> tuple[str | None, int | None]:
    """A saved run's loss axis title (from its likelihood) and latent count, read from its
    config.json; (None, None) when unreadable (the plot keeps its titles)."""
    from brainvae.models.config import ModelConfig
    from brainvae.models.serialization import CONFIG_FILE
    from brainvae.napari.widgets.loss_plot import loss_axis_label

    try:
        config = ModelConfig.from_json((folder / CONFIG_FILE).read_text())
    except Exception:  # noqa: BLE001 - no config (a run stopped early) or an older one
        return None, None
    label = loss_axis_label(config.likelihood, config.gaussian_sigma, config.learn_sigma)
    return label, config.latent_dim


def _wait_until_done(worker: Any, seconds: float) -> None:
    """Block until the worker's thread ends (it stops within one batch once cancelled)."""
    deadline = time.monotonic() + seconds
    while worker.is_running and time.monotonic() < deadline:
        time.sleep(0.01)


def _fixed_lines(label: Label, lines: int) -> None:
    """Wrap a label's text within a fixed height and the dock's width, so a new status text
    never re-lays out the dock (each layout pass is one more window repaint). The height
    follows the label's font: napari's stylesheet sets it only once the dock is shown."""
    from qtpy.QtCore import QEvent, QObject, QRect, Qt
    from qtpy.QtWidgets import QSizePolicy

    native = label.native
    native.setWordWrap(True)
    native.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def fit() -> None:  # laid-out lines are whole pixels: measure them, not lineSpacing * n
        text = native.fontMetrics().boundingRect(
            QRect(0, 0, 10_000, 10_000), Qt.TextFlag.TextWordWrap, "\n".join(["Xg"] * lines)
        )
        margins = native.contentsMargins()
        padding = margins.top() + margins.bottom() + 2 * native.margin() + 4
        native.setFixedHeight(text.height() + padding)

    class FontWatcher(QObject):
        def eventFilter(self, watched, event):  # noqa: N802 - Qt's name
            if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
                fit()
            return False

    native._font_watcher = FontWatcher(native)  # kept alive with the label
    native.installEventFilter(native._font_watcher)
    fit()


def _camera(viewer: Any) -> Any:
    """The viewer's camera (napari 0.9 moved it to viewer.scene; older napari has no scene)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def _wrapping(label: Label) -> None:
    """Wrap a label's text within the dock's width instead of widening the dock."""
    from qtpy.QtWidgets import QSizePolicy

    label.native.setWordWrap(True)
    label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)


def _window(viewer: Any) -> Any:
    """The viewer's napari Window (plugins get a public-only proxy of the viewer)."""
    return getattr(viewer, "__wrapped__", viewer).window


def _status(name: str) -> Any:
    from napari.utils.task_status import Status

    return Status[name]


def _layer_dataset(layer: Any) -> str | None:
    """The prepared dataset a population layer came from, if any."""
    info = getattr(layer, "metadata", {}).get("brainvae", {})
    if info.get("kind") == "population" and info.get("dataset"):
        return str(info["dataset"])
    return None


def _new_run_folder() -> Path:
    return default_runs_root() / time.strftime("run-%Y%m%d-%H%M%S")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _limits(data: Any) -> tuple[float, float]:
    import numpy as np

    low, high = float(np.min(data)), float(np.max(data))
    return (low, high if high > low else low + 1.0)
