"""The Population analysis dock in a real napari viewer on the shipped 2D sample and model: a
run on the latent explorer's codes (never re-encoded), the latent map linked to the viewer (a
clicked point moves the scan slider, shows the subject and loads its code into the explorer;
the slider moves the ring), two groups drawn on the map as layers beside the scans, the export
folder, and bad input as a message."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from brainvae.analysis.latent_space import LatentStatistics
from brainvae.models import load_model
from brainvae.napari.layer_roles import population_of
from brainvae.napari.viewer_state import ChosenCode, EncodedPopulation, ModelInUse, state_of
from brainvae.napari.widgets.explorer_model_choice import sample_model_dir
from brainvae.napari.widgets.population_form import NO_CLASS
from brainvae.napari.widgets.population_groups import (
    DIFFERENCE_LAYER,
    GROUP_A_LAYER,
    GROUP_B_LAYER,
    LABELS_LAYER,
)
from brainvae.napari.widgets.population_map import points_inside
from brainvae.population import PopulationRequest

LAYER = "population (sample 2D)"
FAST = {"n_bootstrap": 20, "n_permutations": 9}


def _dock(viewer, name):
    return viewer.window.add_plugin_dock_widget("napari-brainvae", name)[1]


def wait(dock, qtbot) -> None:
    qtbot.waitUntil(lambda: not dock.busy, timeout=60_000)


def fast_form(dock, classify="diagnosis", regress="age", reference=False) -> None:
    dock.class_column.value = classify
    dock.regress.value = regress
    dock.reference.value = reference
    dock.n_bootstrap.value = FAST["n_bootstrap"]
    dock.n_permutations.value = FAST["n_permutations"]


@pytest.fixture
def sample(make_napari_viewer, qtbot):
    """The 2D sample population, the explorer on the sample model (encoded), and the dock."""
    viewer = make_napari_viewer()
    viewer.open_sample("napari-brainvae", "population_2d")
    explorer = _dock(viewer, "Latent explorer")
    dock = _dock(viewer, "Population analysis")
    model = load_model(sample_model_dir(2)).eval()
    explorer.set_model(model)
    qtbot.waitUntil(lambda: not explorer.busy, timeout=60_000)
    population = population_of(viewer.layers[LAYER])
    assert state_of(viewer).statistics_for(model, population) is not None
    yield viewer, explorer, dock, model, population
    explorer.shutdown()


def test_form_defaults_come_from_the_request(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-brainvae", "population_2d")
    dock = _dock(viewer, "Population analysis")
    defaults = PopulationRequest()
    assert dock.folds.value == defaults.folds
    assert dock.validation.value == defaults.validation
    assert dock.regression.value == defaults.regression
    assert dock.n_bootstrap.value == defaults.n_bootstrap
    assert dock.n_permutations.value == defaults.n_permutations
    assert dock.reference.value == defaults.reference
    assert dock.all_latents.value == defaults.all_latents
    assert dock.map_method.value == defaults.map_method
    # categorical-looking columns first (diagnosis, site), bookkeeping columns left out
    choices = list(dock.class_column.choices)
    assert choices.index("diagnosis") < choices.index("age")
    assert choices.index("site") < choices.index("age")
    assert "subject_id" not in choices and "filename" not in choices
    assert choices[-1] == NO_CLASS
    dock.class_column.value = "diagnosis"
    dock.merge.value = "ms,leuko=disease"
    dock.regress.value = "age, lesion_load_ml"
    request = dock.chosen_request()
    assert request.classify == "diagnosis" and request.regress == ("age", "lesion_load_ml")
    assert request.merge == {"ms": "disease", "leuko": "disease"}
    assert request.folds == defaults.folds and request.shrinkage is None


def test_run_click_groups_slider_and_export(sample, qtbot, tmp_path):
    viewer, explorer, dock, model, population = sample
    fast_form(dock, reference=True)
    dock.run()
    wait(dock, qtbot)
    run = dock.last_run
    assert run is not None, dock.status.value
    assert run.reused_codes and run.codes is explorer.statistics.codes  # no re-encoding
    published = state_of(viewer).questions  # on the viewer's state for any other dock
    assert published.run is run and published.model is model
    analysis = run.analysis
    # the Table-2 layout with the PCA reference beside each class, the scores, the heatmap
    classes = analysis.classification.classes
    table = dock.results.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == [f"{c}\n{what}" for c in classes for what in ("latents", "PCA")]
    rows = [table.verticalHeaderItem(r).text() for r in range(table.rowCount())]
    assert rows == ["TP", "FP", "FN", "TN", "precision", "recall"]
    tp = analysis.classification.counts["TP"]
    assert table.item(0, 0).text() == str(int(tp[0]))
    recall = analysis.reference.recall[1]
    assert table.item(5, 3).text() == f"{recall:.2f}"
    assert "balanced accuracy" in dock.results.accuracy.value
    assert "PCA of the images" in dock.results.accuracy.value
    assert "age from the latents" in dock.results.scores.value
    assert dock.results.predicted.shown and dock.results.weights.shown
    correlations = analysis.weights("correlations").to_numpy().T  # shown first: one in [-1, 1]
    np.testing.assert_allclose(dock.results.weights.matrix, correlations)
    dock.results.heatmap_shows.value = "regression weight"
    np.testing.assert_allclose(dock.results.weights.matrix, analysis.weights().to_numpy().T)
    assert dock.map.widget.isVisible() or not dock.native.isVisible()
    assert len(dock.map.rows) == population.n_scans

    legend = [label.text for _, label in dock.map.legend.items]
    assert legend[: len(classes)] == list(classes)  # coloured by the class column
    dock.colour_by.value = "age"  # a number: a colour map from the lowest to the highest
    ages = population.table["age"].astype(float)  # the folder's table holds text
    legend = [label.text for _, label in dock.map.legend.items]
    assert legend[:2] == [f"age = {ages.min():.3g} (lowest)", f"age = {ages.max():.3g} (highest)"]

    # the linked click: a real point of the scatter, clicked
    row = 17
    point = dock.map.point_of_row(row)
    dock.map.scatter.sigClicked.emit(dock.map.scatter, [point], None)
    assert viewer.dims.current_step[0] == row
    assert dock.subject.shown()["subject_id"] == str(population.table["subject_id"].iloc[row])
    np.testing.assert_allclose(explorer.code, explorer.statistics.codes[row], rtol=1e-6)
    assert dock.map.highlighted_position() == pytest.approx(tuple(dock.map.coordinates[row]))

    # a code of another model never moves the explorer's sliders
    state_of(viewer).code = ChosenCode(object(), np.zeros(model.latent_dim), "elsewhere")
    np.testing.assert_allclose(explorer.code, explorer.statistics.codes[row], rtol=1e-6)
    subject = population.table["subject_id"].iloc[row]
    assert (
        dock.map._tip(0.0, 0.0, row)
        == f"scan {row} (subject {subject}): age "
        + str(population.table["age"].iloc[row])
        + "; click: show it"
    )

    # the slider moves the ring (and the subject shown)
    viewer.dims.set_current_step(0, 40)
    assert dock.map.highlighted == 40
    assert dock.map.highlighted_position() == pytest.approx(tuple(dock.map.coordinates[40]))
    assert dock.subject.shown()["scan"] == "40"

    # two groups drawn as boxes: left and right halves of the map
    x = dock.map.coordinates[:, 0]
    middle, (low, high) = float(np.median(x)), (float(x.min()) - 1, float(x.max()) + 1)
    y_low, y_high = (
        float(dock.map.coordinates[:, 1].min()) - 1,
        float(dock.map.coordinates[:, 1].max()) + 1,
    )

    def box(x0, x1):
        return np.array([[x0, y_low], [x1, y_low], [x1, y_high], [x0, y_high]])

    rows_a = dock.map.select_polygon("A", box(low, middle))
    rows_b = dock.map.select_polygon("B", box(middle, high))
    assert set(rows_a) == set(np.flatnonzero(x < middle))
    assert set(rows_b) == set(np.flatnonzero(x > middle))
    wait(dock, qtbot)
    shape = population.scan_shape
    for name in (GROUP_A_LAYER, GROUP_B_LAYER, DIFFERENCE_LAYER):
        assert viewer.layers[name].data.shape == shape, name
    np.testing.assert_allclose(
        viewer.layers[GROUP_A_LAYER].data, np.asarray(population.images)[rows_a].mean(axis=0),
        rtol=1e-4, atol=1e-5,
    )  # fmt: skip
    codes = explorer.statistics.codes.astype(np.float64)
    with torch.inference_mode():
        means = torch.tensor(np.stack([codes[rows_a].mean(0), codes[rows_b].mean(0)]),
                             dtype=torch.float32)  # fmt: skip
        decoded = model.decode(means).float().numpy().reshape(2, *shape)
    difference = viewer.layers[DIFFERENCE_LAYER]
    np.testing.assert_allclose(difference.data, decoded[1] - decoded[0], atol=1e-5)
    low_limit, high_limit = difference.contrast_limits
    assert low_limit == pytest.approx(-high_limit) and high_limit > 0  # centred at 0
    # in a row below the scan, not over it: the scan stays visible; A, B, B - A left to right
    scan_layer = viewer.layers[LAYER]
    for name in (GROUP_A_LAYER, GROUP_B_LAYER, DIFFERENCE_LAYER):
        below = viewer.layers[name].translate[-2] - scan_layer.translate[-2]
        assert below > scan_layer.scale[-2] * shape[-2], name
    columns = [viewer.layers[n].translate[-1] for n in (GROUP_A_LAYER, GROUP_B_LAYER)]
    assert columns[0] < columns[1] < difference.translate[-1]
    assert tuple(difference.scale) == tuple(scan_layer.scale[1:])
    # each group layer named on the canvas at its top-left corner
    labels = viewer.layers[LABELS_LAYER]
    assert list(labels.features["label"]) == [GROUP_A_LAYER, GROUP_B_LAYER, DIFFERENCE_LAYER]
    np.testing.assert_allclose(labels.data[2], np.asarray(difference.translate)[-2:])
    assert viewer.layers.selection.active is not labels

    # export: the result folder as the command line writes it
    target = dock.export(tmp_path)
    wait(dock, qtbot)
    assert (target / "summary.json").is_file(), dock.status.value
    summary = json.loads((target / "summary.json").read_text())
    assert summary["codes"] == "latent explorer"
    assert summary["classification"]["classes"] == list(classes)
    assert (target / "classification.csv").is_file() and (target / "weights.csv").is_file()
    assert "Saved the population analysis" in dock.status.value


def test_codes_come_from_the_state_not_a_new_encoding(make_napari_viewer, qtbot):
    """Codes in the viewer's state that differ from what encoding gives are the ones used."""
    viewer = make_napari_viewer()
    viewer.open_sample("napari-brainvae", "population_2d")
    dock = _dock(viewer, "Population analysis")
    model = load_model(sample_model_dir(2)).eval()
    population = population_of(viewer.layers[LAYER])
    state = state_of(viewer)
    state.model = ModelInUse(model, None, "sample")
    rng = np.random.default_rng(3)
    codes = rng.normal(size=(population.n_scans, model.latent_dim)).astype(np.float32)
    codes[:, 0] += 4 * (population.table["diagnosis"].to_numpy() == "ms")
    statistics = LatentStatistics(
        codes=codes, mean=codes.mean(0), sd=codes.std(0), kl=None,
        active=np.ones(model.latent_dim, dtype=bool),
    )  # fmt: skip
    state.encoded = EncodedPopulation(model, population, statistics)
    fast_form(dock, regress="")
    dock.map_method.value = "latents"
    dock.map_x.value, dock.map_y.value = 1, 3
    dock.run()
    wait(dock, qtbot)
    run = dock.last_run
    assert run is not None, dock.status.value
    assert run.reused_codes and run.codes is codes
    np.testing.assert_allclose(dock.map.coordinates, codes[:, [0, 2]])
    assert dock.map.plot_item.getAxis("bottom").labelText == "z1"
    assert "latent explorer's codes" in dock.status.value
    # without the state's codes the dock encodes, and gets the model's codes
    state.encoded = None
    dock.run()
    wait(dock, qtbot)
    assert not dock.last_run.reused_codes
    with torch.inference_mode():
        first = model.encode(np.asarray(population.images[:3], dtype=np.float32))[0].numpy()
    np.testing.assert_allclose(dock.last_run.codes[:3], first, rtol=1e-4, atol=1e-5)


