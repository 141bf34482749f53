"""One evented state per viewer, shared by the docks without their knowing each other (issue 16).

The docks are added as napari adds a plugin's docks (each gets its own public-only proxy of
the viewer), so these tests also show that no dock needs to unwrap the proxy.
"""

from __future__ import annotations

import numpy as np

from brainvae.models import load_model
from brainvae.napari.layer_roles import POPULATION_VALUE, entries_of, population_of
from brainvae.napari.viewer_state import AnalysisResult, ModelInUse, ViewerState, state_of
from brainvae.napari.widgets.explorer_model_choice import sample_model_dir


def _dock(viewer, name):
    return viewer.window.add_plugin_dock_widget("napari-brainvae", name)[1]


def test_plugin_docks_share_one_state_per_viewer(make_napari_viewer):
    first, second = make_napari_viewer(), make_napari_viewer()
    explorer = _dock(first, "Latent explorer")
    receptive = _dock(first, "Receptive fields")
    training = _dock(first, "Training")
    other = _dock(second, "Receptive fields")
    assert explorer._viewer is not first  # napari handed the dock a proxy
    assert explorer._state is receptive._state is training._state is state_of(first)
    assert other._state is state_of(second) and other._state is not explorer._state
    explorer.shutdown()


def test_fields_emit_on_a_new_object_only():
    state = ViewerState()
    seen: list = []
    state.events.latent.connect(seen.append)
    state.events.receptive.connect(seen.append)
    state.latent = 2
    state.latent = 2  # the same value: no event
    run = AnalysisResult(model=object(), population=None, run=np.zeros(3))
    state.receptive = run
    state.receptive = run  # the same object: no event, and no element-wise comparison
    assert seen == [2, run]
    assert state.result_for("receptive", run.model) is run.run
    assert state.result_for("receptive", object()) is None  # another model's run


def test_a_model_in_use_reaches_an_explorer_and_a_clicked_latent_its_slider(
    make_napari_viewer, qtbot
):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-brainvae", "population_2d")
    explorer = _dock(viewer, "Latent explorer")
    model = load_model(sample_model_dir(2)).eval()
    state = state_of(viewer)
    state.model = ModelInUse(model, None, "oracle")
    assert explorer.model is model
    qtbot.waitUntil(lambda: not explorer.busy, timeout=60_000)
    population = population_of(viewer.layers["population (sample 2D)"])
    assert state.population is population  # the explorer's population, shared
    encoded = state.statistics_for(model, population)  # the projective dock sweeps from it
    assert encoded is not None and encoded.n_images == population.n_scans
    assert state.statistics_for(object(), population) is None  # another model: encode again
    state.latent = 3
    assert explorer.chosen_latent == 3
    explorer.shutdown()


def test_population_layers_of_both_origins_carry_one_population_value(make_napari_viewer, tmp_path):
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.population import Population
    from brainvae.napari.population_layers import dataset_layer_data
    from helpers.blob_population import write_blob_dataset

    viewer = make_napari_viewer()
    viewer.open_sample("napari-brainvae", "population_2d")
    sample = viewer.layers["population (sample 2D)"]
    dataset = PreparedDataset.open(write_blob_dataset(tmp_path, subjects=4, seed=1))
    data, kwargs, _ = dataset_layer_data(dataset, "population (blobs)")
    prepared = viewer.add_image(data, **kwargs)
    for layer in (sample, prepared):
        population = population_of(layer)
        assert isinstance(population, Population)
        assert population.images is layer.data and population.n_scans == len(layer.data)
        assert population.table is not None and len(population.table) == population.n_scans
        assert population_of(layer) is population  # one object, kept with the layer
    assert population_of(sample).dataset is None and population_of(sample).folder is not None
    assert population_of(prepared).dataset == dataset.path
    entries_of(prepared).pop(POPULATION_VALUE)  # a layer made without it is rebuilt
    rebuilt = population_of(prepared)
    assert rebuilt.dataset == dataset.path and rebuilt.table.equals(dataset.metadata)
