"""The latent explorer dock in a real napari viewer with small real models (VAE 2D/3D, PCA):
the decode beside the scan (which stays visible), a page of sliders for 1,000 latents, and
labels that say what they show."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from brainvae.analysis.latent_space import decode_codes
from brainvae.analysis.traversal_pictures import LABEL_MARGIN
from brainvae.models import ModelConfig, build_model
from brainvae.napari.population_layers import stack_layer_data
from brainvae.napari.widgets.explorer_display import DECODED_LAYER, GRID_LAYER
from brainvae.napari.widgets.explorer_model_choice import SAMPLE_MODEL
from brainvae.napari.widgets.latent_explorer import LatentExplorer
from brainvae.napari.widgets.latent_sliders import PAGE_SIZE, parse_latent_query
from helpers.collapsed_model import collapsed_beta_vae

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


def left_edge(layer) -> float:
    """World position of a layer's left pixel edge (last axis)."""
    return float(layer.extent.world[0, -1] - 0.5 * layer.scale[-1])


def right_edge(layer) -> float:
    """World position of a layer's right pixel edge (last axis)."""
    return float(layer.extent.world[1, -1] + 0.5 * layer.scale[-1])


def camera_state(viewer) -> tuple:
    return (float(viewer.scene.camera.zoom), *(float(c) for c in viewer.scene.camera.center))


def test_moving_a_slider_changes_the_decoded_layer(explorer_in, qtbot):
    images = population((24, 20))
    model = small_vae((24, 20))
    viewer, explorer = explorer_in(images, PLACEMENT_2D, model)
    layer = viewer.layers[DECODED_LAYER]
    assert layer.data.shape == (24, 20)
    assert tuple(layer.scale) == pytest.approx(PLACEMENT_2D["scale"])
    # beside the scan: same rows, shifted right by the scan's width (20 x 1.2) and a 5 % gap
    assert tuple(layer.translate) == pytest.approx((-50.0, 20.0 + 24.0 + 1.2))
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
    # beside the volume: same depth and rows, shifted along the last (left-right) axis
    scan_layer = viewer.layers["population (test)"]
    assert tuple(layer.translate[:2]) == pytest.approx(PLACEMENT_3D["translate"][:2])
    assert left_edge(layer) > right_edge(scan_layer)
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
    # the grid goes right of the decode: neither the scan nor the decode is covered
    assert left_edge(viewer.layers[GRID_LAYER]) > right_edge(layer) > right_edge(scan_layer)
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


# ---- the scan stays in view --------------------------------------------------------------
def canvas_halves(viewer, qtbot) -> tuple[np.ndarray, np.ndarray]:
    """The canvas as drawn now, split into its left and right halves (RGB)."""
    qtbot.wait(50)
    picture = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    middle = picture.shape[1] // 2
    return picture[:, :middle], picture[:, middle:]


def test_the_decode_stands_beside_the_scan_so_browsing_scans_shows_them(explorer_in, qtbot):
    images = population((24, 20), n=6)
    viewer, explorer = explorer_in(images, PLACEMENT_2D, small_vae((24, 20)), show=True)
    scan_layer, decode = viewer.layers["population (test)"], viewer.layers[DECODED_LAYER]
    assert explorer.decode_shown.value == "beside"
    assert scan_layer.visible and decode.visible
    # side by side: the same rows, the decode's left edge right of the scan's right edge
    np.testing.assert_allclose(decode.extent.world[:, 0], scan_layer.extent.world[:, 1])
    gap = left_edge(decode) - right_edge(scan_layer)
    assert 0 < gap < 0.2 * 20 * PLACEMENT_2D["scale"][1]
    # the camera was fitted once to both: the view is centred between them
    centre = viewer.scene.camera.center[-1]
    assert right_edge(scan_layer) - 1 < centre < left_edge(decode) + 1
    viewer.dims.set_current_step(0, 0)
    scan_half, decode_half = canvas_halves(viewer, qtbot)
    viewer.dims.set_current_step(0, 4)
    scan_half_after, decode_half_after = canvas_halves(viewer, qtbot)
    assert np.abs(scan_half_after - scan_half).max() > 20  # another scan is on the screen
    assert np.abs(decode_half_after - decode_half).max() <= 2  # the decode did not change

    # "over the scan": the decode covers it, so moving the scan slider changes no pixel
    explorer.decode_shown.value = "over"
    np.testing.assert_allclose(decode.translate, PLACEMENT_2D["translate"])
    np.testing.assert_allclose(decode.extent.world, scan_layer.extent.world[:, 1:])
    first, second = canvas_halves(viewer, qtbot)
    viewer.dims.set_current_step(0, 1)
    first_after, second_after = canvas_halves(viewer, qtbot)
    assert np.abs(first_after - first).max() <= 2 and np.abs(second_after - second).max() <= 2