def test_a_bad_column_is_a_message(sample, qtbot):
    viewer, _explorer, dock, _model, _population = sample
    fast_form(dock, classify=NO_CLASS, regress="agee")
    dock.run()
    wait(dock, qtbot)
    assert dock.last_run is None
    assert dock.status.value.startswith("Error:")
    assert "'agee'" in dock.status.value and "age" in dock.status.value.split("has:")[1]
    assert dock.run_button.enabled  # ready for another try
    dock.regress.value = ""
    dock.run()  # nothing asked: said, not raised
    wait(dock, qtbot)
    assert "nothing to ask" in dock.status.value


def test_points_inside_a_lasso():
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]])
    concave = np.array([[0, 0], [4, 0], [4, 4], [3, 4], [3, 1], [1, 1], [1, 4], [0, 4]])
    points = np.array([[1.5, 0.5], [2, 3], [-1, 1], [2.5, 2.5], [0.5, 3], [3.5, 2]])
    assert points_inside(points, square).tolist() == [True, False, False, False, False, False]
    assert points_inside(points, concave).tolist() == [True, False, False, False, True, True]


def test_a_3d_population_gives_volumes(make_napari_viewer, qtbot):
    """3D: the dock encodes the volumes itself (no explorer), and the groups are volumes."""
    viewer = make_napari_viewer()
    viewer.open_sample("napari-brainvae", "population_3d")
    dock = _dock(viewer, "Population analysis")
    model = load_model(sample_model_dir(3)).eval()
    state_of(viewer).model = ModelInUse(model, None, "sample 3D")
    population = population_of(viewer.layers["population (sample 3D)"])
    fast_form(dock, regress="")
    dock.run()
    wait(dock, qtbot)
    run = dock.last_run
    assert run is not None, dock.status.value
    assert not run.reused_codes and run.codes.shape == (population.n_scans, model.latent_dim)
    assert "codes encoded here" in dock.status.value
    dock.select_class_groups("diagnosis", "healthy", "ms")
    wait(dock, qtbot)
    for name in (GROUP_A_LAYER, GROUP_B_LAYER, DIFFERENCE_LAYER):
        layer = viewer.layers[name]
        assert layer.data.shape == population.scan_shape and layer.ndim == 3, name
    viewer.dims.ndisplay = 3  # volumes, rendered
    assert viewer.layers[DIFFERENCE_LAYER].rendering == "average"
    dock.select_scan(5)
    assert viewer.dims.current_step[0] == 5 and dock.map.highlighted == 5


