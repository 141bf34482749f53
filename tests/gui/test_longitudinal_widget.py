"""The Aging and disease dock in a real napari viewer on the shipped samples and models: its
form is the LongitudinalRequest's defaults, a run on the 2D sample shows each group's decoded
trajectory at the slider's age and its change since the first age (layers updated, never
added, as the slider moves), the latent explorer's codes are the ones used (no re-encoding), a
control value the table lacks is a message, and the 3D sample gives volumes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainvae.analysis.latent_space import LatentStatistics
from brainvae.longitudinal import LongitudinalRequest, analyse_longitudinal
from brainvae.longitudinal.directions import STABLE
from brainvae.models import load_model
from brainvae.napari.layer_roles import population_of
from brainvae.napari.viewer_state import EncodedPopulation, ModelInUse, state_of
from brainvae.napari.widgets.explorer_model_choice import sample_model_dir
from brainvae.napari.widgets.longitudinal_form import BY_AGE
from brainvae.napari.widgets.longitudinal_layers import LABELS_LAYER, aging_name, change_name

LAYER_2D = "population (sample 2D)"
LAYER_3D = "population (sample 3D)"
DOCK = "Aging and disease"
FAST_SPLITS = 10


def _dock(viewer):
    return viewer.window.add_plugin_dock_widget("napari-brainvae", DOCK)[1]


def wait(dock, qtbot) -> None:
    qtbot.waitUntil(lambda: not dock.busy, timeout=60_000)


def open_sample(make_napari_viewer, dims: int = 2):
    """A viewer on a sample population with the sample model in use, and the dock."""
    viewer = make_napari_viewer()
    viewer.open_sample("napari-brainvae", f"population_{dims}d")
    dock = _dock(viewer)
    model = load_model(sample_model_dir(dims)).eval()
    state_of(viewer).model = ModelInUse(model, None, f"sample {dims}D")
    layer = viewer.layers[LAYER_2D if dims == 2 else LAYER_3D]
    return viewer, dock, model, population_of(layer)


def state_codes(viewer, model, population, seed: int = 5) -> np.ndarray:
    """Distinct codes put in the viewer's state as the explorer's (no encoding gives them)."""
    rng = np.random.default_rng(seed)
    codes = rng.normal(size=(population.n_scans, model.latent_dim)).astype(np.float32)
    statistics = LatentStatistics(
        codes=codes, mean=codes.mean(0), sd=codes.std(0), kl=None,
        active=np.ones(model.latent_dim, dtype=bool),
    )  # fmt: skip
    state_of(viewer).encoded = EncodedPopulation(model, population, statistics)
    return codes


def test_form_defaults_come_from_the_request(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-brainvae", "population_2d")
    dock = _dock(viewer)
    defaults = LongitudinalRequest()
    assert dock.population.value == LAYER_2D
    assert dock.group_column.value == defaults.group
    assert dock.control.value == defaults.control and dock.control_text == defaults.control
    assert dock.subject_column.value == defaults.subject
    assert dock.age_column.value == defaults.age
    assert dock.order_column.value == BY_AGE and defaults.order is None
    assert dock.pairing.value == defaults.pairing
    assert dock.frames.value == defaults.frames
    assert dock.n_splits.value == defaults.n_splits
    assert defaults.years is None and dock.years_from.value == dock.years_to.value == ""
    assert dock.chosen_request() == defaults
    # the group column offers categorical columns only; the control its column's values
    assert "diagnosis" in dock.group_column.choices and "age" not in dock.group_column.choices
    assert list(dock.control.choices) == ["healthy", "leuko", "ms"]
    dock.group_column.value = "site"
    sites = sorted(set(population_of(viewer.layers[LAYER_2D]).table["site"].astype(str)))
    assert list(dock.control.choices) == sites
    dock.group_column.value = "diagnosis"
    assert dock.control.value == "healthy"
    dock.years_from.value, dock.years_to.value = "50", "80"
    dock.order_column.value = "session"
    request = dock.chosen_request()
    assert request.years == (50.0, 80.0) and request.order == "session"
    dock.years_to.value = ""
    with pytest.raises(ValueError, match="years to"):
        dock.chosen_request()


def test_run_slider_layers_reused_codes_and_export(make_napari_viewer, qtbot, tmp_path):
    viewer, dock, model, population = open_sample(make_napari_viewer, 2)
    codes = state_codes(viewer, model, population)
    dock.n_splits.value = FAST_SPLITS
    dock.years_from.value, dock.years_to.value = "50", "80"
    dock.frames.value = 5
    dock.run()
    wait(dock, qtbot)
    run = dock.last_run
    assert run is not None, dock.status.value
    result = run.result
    assert run.reused_codes and "latent explorer's codes" in dock.status.value
    assert state_of(viewer).longitudinal.run is run  # published for any other dock
    # the state's codes are the ones analysed: the same analysis as on them directly
    request = dock.chosen_request()
    direct = analyse_longitudinal(codes, population.table.reset_index(drop=True), request)
    np.testing.assert_allclose(result.analysis.directions.tau_a, direct.directions.tau_a)
    for group, path in direct.trajectories.items():
        np.testing.assert_allclose(result.analysis.trajectories[group].codes, path.codes)

    years = result.years
    np.testing.assert_allclose(years, np.linspace(50, 80, 5))
    groups = list(result.frames)
    assert groups[0] == "healthy" and set(groups) == {"healthy", "ms", "leuko"}
    scan_layer = viewer.layers[LAYER_2D]
    shape = population.scan_shape
    names = [aging_name(g) for g in groups] + [change_name(years[0], g) for g in groups]
    assert change_name(years[0], "ms") == "change since 50: ms"
    for name in names:
        assert viewer.layers[name].data.shape == shape, name
        assert tuple(viewer.layers[name].scale) == tuple(scan_layer.scale[1:])
    # below the scan (the scan stays visible), groups side by side, changes under the brains
    height = scan_layer.scale[-2] * shape[-2]
    for group in groups:
        aging = viewer.layers[aging_name(group)]
        change = viewer.layers[change_name(years[0], group)]
        assert aging.translate[-2] - scan_layer.translate[-2] > height
        assert change.translate[-2] - aging.translate[-2] > height
        assert change.translate[-1] == pytest.approx(aging.translate[-1])
    columns = [viewer.layers[aging_name(g)].translate[-1] for g in groups]
    assert columns == sorted(columns) and len(set(columns)) == len(groups)

    n_layers = len(viewer.layers)
    for k in (2, 4, 0, 3):
        dock.age_slider.value = k
        assert len(viewer.layers) == n_layers  # the data change, no new layer
        for group in groups:
            frames = result.frames[group]
            np.testing.assert_array_equal(viewer.layers[aging_name(group)].data, frames[k])
            np.testing.assert_allclose(
                viewer.layers[change_name(years[0], group)].data, frames[k] - frames[0],
                atol=1e-6,
            )  # fmt: skip
            np.testing.assert_allclose(
                viewer.layers[change_name(years[0], group)].data, result.change(group)[k],
                atol=1e-6,
            )  # fmt: skip
        assert dock.age_shown.value.startswith(f"{years[k]:.1f}".removesuffix(".0") + " y")
    assert dock.set_age(64.0) == 2  # the nearest age of the trajectory: 57.5, 65, 72.5
    labels = viewer.layers[LABELS_LAYER]
    assert list(labels.features["label"])[:2] == [
        f"healthy at {years_text(years[2])} y",
        f"\u0394 healthy 50\u2192{years_text(years[2])} y",
    ]
    np.testing.assert_allclose(labels.data[1], viewer.layers[change_name(50, "healthy")].translate)
    # the change layers: blue-black-red centred at 0, one range for all groups and ages
    low, high = viewer.layers[change_name(years[0], "ms")].contrast_limits
    assert low == pytest.approx(-high) and high > 0
    # the results: describe() lines, unstable directions in orange words, the loadings as bars
    assert dock.results.summary.value.splitlines() == result.analysis.describe()
    directions = result.analysis.directions
    unstable = directions.stability_a < STABLE
    assert ("tau_a (aging, from healthy) is not stable" in dock.results.warnings.value) == unstable
    if unstable:
        assert (
            "resampling the subjects turns it by more than 37\u00b0" in dock.results.warnings.value
        )
    loadings = result.analysis.loadings()
    assert dock.results.loadings.shown
    for column in loadings.columns:
        np.testing.assert_allclose(dock.results.loadings.heights(column), loadings[column])
    assert [label.text for _, label in dock.results.loadings.legend.items] == list(loadings)

    # export: the result folder as `brainvae longitudinal` writes it
    target = dock.export(tmp_path)
    wait(dock, qtbot)
    assert (target / "summary.json").is_file(), dock.status.value
    summary = json.loads((target / "summary.json").read_text())
    assert summary["codes"] == "latent explorer"
    written = pd.read_csv(target / "loadings.csv", index_col=0)
    np.testing.assert_allclose(written.to_numpy(), loadings.to_numpy(), atol=1e-6)
    assert "Saved the aging and disease analysis" in dock.status.value

    # a second run with other ages: the layers renamed, the old ones gone, none duplicated
    dock.years_from.value = "40"
    dock.run()
    wait(dock, qtbot)
    assert change_name(40.0, "ms") in viewer.layers and change_name(50.0, "ms") not in viewer.layers
    assert len(viewer.layers) == n_layers


def years_text(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def test_without_the_explorer_codes_the_dock_encodes(make_napari_viewer, qtbot):
    """No codes in the state: the dock encodes, and gets the model's own codes' result."""
    import torch

    from brainvae.usecases.population_run import encode_population

    viewer, dock, model, population = open_sample(make_napari_viewer, 2)
    dock.n_splits.value = FAST_SPLITS
    dock.frames.value = 3
    dock.run()
    wait(dock, qtbot)
    run = dock.last_run
    assert run is not None and not run.reused_codes, dock.status.value
    assert "codes encoded here" in dock.status.value
    with torch.inference_mode():
        generator = encode_population(model, population.images)
        try:
            while True:
                next(generator)
        except StopIteration as stop:
            codes = stop.value[0]
    direct = analyse_longitudinal(codes, population.table.reset_index(drop=True),
                                  dock.chosen_request())  # fmt: skip
    np.testing.assert_allclose(run.result.analysis.directions.tau_a, direct.directions.tau_a,
                               atol=1e-5)  # fmt: skip


def test_a_control_value_the_table_lacks_is_a_message(make_napari_viewer, qtbot):
    viewer, dock, _model, _population = open_sample(make_napari_viewer, 2)
    dock.control.native.setEditText("controls")  # typed: no such diagnosis
    dock.run()
    wait(dock, qtbot)
    assert dock.last_run is None
    assert dock.status.value.startswith("Error:")
    assert "'controls'" in dock.status.value and "healthy, leuko, ms" in dock.status.value
    assert dock.run_button.enabled  # ready for another try
    assert not [layer for layer in viewer.layers if layer.name.startswith("aging")]


def test_a_3d_population_gives_volumes(make_napari_viewer, qtbot):
    viewer, dock, _model, population = open_sample(make_napari_viewer, 3)
    dock.n_splits.value = FAST_SPLITS
    dock.frames.value = 3
    dock.run()
    wait(dock, qtbot)
    run = dock.last_run
    assert run is not None, dock.status.value
    years = run.result.years
    for group in run.result.frames:
        for name in (aging_name(group), change_name(years[0], group)):
            layer = viewer.layers[name]
            assert layer.ndim == 3 and layer.data.shape == population.scan_shape, name
    dock.age_slider.value = 2
    np.testing.assert_array_equal(viewer.layers[aging_name("ms")].data, run.result.frames["ms"][2])
    viewer.dims.ndisplay = 3  # volumes, rendered
    assert viewer.layers[change_name(years[0], "ms")].rendering == "average"
