"""The Receptive fields dock in a real napari viewer: ROIs painted or taken from the atlas,
a run in a worker, heatmaps, a clicked cell selecting ROI and latent, exports, re-run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainvae.models import ModelConfig, build_model
from brainvae.napari.population_layers import atlas_layer_data, stack_layer_data
from brainvae.napari.widgets.latent_explorer import LatentExplorer
from brainvae.napari.widgets.receptive_widget import ROI_LAYER, ReceptiveFieldWidget

SHAPE = (24, 20)
PLACEMENT = {"scale": (1.5, 1.5), "translate": (-10.0, 5.0), "axis_labels": ("y", "x")}


def local_population(n: int = 40, seed: int = 0) -> np.ndarray:
    """A bright blob whose size varies (top left) and a dim one whose brightness varies
    (bottom right): two local factors."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    size = rng.uniform(2.0, 4.0, n)[:, None, None]
    level = rng.uniform(0.2, 0.8, n)[:, None, None]
    blob = np.exp(-((yy - 6) ** 2 + (xx - 6) ** 2) / (2 * size**2))
    spot = level * np.exp(-((yy - 17) ** 2 + (xx - 14) ** 2) / (2 * 2.0**2))
    return (0.1 + 0.8 * blob + spot).astype(np.float32)


def add_population_atlas_and_pca(viewer) -> tuple[LatentExplorer, np.ndarray]:
    """The population (subjects s00.., a val split), an atlas of its two blobs and a corner,
    and a latent explorer holding a 3-component PCA fitted on it."""
    images = local_population()
    table = {
        "table": [
            {"subject_id": f"s{k:02d}", "split": "train" if k % 4 else "val"}
            for k in range(len(images))
        ]
    }
    data, kwargs, _ = stack_layer_data(images, "population (test)", PLACEMENT, table)
    viewer.add_image(data, **kwargs)
    atlas = np.zeros(SHAPE, np.int32)
    atlas[2:11, 2:11] = 1
    atlas[13:22, 10:19] = 2
    atlas[20:24, 0:4] = 3
    data, kwargs, _ = atlas_layer_data(
        atlas, {1: "big blob", 2: "small spot", 3: "corner"}, PLACEMENT
    )
    viewer.add_labels(data, **kwargs)
    pca = build_model(ModelConfig(input_shape=SHAPE, latent_dim=3, family="pca"))
    pca.fit(images)
    explorer = LatentExplorer(viewer)
    explorer.set_model(pca.eval())
    return explorer, images


@pytest.fixture
def dock(make_napari_viewer, qtbot):
    """A viewer with the population, its atlas, an explorer with a PCA, and the dock."""
    viewer = make_napari_viewer()
    explorer, _images = add_population_atlas_and_pca(viewer)
    widget = ReceptiveFieldWidget(viewer)
    viewer.window.add_dock_widget(widget)
    yield viewer, widget, explorer
    explorer.shutdown()


def wait(widget, qtbot) -> None:
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)