def drag(panel, start, end, through=(), steps: int = 8) -> None:
    """A real left-button drag over the map's viewport, from one data point to another
    (through the given points on the way)."""
    from qtpy.QtCore import QEvent, QPointF, Qt
    from qtpy.QtGui import QMouseEvent
    from qtpy.QtWidgets import QApplication

    view = panel.widget
    viewport = view.viewport()

    def pixel(point):
        scene = panel.view_box.mapViewToScene(QPointF(*point))
        return QPointF(view.mapFromScene(scene))

    def send(kind, point, button, buttons):
        time.sleep(0.03)  # pyqtgraph drops mouse moves that come faster than it redraws
        where = pixel(point)
        event = QMouseEvent(
            kind, where, QPointF(viewport.mapToGlobal(where.toPoint())), button, buttons,
            Qt.KeyboardModifier.NoModifier,
        )  # fmt: skip
        QApplication.sendEvent(viewport, event)
        QApplication.processEvents()

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    corners = [start, *through, end]
    send(QEvent.Type.MouseButtonPress, start, left, left)
    for first, second in zip(corners[:-1], corners[1:], strict=True):
        for t in np.linspace(0, 1, steps)[1:]:
            point = (first[0] + t * (second[0] - first[0]), first[1] + t * (second[1] - first[1]))
            send(QEvent.Type.MouseMove, point, none, left)
    send(QEvent.Type.MouseButtonRelease, end, left, none)