def test_a_plugin_dock_puts_the_decode_beside_a_population_that_arrives_later(
    make_napari_viewer, qtbot
):
    """The launcher's order through napari's plugin machinery (whose viewer is a proxy that
    hands out new layer objects): the model first, its decode alone, then the population."""
    viewer = make_napari_viewer()
    _dock, explorer = viewer.window.add_plugin_dock_widget("napari-brainvae", "Latent explorer")
    assert hasattr(explorer._viewer, "__wrapped__")  # the proxy plugins get
    try:
        from napari.utils.notifications import notification_manager

        explorer.set_model(small_vae((24, 20)))
        settle(explorer, qtbot)
        # alone, the decode takes the plugin's units, so the population that follows (in mm,
        # as every population the plugin makes) does not make napari warn about units
        assert [str(u) for u in viewer.layers[DECODED_LAYER].units] == ["millimeter"] * 2
        seen = len(notification_manager.records)
        add_population_layer(
            viewer, population((24, 20), n=6), {**PLACEMENT_2D, "units": ("mm", "mm")}
        )
        settle(explorer, qtbot)
        viewer.screenshot(canvas_only=True, flash=False)  # napari compares units when it draws
        warned = [
            n for n in notification_manager.records[seen:] if "Inconsistent units" in str(n.message)
        ]
        assert not warned
        scan_layer, decode = viewer.layers["population (test)"], viewer.layers[DECODED_LAYER]
        assert tuple(decode.scale) == pytest.approx(PLACEMENT_2D["scale"])
        gap = left_edge(decode) - right_edge(scan_layer)
        assert 0 < gap < 0.2 * 20 * PLACEMENT_2D["scale"][1]  # right beside, nothing between
        centre = viewer.scene.camera.center[-1]
        assert right_edge(scan_layer) - 1 < centre < left_edge(decode) + 1  # fitted to both
    finally:
        explorer.shutdown()


def test_only_while_a_slider_moves_shows_the_decode_then_hides_it(explorer_in, qtbot):
    images = population((24, 20), n=6)
    viewer, explorer = explorer_in(images, PLACEMENT_2D, small_vae((24, 20)))
    decode = viewer.layers[DECODED_LAYER]
    explorer.decode_shown.value = "while_moving"
    np.testing.assert_allclose(decode.translate, PLACEMENT_2D["translate"])  # over the scan
    assert not decode.visible  # nothing moves: the scan shows
    explorer.sliders[0].value = explorer.sliders[0].max
    qtbot.waitUntil(lambda: decode.visible, timeout=10_000)
    shown = time.perf_counter()
    qtbot.waitUntil(lambda: not decode.visible, timeout=5_000)
    assert time.perf_counter() - shown > 0.5  # about a second after the last change
    explorer.decode_shown.value = "beside"
    assert decode.visible and left_edge(decode) > right_edge(viewer.layers["population (test)"])


