"""The Projective fields dock in a real napari viewer: a sweep in a worker, the colour map as
an additive RGB layer under ROI outlines, the enrichment beside the receptive impact, values at
the cursor, one latent at a time, exports, and bad input as a message."""

from __future__ import annotations

import json
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_receptive_widget import PLACEMENT, SHAPE, add_population_atlas_and_pca

from brainvae.analysis.projective_maps import field_agreement
from brainvae.napari.widgets.projective_3d import (
    BRAIN_SURFACE_LAYER,
    RENDERING_3D,
    ROI_SURFACE_LAYER,
)
from brainvae.napari.widgets.projective_layers import (
    COLOUR_LAYER,
    OUTLINE_LAYER,
    UNDERLAY_LAYER,
    in_plane_outlines,
)
from brainvae.napari.widgets.projective_widget import ProjectiveFieldWidget
from brainvae.napari.widgets.receptive_widget import ReceptiveFieldWidget

FIGURE_PIXELS = round(180 / 25.4 * 300)
"""A double-column figure (180 mm) at 300 dpi."""


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


def shown_colour(viewer) -> np.ndarray:
    """The composite the colour layer shows over black: its hue times its opacity."""
    data = viewer.layers[COLOUR_LAYER].data
    return data[..., :3] * data[..., 3:]


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
    # RGBA alpha-blended over the dimmed brain (issue 14, 3): hue at full brightness, opacity =
    # strength, so over black it is the composite and over the brain the hue stays
    assert colour.rgb and colour.blending == "translucent"
    assert colour.data.shape == (*SHAPE, 4) and tuple(colour.scale) == PLACEMENT["scale"]
    np.testing.assert_allclose(
        colour.data[..., :3] * colour.data[..., 3:], run.colour[0], atol=1e-6
    )
    assert viewer.layers.index(colour) > viewer.layers.index(UNDERLAY_LAYER)
    # outlines: at first only the shown latent's most enriched ROI, every ROI on request
    outlines = viewer.layers[OUTLINE_LAYER]
    atlas = viewer.layers["ROI atlas"].data
    top_label = 1 + int(np.argmax(run.matrix[:, 0]))
    assert set(np.unique(outlines.data)) == {0, top_label}
    # the outline colour is no band's colour (it was a random label colour, often yellow)
    drawn = np.asarray(outlines.colormap.map(np.array([top_label, 2, 3])))[:, :3]
    np.testing.assert_allclose(drawn, np.tile([0.0, 1.0, 0.0], (3, 1)))
    for band in ([0, 1, 1], [1, 0, 1], [1, 1, 0]):
        assert not np.allclose(drawn[0], band)
    assert np.asarray(outlines.colormap.map(np.array([0])))[0, 3] == 0  # background clear
    # the canvas says what the colours mean and which ROI is outlined
    overlay = viewer.canvas.overlays.text
    assert overlay.visible and overlay.text == widget.canvas_text()
    assert overlay.text.startswith("Projective field z1")
    assert "cyan = small + c, magenta = small \u2212 c\nyellow = large |c|" in overlay.text
    assert max(len(line) for line in overlay.text.splitlines()) <= 50  # fits a laptop canvas
    assert f"green outline: {run.roi_names[top_label - 1]}" in overlay.text
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
    np.testing.assert_allclose(shown_colour(viewer), run.colour[1], atol=1e-6)
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

    # another colouring: the same variance, other channels, and outlines in another colour
    widget.scheme.value = "rgb"
    assert widget.last_run.scheme == "rgb"
    assert not np.allclose(widget.last_run.colour, run.colour)
    drawn = np.asarray(outlines.colormap.map(np.array([1])))[0, :3]
    np.testing.assert_allclose(drawn, [1.0, 0.55, 0.0])  # orange: not red, green or blue
    assert "green = small + c" in viewer.canvas.overlays.text.text

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
    with Image.open(out / "montage.png") as montage:  # the publication figure, 180 mm wide
        assert abs(montage.size[0] - FIGURE_PIXELS) <= 1

    # progress per latent: a report names the latent being swept in the status
    from brainvae.analysis.projective_streaming import ProjectiveProgress

    assert widget.progress_of(ProjectiveProgress(4, 1, 3, 70, 183)) == (70, 183)
    assert widget.status.value == "Sweeping z5 (2 of 3)..."


