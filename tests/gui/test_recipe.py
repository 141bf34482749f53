"""One default recipe for the CLI, the Python API and the Training dock; the KL warm-up; steps as
the training length; the verdict that says when a model did not learn (issue 13)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from brainvae.models import ModelConfig, build_model
from brainvae.models.losses import kl_weight
from brainvae.models.networks.presets import NETWORK_PRESETS, sized_network
from brainvae.training import TrainConfig
from brainvae.training.recipe import (
    DEFAULT_RECIPE,
    RECIPES,
    epochs_for_steps,
    model_config_from_recipe,
)
from brainvae.training.verdict import training_verdict


def _cli_args(*argv: str) -> argparse.Namespace:
    from brainvae.cli import build_parser

    return build_parser().parse_args(["train", "ds", "--out", "run", *argv])


def test_the_cli_and_the_python_api_share_the_default_recipe():
    from brainvae.cli._options import train_config
    from brainvae.cli.train import DEFAULT_BETA

    args = _cli_args()
    cli = train_config(args)
    api = TrainConfig()
    assert (cli.batch_size, cli.lr) == (api.batch_size, api.lr)
    assert (cli.batch_size, cli.lr) == (DEFAULT_RECIPE.batch_size, DEFAULT_RECIPE.lr)
    assert cli.steps == DEFAULT_RECIPE.steps and cli.epochs is None
    assert api.resolved(n_train=48).epochs == epochs_for_steps(DEFAULT_RECIPE.steps, 48, 16)
    assert DEFAULT_BETA == DEFAULT_RECIPE.beta
    assert args.recipe == "default" and args.arch is None and args.likelihood is None


def test_cli_help_shows_every_default(capsys):
    from brainvae.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("default recipe: 3000", "default recipe: 16", "default recipe: 0.001",
                  "default recipe: gaussian", "default recipe: 0.05", "default recipe: small",
                  "default recipe: 300", "mouse2d-published"):  # fmt: skip
        assert shown in text, shown


def test_the_dock_shows_the_default_recipe(make_napari_viewer):
    from brainvae.napari.widgets.training_widget import TrainingWidget

    widget = TrainingWidget(make_napari_viewer())
    assert widget.length_unit.value == "steps" and widget.steps.value == DEFAULT_RECIPE.steps
    assert widget.batch.value == DEFAULT_RECIPE.batch_size
    assert widget.lr.value == pytest.approx(DEFAULT_RECIPE.lr)
    assert widget.beta.value == DEFAULT_RECIPE.beta
    assert widget.likelihood.value == DEFAULT_RECIPE.likelihood
    assert widget.sigma.value == pytest.approx(DEFAULT_RECIPE.gaussian_sigma)
    assert widget.architecture.value == DEFAULT_RECIPE.architecture
    config = widget.train_config()
    assert config.steps == DEFAULT_RECIPE.steps and config.epochs is None
    assert widget.epochs.native.isHidden() and not widget.steps.native.isHidden()
    widget.length_unit.value = "epochs"
    assert not widget.epochs.native.isHidden() and widget.steps.native.isHidden()
    assert widget.train_config().epochs == widget.epochs.value


def test_steps_become_whole_epochs_and_both_at_once_are_refused():
    assert epochs_for_steps(3000, 48, 16) == 1000  # 3 steps an epoch
    assert epochs_for_steps(3000, 273, 16) == 167  # 18 steps an epoch: 3,006 steps
    assert TrainConfig(steps=10).resolved(n_train=100).epochs == 2
    assert TrainConfig(epochs=4).resolved(n_train=100).epochs == 4
    with pytest.raises(Exception, match="not both"):
        TrainConfig(epochs=2, steps=10)


def test_kl_warmup_rises_linearly_and_the_model_uses_it():
    assert [kl_weight(2.0, s, 100) for s in (0, 50, 100, 500)] == [0.0, 1.0, 2.0, 2.0]
    assert kl_weight(3.0, 0, 0) == 3.0
    config = model_config_from_recipe(DEFAULT_RECIPE, (32, 40), latent_dim=4)
    assert config.kl_warmup_steps == 300 and config.likelihood == "gaussian"
    assert config.gaussian_sigma == DEFAULT_RECIPE.gaussian_sigma
    model = build_model(config)
    x = np.random.default_rng(0).uniform(size=(4, 32, 40)).astype(np.float32)
    assert model.loss(x, step=0).beta == 0.0 and model.loss(x, step=300).beta == 1.0
    assert model.loss(x, step=150).beta == pytest.approx(0.5)
    off = model_config_from_recipe(DEFAULT_RECIPE, (32, 40), kl_warmup_steps=0)
    assert off.kl_warmup_steps == 0
    assert ModelConfig.from_json(config.to_json()).kl_warmup_steps == 300


def test_the_net_is_sized_to_the_input_and_published_recipes_stay_presets():
    assert sized_network((128, 160)) == NETWORK_PRESETS["small"].spec
    assert len(sized_network((256, 256)).conv_widths) == 4
    assert len(sized_network((182, 218, 182)).conv_widths) == 4
    published = model_config_from_recipe(RECIPES["mouse2d-published"], (128, 160))
    assert (published.architecture, published.likelihood, published.beta) == (
        "mouse2d",
        "bernoulli",
        3.0,
    )
    assert published.kl_warmup_steps == 0


def test_the_verdict_names_collapse_and_what_to_try():
    from helpers.collapsed_model import collapsed_beta_vae
    from helpers.oracle_model import make_phantom, sample_factors

    images = make_phantom((32, 40)).render(sample_factors(40, 0), noise_sd=0.01, seed=1)
    collapsed = collapsed_beta_vae(images, latent_dim=8, live=(0,))
    verdict = training_verdict(collapsed, images, np.arange(40), total_steps=300)
    assert verdict.n_active == 1 and not verdict.learned
    text = verdict.describe()
    assert "Only 1 of 8 latents are active" in text and "no closer to the scans" in text
    assert "more steps (this run took 300" in text and "PCA" in text
    pca = build_model(
        ModelConfig(input_shape=(32, 40), latent_dim=4, family="pca", likelihood="gaussian")
    ).fit(images)
    good = training_verdict(pca, images, np.arange(40))
    assert good.learned and good.n_active == 4 and good.model_mse < good.mean_image_mse
    assert "The model learned" in good.describe()
