"""The Projective fields dock in a real napari viewer: a sweep in a worker, the colour map as
an additive RGB layer under ROI outlines, the enrichment beside the receptive impact, values at
the cursor, one latent at a time, exports, and bad input as a message."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainvae.napari.widgets.projective_widget import (
    COLOUR_LAYER,
    OUTLINE_LAYER,
    ProjectiveFieldWidget,
    in_plane_outlines,
)
from brainvae.napari.widgets.receptive_widget import ReceptiveFieldWidget
from test_receptive_widget import PLACEMENT, SHAPE, add_population_atlas_and_pca


@pytest.fixture
def dock(make_napari_viewer):
    """Population of two local factors, their atlas, an explorer with a 3-component PCA."""
    viewer = make_napari_viewer()
    explorer, images = add_population_atlas_and_pca(viewer)
    widget = ProjectiveFieldWidget(viewer)
    viewer.window.add_dock_widget(widget)
    yield viewer, widget, explorer, images
    explorer.shutdown()


def wait(widget, qtbot) -> None:
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60_000)


def small_sweep(widget) -> None:
    """The prior preset with a coarse step: 61 decodes per latent."""
    widget.preset.value = "prior"
    widget.step.value = 0.1


def test_sweep_shows_colour_map_outlines_and_enrichment(dock, qtbot, tmp_path):
    viewer, widget, _explorer, _images = dock
    assert widget.population.value == "population (test)"
    assert widget.rois.value == "ROI atlas"
    small_sweep(widget)
    widget.run()
    wait(widget, qtbot)
    run = widget.last_run
    assert run is not None, widget.status.value
    assert widget.progress.value == widget.progress.max > 0
    result = run.result
    assert result.band_variance.shape == (3, 3, *SHAPE)

    colour = viewer.layers[COLOUR_LAYER]
    assert colour.rgb and colour.blending == "additive"
    assert colour.data.shape == (*SHAPE, 3) and tuple(colour.scale) == PLACEMENT["scale"]
    np.testing.assert_allclose(colour.data, run.colour[0])
    # outlines: at first only the shown latent's most enriched ROI, every ROI on request
    outlines = viewer.layers[OUTLINE_LAYER]
    atlas = viewer.layers["ROI atlas"].data
    top_label = 1 + int(np.argmax(run.matrix[:, 0]))
    assert set(np.unique(outlines.data)) == {0, top_label}
    widget.outline_all.value = True
    assert set(np.unique(outlines.data)) == {0, 1, 2, 3}
    assert outlines.data[6, 6] == 0 and outlines.data[2, 6] == 1 == atlas[2, 6]  # borders only
    widget.outline_all.value = False
    widget.select_cell(2, 2)  # the corner, latent z3
    assert widget.shown.value == 2 and set(np.unique(outlines.data)) == {0, 3}
    widget.shown.value = 0
    assert list(viewer.layers).index(outlines) == len(viewer.layers) - 1  # on top

    # the enrichment: PCA's first two components live in the two blobs, never in the corner
    assert run.matrix.shape == (3, 3) and run.roi_names == ("big blob", "small spot", "corner")
    np.testing.assert_allclose(widget.projective_plot.matrix, run.matrix)
    top = {run.roi_names[int(np.argmax(run.matrix[:, k]))] for k in range(2)}
    assert top == {"big blob", "small spot"}
    assert "Most enriched ROI" in widget.status.value
    assert "Receptive Fields dock".lower() in widget.status.value.lower()

    # one latent at a time, by the slider or by clicking its heatmap column
    widget.show_latent_index(1)
    assert widget.shown.value == 1
    np.testing.assert_allclose(viewer.layers[COLOUR_LAYER].data, run.colour[1])
    assert "z2" in widget.shown.label

    # the cursor: ROI name and the three bands at that voxel (world = translate + index*scale)
    voxel = (6, 6)
    viewer.cursor.position = tuple(
        t + i * s for t, i, s in zip(PLACEMENT["translate"], voxel, PLACEMENT["scale"], strict=True)
    )
    region, bands = widget.cursor_values()
    assert region == "big blob"
    np.testing.assert_allclose(bands, result.band_variance[1, :, 6, 6], rtol=1e-6)
    widget._set_cursor_text()
    assert widget.cursor.value.startswith("big blob: variance small -")

    # another colouring: the same variance, other channels
    widget.scheme.value = "rgb"
    assert widget.last_run.scheme == "rgb"
    assert not np.allclose(widget.last_run.colour, run.colour)

    out = widget.export(tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["latents"] == ["z1", "z2", "z3"]
    table = pd.read_csv(out / "projective.csv", index_col=0)
    np.testing.assert_allclose(table.to_numpy(), run.matrix, rtol=1e-5)
    band = nib.load(out / "z1_small_negative.nii.gz")
    assert np.squeeze(band.get_fdata()).shape == SHAPE
    assert np.allclose(np.abs(np.diag(band.affine)[:3]).max(), 1.5)
    for name in ("montage.png", "projective.png", "z3_colour.nii.gz", "z2_large.nii.gz"):
        assert (out / name).stat().st_size > 0

    # progress per latent: a report names the latent being swept in the status
    from brainvae.analysis.projective_field import ProjectiveProgress

    assert widget.progress_of(ProjectiveProgress(4, 1, 3, 70, 183)) == (70, 183)
    assert widget.status.value == "Sweeping z5 (2 of 3)..."


def test_receptive_impact_beside_and_disagreement_flagged(dock, qtbot, tmp_path):
    viewer, widget, _explorer, _images = dock
    receptive = ReceptiveFieldWidget(viewer)
    viewer.window.add_dock_widget(receptive)
    receptive.roi_layer.value = "ROI atlas"
    receptive.run()
    qtbot.waitUntil(lambda: receptive._worker is None, timeout=60_000)
    assert receptive.last_run is not None, receptive.status.value
    small_sweep(widget)
    widget.latents.value = "1, 2"
    widget.run()
    wait(widget, qtbot)
    run = widget.last_run
    assert run.result.latent_names == ("z1", "z2")
    impact = receptive.last_run.result.impact[:, :2]
    np.testing.assert_allclose(widget.receptive_plot.matrix, impact / impact.max(axis=0))
    assert widget.receptive_plot.describe(1, 1).endswith(f"{impact[1, 1]:.4g}")  # raw on hover
    assert "fields agree" in widget.status.value or "disagree for" in widget.status.value

    # the same weights loaded from a run folder are another model object: no comparison
    _explorer.model.save(tmp_path / "run")
    widget.model_source.value = "Run folder"
    widget.run_folder.value = tmp_path / "run"
    widget.run()
    wait(widget, qtbot)
    assert widget.last_run is not run and widget.receptive_plot.matrix.size == 0
    assert "with the same model and ROIs" in widget.status.value


def test_outlines_are_borders_within_each_displayed_slice():
    volume = np.zeros((3, 6, 6), np.int32)
    volume[:, 1:5, 1:5] = 2  # a box through every slice: its inside is no border in-plane
    outlines = in_plane_outlines(volume)
    assert outlines[1, 2, 2] == 0 and outlines[1, 1, 2] == 2 and outlines[0, 1, 1] == 2
    assert (outlines[:, 0, :] == 0).all()  # background stays 0


def test_subject_base_and_bad_input_are_messages(dock, qtbot):
    viewer, widget, _explorer, images = dock
    widget.latents.value = "4"
    widget.run()
    assert widget._worker is None and "z1..z3" in widget.status.value
    widget.latents.value = "1"
    widget.low.value, widget.high.value = 0.5, 3.0
    widget.run()
    assert widget._worker is None and "both signs" in widget.status.value
    widget.preset.value = "published"
    assert (widget.low.value, widget.high.value, widget.split.value) == (-7.0, 7.0, 3.5)
    widget.step.value = 0.5
    widget.units.value = "prior"
    widget.base.value = "s03"
    widget.rois.value = "(no ROIs)"
    widget.run()
    wait(widget, qtbot)
    run = widget.last_run
    assert run is not None, widget.status.value
    assert run.result.base_label == "s03" and run.matrix is None
    assert OUTLINE_LAYER not in viewer.layers
    codes = _explorer.model.encode(images[3:4])[0].detach().numpy()[0]
    np.testing.assert_allclose(run.result.base, codes, rtol=1e-4, atol=1e-5)
