"""`brainvae train/encode/decode/sweep` end to end on a tiny 24 x 20 dataset of 6 subjects."""

from __future__ import annotations

import signal

import numpy as np
import pandas as pd
import pytest
import torch

from brainvae.cli import main
from brainvae.data.dataset import PreparedDataset
from brainvae.data.prepare import prepare
from brainvae.data.preprocessing import PreprocessConfig
from brainvae.models import load_model
from helpers.blob_population import SHAPE, write_blob_dataset

FAST = ["--arch", "small", "--batch", "4", "--lr", "1e-3", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """12 blob images (2 sessions of 6 subjects)."""
    return write_blob_dataset(
        tmp_path_factory.mktemp("cli_train"), subjects=6, seed=1, split_fractions=(0.67, 0.17, 0.16)
    )


@pytest.fixture(scope="module")
def trained(dataset_dir, tmp_path_factory):
    """A run folder trained for 1 epoch (latent 3) by the CLI."""
    run = tmp_path_factory.mktemp("runs") / "run"
    code = main(
        ["train", str(dataset_dir), "--latent", "3", "--epochs", "1", *FAST, "--out", str(run)]
    )
    assert code == 0
    return run


def test_train_writes_run_folder_and_summary(dataset_dir, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", str(dataset_dir), "--model", "vae", "--latent", "2", "--epochs", "1"]
    args += ["--likelihood", "bernoulli"]  # the entropy floor is a Bernoulli figure
    assert main([*args, *FAST, "--out", str(run)]) == 0
    for name in ("config.json", "weights.safetensors", "history.csv", "checkpoints"):
        assert (run / name).exists(), name
    out = capsys.readouterr().out
    assert "Trained a VAE, L = 2" in out
    assert "entropy floor" in out and "Active latents:" in out and str(run) in out
    assert load_model(run).config.beta == 1.0

    assert main([*args, *FAST, "--out", str(run)]) == 2  # same folder, no flag
    err = capsys.readouterr().err
    assert "already holds a training run" in err and "--resume" in err and "--overwrite" in err

    more = ["train", str(dataset_dir), "--model", "vae", "--latent", "2", "--epochs", "2"]
    more += ["--likelihood", "bernoulli"]
    assert main([*more, *FAST, "--out", str(run), "--resume"]) == 0
    assert len(pd.read_csv(run / "history.csv")) == 2
    assert "2 epoch(s)" in capsys.readouterr().out


def test_validation_loss_is_labelled_as_taken_at_the_posterior_mean(dataset_dir, tmp_path, capsys):
    """Issue 12.6.3: the printed summary and the progress bar's epoch postfix say that the
    validation loss is at z = mu (no sampling), not comparable with the sampled training loss."""
    from brainvae.cli._console import epoch_postfix
    from brainvae.training import EpochReport
    from brainvae.training.progress import VALIDATION_NOTE

    run = tmp_path / "run"
    args = ["train", str(dataset_dir), "--latent", "2", "--epochs", "1", *FAST]
    assert main([*args, "--precision", "fp32", "--out", str(run)]) == 0
    final = next(line for line in capsys.readouterr().out.splitlines() if "Final loss" in line)
    assert VALIDATION_NOTE in final and "train" in final
    report = EpochReport(3, 10.0, 9.0, 1.0, 11.0, 10.5, 0.5, None, [0.5], 1)
    postfix = epoch_postfix(report)
    assert postfix["val (z = mu)"] == "11" and "val" not in postfix


def test_ctrl_c_checkpoints_and_exits_130(dataset_dir, tmp_path, capsys, monkeypatch):
    import brainvae.cli._console as console

    real = console.show_batch

    def interrupt_once(bar, report, description):
        if report.epoch == 1 and report.batch == 1:
            signal.raise_signal(signal.SIGINT)
        return real(bar, report, description)

    monkeypatch.setattr(console, "show_batch", interrupt_once)
    run = tmp_path / "run"
    args = ["train", str(dataset_dir), "--latent", "2", "--epochs", "2", "--arch", "small"]
    args += ["--batch", "4", "--device", "cpu", "--out", str(run)]
    assert main(args) == 130
    out = capsys.readouterr().out
    assert "--resume" in out and "Interrupted" in out
    assert any((run / "checkpoints").iterdir())
    assert main([*args, "--resume", "--quiet"]) == 0
    assert len(pd.read_csv(run / "history.csv")) == 2


def test_encode_matches_model(trained, dataset_dir, tmp_path, capsys):
    out = tmp_path / "latents.csv"
    assert main(["encode", str(trained), str(dataset_dir), "--out", str(out), "--batch", "5"]) == 0
    table = pd.read_csv(out, dtype={"subject_id": str, "session": str})
    dataset = PreparedDataset.open(dataset_dir)
    assert len(table) == len(dataset) == 12
    mu_columns = [f"mu_{i}" for i in (1, 2, 3)]
    logvar_columns = [f"logvar_{i}" for i in (1, 2, 3)]
    assert list(table.columns[-6:]) == mu_columns + logvar_columns
    assert {"subject_id", "session", "split"} <= set(table.columns)
    assert list(table["subject_id"]) == list(dataset.metadata["subject_id"])
    model = load_model(trained)
    with torch.no_grad():
        mu, logvar = model.encode(torch.from_numpy(np.array(dataset.images, dtype=np.float32)))
    np.testing.assert_allclose(table[mu_columns].to_numpy(), mu.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(table[logvar_columns].to_numpy(), logvar.numpy(), atol=1e-5)
    assert "Encoded 12 scans" in capsys.readouterr().out


def test_encode_refuses_wrong_shape(trained, tmp_path, capsys):
    source = tmp_path / "other"
    source.mkdir()
    for i in range(4):
        np.save(source / f"sub-{i}.npy", np.full((16, 16), 0.5, dtype=np.float32))
    prepare(source, tmp_path / "ds16", PreprocessConfig.identity(), workers=1)
    assert main(["encode", str(trained), str(tmp_path / "ds16"), "--out", "x.csv"]) == 2
    err = capsys.readouterr().err
    assert "(16, 16)" in err and "(24, 20)" in err


def test_decode_with_dataset_affine(trained, dataset_dir, tmp_path, capsys):
    import nibabel as nib

    out = tmp_path / "image.nii.gz"
    code = main(
        [
            "decode",
            str(trained),
            "--z",
            "0.5,-1,0",
            "--dataset",
            str(dataset_dir),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    dataset = PreparedDataset.open(dataset_dir)
    image = nib.load(out)
    np.testing.assert_allclose(image.affine, dataset.affine, atol=1e-5)
    data = np.asarray(image.dataobj)
    assert data.size == np.prod(SHAPE)
    assert tuple(s for s in data.shape if s != 1) == dataset.scan_shape
    expected = load_model(trained).decode(torch.tensor([[0.5, -1.0, 0.0]]))[0, 0].detach().numpy()
    np.testing.assert_allclose(data.reshape(SHAPE), expected, atol=1e-5)
    assert "the affine of" in capsys.readouterr().out


def test_decode_from_file_without_dataset(trained, dataset_dir, tmp_path, capsys):
    latents = tmp_path / "latents.csv"
    assert main(["encode", str(trained), str(dataset_dir), "--out", str(latents)]) == 0
    out = tmp_path / "row.nii.gz"
    assert (
        main(["decode", str(trained), "--z-file", str(latents), "--row", "3", "--out", str(out)])
        == 0
    )
    assert out.is_file() and "identity affine" in capsys.readouterr().out


def test_decode_wrong_length_names_latent_size(trained, tmp_path, capsys):
    out = tmp_path / "bad.nii.gz"
    assert main(["decode", str(trained), "--z", "1,2", "--out", str(out)]) == 2
    assert "L = 3" in capsys.readouterr().err and not out.exists()


def test_pca_trains_and_encodes(dataset_dir, tmp_path, capsys):
    run = tmp_path / "pca"
    assert (
        main(["train", str(dataset_dir), "--model", "pca", "--latent", "2", "--out", str(run)]) == 0
    )
    assert (run / "config.json").is_file() and (run / "weights.safetensors").is_file()
    assert "Fitted PCA" in capsys.readouterr().out
    out = tmp_path / "pca.csv"
    assert main(["encode", str(run), str(dataset_dir), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 12 and "mu_2" in table and "logvar_2" in table
    assert (
        main(["train", str(dataset_dir), "--model", "pca", "--latent", "2", "--out", str(run)]) == 2
    )


def test_sweep_writes_table(dataset_dir, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", str(dataset_dir), "--betas", "1,4", "--latents", "2", "--epochs", "1"]
    # --no-metrics: this dataset's test split (one subject) is too small to evaluate on
    assert main([*args, *FAST, "--no-metrics", "--out", str(out)]) == 0
    table = pd.read_csv(out / "sweep.csv")
    assert len(table) == 2 and list(table["beta"]) == [1.0, 4.0]
    assert {"final_val_loss", "reconstruction", "active_units", "epochs", "seconds"} <= set(table)
    assert (out / "beta-1_latent-2" / "weights.safetensors").is_file()
    assert (out / "beta-4_latent-2" / "history.csv").is_file()
    assert "beta-4_latent-2" in capsys.readouterr().out


def test_help_mentions_soft_intro_vae(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "soft-intro-vae" in out and "not available yet" not in out


def test_decode_slice_row_overlays_its_slice(tmp_path, capsys):
    import nibabel as nib

    from brainvae.data.io.nifti import read_nifti

    source = tmp_path / "nifti"
    source.mkdir()
    rng = np.random.default_rng(2)
    for i in range(4):
        volume = rng.uniform(0, 1, (22, 18, 6)).astype(np.float32)
        nib.save(nib.Nifti1Image(volume, np.diag([2.0, 2.0, 3.0, 1.0])), source / f"sub-{i}.nii.gz")
    config = PreprocessConfig.identity(slice_axis="axial", slice_range=(2, 4))
    dataset = prepare(source, tmp_path / "ds", config, workers=1)
    run, latents, out = tmp_path / "run", tmp_path / "latents.csv", tmp_path / "slice.nii.gz"
    train = ["train", str(dataset.path), "--latent", "2", "--epochs", "1", *FAST, "--out", str(run)]
    assert main(train) == 0
    assert main(["encode", str(run), str(dataset.path), "--out", str(latents)]) == 0
    assert "slice_index" in pd.read_csv(latents).columns
    decode = ["decode", str(run), "--z-file", str(latents), "--row", "3"]
    assert main([*decode, "--dataset", str(dataset.path), "--out", str(out)]) == 0
    image = read_nifti(out)
    assert image.data.shape == dataset.scan_shape
    np.testing.assert_allclose(image.affine, dataset.sample_affine(3), atol=1e-5)
    assert "moved to slice" in capsys.readouterr().out


def test_likelihood_and_capacity_flags_reach_the_saved_model(dataset_dir, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", str(dataset_dir), "--latent", "2", "--epochs", "1", "--likelihood"]
    flags = ["gaussian", "--learn-sigma", "--capacity", "5", "--capacity-steps", "50"]
    assert main([*args, *flags, *FAST, "--out", str(run)]) == 0
    config = load_model(run).config
    assert config.likelihood == "gaussian" and config.learn_sigma
    assert config.capacity_max == 5.0 and config.capacity_anneal_steps == 50
    fixed = tmp_path / "fixed"
    assert main([*args, "gaussian", "--sigma", "0.05", *FAST, "--out", str(fixed)]) == 0
    assert load_model(fixed).config.gaussian_sigma == 0.05

    assert main([*args, "bernoulli", "--sigma", "0.1", *FAST, "--out", str(tmp_path / "x")]) == 2
    assert "--likelihood gaussian" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_soft_intro_vae_flags_reach_the_saved_model(dataset_dir, tmp_path):
    run = tmp_path / "run"
    args = ["train", str(dataset_dir), "--model", "soft-intro-vae", "--latent", "2"]
    flags = ["--intro-variant", "margin", "--margin", "40", "--w-neg", "0.25", "--beta-neg", "64"]
    assert main([*args, "--epochs", "1", *flags, *FAST, "--out", str(run)]) == 0
    config = load_model(run).config
    assert (config.intro_variant, config.margin, config.w_neg, config.beta_neg) == (
        "margin",
        40.0,
        0.25,
        64.0,
    )