def test_atlas_regions_run_and_show_which_latents_answer(dock, qtbot, tmp_path):
    viewer, widget, explorer = dock
    assert widget.population.value == "population (test)"
    plots = (widget.impact_plot, widget.covariance_plot, widget.gaussians_plot)
    assert not any(plot.shown for plot in plots)  # no empty axes before a result
    for region in (1, 2, 3):
        widget.atlas_region.value = region
        widget.add_atlas_region()
    rois = viewer.layers[ROI_LAYER]
    assert set(np.unique(rois.data)) == {0, 1, 2, 3}
    assert rois.metadata["brainvae"]["roi_names"] == {1: "big blob", 2: "small spot", 3: "corner"}
    assert list(rois.features["name"]) == ["background", "big blob", "small spot", "corner"]
    widget.run()
    wait(widget, qtbot)
    run = widget.last_run
    assert run is not None, widget.status.value
    result = run.result
    assert result.impact.shape == (3, 3) and result.roi_names == (
        "big blob",
        "small spot",
        "corner",
    )
    # the blob's size and the spot's brightness are PCA's strongest directions; the empty
    # corner answers far less than either
    assert result.impact[0].max() > 10 * result.impact[2].max()
    assert result.impact[1].max() > 10 * result.impact[2].max()
    np.testing.assert_allclose(widget.impact_plot.matrix, result.impact_per_voxel)
    widget.impact_view.value = "raw"
    np.testing.assert_allclose(widget.impact_plot.matrix, result.impact)
    widget.impact_view.value = "row_scaled"  # each ROI's row scaled to 1; hover says the KL
    np.testing.assert_allclose(widget.impact_plot.matrix.max(axis=1), 1.0)
    assert widget.impact_plot.describe(0, 0).endswith(f"{result.impact[0, 0]:.4g}")
    widget.impact_view.value = "per_voxel"
    np.testing.assert_allclose(widget.impact_plot.matrix, result.impact_per_voxel)
    assert widget.covariance_plot.matrix.shape == (3, 3)
    assert "published s" in widget.status.value and "separation" in widget.status.value
    assert "3 of 3 latents active" in widget.status.value
    assert widget.progress.value == widget.progress.max > 0
    assert all(plot.shown for plot in plots)

    # a clicked cell: its Gaussians, its ROI selected in the ROI layer, its latent in the explorer
    widget.select_cell(1, 2)
    assert rois.selected_label == 2 and explorer.chosen_latent == 2
    assert len(widget.gaussians_plot.curves) == len(result.weights)
    assert "small spot, z3" in widget.gaussians_plot.widget.getPlotItem().titleLabel.text

    out = widget.export(tmp_path)
    impact = pd.read_csv(out / "impact.csv", index_col=0)
    np.testing.assert_allclose(impact.to_numpy(), result.impact, rtol=1e-6)
    assert list(impact.columns) == ["z1", "z2", "z3"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == 40 and summary["kind"] == "remove"
    for name in (
        "covariance.csv",
        "gaussians.csv",
        "impact.png",
        "covariance.png",
        "gaussians.png",
    ):
        assert (out / name).stat().st_size > 0


def test_painted_roi_split_and_rerun_after_a_stroke(dock, qtbot):
    viewer, widget, _explorer = dock
    layer = widget.new_roi_layer()
    assert layer.data.shape == SHAPE and tuple(layer.scale) == PLACEMENT["scale"]
    assert layer.mode == "paint" and layer.selected_label == 1
    layer.paint((6, 6), 1)  # a brush stroke on the big blob
    layer.paint((17, 14), 2)
    widget.roi_names.value = "1=blob, 2=spot"
    widget.scans.value = "val split"
    widget.run()
    wait(widget, qtbot)
    result = widget.last_run.result
    assert result.roi_names == ("blob", "spot") and result.n_images == 10
    widget.rerun.value = True
    first = widget.last_run
    layer.paint((20, 2), 3)  # a third ROI: the stroke's end re-runs
    qtbot.waitUntil(lambda: widget.last_run is not first, timeout=60_000)
    wait(widget, qtbot)
    assert widget.last_run.result.n_rois == 3


def test_bad_input_is_a_message(dock, qtbot):
    viewer, widget, _explorer = dock
    viewer.layers.remove("ROI atlas")  # (an atlas is a valid ROI layer: every region an ROI)
    widget.run()  # no ROI layer at all
    assert widget._worker is None and "ROI" in widget.status.value
    layer = widget.new_roi_layer()
    widget.run()  # empty
    assert "empty" in widget.status.value
    layer.paint((6, 6), 1)
    widget.weights.value = "1, x"
    widget.run()
    assert "weights" in widget.status.value
    widget.weights.value = "1"
    widget.run()
    wait(widget, qtbot)
    assert widget.status.value.startswith("Error") and widget.last_run is None


# ---- issue 14: the clicked ROI on the canvas, 256 latents, plots, the atlas in 3D ----------

SHAPE_3D = (10, 12, 10)
PLACEMENT_3D = {
    "scale": (2.0, 1.5, 1.5),
    "translate": (-9.0, 0.0, 3.0),
    "axis_labels": ("inferior", "posterior", "right"),
}
BAND_COLOURS = ((0.0, 1.0, 1.0), (1.0, 0.0, 1.0), (1.0, 1.0, 0.0))  # cyan, magenta, yellow


def volume_population(n: int = 30, seed: int = 0) -> np.ndarray:
    """3D scans: a blob whose brightness varies in slices 1-3, another in slices 6-8 (and a
    little noise)."""
    rng = np.random.default_rng(seed)
    images = (0.1 + 0.01 * rng.standard_normal((n, *SHAPE_3D))).astype(np.float32)
    images[:, 1:4, 2:6, 2:6] += rng.uniform(0.2, 0.9, n)[:, None, None, None]
    images[:, 6:9, 6:10, 5:9] += rng.uniform(0.2, 0.9, n)[:, None, None, None]
    return images


@pytest.fixture
def volume_dock(make_napari_viewer, qtbot):
    """A shown viewer with a 3D population, an atlas of its two blobs (regions in slices
    1-3 and 6-8), an explorer with a PCA, and the dock, after a run on both regions."""
    viewer = make_napari_viewer(show=True)
    images = volume_population()
    data, kwargs, _ = stack_layer_data(images, "population (3D)", PLACEMENT_3D, {})
    viewer.add_image(data, **kwargs)
    atlas = np.zeros(SHAPE_3D, np.int32)
    atlas[1:4, 2:6, 2:6] = 1
    atlas[6:9, 6:10, 5:9] = 2
    data, kwargs, _ = atlas_layer_data(atlas, {1: "upper blob", 2: "lower blob"}, PLACEMENT_3D)
    viewer.add_labels(data, **kwargs)
    pca = build_model(ModelConfig(input_shape=SHAPE_3D, latent_dim=3, family="pca"))
    pca.fit(images)
    explorer = LatentExplorer(viewer)
    explorer.set_model(pca.eval())
    widget = ReceptiveFieldWidget(viewer)
    viewer.window.add_dock_widget(widget)
    for region in (1, 2):
        widget.atlas_region.value = region
        widget.add_atlas_region()
    widget.run()
    wait(widget, qtbot)
    assert widget.last_run is not None, widget.status.value
    qtbot.wait(50)
    yield viewer, widget, explorer
    explorer.shutdown()


def click(heatmap, qtbot, row: int, column: int | None) -> None:
    """A real mouse click on a heatmap cell, or on a row's name when column is None."""
    from qtpy.QtCore import QPointF, Qt

    plot = heatmap.widget
    box = plot.getViewBox()
    scene = box.mapViewToScene(QPointF(0.5 if column is None else column + 0.5, row + 0.5))
    if column is None:
        scene.setX(plot.getAxis("left").sceneBoundingRect().center().x())
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=plot.mapFromScene(scene))


