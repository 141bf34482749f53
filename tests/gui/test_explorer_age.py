"""The latent explorer's age row with an age-conditioned VAE: the slider moves the code along
the learned age direction (in years), follows the code when other sliders move it, and the
brain age of the scan under the viewer's slider is shown beside its recorded age."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainvae.models import ModelConfig, build_model
from brainvae.napari.population_layers import stack_layer_data
from brainvae.napari.widgets.explorer_age import age_direction, age_of_code
from brainvae.napari.widgets.latent_explorer import LatentExplorer

SHAPE = (24, 20)
PLACEMENT = {"scale": (1.0, 1.0), "translate": (0.0, 0.0), "axis_labels": ("y", "x")}


def age_vae():
    torch.manual_seed(0)
    config = ModelConfig(
        input_shape=SHAPE, latent_dim=4, family="age_vae", condition="age",
        condition_mean=55.0, condition_sd=15.0,
    )  # fmt: skip
    return build_model(config).eval()


@pytest.fixture
def explorer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    images = np.random.default_rng(0).random((6, *SHAPE), dtype=np.float32)
    table = [{"subject_id": f"sub-{k}", "session": "1", "age": str(40 + 5 * k)} for k in range(6)]
    data, kwargs, _ = stack_layer_data(images, "population (test)", PLACEMENT, {"table": table})
    viewer.add_image(data, **kwargs)
    dock = LatentExplorer(viewer)
    dock.set_model(age_vae())
    qtbot.waitUntil(lambda: not dock.busy, timeout=60_000)
    yield viewer, dock
    dock.shutdown()


def test_the_age_slider_moves_the_code_along_u_in_years(explorer, qtbot):
    viewer, dock = explorer
    model = dock.model
    assert dock.age.active and dock.age.slider.label == "age (years)"
    assert dock.age.slider.min == pytest.approx(55 - 2.5 * 15, abs=0.1)
    before = dock.code
    dock.age.slider.value = 70.0
    after = dock.code
    assert age_of_code(model, after) == pytest.approx(70.0)
    u = age_direction(model)
    moved = after - before
    np.testing.assert_allclose(moved, (moved @ u) * u, atol=1e-9)  # only along u
    dock.set_code(np.zeros(4))  # another control moves the code: the slider follows
    assert dock.age.slider.value == pytest.approx(55.0, abs=0.05)


def test_brain_age_of_the_scan_in_the_viewer(explorer):
    viewer, dock = explorer
    viewer.dims.set_current_step(0, 3)
    predicted, _ = dock.model.predict_condition(np.asarray(dock.scans.images[3:4]))
    text = dock.age.brain_age.value
    assert text.startswith(f"brain age of scan 3: {predicted[0]:.1f}")
    assert "recorded age 55.0" in text


def test_other_models_hide_the_age_row(make_napari_viewer):
    viewer = make_napari_viewer()
    dock = LatentExplorer(viewer)
    dock.set_model(build_model(ModelConfig(input_shape=SHAPE, latent_dim=3, family="beta_vae")))
    assert not dock.age.active and not dock.age.slider.visible
    dock.shutdown()


def test_a_model_without_a_run_folder_says_why_there_is_no_held_out_figure(explorer, qtbot):
    _, dock = explorer
    qtbot.waitUntil(lambda: "measuring" not in dock.age.held_out.value, timeout=30_000)
    assert "no run folder to find the training dataset from" in dock.age.held_out.value


def test_a_trained_run_shows_its_brain_age_on_the_held_out_scans(
    make_napari_viewer, qtbot, tmp_path
):
    """Loaded from its run folder, the explorer finds the training dataset the run records and
    shows the regressor's r and error on its test scans, as `brainvae train` prints them."""
    from brainvae.analysis.brain_age import held_out_brain_age
    from brainvae.cli import main
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import load_model
    from helpers.aging_population import write_aging_population

    dataset = write_aging_population(tmp_path / "aging")
    run = tmp_path / "run"
    args = ["train", str(dataset), "--model", "age-vae", "--condition", "age", "--latent", "3"]
    assert main([*args, "--epochs", "2", "--batch", "4", "--quiet", "--out", str(run)]) == 0
    expected = held_out_brain_age(load_model(run), PreparedDataset.open(dataset))
    viewer = make_napari_viewer()
    dock = LatentExplorer(viewer)
    dock.set_model(run)
    qtbot.waitUntil(lambda: "measuring" not in dock.age.held_out.value, timeout=60_000)
    assert dock.age.held_out.value == (
        f"brain age on the {expected.n} test scans: r {expected.pearson_r:.2f}, "
        f"mean absolute error {expected.mae:.1f} years"
    )
    dock.shutdown()