def test_a_box_and_a_lasso_drawn_with_the_mouse_are_groups(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-brainvae", "population_2d")
    dock = _dock(viewer, "Population analysis")
    model = load_model(sample_model_dir(2)).eval()
    state_of(viewer).model = ModelInUse(model, None, "sample")
    fast_form(dock, regress="")
    dock.run()
    wait(dock, qtbot)
    from qtpy.QtWidgets import QApplication

    dock.scroll_to_map()
    qtbot.waitUntil(lambda: dock.map.widget.isVisible() and dock.map.widget.height() > 100)
    for _ in range(5):  # the layout settles before the pixels are computed
        time.sleep(0.05)
        QApplication.processEvents()
    xy = dock.map.coordinates
    (x0, x1), (y0, y1) = np.percentile(xy[:, 0], [20, 60]), np.percentile(xy[:, 1], [30, 80])
    dock.drag.value = "A"
    drag(dock.map, (x0, y0), (x1, y1))
    inside = (xy[:, 0] > x0) & (xy[:, 0] < x1) & (xy[:, 1] > y0) & (xy[:, 1] < y1)
    rows = dock.map.groups.get("A")
    assert rows is not None, "the drag drew no group"
    # the box's edges are whole pixels: points within a pixel of an edge may fall either way
    assert abs(len(rows) - inside.sum()) <= 3 and len(set(rows) ^ set(np.flatnonzero(inside))) <= 3
    wait(dock, qtbot)
    assert viewer.layers[GROUP_A_LAYER].data.shape == population_of(viewer.layers[LAYER]).scan_shape
    # a lasso: a triangle drawn with the mouse
    dock.shape.value = "lasso"
    dock.drag.value = "B"
    triangle = [(x0, y0), (x1, y0), (x1, y1)]
    drag(dock.map, triangle[0], triangle[0], through=triangle[1:])
    inside = points_inside(xy, np.array(triangle))
    rows = dock.map.groups.get("B")
    assert rows is not None and inside.sum() > 0
    assert len(set(rows) ^ set(np.flatnonzero(inside))) <= 3
    wait(dock, qtbot)
    assert viewer.layers[DIFFERENCE_LAYER].data.shape == viewer.layers[GROUP_A_LAYER].data.shape
    dock.clear_groups()
    dock.drag.value = "pan"  # a drag pans again: no group
    drag(dock.map, (x0, y0), (x1, y1))
    assert dock.map.groups == {}