def test_a_second_decode_never_moves_the_camera(explorer_in, qtbot):
    images = population((24, 20), n=6)
    viewer, explorer = explorer_in(images, PLACEMENT_2D, small_vae((24, 20)))
    viewer.scene.camera.zoom *= 1.7  # the user zooms in on the brain
    viewer.scene.camera.center = (0.0, -40.0, 25.0)
    before = camera_state(viewer)
    for value in (explorer.sliders[1].min, explorer.sliders[1].max):
        explorer.sliders[1].value = value
        settle(explorer, qtbot)
    explorer.mean_code()
    settle(explorer, qtbot)
    explorer.decode_shown.value = "over"
    explorer.decode_shown.value = "beside"  # fitted once for this scan already
    explorer.set_model(small_vae((24, 20), latent_dim=3, seed=1))  # another model, same grid
    settle(explorer, qtbot)
    assert explorer.model.latent_dim == 3
    assert camera_state(viewer) == pytest.approx(before)


# ---- large latent spaces ----------------------------------------------------------------------
LIVE = (3, 41, 77, 150, 222, 256, 301, 388, 420, 499, 512, 640, 700, 733, 801, 850, 902, 950,
        977, 999)  # fmt: skip


@pytest.fixture(scope="module")
def thousand_latent_model():
    """A real small beta-VAE with 1,000 latents on a 32 x 40 grid; 20 of them active."""
    images = population((32, 40), n=12, seed=3)
    return images, collapsed_beta_vae(images, latent_dim=1000, live=LIVE)


def test_a_thousand_latents_build_one_page_of_sliders(thousand_latent_model, make_napari_viewer,
                                                      qtbot):  # fmt: skip
    from qtpy.QtWidgets import QSlider

    images, model = thousand_latent_model
    viewer = make_napari_viewer()
    add_population_layer(viewer, images, PLACEMENT_2D)
    explorer = LatentExplorer(viewer)
    viewer.window.add_dock_widget(explorer, name="Latent explorer", area="right")
    try:
        started = time.perf_counter()
        explorer.set_model(model)  # the population's encoding goes to a worker
        assert time.perf_counter() - started < 5.0  # one page, not 1,000 sliders (16 s before)
        sliders = explorer.native.findChildren(QSlider)
        assert len(sliders) <= PAGE_SIZE + 2  # the page, the interpolation's t, the (hidden) age
        assert explorer.native.minimumSizeHint().height() < 700  # fits a laptop screen
        assert explorer.native.widget().sizeHint().height() < 1600  # was 26,642 px
        settle(explorer, qtbot)
        assert explorer.latents.active_only.value  # on by default: more latents than a page
        assert explorer.latents.order.value == "measure"
        shown = explorer.latents.shown_latents()
        kl = explorer.statistics.kl
        assert len(shown) == PAGE_SIZE and set(shown) <= set(LIVE)
        assert list(kl[shown]) == sorted(kl[shown], reverse=True)
        assert min(kl[shown]) >= max(kl[sorted(set(LIVE) - set(shown))])  # the top 16 by KL
        assert explorer.latents.page_info.value == f"1-{PAGE_SIZE} of 20 active"
        assert list(explorer.traversal_inputs()[1]) == shown  # a traversal covers the page
    finally:
        explorer.shutdown()


