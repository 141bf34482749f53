"""What a new user does, through the plugin's own docks in one viewer, in 2D and 3D: load
the sample population, train a model on it, watch the loss plot, then drag a latent slider
and see the decoded brain change."""

from __future__ import annotations

import numpy as np
import pytest

from brainvae.napari.launch import DOCK_WIDGETS, PLUGIN
from brainvae.napari.widgets.explorer_display import DECODED_LAYER
from brainvae.napari.widgets.training_previews import PREVIEW_LAYER


def grab(widget) -> np.ndarray:
    """The widget's pixels as rendered now, (H, W, 4) uint8."""
    image = widget.grab().toImage()
    from qtpy.QtGui import QImage

    image = image.convertToFormat(QImage.Format.Format_RGBA8888)
    height, width = image.height(), image.width()
    buffer = image.constBits()
    buffer.setsize(height * image.bytesPerLine())
    rows = np.frombuffer(buffer, np.uint8).reshape(height, image.bytesPerLine())
    return rows[:, : width * 4].reshape(height, width, 4).copy()


@pytest.mark.slow
@pytest.mark.parametrize("dims", [2, 3], ids=["2d", "3d"])
def test_sample_population_train_plot_and_slide(
    dims, make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    monkeypatch.setenv("BRAINVAE_CACHE_DIR", str(tmp_path / "cache" / "brainvae"))
    viewer = make_napari_viewer(show=True)
    docks, qt_docks = {}, {}
    for name in DOCK_WIDGETS:
        qt_docks[name], docks[name] = viewer.window.add_plugin_dock_widget(
            PLUGIN, name, tabify=name == "Latent explorer"
        )
    data, training, explorer = (
        docks[n] for n in ("Population data", "Training", "Latent explorer")
    )
    try:
        data.source.value = f"Sample population ({dims}D)"
        data.start_loading()
        qtbot.waitUntil(lambda: data._worker is None, timeout=180_000)
        population = next(layer for layer in viewer.layers if layer.name.startswith("population"))
        assert population.data.ndim == dims + 1

        # the Training dock offers the loaded population; train it two epochs
        assert training.dataset.value == population.name
        training.architecture.value = "small"
        training.latent.value = 4
        training.length_unit.value = "epochs"
        training.epochs.value = 2
        training.batch.value = 16
        training.device.value = "cpu"
        training.run_folder.value = tmp_path / "run"
        qt_docks["Training"].raise_()
        training.start()
        qtbot.waitUntil(lambda: training._worker is None, timeout=300_000)
        assert training.last_result.reason == "completed", training.status.value
        assert (tmp_path / "run" / "weights.safetensors").is_file()
        # the points are drawn on the plot, not only recorded
        xs, ys = training.plot.curves["train_loss"].getData()
        assert list(xs) == [1.0, 2.0] and np.all(np.isfinite(ys))
        assert len(training.plot.curves["val_loss"].getData()[0]) == 2
        assert len(training.plot.curves["batch_loss"].getData()[0]) >= 2
        assert training.progress.value == training.progress.max
        # previews stay in the dock (the brain's camera untouched) until the user asks
        assert PREVIEW_LAYER not in viewer.layers
        camera = (viewer.scene.camera.zoom, tuple(viewer.scene.camera.center))
        training.previews.show_in_viewer.click()
        preview = viewer.layers[PREVIEW_LAYER]
        assert (viewer.scene.camera.zoom, tuple(viewer.scene.camera.center)) == camera
        assert preview.data.ndim == dims and preview.metadata["brainvae"]["epoch"] == 2
        # beside the brain on its grid: same scale, same depth, to the right of it
        np.testing.assert_allclose(preview.scale, population.scale[1:])
        np.testing.assert_allclose(preview.translate[:-1], population.translate[1:-1])
        right_edge = population.translate[-1] + population.data.shape[-1] * population.scale[-1]
        assert preview.translate[-1] > right_edge

        qtbot.wait(300)  # let the window draw the dock
        plot_pixels = grab(training.plot.widget)[..., :3]
        assert plot_pixels.std() > 5  # axes, grid and curves, not a flat box
        window = viewer.screenshot(canvas_only=False, flash=False)
        assert window[..., :3].std() > 10

        # the finished run went to the explorer; a slider moves the decoded brain
        assert explorer.model is not None and explorer.model.latent_dim == 4
        qtbot.waitUntil(lambda: not explorer.busy, timeout=120_000)
        qtbot.waitUntil(
            lambda: explorer.shown_request == explorer._decoder.counts.submitted, timeout=30_000
        )
        decoded = viewer.layers[DECODED_LAYER]
        assert decoded.data.shape == population.data.shape[1:]
        np.testing.assert_allclose(decoded.scale, population.scale[1:])
        # beside the scan, not over it: same depth, to the right of the brain
        np.testing.assert_allclose(decoded.translate[:-1], population.translate[1:-1])
        assert decoded.translate[-1] >= right_edge
        before = np.array(decoded.data, copy=True)
        slider = explorer.sliders[0]
        slider.value = slider.max if slider.value < slider.max else slider.min
        qtbot.waitUntil(
            lambda: explorer.shown_request == explorer._decoder.counts.submitted, timeout=30_000
        )
        assert np.abs(np.asarray(decoded.data) - before).max() > 1e-4
    finally:
        training._stop_and_wait()
        explorer.shutdown()