def green_pixels(viewer) -> int:
    """Canvas pixels in the highlight's green (the whole scene in view)."""
    viewer.reset_view()
    image = np.asarray(viewer.screenshot(canvas_only=True, flash=False)).astype(int)
    return int(np.sum((image[..., 1] > 180) & (image[..., 0] < 90) & (image[..., 2] < 90)))


def slice_world(index: int) -> float:
    """World position of a slice along the first spatial axis."""
    return PLACEMENT_3D["translate"][0] + index * PLACEMENT_3D["scale"][0]


def test_clicked_cell_outlines_its_roi_on_top_at_its_slice(volume_dock, qtbot):
    from brainvae.napari.label_view import HIGHLIGHT_LAYER

    viewer, widget, explorer = volume_dock
    viewer.dims.set_point(1, slice_world(5))  # a slice between the two ROIs
    zoom = viewer.scene.camera.zoom
    # something opaque above the ROIs and the atlas, as a decoded brain can be
    viewer.add_image(np.ones(SHAPE_3D, np.float32), name="opaque", **PLACEMENT_3D)
    click(widget.impact_plot, qtbot, 0, 1)  # upper blob x z2
    qtbot.wait(50)
    layer = viewer.layers[-1]  # on top of everything, the opaque image included
    assert layer.name == HIGHLIGHT_LAYER and layer.visible and layer.contour > 0
    assert explorer.chosen_latent == 1 and viewer.layers[ROI_LAYER].selected_label == 1
    colour = np.asarray(layer.colormap.map(1)).reshape(-1)[:3]
    assert min(np.abs(colour - band).max() for band in BAND_COLOURS) > 0.5
    np.testing.assert_array_equal(layer.data > 0, viewer.layers[ROI_LAYER].data == 1)
    assert viewer.dims.point[1] == pytest.approx(slice_world(2))  # the ROI's centre slice
    assert viewer.scene.camera.zoom == pytest.approx(zoom)  # the view was not re-zoomed
    assert green_pixels(viewer) > 0
    assert "upper blob" in widget.status.value and "green" in widget.status.value

    # a layer added later goes under the highlight
    viewer.add_image(np.ones(SHAPE_3D, np.float32), name="later", **PLACEMENT_3D)
    qtbot.wait(50)
    assert viewer.layers[-1].name == HIGHLIGHT_LAYER and green_pixels(viewer) > 0

    # the other ROI, by its row's name: its slice
    click(widget.impact_plot, qtbot, 1, None)
    assert viewer.layers[HIGHLIGHT_LAYER].metadata["brainvae"]["name"] == "lower blob"
    assert viewer.dims.point[1] == pytest.approx(slice_world(7))
    assert viewer.layers[ROI_LAYER].selected_label == 2

    # in 3D (no contours there) a surface, still seen over the opaque volumes
    viewer.dims.ndisplay = 3
    assert viewer.layers[HIGHLIGHT_LAYER].contour == 0
    assert green_pixels(viewer) > 0
    viewer.dims.ndisplay = 2
    assert viewer.layers[HIGHLIGHT_LAYER].contour > 0
    # the highlight is not an ROI layer to run on
    assert HIGHLIGHT_LAYER not in widget.roi_layer.choices