def test_pages_order_filter_and_search_keep_every_value(thousand_latent_model, explorer_in,
                                                        qtbot):  # fmt: skip
    images, model = thousand_latent_model
    viewer, explorer = explorer_in(images, PLACEMENT_2D, model)
    latents = explorer.latents
    first_page = latents.shown_latents()
    moved = first_page[2]
    slider = explorer.slider_for(moved)
    slider.value = slider.max
    settle(explorer, qtbot)
    assert explorer.code[moved] == pytest.approx(slider.max)
    assert latents.selected_latent == moved and f"z{moved + 1}" in latents.detail.value
    latents.next_page.changed.emit(True)  # as a click does
    second_page = latents.shown_latents()
    assert len(second_page) == 20 - PAGE_SIZE and not set(second_page) & set(first_page)
    panel = latents.native
    assert sum(s.native.isVisibleTo(panel) for s in explorer.sliders) == len(second_page)
    explorer.slider_for(second_page[0]).value = explorer.slider_for(second_page[0]).min
    latents.previous_page.changed.emit(True)
    assert latents.shown_latents() == first_page
    assert explorer.code[moved] == pytest.approx(slider.max)  # kept while off the page
    assert explorer.slider_for(moved).value == pytest.approx(slider.max, abs=1e-5)
    code = explorer.code

    latents.active_only.value = False  # every latent, largest KL first: 63 pages
    assert latents.n_pages == -(-1000 // PAGE_SIZE)
    latents.order.value = "index"
    assert latents.shown_latents() == list(range(PAGE_SIZE))
    latents.find.value = "z500"
    assert latents.shown_latents() == [499] and "z500" in latents.detail.value
    latents.find.value = "3, z10-z12"
    assert latents.shown_latents() == [2, 9, 10, 11]
    latents.find.value = "z1001"
    assert latents.shown_latents() == [] and "z1..z1000" in latents.page_info.value
    latents.find.value = ""
    assert latents.shown_latents() == list(range(PAGE_SIZE))
    np.testing.assert_array_equal(explorer.code, code)  # browsing changed no value

    # another dock points at an inactive latent while the filter hides it: it is found
    latents.active_only.value = True
    explorer.highlight_latent(5)
    assert latents.shown_latents() == [5] and latents.find.value == "z6"
    assert "Inactive" in latents.detail.value and explorer.chosen_latent == 5


def test_parse_latent_query_reads_names_numbers_and_ranges():
    assert parse_latent_query("  ", 20) is None
    assert parse_latent_query("z12", 20).tolist() == [11]
    assert parse_latent_query("12", 20).tolist() == [11]
    assert parse_latent_query("z3 - z5, 1", 20).tolist() == [0, 2, 3, 4]
    with pytest.raises(ValueError, match="z21 does not exist"):
        parse_latent_query("z21", 20)
    with pytest.raises(ValueError, match="not a latent"):
        parse_latent_query("ventricles", 20)


# ---- labels say what they show ---------------------------------------------------------------
def test_vae_labels_give_kl_in_nats_and_explain_inactive_latents(explorer_in):
    images = population((24, 20), n=12)
    model = collapsed_beta_vae(images, latent_dim=4, live=(0, 2))
    _viewer, explorer = explorer_in(images, PLACEMENT_2D, model)
    assert "KL to the prior (nats)" in explorer.latents.header.value
    stats = explorer.statistics
    labels = [s.label for s in explorer.sliders]
    for k in (1, 3):  # the whispering latents
        assert labels[k].endswith("inactive") and f"KL {stats.kl[k]:.2f}" in labels[k]
        tooltip = explorer.sliders[k].tooltip
        assert "posterior mean" in tooltip and "<= 0.01" in tooltip
    assert "inactive" not in labels[0] and "inactive" not in labels[2]
    texts = labels + [s.tooltip for s in explorer.sliders] + [explorer.status.value]
    assert not any("dead" in text for text in texts)


def test_pca_labels_give_the_sd_of_each_component(explorer_in):
    images = population((24, 20), n=20)
    pca = build_model(ModelConfig(input_shape=(24, 20), latent_dim=3, family="pca"))
    pca.fit(images)
    _viewer, explorer = explorer_in(images, PLACEMENT_2D, pca)
    header = explorer.latents.header.value
    assert "sd" in header and "KL" not in header
    assert explorer.latents.order.native.itemText(1) == "sd, largest first"
    explorer.latents.select(1)
    assert "sd of the codes" in explorer.latents.detail.value
