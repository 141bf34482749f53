"""The Evaluation dock in a real napari viewer on a small prepared phantom dataset with real runs
(a beta-VAE trained one epoch by `brainvae sweep`, a PCA and an identity PCA that copies its
input): Compare fills the summary table, adds the montage layers below the scan and says
which model reproduces each artefact least; runs of different input shapes and a missing
choice are refused in the status line; Export writes the `brainvae denoise` folder; Evaluate
scores each run; the sweep folder's metrics are drawn with the inflection ringed; the 3D
sample population with the 3D sample model gives volumes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainvae.cli import main
from brainvae.models import ModelConfig, build_model, load_model
from brainvae.napari.viewer_state import ModelInUse, state_of
from brainvae.napari.widgets.evaluation_montage import LABELS_LAYER, montage_name
from brainvae.napari.widgets.evaluation_widget import DATASET_FOLDER
from brainvae.napari.widgets.explorer_model_choice import sample_model_dir
from helpers.oracle_model import make_phantom, sample_factors
from helpers.pca_runs import save_pca

DOCK = "Evaluation"
SHAPE = (32, 40)
BETA_VAE_CELL = "beta-1_latent-4"


def _dock(viewer):
    return viewer.window.add_plugin_dock_widget("napari-brainvae", DOCK)[1]


def wait(dock, qtbot, timeout: int = 120_000) -> None:
    qtbot.waitUntil(lambda: not dock.busy, timeout=timeout)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A prepared phantom dataset (20 scans, 6 in the test split), a PCA (L 3), an identity
    PCA, and a 2 x 2 sweep of beta-VAEs trained one epoch each (its cells are runs too)."""
    from brainvae.data.prepare import prepare
    from brainvae.data.preprocessing import PreprocessConfig

    root = tmp_path_factory.mktemp("evaluation")
    images = make_phantom(SHAPE).render(sample_factors(20, 0), noise_sd=0.01, seed=1)
    source = root / "src"
    source.mkdir()
    for i, image in enumerate(images):
        np.save(source / f"sub-{i:03d}_ses-1.npy", image)
    config = PreprocessConfig.identity(split_fractions=(0.5, 0.2, 0.3))
    dataset = prepare(source, root / "ds", config, workers=1).path
    sweep = root / "sweep"
    code = main(["sweep", str(dataset), "--betas", "1,4", "--latents", "2,4", "--epochs", "1",
                 "--quiet", "--out", str(sweep)])  # fmt: skip
    assert code == 0
    return {
        "dataset": dataset,
        "pca": save_pca(root / "pca", dataset, 3),
        "copy": save_pca(root / "copy", dataset),
        "sweep": sweep,
        "beta_vae": sweep / BETA_VAE_CELL,
    }


def dock_on_folder(make_napari_viewer, tiny):
    """A viewer whose model in use is the sweep's beta-VAE, the dock on the dataset folder."""
    viewer = make_napari_viewer()
    dock = _dock(viewer)
    folder = tiny["beta_vae"]
    state_of(viewer).model = ModelInUse(load_model(folder).eval(), folder, folder.name)
    dock.dataset.value = DATASET_FOLDER
    dock.dataset_folder.value = tiny["dataset"]
    return viewer, dock


