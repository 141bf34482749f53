"""The training dock in a real napari viewer: train, plot, preview, stop, resume, PCA."""

from __future__ import annotations

import pandas as pd
import pytest

from brainvae.data.dataset import PreparedDataset
from brainvae.napari.widgets.loss_plot import MIN_HEIGHT
from brainvae.napari.widgets.training_form import FOLDER_CHOICE
from brainvae.napari.widgets.training_previews import PREVIEW_LAYER, RECONSTRUCTIONS_TAB
from brainvae.napari.widgets.training_widget import TrainingWidget
from brainvae.training import BatchReport, latest_checkpoint
from helpers.blob_population import SHAPE, write_blob_dataset


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """20 blob images (2 sessions of 10 subjects)."""
    return write_blob_dataset(tmp_path_factory.mktemp("training_widget"), subjects=10, seed=3)


@pytest.fixture
def widget(make_napari_viewer, dataset_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINVAE_CACHE_DIR", str(tmp_path / "cache" / "brainvae"))
    viewer = make_napari_viewer()
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.dataset.value = FOLDER_CHOICE
    widget.dataset_folder.value = dataset_dir
    widget.architecture.value = "small"
    widget.latent.value = 3
    widget.batch.value = 4
    widget.device.value = "cpu"
    widget.run_folder.value = tmp_path / "run"
    return widget


def wait(widget, qtbot, timeout_ms=120_000):
    qtbot.waitUntil(lambda: widget._worker is None, timeout=timeout_ms)


def test_training_two_epochs_plots_points_previews_and_saves(widget, qtbot, tmp_path):
    widget.length_unit.value = "epochs"
    widget.epochs.value = 2
    assert not widget.plot.showing_curves  # a sentence, not empty axes, before a run
    widget.start()
    assert widget.stop_button.enabled and not widget.start_button.enabled
    wait(widget, qtbot)
    assert widget.last_result.reason == "completed", widget.status.value
    assert widget.plot.count("train_loss") == 2 and widget.plot.count("val_loss") == 2
    assert widget.plot.count("batch_loss") >= 2 * 3
    run = tmp_path / "run"
    assert (run / "config.json").is_file() and (run / "weights.safetensors").is_file()
    assert len(pd.read_csv(run / "history.csv")) == 2
    assert widget.plot.showing_curves and widget.plot.count("active_units") == 2
    tiles = len(PreparedDataset.open(widget.dataset_folder.value).indices("val"))
    # in the dock: each validation image (up to 4) above its reconstruction, 2-pixel gaps
    assert widget.previews.picture().shape == (2 * SHAPE[0] + 2, tiles * SHAPE[1] + (tiles - 1) * 2)
    assert widget.results.tabText(RECONSTRUCTIONS_TAB) == "reconstructions (epoch 2)"
    assert PREVIEW_LAYER not in widget._viewer.layers  # the viewer gets it only when asked
    assert "Done: 2 epoch(s)" in widget.status.value
    assert "latents active; reconstruction error" in widget.status.value  # the verdict
    assert widget._verdict is not None and widget._verdict.latent_dim == widget.latent.value
    assert widget.start_button.enabled and not widget.stop_button.enabled

    widget.start()  # the folder holds a run: refused, nothing lost
    wait(widget, qtbot)
    assert "already holds a training run" in widget.status.value
    assert len(pd.read_csv(run / "history.csv")) == 2

    widget.reset()  # forgets the curves; Load run brings them back, counted in steps
    assert not widget.plot.showing_curves and not widget.previews.shown
    widget.run_folder.value = run
    widget.length_unit.value = "steps"
    widget.load_run()
    per_epoch = pd.read_csv(run / "history.csv")["step"].tolist()
    assert list(widget.plot.curves["train_loss"].getData()[0]) == per_epoch
    axis = widget.plot.widget.getPlotItem().getAxis
    assert axis("bottom").labelText == "optimiser step"
    assert axis("left").labelText == "loss per image (nats)"  # the run's Gaussian likelihood


def test_epoch_status_says_validation_is_at_the_posterior_mean(widget):
    """Issue 12.6.3: the dock's epoch line and its plot legend label the validation loss as
    taken at z = mu (no sampling), apart from the sampled training loss."""
    from brainvae.training import EpochReport
    from brainvae.training.progress import VALIDATION_NOTE

    widget._on_report(EpochReport(1, 10.0, 9.0, 1.0, 11.0, 10.5, 0.5, None, [0.5], 1))
    widget._redraw()
    assert "val (z = mu) 11" in widget.status.value
    assert VALIDATION_NOTE in widget.plot.widget.toolTip()


def test_stop_mid_epoch_then_resume_continues_from_the_checkpoint(
    widget, qtbot, tmp_path, dataset_dir
):
    widget.length_unit.value = "epochs"
    widget.epochs.value = 50
    widget.start()

    def stop_in_epoch_two(report):
        if isinstance(report, BatchReport) and (report.epoch, report.batch) == (2, 1):
            widget.stop()

    widget._worker.yielded.connect(stop_in_epoch_two)
    wait(widget, qtbot)
    run = tmp_path / "run"
    stopped = widget.last_result
    # Stop acts at the next batch after the GUI thread sees it, so a few batches may pass
    assert stopped.reason == "cancelled" and stopped.epochs_completed < 50
    per_epoch = -(-len(PreparedDataset.open(dataset_dir).indices("train")) // 4)
    batch = stopped.step - stopped.epochs_completed * per_epoch
    assert latest_checkpoint(run).name == f"epoch-{stopped.epochs_completed:04d}" + (
        f"-batch-{batch:04d}" if batch else ""
    )
    assert "Resume continues" in widget.status.value

    widget.length_unit.value = "epochs"

    widget.epochs.value = stopped.epochs_completed + 1
    widget.resume()
    wait(widget, qtbot)
    assert widget.last_result.reason == "completed", widget.status.value
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == list(range(1, stopped.epochs_completed + 2))
    assert widget.plot.count("train_loss") == stopped.epochs_completed + 1


def test_population_layer_is_offered_and_pca_fits(widget, qtbot, dataset_dir, tmp_path):
    from brainvae.data.dataset import PreparedDataset
    from brainvae.napari.population_layers import dataset_layer_data

    data, kwargs, _ = dataset_layer_data(PreparedDataset.open(dataset_dir), "population (blobs)")
    widget._viewer.add_image(data, **kwargs)
    assert "population (blobs)" in widget.dataset.choices
    widget.dataset.value = "population (blobs)"
    assert not widget.dataset_folder.visible
    widget.family.value = "pca"
    assert not widget.epochs.visible and not widget.resume_button.enabled
    widget.run_folder.value = tmp_path / "pca"
    widget.start()
    wait(widget, qtbot)
    assert (tmp_path / "pca" / "config.json").is_file(), widget.status.value
    assert "Fitted PCA" in widget.status.value
    assert widget.previews.picture().shape[-2] == 2 * SHAPE[0] + 2
    # no loss curve for PCA: its reconstructions tab is brought forward, the plot says why
    assert widget.results.currentIndex() == RECONSTRUCTIONS_TAB
    assert "no loss curve" in widget.plot.placeholder.text()


def test_device_label_and_missing_dataset(widget, qtbot, tmp_path):
    assert widget.device_info.value.startswith("CPU")
    widget.device.value = "auto"
    assert "torch sees no GPU" in widget.device_info.value or "cuda" in widget.device_info.value
    (tmp_path / "empty").mkdir()
    widget.dataset_folder.value = tmp_path / "empty"
    widget.start()
    assert widget._worker is None
    assert "empty: not a prepared dataset" in widget.status.value


def test_closing_the_viewer_mid_training_stops_with_a_checkpoint(widget, qtbot, tmp_path):
    widget.length_unit.value = "epochs"
    widget.epochs.value = 500
    widget.start()
    qtbot.waitUntil(lambda: widget.plot.count("batch_loss") >= 2, timeout=60_000)
    worker = widget._worker
    widget._viewer.close()
    qtbot.waitUntil(lambda: not worker.is_running, timeout=60_000)
    checkpoint = latest_checkpoint(tmp_path / "run")
    assert checkpoint is not None and (checkpoint / "optimizer.safetensors").is_file()
    assert (tmp_path / "run" / "weights.safetensors").is_file()


def test_a_finished_run_goes_to_the_latent_explorer(widget, qtbot, tmp_path):
    """The hand-over goes through the viewer's state: the explorer (which the Training dock
    does not know) and a dock opened later both get the trained model."""
    from brainvae.napari.viewer_state import state_of
    from brainvae.napari.widgets.explorer_model_choice import RUN_FOLDER
    from brainvae.napari.widgets.latent_explorer import LatentExplorer

    explorer = LatentExplorer(widget._viewer)
    widget._viewer.window.add_dock_widget(explorer)
    widget.length_unit.value = "epochs"
    widget.epochs.value = 1
    widget.start()
    wait(widget, qtbot)
    assert "now the model in use" in widget.status.value
    in_use = state_of(widget._viewer).model
    assert in_use is not None and in_use.folder == tmp_path / "run"
    assert explorer.model is in_use.model and explorer.model.latent_dim == 3
    assert explorer.model_source.value == RUN_FOLDER
    assert explorer.run_folder.value == tmp_path / "run"
    later = LatentExplorer(widget._viewer)  # opened after the training ended
    assert later.model is in_use.model
    later.shutdown()


def test_previews_never_move_the_camera_on_the_brain(widget, qtbot, dataset_dir):
    """Issue 14: the reconstructions used to be added beside the brain with a view reset, so
    napari zoomed out until the brain was a thumbnail. They now go to the dock; the viewer
    gets them only on request, beside the brain, with the camera left where it was."""
    import numpy as np

    from brainvae.napari.population_layers import dataset_layer_data

    data, kwargs, _ = dataset_layer_data(PreparedDataset.open(dataset_dir), "population (blobs)")
    brain = widget._viewer.add_image(data, **kwargs)
    camera = widget._viewer.scene.camera
    camera.zoom *= 3.0  # the user zoomed in on the brain
    view = (camera.zoom, tuple(camera.center))
    widget.dataset.value = "population (blobs)"
    widget.length_unit.value = "epochs"
    widget.epochs.value = 1
    widget.start()
    wait(widget, qtbot)
    assert widget.last_result.reason == "completed", widget.status.value
    assert widget.previews.shown
    assert (camera.zoom, tuple(camera.center)) == view
    assert [layer.name for layer in widget._viewer.layers] == ["population (blobs)"]

    # something already stands right of the brain (the explorer puts its decode there)
    right_edge = brain.translate[-1] + brain.data.shape[-1] * brain.scale[-1]
    decode = widget._viewer.add_image(
        data[0], scale=brain.scale[1:], translate=(brain.translate[1], right_edge + 1.0)
    )
    view = (camera.zoom, tuple(camera.center))
    widget.previews.show_in_viewer.click()  # the user asks for them in the viewer
    layer = widget._viewer.layers[PREVIEW_LAYER]
    assert (camera.zoom, tuple(camera.center)) == view
    assert layer.metadata["brainvae"]["epoch"] == 1
    np.testing.assert_allclose(layer.scale, brain.scale[1:])  # on the brain's grid, beside it
    decode_edge = decode.translate[-1] + decode.data.shape[-1] * decode.scale[-1]
    assert layer.translate[-1] > decode_edge  # past the decode: it hides nothing
    assert "right of the brain: zoom out or press Home" in widget.previews.caption.text()
    assert layer not in widget._viewer.layers.selection  # the user's selection stays

    widget.run_folder.value = widget.run_folder.value.with_name("run2")
    widget.start()  # a new run keeps the layer the user asked for current, still no camera move
    wait(widget, qtbot)
    assert layer.metadata["brainvae"]["epoch"] == 1 and layer in widget._viewer.layers
    assert (camera.zoom, tuple(camera.center)) == view


def test_the_dock_fits_a_small_screen_and_advanced_settings_fold(make_napari_viewer, qtbot):
    """Issue 14: the dock asked for 864 px; its form now asks for at most 500 px (the rarely
    changed settings fold away), and it scrolls rather than push the window off the screen."""
    from qtpy.QtWidgets import QApplication

    from brainvae.training import EpochReport

    viewer = make_napari_viewer(show=True)  # sizes are laid out as a user's window lays them
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget)
    qtbot.waitExposed(widget.native)
    advanced = (widget.architecture, widget.batch, widget.lr, widget.device, widget.sigma)
    assert not widget.advanced.expanded
    assert all(not field.native.isVisibleTo(widget.native) for field in advanced)
    assert widget.dataset_folder.native.isVisibleTo(widget.native)  # the tallest default form
    assert widget.body.native.minimumSizeHint().height() <= 500
    dock = widget.native.parent()
    assert dock.minimumSizeHint().height() <= 500

    widget.advanced.toggle.native.click()
    assert widget.advanced.expanded
    assert all(field.native.isVisibleTo(widget.native) for field in advanced)
    assert "\u25be" in widget.advanced.toggle.text  # the arrow points down when open
    widget.family.value = "pca"  # options that do not apply stay hidden in the open section
    assert not widget.batch.native.isVisibleTo(widget.native)
    assert not widget.advanced.toggle.native.isVisibleTo(widget.native)  # nothing to open
    widget.family.value = "beta_vae"
    assert widget.batch.native.isVisibleTo(widget.native)  # the section is still open
    for _ in range(3):  # the body lays out again, then the dock reads the scroll area's hints
        QApplication.processEvents()
    assert widget.body.native.minimumSizeHint().height() > 500  # taller than a small screen...
    assert dock.minimumSizeHint().height() <= 500  # ...so the dock scrolls instead
    widget.advanced.toggle.native.click()
    assert all(not field.native.isVisibleTo(widget.native) for field in advanced)

    # the plot, once there is a point, takes the dock's spare height (at least MIN_HEIGHT)
    window = viewer.window._qt_window
    window.resize(1000, 700)
    widget._on_report(EpochReport(1, 10.0, 9.0, 1.0, 11.0, 10.5, 0.5, None, [0.5], 1))
    qtbot.waitUntil(lambda: widget.plot.widget.isVisible() and dock.height() < 700)
    qtbot.wait(100)
    short = widget.plot.widget.height()
    assert short >= MIN_HEIGHT
    window.resize(1000, 1100)
    qtbot.waitUntil(lambda: widget.plot.widget.height() >= short + 300)


@pytest.mark.parametrize("content", [b"", b"\x00\xff\x10binary\x00" * 40])
def test_load_run_on_a_damaged_history_is_a_message(widget, tmp_path, content):
    run = tmp_path / "damaged_run"
    run.mkdir()
    (run / "history.csv").write_bytes(content)
    widget.run_folder.value = run
    widget.load_run()  # no exception escapes to the GUI
    assert widget.status.value.startswith("Error:") and "history.csv" in widget.status.value


@pytest.mark.slow
def test_a_sample_opened_from_the_file_menu_is_listed_and_trainable(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    """Issue 16: File > Open Sample makes a population read from a folder of scans; the
    Training dock lists it beside prepared datasets, prepares it once into the dataset cache
    (as the Population data dock would) and trains on it."""
    from brainvae.napari.viewer_state import state_of

    monkeypatch.setenv("BRAINVAE_CACHE_DIR", str(tmp_path / "cache" / "brainvae"))
    viewer = make_napari_viewer()
    viewer.open_sample("napari-brainvae", "population_2d")
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert widget.dataset.choices == ("population (sample 2D)", FOLDER_CHOICE)
    assert widget.dataset.value == "population (sample 2D)"
    widget.architecture.value = "small"
    widget.latent.value = 3
    widget.batch.value = 32
    widget.device.value = "cpu"
    widget.length_unit.value = "steps"
    widget.steps.value = 3
    widget.run_folder.value = tmp_path / "run"
    widget.start()
    wait(widget, qtbot, timeout_ms=240_000)
    assert widget.last_result is not None and widget.last_result.reason == "completed", (
        widget.status.value
    )
    prepared = list((tmp_path / "cache" / "brainvae" / "datasets").iterdir())
    assert len(prepared) == 1 and len(PreparedDataset.open(prepared[0])) == 244
    assert (tmp_path / "run" / "weights.safetensors").is_file()
    assert state_of(viewer).model.folder == tmp_path / "run"

    widget.run_folder.value = tmp_path / "run2"  # a second run reuses the prepared dataset
    widget.start()
    wait(widget, qtbot, timeout_ms=240_000)
    assert widget.last_result.run_dir == tmp_path / "run2"
    assert list((tmp_path / "cache" / "brainvae" / "datasets").iterdir()) == prepared


def test_age_conditioned_vae_asks_for_its_column(widget, qtbot, tmp_path):
    """The condition field shows only for the age-conditioned VAE, is required, and reaches
    the training: the blob table has no numeric column, so naming one is refused by it."""

    def shown(field):
        return field.native.isVisibleTo(widget.native)

    assert not shown(widget.condition)
    widget.family.value = "age_vae"
    assert shown(widget.condition) and shown(widget.beta)
    widget.length_unit.value = "epochs"
    widget.epochs.value = 1
    widget.start()
    wait(widget, qtbot)
    assert "needs a condition" in widget.status.value
    widget.condition.value = "session"  # ses-1, ses-2: not numbers
    widget.start()
    wait(widget, qtbot)
    assert "have no numeric 'session' value" in widget.status.value
    assert not (tmp_path / "run" / "config.json").exists()
    widget.family.value = "beta_vae"
    assert not shown(widget.condition)


def test_longitudinal_vae_asks_for_its_groups_and_trains_over_visit_pairs(widget, qtbot, tmp_path):
    """Group and control show only for the longitudinal VAE, start at the Aging and disease
    dock's defaults, are checked against the table, and reach the saved model."""
    import json

    from helpers.visit_population import write_visit_population

    def shown(field):
        return field.native.isVisibleTo(widget.native)

    assert not shown(widget.group) and not shown(widget.control)
    widget.family.value = "longitudinal_vae"
    assert shown(widget.group) and shown(widget.control) and shown(widget.beta)
    assert (widget.group.value, widget.control.value) == ("diagnosis", "healthy")
    widget.length_unit.value = "epochs"
    widget.epochs.value = 1
    widget.start()  # the blob table has no age or diagnosis column
    wait(widget, qtbot)
    assert "in the dataset's metadata to pair visits by (columns: subject_id" in (
        widget.status.value
    )
    widget.dataset_folder.value = write_visit_population(tmp_path / "visits")
    widget.control.value = "control"
    widget.start()
    wait(widget, qtbot)
    assert "its values are: healthy, ms" in widget.status.value
    widget.control.value = "healthy"
    widget.start()
    wait(widget, qtbot)
    assert widget.last_result.reason == "completed", widget.status.value
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["family"] == "longitudinal_vae" and config["disease_labels"] == ["ms"]
    widget.family.value = "beta_vae"
    assert not shown(widget.group)
