"""torchrun training: 2 CPU processes over gloo, rank 0 writes, resume continues exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from brainvae.data.dataset import PreparedDataset
from brainvae.models import ModelError, load_model
from brainvae.training import TrainConfig, train
from brainvae.training.distributed import Ranks, epoch_order, share_size
from helpers.blob_population import write_blob_dataset

LOSSES = ["train_loss", "train_reconstruction", "train_kl", "val_loss"]
FAST = ["--arch", "small", "--latent", "3", "--batch", "3", "--lr", "1e-3", "--device", "cpu"]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """16 blob images (2 sessions of 8 subjects)."""
    return write_blob_dataset(
        tmp_path_factory.mktemp("distributed"),
        subjects=8,
        seed=2,
        split_fractions=(0.75, 0.125, 0.125),
    )


def torchrun(*args: str, cwd) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 -m brainvae ARGS` as a user would run it."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", "-m", "brainvae", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_each_rank_gets_an_equal_disjoint_share_that_depends_on_seed_and_epoch():
    n = 13
    shares = [epoch_order(n, 3, seed=5, ranks=Ranks(r, 2, r), drop_last=False) for r in (0, 1)]
    assert [len(s) for s in shares] == [share_size(n, Ranks(0, 2), False)] * 2 == [7, 7]
    together = torch.cat(shares).tolist()
    assert set(together) == set(range(n))  # every image, one padded repeat
    again = epoch_order(n, 3, seed=5, ranks=Ranks(0, 2, 0), drop_last=False)
    assert torch.equal(again, shares[0])
    assert not torch.equal(epoch_order(n, 4, 5, Ranks(0, 2, 0), False), shares[0])
    dropped = [epoch_order(n, 3, 5, Ranks(r, 2, r), True) for r in (0, 1)]
    assert set(dropped[0].tolist()).isdisjoint(dropped[1].tolist())
    assert len(dropped[0]) == share_size(n, Ranks(0, 2), True) == 6


@pytest.mark.slow
def test_two_gloo_processes_train_and_resume_exactly(dataset_dir, tmp_path):
    ds = str(dataset_dir)
    whole = torchrun("train", ds, *FAST, "--epochs", "3", "--out", "whole", cwd=tmp_path)
    assert whole.stdout.count("Trained a VAE") == 1  # rank 0 alone prints (default beta 1)
    assert "x 2 processes" in whole.stdout

    torchrun("train", ds, *FAST, "--epochs", "2", "--out", "split", cwd=tmp_path)
    torchrun("train", ds, *FAST, "--epochs", "3", "--out", "split", "--resume", cwd=tmp_path)

    reference = pd.read_csv(tmp_path / "whole" / "history.csv")
    resumed = pd.read_csv(tmp_path / "split" / "history.csv")
    n_train = len(PreparedDataset.open(dataset_dir).indices("train"))
    # 12 training images: 6 per rank, 2 steps of 3 per epoch (one process would take 4)
    assert n_train == 12 and reference["step"].tolist() == [2, 4, 6]
    np.testing.assert_allclose(resumed[LOSSES].to_numpy(), reference[LOSSES].to_numpy(), rtol=1e-6)
    expected = load_model(tmp_path / "whole").state_dict()
    for name, tensor in load_model(tmp_path / "split").state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=1e-5, atol=1e-6)

    run = tmp_path / "split"
    assert json.loads((run / "run.json").read_text())["processes"] == 2
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "epoch-0003"
    assert not [p for p in run.rglob("*") if p.name.startswith(".")]  # no leftovers
    assert load_model(run).config.training["processes"] == 2

    # the same run cannot continue with one process: the data order would change
    model = load_model(run)
    config = TrainConfig(epochs=4, batch_size=3, lr=1e-3, device="cpu")
    with pytest.raises(ModelError, match="trained by 2 process"):
        next(train(model, PreparedDataset.open(dataset_dir), config, run, resume=True))


@pytest.mark.slow
def test_two_processes_train_a_soft_intro_vae_and_refuse_a_foreign_folder(dataset_dir, tmp_path):
    ds = str(dataset_dir)
    args = ["train", ds, "--model", "soft-intro-vae", *FAST, "--epochs", "1", "--out", "intro"]
    done = torchrun(*args, cwd=tmp_path)
    assert "Soft-IntroVAE" in done.stdout
    assert len(pd.read_csv(tmp_path / "intro" / "history.csv")) == 1

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", "-m", "brainvae", "train", ds, *FAST, "--out", "other"]
    refused = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert refused.returncode != 0
    assert "already holds other files" in refused.stderr
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
