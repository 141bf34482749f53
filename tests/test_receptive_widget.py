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