def test_atlas_is_faint_in_3d_and_itself_again_in_2d(volume_dock):
    viewer, _widget, _explorer = volume_dock
    atlas = viewer.layers["ROI atlas"]
    atlas.contour = 1  # the population dock outlines it in 2D
    viewer.dims.ndisplay = 3
    assert atlas.rendering == "iso_categorical" and atlas.contour == 0
    assert atlas.opacity <= 0.15  # the anatomy reads through the outer regions
    viewer.dims.ndisplay = 2
    assert atlas.opacity == pytest.approx(0.4) and atlas.contour == 1


def test_choosing_an_atlas_region_outlines_it(volume_dock):
    from brainvae.napari.label_view import HIGHLIGHT_LAYER

    viewer, widget, _explorer = volume_dock
    widget.atlas_region.value = 2
    widget.atlas_region.native.activated.emit(widget.atlas_region.native.currentIndex())
    layer = viewer.layers[HIGHLIGHT_LAYER]
    np.testing.assert_array_equal(layer.data > 0, viewer.layers["ROI atlas"].data == 2)
    assert viewer.dims.point[1] == pytest.approx(slice_world(7))


def assert_names_apart(heatmap) -> None:
    """Neighbouring column names (and colour bar ticks) leave room for each other."""
    metrics = heatmap._metrics()
    cell = heatmap.widget.getViewBox().width() / heatmap.matrix.shape[1]
    named = [(position, text) for position, text in heatmap.column_ticks if text]
    assert named
    for (left, a), (right, b) in zip(named, named[1:], strict=False):
        room = (right - left) * cell
        assert room >= (metrics.horizontalAdvance(a) + metrics.horizontalAdvance(b)) / 2, (a, b)
    low, high = heatmap.levels
    height = heatmap.widget.getViewBox().height()
    ticks = [value for value, _ in heatmap.colour_bar_ticks]
    assert len(ticks) >= 2
    for below, above in zip(ticks, ticks[1:], strict=False):
        assert (above - below) / (high - low) * height >= metrics.height()
    widest = max(metrics.horizontalAdvance(text) for _, text in heatmap.colour_bar_ticks)
    assert heatmap.colour_bar.axis.width() >= widest  # pyqtgraph drops wider labels


def test_256_latents_show_the_largest_readably_and_all_on_request(make_napari_viewer, qtbot):
    import torch

    viewer = make_napari_viewer(show=True)
    explorer, _images = add_population_atlas_and_pca(viewer)
    torch.manual_seed(0)
    vae = build_model(ModelConfig(input_shape=SHAPE, latent_dim=256, family="beta_vae"))
    explorer.set_model(vae.eval())
    widget = ReceptiveFieldWidget(viewer)
    viewer.window.add_dock_widget(widget)
    for region in (1, 2, 3):
        widget.atlas_region.value = region
        widget.add_atlas_region()
    widget.run()
    wait(widget, qtbot)
    result = widget.last_run.result
    qtbot.wait(50)
    try:
        shown = np.sort(np.argsort(-result.impact_per_voxel.max(axis=0), kind="stable")[:32])
        names = tuple(result.latent_names[k] for k in shown)
        assert widget.impact_plot.columns == names and widget.impact_plot.matrix.shape == (3, 32)
        assert widget.covariance_plot.columns == names  # the same latents in both
        assert "32 of 256 latents" in widget.impact_plot.widget.plotItem.titleLabel.text
        assert_names_apart(widget.impact_plot)
        assert_names_apart(widget.covariance_plot)
        text = widget.impact_plot.describe(1, 5)  # the hover tooltip
        assert text.startswith(
            f"ROI small spot, latent {names[5]}: {result.impact[1, shown[5]]:.4g}"
        )
        click(widget.impact_plot, qtbot, 0, 5)  # the column shows latent shown[5]
        assert explorer.chosen_latent == shown[5]

        widget.latents_shown.value = 10
        assert widget.impact_plot.matrix.shape == (3, 10)
        widget.all_latents.value = True
        qtbot.wait(50)
        assert widget.impact_plot.matrix.shape == (3, 256)
        area = widget.impact_plot.scroll_area
        assert area.horizontalScrollBar().maximum() > 0  # wider than the dock: it scrolls
        assert len(widget.impact_plot.shown_labels()[1]) == 256  # every name, none overlapping
        assert_names_apart(widget.impact_plot)
    finally:
        explorer.shutdown()