def test_compare_table_montage_verdict_and_export(make_napari_viewer, qtbot, tiny, tmp_path):
    from brainvae.data.dataset import PreparedDataset

    viewer, dock = dock_on_folder(make_napari_viewer, tiny)
    assert not dock.dataset_folder.native.isHidden()
    assert dock.runs.use_model.text == f"model in use: {BETA_VAE_CELL}"
    assert dock.add_run(tiny["pca"]) is not None
    assert dock.add_run(tiny["copy"]) is not None
    assert dock.add_run(tiny["copy"]) is None and "already in the list" in dock.status.value
    dock.artefact_boxes["missing"].value = False  # leakage and grid
    dock.compare()
    wait(dock, qtbot)
    result = dock.last_comparison
    assert result is not None, dock.status.value
    assert dock.status.value.startswith("Done: 6 test scans, severity 1.")
    models = (BETA_VAE_CELL, "pca", "copy")
    assert result.run.comparison.model_names == models

    # the table: the summary's rows, baseline first, in the artefacts' order
    rows = dock.summary_table.texts()
    assert [r[:2] for r in rows] == [
        [artefact, model]
        for artefact in ("clean (baseline)", "leakage", "grid")
        for model in models
    ]
    summary = result.run.comparison.summary()
    leak = summary[(summary["artefact"] == "leakage") & (summary["model"] == "pca")].iloc[0]
    assert rows[4][2] == f"{leak['cw_ssim']:.3f}"  # as computed, 3 decimals
    assert rows[0][5] == ""  # the clean scans have no artefact to reproduce
    assert rows[4][5] == f"{100 * leak['artefact_reproduced']:.1f} %"
    copied = summary[summary["model"] == "copy"].dropna(subset=["artefact_reproduced"])
    np.testing.assert_allclose(copied["artefact_reproduced"], 1.0, atol=1e-5)  # copies it all

    # the verdict: the copying model never reproduces an artefact least
    verdict = dock.verdict.value.splitlines()
    assert len(verdict) == 2 and not dock.verdict.native.isHidden()
    least = result.run.comparison.least_reproduced()
    assert least["leakage"] != "copy" and least["grid"] != "copy"
    assert verdict[0].startswith(f"Leakage: {least['leakage']} reproduces it least")
    assert "copy 100.0 %" in verdict[0]

    # the montage: a row per artefact below the origin, a layer per picture, named on canvas
    columns = ("clean", "corrupted", *models)
    names = [montage_name(a, c) for a in ("leakage", "grid") for c in columns]
    assert names == dock.montage.names
    for name in names:
        assert name in viewer.layers
    pictures = result.montage
    np.testing.assert_array_equal(
        viewer.layers[montage_name("grid", "corrupted")].data, pictures["grid"][1]
    )
    copy = viewer.layers[montage_name("grid", "copy")].data  # the copy is its input
    np.testing.assert_array_equal(copy, pictures["grid"][1])
    clean = viewer.layers[montage_name("leakage", "clean")]
    test_rows = PreparedDataset.open(tiny["dataset"]).indices("test")
    first = np.asarray(PreparedDataset.open(tiny["dataset"]).images[test_rows[0]])
    np.testing.assert_allclose(clean.data, first.reshape(SHAPE))
    corners = np.array([viewer.layers[n].translate for n in names])
    assert corners[0][0] > 0  # below the scan's place
    assert corners[len(columns)][0] > corners[0][0]  # the second row below the first
    assert len(set(map(tuple, corners))) == len(names)  # no picture over another
    labels = viewer.layers[LABELS_LAYER]
    assert list(labels.features["label"]) == [
        "leakage: clean", "corrupted", *models, "grid: clean"
    ]  # fmt: skip
    np.testing.assert_allclose(labels.data[-1], corners[len(columns)])  # over the grid row

    # a second comparison with fewer artefacts replaces the layers
    dock.artefact_boxes["grid"].value = False
    dock.compare()
    wait(dock, qtbot)
    assert not any(montage_name("grid", c) in viewer.layers for c in columns)
    assert montage_name("leakage", "pca") in viewer.layers

    # export: the folder `brainvae denoise` writes
    target = dock.export(tmp_path)
    wait(dock, qtbot)
    assert target == tmp_path / "denoising" and "Saved the comparison" in dock.status.value
    for name in ("denoising.csv", "inputs.csv", "summary.csv", "montage.png", "montage.pdf",
                 "clean.nii.gz", "leakage_corrupted.nii.gz", "leakage_pca.nii.gz"):  # fmt: skip
        assert (target / name).is_file(), name
    written = json.loads((target / "summary.json").read_text())
    assert written["reproduces_least"] == dock.last_comparison.run.comparison.least_reproduced()
    assert written["written_by"] == "the napari Evaluation dock"
    table = pd.read_csv(target / "denoising.csv")
    assert set(table["model"]) == set(models)


