"""The latent explorer dock in a real napari viewer with small real models (VAE 2D/3D, PCA)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from brainvae.analysis.latent_space import LABEL_MARGIN, decode_codes
from brainvae.models import ModelConfig, build_model
from brainvae.napari.population_layers import stack_layer_data
from brainvae.napari.widgets.latent_explorer import (
    DECODED_LAYER,
    GRID_LAYER,
    SAMPLE_MODEL,
    LatentExplorer,
)

PLACEMENT_2D = {
    "scale": (1.1, 1.2),
    "translate": (-50.0, 20.0),
    "axis_labels": ("inferior", "right"),
}
PLACEMENT_3D = {
    "scale": (4.0, 4.0, 4.0),
    "translate": (-60.0, 10.0, -70.0),
    "axis_labels": ("inferior", "posterior", "right"),
}


def small_vae(shape, latent_dim: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    config = ModelConfig(input_shape=shape, latent_dim=latent_dim, family="beta_vae")
    return build_model(config).eval()


def population(shape, n: int = 12, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def add_population_layer(viewer, images, placement):
    """A population stack as the sample-data menu makes it (kind "population", a table)."""
    table = [{"subject_id": f"sub-{k:02d}", "session": "1"} for k in range(len(images))]
    data, kwargs, _ = stack_layer_data(images, "population (test)", placement, {"table": table})
    return viewer.add_image(data, **kwargs)


@pytest.fixture
def explorer_in(make_napari_viewer, qtbot):
    """A viewer with a population stack, and an explorer on it; the decoder stops afterwards."""
    made = []

    def _make(images, placement, model, show: bool = False):
        viewer = make_napari_viewer(show=show)
        add_population_layer(viewer, images, placement)
        explorer = LatentExplorer(viewer)
        made.append(explorer)
        explorer.set_model(model)
        settle(explorer, qtbot)
        return viewer, explorer

    yield _make
    for explorer in made:
        explorer.shutdown()


def settle(explorer: LatentExplorer, qtbot) -> None:
    """Wait until background work is done and the layer shows the newest request."""
    qtbot.waitUntil(lambda: not explorer.busy, timeout=60_000)
    assert explorer._decoder.wait_idle(30)
    qtbot.waitUntil(
        lambda: explorer.shown_request == explorer._decoder.counts.submitted, timeout=30_000
    )


def expected_image(model, code) -> np.ndarray:
    return decode_codes(model, np.asarray(code)[None])[0]


def test_moving_a_slider_changes_the_decoded_layer(explorer_in, qtbot):
    images = population((24, 20))
    model = small_vae((24, 20))
    viewer, explorer = explorer_in(images, PLACEMENT_2D, model)
    layer = viewer.layers[DECODED_LAYER]
    assert layer.data.shape == (24, 20)
    assert tuple(layer.scale) == pytest.approx(PLACEMENT_2D["scale"])
    assert tuple(layer.translate) == pytest.approx(PLACEMENT_2D["translate"])
    before = np.array(layer.data)
    threads = []
    layer.events.set_data.connect(lambda _event: threads.append(threading.current_thread()))
    explorer.range_mode.value = "fixed3"  # an untrained encoder's population spread is tiny
    slider = explorer.sliders[1]
    slider.value = 3.0
    settle(explorer, qtbot)
    assert explorer.code[1] == pytest.approx(3.0)
    assert np.abs(layer.data - before).max() > 1e-3
    np.testing.assert_allclose(layer.data, expected_image(model, explorer.code), atol=1e-5)
    assert threads and all(t is threading.main_thread() for t in threads)


def test_population_ranges_and_kl_labels(explorer_in):
    images = population((24, 20), n=16)
    model = small_vae((24, 20))
    _viewer, explorer = explorer_in(images, PLACEMENT_2D, model)
    stats = explorer.statistics
    assert stats is not None and stats.n_images == 16
    # untouched sliders start at the mean brain, inside the population's ranges
    np.testing.assert_allclose(explorer.code, stats.mean, rtol=1e-6)
    for k, slider in enumerate(explorer.sliders):
        low, high = stats.mean[k] - 3 * stats.sd[k], stats.mean[k] + 3 * stats.sd[k]
        assert slider.min == pytest.approx(low, abs=1e-6)
        assert slider.max == pytest.approx(high, abs=1e-6)
        assert f"KL {stats.kl[k]:.2f}" in slider.label
    explorer.range_mode.value = "fixed7"
    assert [(s.min, s.max) for s in explorer.sliders] == [(-7.0, 7.0)] * 4
    explorer.range_mode.value = "fixed3"
    assert [(s.min, s.max) for s in explorer.sliders] == [(-3.0, 3.0)] * 4


def test_a_slider_moved_before_encoding_ends_is_kept(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    add_population_layer(viewer, population((24, 20)), PLACEMENT_2D)
    explorer = LatentExplorer(viewer)
    try:
        explorer.set_model(small_vae((24, 20)))  # encoding the population starts in a worker
        explorer.sliders[1].value = 1.25
        settle(explorer, qtbot)
        assert explorer.statistics is not None
        assert explorer.code[1] == pytest.approx(1.25) and explorer.code[0] == 0.0
    finally:
        explorer.shutdown()


def test_encode_current_sets_the_sliders_to_the_subjects_code(explorer_in, qtbot):
    images = population((24, 20))
    model = small_vae((24, 20))
    viewer, explorer = explorer_in(images, PLACEMENT_2D, model)
    viewer.dims.set_current_step(0, 5)
    explorer.encode_current()
    with torch.inference_mode():
        mu = model.encode(images[5:6])[0][0].numpy()
    np.testing.assert_allclose(explorer.code, mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([s.value for s in explorer.sliders], mu, rtol=1e-4, atol=1e-4)
    assert "scan 5" in explorer.status.value and "sub-05" in explorer.status.value
    settle(explorer, qtbot)
    np.testing.assert_allclose(
        viewer.layers[DECODED_LAYER].data, expected_image(model, mu), atol=1e-5
    )


def test_mean_random_and_reset(explorer_in, qtbot):
    images = population((24, 20))
    model = small_vae((24, 20))
    _viewer, explorer = explorer_in(images, PLACEMENT_2D, model)
    explorer.mean_code()
    np.testing.assert_allclose(explorer.code, explorer.statistics.mean)
    explorer.rng = np.random.default_rng(7)
    explorer.random_sample()
    np.testing.assert_allclose(explorer.code, np.random.default_rng(7).standard_normal(4))
    explorer.reset_code()
    assert explorer.code.tolist() == [0.0] * 4
    assert [s.value for s in explorer.sliders] == [0.0] * 4


def test_interpolation_gives_the_requested_frames(explorer_in, qtbot):
    images = population((24, 20))
    model = small_vae((24, 20))
    viewer, explorer = explorer_in(images, PLACEMENT_2D, model)
    explorer.scan_a.value, explorer.scan_b.value, explorer.n_frames.value = 2, 7, 6
    explorer.export_interpolation()
    settle(explorer, qtbot)
    layer = viewer.layers["interpolation scan 2 to 7"]
    assert layer.data.shape == (6, 24, 20)
    assert layer.axis_labels[0] == "frame"
    with torch.inference_mode():
        reconstructions = model.reconstruct(images[[2, 7]]).numpy()
    np.testing.assert_allclose(layer.data[0], reconstructions[0], atol=1e-5)
    np.testing.assert_allclose(layer.data[-1], reconstructions[1], atol=1e-5)
    # The t slider walks the same line: halfway is the mean of the two codes.
    explorer.t.value = 0.5
    codes = explorer.statistics.codes
    np.testing.assert_allclose(explorer.code, (codes[2] + codes[7]) / 2, atol=1e-6)


def test_3d_model_decodes_a_volume_and_a_traversal_grid(explorer_in, qtbot, tmp_path):
    from PIL import Image

    images = population((12, 14, 10), n=8)
    model = small_vae((12, 14, 10))
    viewer, explorer = explorer_in(images, PLACEMENT_3D, model)
    layer = viewer.layers[DECODED_LAYER]
    assert layer.data.shape == (12, 14, 10)
    assert tuple(layer.scale) == pytest.approx((4.0, 4.0, 4.0))
    explorer.sliders[0].value = explorer.sliders[0].min
    settle(explorer, qtbot)
    np.testing.assert_allclose(layer.data, expected_image(model, explorer.code), atol=1e-5)
    explorer.range_mode.value = "fixed3"  # frames far enough apart to differ in 8 bits
    explorer.n_values.value = 5
    explorer.show_traversal_grid()
    settle(explorer, qtbot)
    grid = viewer.layers[GRID_LAYER].data
    assert grid.shape == (12, 4 * 14 + 3 * 2, 5 * 10 + 4 * 2)  # rows = 4 latents, 5 values
    np.testing.assert_allclose(grid[:, :14, :10], explorer.last_grid.images[0, 0], atol=1e-6)
    explorer.save_traversal("png", tmp_path / "grid")
    explorer.save_traversal("gif", tmp_path / "grid")
    settle(explorer, qtbot)
    left, top = LABEL_MARGIN  # the PNG carries row labels left of the grid, a note above
    assert Image.open(tmp_path / "grid.png").size == (5 * 10 + 8 + left, 4 * 14 + 6 + top)
    with Image.open(tmp_path / "grid.gif") as gif:
        assert gif.n_frames == 2 * 5 - 2


def test_pca_model_answers_to_the_same_dock(explorer_in, qtbot):
    images = population((24, 20), n=20)
    pca = build_model(ModelConfig(input_shape=(24, 20), latent_dim=3, family="pca"))
    pca.fit(images)
    viewer, explorer = explorer_in(images, PLACEMENT_2D, pca)
    assert len(explorer.sliders) == 3
    # Whitened codes (sd sqrt(19/20) with numpy's ddof 0) and no KL for point codes.
    assert all("sd 0.97" in s.label and "KL" not in s.label for s in explorer.sliders)
    viewer.dims.set_current_step(0, 3)
    explorer.encode_current()
    settle(explorer, qtbot)
    with torch.inference_mode():
        reconstruction = pca.reconstruct(images[3:4]).numpy()[0]
    np.testing.assert_allclose(viewer.layers[DECODED_LAYER].data, reconstruction, atol=1e-4)


def test_mismatched_model_is_a_message_not_a_crash(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    add_population_layer(viewer, population((24, 20)), PLACEMENT_2D)
    explorer = LatentExplorer(viewer)
    try:
        explorer.set_model(small_vae((12, 14, 10)))
        assert "12 x 14 x 10" in explorer.status.value and "24 x 20" in explorer.status.value
        assert explorer.statistics is None
        settle(explorer, qtbot)  # the model's own decode still shows, on its own unit grid
        assert viewer.layers[DECODED_LAYER].data.shape == (12, 14, 10)
        explorer.encode_current()  # refused with the same message, nothing raised
        assert explorer.status.value.startswith("Error")
        explorer.set_model("/does/not/exist")
        assert "does/not/exist" in explorer.status.value
    finally:
        explorer.shutdown()


def test_a_fast_drag_ends_on_its_newest_value(explorer_in, qtbot):
    images = population((12, 14, 10), n=4)
    model = small_vae((12, 14, 10), latent_dim=4)
    viewer, explorer = explorer_in(images, PLACEMENT_3D, model)
    counts = explorer._decoder.counts
    submitted_before, decoded_before, dropped_before = (
        counts.submitted,
        counts.decoded,
        counts.dropped,
    )
    slider = explorer.sliders[2]
    values = np.linspace(slider.min, slider.max, 60)
    for value in values:  # a fast drag: 60 values without waiting for any decode
        slider.value = float(value)
    settle(explorer, qtbot)
    assert counts.submitted - submitted_before == 60
    decoded, dropped = counts.decoded - decoded_before, counts.dropped - dropped_before
    # a cheap model decodes inline, one per move when the GUI keeps up (see
    # test_decode_worker.py for bursts); every request is either decoded or dropped
    assert decoded >= 1 and decoded + dropped == 60
    assert counts.decoded + counts.dropped == counts.submitted
    np.testing.assert_allclose(
        viewer.layers[DECODED_LAYER].data, expected_image(model, explorer.code), atol=1e-5
    )
    assert explorer.code[2] == pytest.approx(values[-1])


def test_sample_model_and_population_layer_pickup(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    explorer = LatentExplorer(viewer)
    try:
        explorer.model_source.value = SAMPLE_MODEL
        explorer.load_chosen_model()
        model = explorer.model
        assert model is not None and len(explorer.sliders) == model.latent_dim
        shape = tuple(model.config.input_shape)
        placement = {"scale": (1.1,) * len(shape), "translate": (0.0,) * len(shape)}
        placement["axis_labels"] = tuple(f"axis {k}" for k in range(len(shape)))
        add_population_layer(viewer, population(shape, n=5), placement)  # picked up on insert
        assert explorer.population.value == "population (test)"
        settle(explorer, qtbot)
        assert explorer.statistics is not None and explorer.statistics.n_images == 5
        assert viewer.layers[DECODED_LAYER].data.shape == shape
    finally:
        explorer.shutdown()


def test_docked_widget_screenshot_is_not_black(explorer_in, qtbot, tmp_path):
    images = population((24, 20))
    viewer, explorer = explorer_in(images, PLACEMENT_2D, small_vae((24, 20)), show=True)
    viewer.window.add_dock_widget(explorer, name="Latent explorer", area="right")
    qtbot.wait(200)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    dock = explorer.native
    assert dock.isVisible() and dock.width() > 100
    assert shot.ndim == 3 and shot[..., :3].std() > 10  # not a flat (black) picture


def test_module_imports_without_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import brainvae.napari.widgets.latent_explorer, brainvae.analysis\n"
        "print(','.join(m for m in ('torch', 'napari', 'sklearn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
