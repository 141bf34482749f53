"""RunFolder names a run's files once for every reader; the family table reads both spellings."""

from __future__ import annotations

import json

import pytest
import torch

from brainvae.cli import main
from brainvae.models import FAMILIES, BetaVAE, ModelConfig, ModelError, build_model, load_model
from brainvae.models.families import FAMILY_CHOICES, FAMILY_NAMES, family_choice
from brainvae.run_folder import RunFolder
from brainvae.training.checkpoint import latest_checkpoint
from brainvae.training.history import read_history


def test_run_folder_paths_are_the_files_a_training_run_writes(tmp_path):
    """A real (one-epoch) run writes exactly the files RunFolder names."""
    from brainvae.data.dataset import PreparedDataset
    from brainvae.training import TrainConfig, train
    from helpers.blob_population import SHAPE, write_blob_dataset

    dataset = PreparedDataset.open(write_blob_dataset(tmp_path, subjects=4, seed=0))
    model = build_model(ModelConfig(input_shape=SHAPE, latent_dim=2, architecture="small"))
    run = RunFolder(tmp_path / "run")
    config = TrainConfig(epochs=1, batch_size=4, precision="fp32", device="cpu")
    for _ in train(model, dataset, config, run.path):
        pass
    assert run.holds_model() and run.holds_run_record()
    assert json.loads(run.run_record.read_text())["format"] == "brainvae-run"
    assert json.loads(run.model_config.read_text())["family"] == "beta_vae"
    assert run.weights.is_file()
    assert len(read_history(run.path)) == 1 == len(read_history(run.history))
    assert latest_checkpoint(run.path).parent == run.checkpoints
    assert {p.name for p in run.path.iterdir()} == {
        RunFolder.RUN_RECORD,
        *RunFolder.MODEL_FILES,
        RunFolder.HISTORY,
        RunFolder.CHECKPOINTS,
    }


def test_save_model_keeps_the_run_folders_other_files(tmp_path):
    """model.save replaces its whole folder; RunFolder.save_model only replaces the model."""
    model = build_model(ModelConfig(input_shape=(16, 16), latent_dim=2, architecture="small"))
    run = RunFolder(str(tmp_path / "run"))  # a str is taken too
    run.checkpoints.mkdir(parents=True)
    run.history.write_text("epoch\n1\n")
    run.save_model(model, {"epochs": 3})
    assert run.history.read_text() == "epoch\n1\n" and run.checkpoints.is_dir()
    loaded = load_model(run.path)
    assert loaded.config.training == {"epochs": 3}
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)
    assert sorted(p.name for p in run.path.iterdir()) == sorted(
        [RunFolder.CHECKPOINTS, RunFolder.MODEL_CONFIG, RunFolder.HISTORY, RunFolder.WEIGHTS]
    )  # no staging folder left behind
    assert BetaVAE.load(run.path).config.training == {"epochs": 3}


@pytest.mark.parametrize(
    ("spelling", "family", "beta"),
    [
        ("beta-vae", "beta_vae", 4.0),
        ("beta_vae", "beta_vae", 4.0),
        ("vae", "beta_vae", 1.0),
        ("soft-intro-vae", "soft_intro_vae", 1.0),
        ("soft_intro_vae", "soft_intro_vae", 1.0),
        ("pca", "pca", 1.0),
    ],
)
def test_family_choice_reads_either_spelling(spelling, family, beta):
    choice = family_choice(spelling)
    assert choice.family == family
    assert choice.beta(4.0) == beta


def test_family_table_matches_the_model_classes_and_the_cli():
    """Every family a choice builds has a model class, and `brainvae train --model` offers
    exactly the table's choices in its hyphen spelling."""
    assert set(FAMILY_NAMES) == set(FAMILIES)
    assert all(FAMILIES[name].family == name for name in FAMILY_NAMES)
    with pytest.raises(ModelError, match="unknown model 'gan'; known: beta-vae, vae"):
        family_choice("gan")
    with pytest.raises(SystemExit):
        main(["train", "x", "--model", "beta_vae"])  # the CLI spells it beta-vae
    assert [c.cli_name for c in FAMILY_CHOICES] == [
        "beta-vae",
        "vae",
        "soft-intro-vae",
        "pca",
        "age-vae",
        "longitudinal-vae",
    ]