def _receptive_like(run, latent_dim: int, per_voxel_of_swept) -> SimpleNamespace:
    """A receptive result on the sweep's ROIs whose impact per ROI voxel is chosen: the fields'
    agreement is then known in advance."""
    sizes = np.arange(1.0, len(run.roi_names) + 1) * 10  # ROI voxel counts
    per_voxel = np.zeros((len(run.roi_names), latent_dim))
    per_voxel[:, list(run.result.latents)] = per_voxel_of_swept
    result = SimpleNamespace(
        roi_names=tuple(run.roi_names),
        roi_sizes=sizes,
        impact=per_voxel * sizes[:, None],
        impact_per_voxel=per_voxel,
    )
    return SimpleNamespace(result=result)


def test_fields_of_known_agreement_and_disagreement_are_said_so(dock, qtbot):
    """Issue 16: a receptive result whose ranking over ROIs is the enrichment's own (rho 1)
    or its reverse (rho -1), published in the viewer's state after the sweep: the dock says
    "agree" for the first and names every active latent for the second."""
    from brainvae.napari.viewer_state import AnalysisResult

    viewer, widget, _explorer, _images = dock
    small_sweep(widget)
    widget.latents.value = "1, 2"
    widget.run()
    wait(widget, qtbot)
    run = widget.last_run
    assert len(run.roi_names) >= 3 and run.active.any()
    for k in range(run.matrix.shape[1]):
        assert len(np.unique(run.matrix[:, k])) == run.matrix.shape[0]  # ranks are defined
    dim = widget._model.latent_dim
    same = _receptive_like(run, dim, run.matrix)
    widget._state.receptive = AnalysisResult(widget._model, None, same)
    assert "fields agree for every active latent" in widget.status.value
    reversed_ranks = _receptive_like(run, dim, run.matrix.max() - run.matrix)
    widget._state.receptive = AnalysisResult(widget._model, None, reversed_ranks)
    active = [run.result.latent_names[k] for k in np.flatnonzero(run.active)]
    said = widget.status.value
    assert "disagree for: " in said and all(f"{name} (rho -1.00)" in said for name in active)
    other_model = AnalysisResult(object(), None, same)  # another model's field: not compared
    widget._state.receptive = other_model
    assert "with the same model and ROIs" in widget.status.value


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
    agreement = field_agreement(run.matrix, impact, receptive.last_run.result.roi_sizes,
                                active=run.active)  # fmt: skip
    flagged = [run.result.latent_names[k] for k in np.flatnonzero(agreement.disagree)]
    if flagged:  # what the dock says is what the comparison computed, named
        assert "disagree for: " + flagged[0] in widget.status.value
    else:
        assert "fields agree for every active latent" in widget.status.value

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
    from brainvae.analysis.projective_colour import DEFAULT_COLOUR_LIMITS

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
    np.testing.assert_allclose(shown_colour(viewer), widget.last_run.colour[0], atol=1e-6)
    widget.scheme.value = "rgb"
    assert "green: small positive" in widget.legend.value


def test_collapsed_model_greys_inactive_latents(make_napari_viewer, qtbot, tmp_path):
    """Issue 12 (1): a model with one live latent of three: the enrichment heatmap veils the
    inactive columns, the status names them and reports no top ROI for them, the slider says
    when an inactive latent is shown, and the export marks them."""
    from helpers.collapsed_model import collapsed_beta_vae

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