def test_bad_input_is_said_in_the_status_line(make_napari_viewer, qtbot, tiny, tmp_path):
    viewer, dock = dock_on_folder(make_napari_viewer, tiny)
    dock.runs.use_model.value = False
    dock.compare()
    assert dock.status.value.startswith("Error: no run chosen")
    assert dock.last_comparison is None

    # runs of different input shapes: named, with their shapes, before anything runs
    other = build_model(ModelConfig(input_shape=(16, 20), latent_dim=2, family="pca",
                                    likelihood="gaussian"))  # fmt: skip
    other.fit(np.random.default_rng(0).random((8, 16, 20)).astype(np.float32))
    other.save(tmp_path / "small")
    dock.runs.use_model.value = True
    dock.add_run(tmp_path / "small")
    dock.compare()
    wait(dock, qtbot)
    assert dock.last_comparison is None
    message = dock.status.value
    assert message.startswith("Error:") and "(32, 40)" in message and "(16, 20)" in message
    assert BETA_VAE_CELL in message and "small" in message

    # a split without scans names the splits there are
    dock.runs.clear()
    dock.split.value = "val"
    dock.dataset_folder.value = tiny["dataset"]
    from brainvae.data.dataset import PreparedDataset

    assert len(PreparedDataset.open(tiny["dataset"]).indices("val")) > 0
    dock.artefact_boxes["leakage"].value = False
    dock.artefact_boxes["missing"].value = False
    dock.artefact_boxes["grid"].value = False
    dock.compare()
    assert dock.status.value == "Error: tick at least one artefact"
    dock.add_run(tmp_path)  # not a run folder
    assert "not a run folder" in dock.status.value
    dock.export(tmp_path)
    assert dock.status.value == "Error: compare first"


def test_no_test_split_is_refused(make_napari_viewer, qtbot, tiny, tmp_path):
    from brainvae.data.prepare import prepare
    from brainvae.data.preprocessing import PreprocessConfig

    source = tmp_path / "src"
    source.mkdir()
    for i in range(4):
        np.save(source / f"sub-{i}.npy", np.random.default_rng(i).random(SHAPE, np.float32))
    config = PreprocessConfig.identity(split_fractions=(1.0, 0.0, 0.0))
    dataset = prepare(source, tmp_path / "ds", config, workers=1).path
    viewer, dock = dock_on_folder(make_napari_viewer, tiny)
    dock.dataset_folder.value = dataset
    dock.compare()
    wait(dock, qtbot)
    assert dock.last_comparison is None
    assert "no scan in the 'test' split" in dock.status.value
    assert "train (4 scans)" in dock.status.value


def test_evaluate_fills_a_table_per_run(make_napari_viewer, qtbot, tiny):
    viewer, dock = dock_on_folder(make_napari_viewer, tiny)
    dock.add_run(tiny["pca"])
    dock.evaluate()
    wait(dock, qtbot)
    found = dock.last_evaluation
    assert [f.name for f in found] == [BETA_VAE_CELL, "pca"], dock.status.value
    rows = dock.evaluation_table.texts()
    assert [r[0] for r in rows] == [BETA_VAE_CELL, "pca"]
    assert all(r[1] == "6" for r in rows)
    pca = found[1].evaluation
    assert rows[1][2] == f"{np.mean(pca.reconstruction.cw_ssim):.3f}"
    assert float(rows[1][5]) == pytest.approx(pca.pca_fd.distance, rel=1e-2)
    assert rows[1][6] == str(pca.activity().n_active)
    assert dock.status.value.startswith("Evaluated on 6 test scans")


