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
    assert result.band_variance.shape == (3, 4, *SHAPE)

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

    # the cursor: ROI name and the four bands per unit var(c) at that voxel (world = translate
    # + index * scale)
    voxel = (6, 6)
    viewer.cursor.position = tuple(
        t + i * s for t, i, s in zip(PLACEMENT["translate"], voxel, PLACEMENT["scale"], strict=True)
    )
    region, bands = widget.cursor_values()
    assert region == "big blob"
    np.testing.assert_allclose(
        bands, result.normalised_band_variance[1, :, 6, 6].astype(float), rtol=1e-5
    )
    widget._set_cursor_text()
    assert widget.cursor.value.startswith("big blob: variance per unit var(c): small -")
    assert "large -" in widget.cursor.value and "large +" in widget.cursor.value

    # another colouring: the same variance, other channels
    widget.scheme.value = "rgb"
    assert widget.last_run.scheme == "rgb"
    assert not np.allclose(widget.last_run.colour, run.colour)

    out = widget.export(tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["latents"] == ["z1", "z2", "z3"]
    from brainvae.analysis.projective_maps import split_projective_table

    table, active = split_projective_table(pd.read_csv(out / "projective.csv", index_col=0))
    np.testing.assert_allclose(table.to_numpy(), run.matrix, rtol=1e-5)
    assert active.tolist() == [True, True, True]
    band = nib.load(out / "z1_small_negative.nii.gz")
    assert np.squeeze(band.get_fdata()).shape == SHAPE
    assert np.allclose(np.abs(np.diag(band.affine)[:3]).max(), 1.5)
    for name in ("montage.png", "projective.png", "z3_colour.nii.gz", "z2_large.nii.gz",
                 "z1_large_negative.nii.gz", "z1_bands_per_var_c.nii.gz"):  # fmt: skip
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
    # like with like: the impact per ROI voxel, each latent scaled to its largest
    impact = receptive.last_run.result.impact_per_voxel[:, :2]
    np.testing.assert_allclose(widget.receptive_plot.matrix, impact / impact.max(axis=0))
    assert widget.receptive_plot.describe(1, 1).endswith(f"{impact[1, 1]:.4g}")  # KL per voxel
    assert "KL/voxel" in widget.receptive_plot.widget.plotItem.titleLabel.text
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


def test_legend_and_colour_limits_say_what_is_shown(dock, qtbot):
    """Issue 12 (4): the legend names cyan = small positive, magenta = small negative, yellow
    = large; per-latent limits by default (as the command line), shared on request."""
    from brainvae.analysis.projective_field import DEFAULT_COLOUR_LIMITS

    viewer, widget, _explorer, _images = dock
    assert widget.limits.value == DEFAULT_COLOUR_LIMITS == "per-latent"
    legend = widget.legend.value
    assert "#00ffff" in legend and "cyan: small positive" in legend
    assert "#ff00ff" in legend and "magenta: small negative" in legend
    assert "#ffff00" in legend and "yellow: large |c|" in legend and "limits per latent" in legend
    small_sweep(widget)
    widget.run()
    wait(widget, qtbot)
    run = widget.last_run
    assert run.limits_mode == "per-latent" and "colour limits per latent" in widget.status.value
    peaks = run.colour.reshape(3, -1).max(axis=1)
    assert np.all(peaks > 0.9)  # every latent fills its own scale
    widget.limits.value = "shared"
    assert widget.last_run.limits_mode == "shared" and "shared by all" in widget.legend.value
    np.testing.assert_allclose(widget.last_run.limits[0], widget.last_run.limits[2])
    np.testing.assert_allclose(viewer.layers[COLOUR_LAYER].data, widget.last_run.colour[0])
    widget.scheme.value = "rgb"
    assert "green: small positive" in widget.legend.value


def test_collapsed_model_greys_inactive_latents(make_napari_viewer, qtbot, tmp_path):
    """Issue 12 (1): a model with one live latent of three: the enrichment heatmap veils the
    inactive columns, the status names them and reports no top ROI for them, the slider says
    when an inactive latent is shown, and the export marks them."""
    from collapsed_model import collapsed_beta_vae

    viewer = make_napari_viewer()
    explorer, images = add_population_atlas_and_pca(viewer)
    explorer.set_model(collapsed_beta_vae(images, latent_dim=3, live=(0,)))
    widget = ProjectiveFieldWidget(viewer)
    viewer.window.add_dock_widget(widget)
    try:
        small_sweep(widget)
        widget.run()
        wait(widget, qtbot)
        run = widget.last_run
        assert run is not None, widget.status.value
        assert run.active.tolist() == [True, False, False]
        assert widget.projective_plot.inactive.tolist() == [False, True, True]
        assert widget.projective_plot.column_label(1) == "(z2)"
        status = widget.status.value
        assert "1 of 3 latents active" in status and "Inactive (z2, z3)" in status
        assert "Most enriched ROI: z1:" in status and "z2:" not in status.split("Most")[1]
        widget.show_latent_index(1)
        assert "INACTIVE" in widget.shown.label
        out = widget.export(tmp_path)
        summary = json.loads((out / "summary.json").read_text())
        assert summary["inactive_swept"] == ["z2", "z3"]
        assert summary["most_enriched_roi"]["z2"] is None
        assert pd.read_csv(out / "projective.csv", index_col=0).loc["active"].tolist() == [1, 0, 0]
    finally:
        explorer.shutdown()