def test_export_figure_writes_a_publication_png_in_a_worker(dock, qtbot, tmp_path):
    """Issue 14 (3): "Export figure..." draws the last result (every swept latent, or the shown
    one) at 300 dpi, 180 mm wide, without the GUI waiting on it; bad names are messages."""
    from brainvae.figures.projective_figure import projective_figure

    viewer, widget, _explorer, _images = dock
    widget.export_figure(tmp_path / "early.png")
    assert "run the analysis first" in widget.status.value
    small_sweep(widget)
    widget.run()
    wait(widget, qtbot)
    assert not widget.figure_slices.enabled  # a 2D result has one slice per latent
    widget.figure_file.value = tmp_path / "figure.png"
    widget.figure_button.changed.emit(True)
    assert widget.exports.worker is not None and not widget.figure_button.enabled
    qtbot.waitUntil(lambda: widget.exports.worker is None, timeout=60_000)
    assert widget.status.value == f"Saved the figure {tmp_path / 'figure.png'}"
    assert widget.figure_button.enabled
    with Image.open(tmp_path / "figure.png") as picture:
        assert abs(picture.size[0] - FIGURE_PIXELS) <= 1
        assert picture.info["dpi"][0] == pytest.approx(300, abs=0.01)
        assert np.asarray(picture.convert("RGB")).std() > 10  # drawn, not blank
    widget.figure_latents.value = "shown"
    widget.shown.value = 2
    options = widget.figure_options()
    assert options["latents"] == [2] and options["slices"] is None
    figure = projective_figure(widget.last_run.result, widget.last_run.colour,
                               widget.last_run.limits, **options)  # fmt: skip
    assert [a.get_label() for a in figure.axes if a.get_label().startswith("panel")] == [
        "panel z3 axial"  # the test population's 2D grid: the project's axial default
    ]
    widget.export_figure(tmp_path / "figure.jpg")  # an unknown suffix: PNG
    qtbot.waitUntil(lambda: widget.exports.worker is None, timeout=60_000)
    assert (tmp_path / "figure.png").exists() and not (tmp_path / "figure.jpg").exists()

    # a 2D result in 3D view: the scans' stack (a volume there) goes, the map keeps its brain
    viewer.dims.ndisplay = 3
    assert not viewer.layers["population (test)"].visible
    assert viewer.layers[COLOUR_LAYER].visible and viewer.layers[UNDERLAY_LAYER].visible
    assert BRAIN_SURFACE_LAYER not in viewer.layers
    viewer.dims.ndisplay = 2
    assert viewer.layers["population (test)"].visible


VOLUME = (8, 10, 9)


@pytest.fixture
def volume_dock(make_napari_viewer):
    """A 3D population (a blob that moves, one that brightens), its atlas and a 2-component
    PCA, with the dock."""
    from brainvae.models import ModelConfig, build_model
    from brainvae.napari.population_layers import atlas_layer_data, stack_layer_data
    from brainvae.napari.widgets.latent_explorer import LatentExplorer

    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    grid = np.meshgrid(*(np.arange(n) for n in VOLUME), indexing="ij")

    def blob(centre, width):
        return np.exp(-sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) / width)

    shifts, levels = rng.uniform(-1, 1, 30), rng.uniform(0.2, 0.8, 30)
    images = np.stack(
        [0.2 * blob((4, 5, 4), 12.0) + blob((3, 3 + s, 3), 3.0) + v * blob((5, 7, 6), 2.0)
         for s, v in zip(shifts, levels, strict=True)]
    ).astype(np.float32)  # fmt: skip
    placement = {"scale": (2.0, 2.0, 2.0), "translate": (0.0, 0.0, 0.0),
                 "axis_labels": ("z", "y", "x")}  # fmt: skip
    table = {"table": [{"subject_id": f"s{k:02d}", "split": "train"} for k in range(30)]}
    data, kwargs, _ = stack_layer_data(images, "population (3D test)", placement, table)
    viewer.add_image(data, **kwargs)
    atlas = np.zeros(VOLUME, np.int32)
    atlas[1:6, 1:6, 1:6] = 1
    atlas[4:8, 5:10, 4:9] = 2
    atlas[6:8, 0:3, 0:3] = 3
    data, kwargs, _ = atlas_layer_data(atlas, {1: "mover", 2: "brightener", 3: "corner"}, placement)
    viewer.add_labels(data, **kwargs)
    model = build_model(ModelConfig(input_shape=VOLUME, latent_dim=2, family="pca"))
    explorer = LatentExplorer(viewer)
    explorer.set_model(model.fit(images).eval())
    widget = ProjectiveFieldWidget(viewer)
    viewer.window.add_dock_widget(widget)
    yield viewer, widget
    explorer.shutdown()