def test_the_sweep_is_drawn_with_its_inflection(make_napari_viewer, tiny, tmp_path):
    from brainvae.evaluation.sweep_report import gather_sweep

    viewer = make_napari_viewer()
    dock = _dock(viewer)
    assert dock.runs.use_model.text == "model in use (none loaded)"
    assert not dock.sweep_plot.shown and dock.sweep_plot.metric.native.isHidden()
    dock.show_sweep(tmp_path)  # no cells
    assert dock.status.value.startswith("Error:") and not dock.sweep_plot.shown
    sweep = dock.show_sweep(tiny["sweep"])
    assert sweep is not None, dock.status.value
    assert dock.status.value == "Sweep sweep: 4 cells."
    plot = dock.sweep_plot
    assert not plot.metric.native.isHidden() and not plot.along.native.isHidden()
    assert plot.shown and plot.metric.value == sweep.metrics()[0] == "cw_ssim"
    plot.metric.value = "mse"
    expected = gather_sweep(tiny["sweep"]).series("mse", "latent_dim")
    assert set(plot.series) == {1.0, 4.0}
    for beta, (_x, y) in expected.items():
        np.testing.assert_array_equal(plot.series[beta][0], [2.0, 4.0])
        np.testing.assert_allclose(plot.series[beta][1], y)
    points = sweep.inflection("mse", "latent_dim")
    assert {k: v[0] for k, v in plot.rings.items()} == {k: p.x for k, p in points.items()}
    drawn = [item for item in plot.widget.getPlotItem().listDataItems()]
    assert len(drawn) == 4  # a line and a ring per beta
    assert not dock.sweep_text.native.isHidden() and "beta = 1:" in dock.sweep_text.value
    plot.along.value = "beta"
    assert set(plot.series) == {2.0, 4.0}
    assert "L = 2:" in dock.sweep_text.value


@pytest.mark.slow
def test_the_3d_sample_gives_volumes(make_napari_viewer, qtbot):
    """The 3D sample population (prepared once into the cache) with the 3D sample model."""
    viewer = make_napari_viewer()
    viewer.open_sample("napari-brainvae", "population_3d")
    dock = _dock(viewer)
    model = load_model(sample_model_dir(3)).eval()
    state_of(viewer).model = ModelInUse(model, sample_model_dir(3), "sample 3D")
    dock.artefact_boxes["leakage"].value = False
    dock.artefact_boxes["grid"].value = False
    dock.compare()
    wait(dock, qtbot, 600_000)
    result = dock.last_comparison
    assert result is not None, dock.status.value
    layer = viewer.layers[montage_name("missing", "beta_vae_3d")]
    assert layer.data.ndim == 3 and layer.data.shape == tuple(model.config.input_shape)
    assert [r[1] for r in dock.summary_table.texts()] == ["beta_vae_3d", "beta_vae_3d"]
    # the status says which slice shows the band beside unchanged brain (the figure's rule)
    from brainvae.figures.denoising_figure import visible_slices

    axis = viewer.dims.not_displayed[-1] - 1
    brain = result.run.comparison.brain_mask
    scores = visible_slices(result.changed["missing"], brain, axis)
    assert scores.any() and f"missing at {int(np.argmax(scores))}." in dock.status.value


def test_the_dataset_choice_starts_at_the_population_in_the_viewer(make_napari_viewer):
    """Opened beside a population layer (or before one is opened), the dock chooses it, as
    the Training dock does; a folder already chosen is kept."""
    from brainvae.napari.population_layers import stack_layer_data

    viewer = make_napari_viewer()
    dock = _dock(viewer)
    assert dock.dataset.value == DATASET_FOLDER  # nothing to choose yet
    images = np.random.default_rng(0).random((4, *SHAPE), dtype=np.float32)
    placement = {"scale": (1.0, 1.0), "translate": (0.0, 0.0), "axis_labels": ("y", "x")}
    table = [{"subject_id": f"sub-{k}", "session": "1"} for k in range(4)]
    data, kwargs, _ = stack_layer_data(images, "population (test)", placement, {"table": table})
    viewer.add_image(data, **kwargs)
    assert dock.dataset.value == "population (test)"
    assert not dock.dataset_folder.visible