def test_gaussians_plot_reads_plain_densities_with_its_legend_inside(qtbot):
    from brainvae.napari.widgets.gaussians_plot import GaussiansPlot

    plot = GaussiansPlot()
    qtbot.addWidget(plot.widget)
    assert not plot.shown  # nothing to show yet
    weights = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    # wide Gaussians: densities near 1e-4, where pyqtgraph would label the axis "(x0.0001)"
    plot.show(weights * 500.0, np.full(5, 1000.0**2), weights, "roi, z1: impact 0.1")
    plot.widget.resize(420, 240)
    plot.widget.show()
    qtbot.waitExposed(plot.widget)
    qtbot.wait(50)
    left, bottom = plot.widget.getAxis("left"), plot.widget.getAxis("bottom")
    assert left.autoSIPrefixScale == 1.0 and "(x" not in left.labelString()
    assert "probability density" in left.labelString()
    assert "latent value" in bottom.labelString()
    assert plot.shown and plot.legend_inside()
    plot.clear()
    assert not plot.shown


def test_every_plot_panel_hides_until_drawn_and_saves_what_it_shows(qtbot, tmp_path):
    """The heatmap, the Gaussians and the loss plot share PlotPanel: hidden (the loss plot:
    a sentence instead) with nothing to show, shown once drawn, hidden after clear(), and
    saved as a PNG of the plot's size."""
    from PIL import Image

    from brainvae.napari.widgets.gaussians_plot import GaussiansPlot
    from brainvae.napari.widgets.heatmap import Heatmap
    from brainvae.napari.widgets.loss_plot import LossPlot
    from brainvae.napari.widgets.plot_panel import PlotPanel

    heatmap, gaussians, losses = Heatmap("impact"), GaussiansPlot(), LossPlot()
    draws = (
        lambda: heatmap.set_matrix(np.eye(2), ["a", "b"], ["z1", "z2"]),
        lambda: gaussians.show(np.zeros(2), np.ones(2), np.array([-1.0, 1.0]), "roi, z1"),
        lambda: losses.add("train_loss", 1.0, 2.5),
    )
    for plot, draw in zip((heatmap, gaussians, losses), draws, strict=True):
        assert isinstance(plot, PlotPanel)
        qtbot.addWidget(plot.panel)
        assert not plot.shown
        draw()
        assert plot.shown
        plot.panel.resize(300, 260)
        plot.panel.show()
        qtbot.waitExposed(plot.panel)
        path = tmp_path / f"{type(plot).__name__}.png"
        plot.save_png(path)
        assert Image.open(path).size == (plot.widget.width(), plot.widget.height())
        plot.clear()
        assert not plot.shown
    assert heatmap.matrix.size == 0 and not gaussians.curves and not losses.has_points
    assert not losses.placeholder.isHidden()  # it says what will appear instead


def test_heatmap_label_and_tick_arithmetic():
    from brainvae.analysis.roi_outline import roi_location
    from brainvae.napari.widgets.heatmap import colour_bar_ticks, label_step, top_columns

    assert label_step(28, 10) == 4 and label_step(20, 40) == 1
    impact = np.array([[0.0, 5.0, 1.0, np.nan], [2.0, 0.0, 0.0, 0.5]])
    assert top_columns(impact, 2).tolist() == [0, 1]  # the largest two, in latent order
    assert top_columns(impact, None).tolist() == [0, 1, 2, 3]
    ticks = colour_bar_ticks(-286.7, 286.7, 282)
    assert [text for _, text in ticks] == ["-200", "-100", "0", "100", "200"]
    small = colour_bar_ticks(6e-7, 3.1e-4, 282)
    assert 2 <= len(small) <= 282 // 28 + 1 and all(6e-7 <= v <= 3.1e-4 for v, _ in small)
    # a C-shaped ROI: its centre slice still cuts it (its centre of mass does not)
    labels = np.zeros((9, 5), np.int32)
    labels[0:3, 0] = labels[6:9, 0] = 4
    labels[0, :] = labels[8, :] = 4
    location = roi_location(labels, 4)
    assert location.voxels == int((labels == 4).sum()) and (labels[location.centre[0]] == 4).any()
    assert location.bounds == ((0, 8), (0, 4)) and roi_location(labels, 7) is None