@pytest.mark.slow
def test_3d_view_hides_the_opaque_volumes_and_draws_surfaces(volume_dock, qtbot):
    """Issue 14 (3): in 3D the population, decode, atlas and dimmed-brain volumes hid the
    colours; now they are hidden while the result is shown (and come back in 2D or when the
    colour layer goes), the colours are a maximum projection of the voxels above half their
    limit, the brain is a faint surface and the outlined ROI a surface in the outline colour."""
    viewer, widget = volume_dock
    small_sweep(widget)
    widget.run()
    wait(widget, qtbot)
    run = widget.last_run
    assert run is not None, widget.status.value
    assert widget.figure_slices.enabled
    others = [
        layer for layer in viewer.layers if not layer.name.startswith(("projective", "ROI o"))
    ]
    names = {layer.name for layer in others}
    assert {"population (3D test)", "ROI atlas", UNDERLAY_LAYER} <= names
    assert all(layer.visible for layer in others)

    viewer.dims.ndisplay = 3
    colour = viewer.layers[COLOUR_LAYER]
    assert colour.visible and colour.rendering == RENDERING_3D == "mip"
    assert not any(layer.visible for layer in others)  # every opaque volume out of the way
    assert not viewer.layers[OUTLINE_LAYER].visible  # in-plane borders: replaced by a surface
    strength = run.colour[0].max(axis=-1)
    np.testing.assert_allclose(colour.data[..., 3], np.clip(2 * strength - 1, 0, 1), atol=1e-6)
    brain = viewer.layers[BRAIN_SURFACE_LAYER]
    surface = viewer.layers[ROI_SURFACE_LAYER]
    assert brain.opacity < 0.5 and tuple(surface.scale) == (2.0, 2.0, 2.0)
    vertices = surface.data[0]
    top = run.roi_labels[int(np.nanargmax(run.matrix[:, 0]))]
    inside = np.argwhere(viewer.layers["ROI atlas"].data == top)
    assert np.all(vertices.min(axis=0) >= inside.min(axis=0) - 1)  # around that ROI only
    assert np.all(vertices.max(axis=0) <= inside.max(axis=0) + 1)
    np.testing.assert_allclose(surface.colormap.map(np.array([1.0]))[0, :3], [0.0, 1.0, 0.0])
    assert "3D: brightest voxel per ray" in viewer.canvas.overlays.text.text
    widget.shown.value = 1  # another latent in 3D: its colours, the volumes stay hidden
    assert not any(layer.visible for layer in others)
    np.testing.assert_allclose(
        colour.data[..., 3], np.clip(2 * run.colour[1].max(axis=-1) - 1, 0, 1), atol=1e-6
    )
    widget.outline_all.value = True  # every ROI: each one's surface
    vertices = viewer.layers[ROI_SURFACE_LAYER].data[0]
    everything = np.argwhere(viewer.layers["ROI atlas"].data > 0)
    np.testing.assert_allclose(vertices.min(axis=0), everything.min(axis=0) - 0.5)
    np.testing.assert_allclose(vertices.max(axis=0), everything.max(axis=0) + 0.5)
    widget.run()  # a new result while in 3D: its new dimmed brain is hidden too
    wait(widget, qtbot)
    assert widget.last_run is not run and widget.shown.value == 0
    run = widget.last_run
    assert not viewer.layers[UNDERLAY_LAYER].visible and viewer.layers[COLOUR_LAYER].visible
    assert BRAIN_SURFACE_LAYER in viewer.layers
    colour = viewer.layers[COLOUR_LAYER]
    others = [layer for layer in viewer.layers if layer.name in names]

    viewer.dims.ndisplay = 2  # back: everything as it was, no surfaces
    assert all(layer.visible for layer in others)
    assert BRAIN_SURFACE_LAYER not in viewer.layers and ROI_SURFACE_LAYER not in viewer.layers
    np.testing.assert_allclose(colour.data[..., 3], run.colour[0].max(axis=-1), atol=1e-6)

    viewer.dims.ndisplay = 3
    assert not any(layer.visible for layer in others)
    viewer.layers.remove(COLOUR_LAYER)  # the user drops the result: the volumes come back
    assert all(layer.visible for layer in others if layer in viewer.layers)
    assert BRAIN_SURFACE_LAYER not in viewer.layers
    assert not viewer.canvas.overlays.text.visible
