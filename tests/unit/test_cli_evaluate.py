"""`brainvae evaluate RUN DATASET --out DIR` end to end, 2D and 3D, on real prepared datasets
and runs trained or fitted by the CLI."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainvae.cli import main
from brainvae.data.dataset import PreparedDataset
from brainvae.data.prepare import prepare
from brainvae.data.preprocessing import PreprocessConfig
from helpers.blob_population import write_blob_dataset

SPLIT = (0.5, 0.17, 0.33)  # 12 subjects: 6 train, 2 val, 4 test (8 scans)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    return write_blob_dataset(root, subjects=12, seed=3, split_fractions=SPLIT)


@pytest.fixture(scope="module")
def pca_run(dataset_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "pca"
    args = ["train", str(dataset_dir), "--model", "pca", "--latent", "3", "--out", str(run)]
    assert main([*args, "--quiet"]) == 0
    return run


def test_evaluate_writes_the_table_the_summary_and_the_picture(
    dataset_dir, pca_run, tmp_path, capsys
):
    out = tmp_path / "eval"
    args = ["evaluate", str(pca_run), str(dataset_dir), "--samples", "6", "--seed", "2"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "Reconstructions of the 8 test scans" in printed and "CW-SSIM" in printed
    assert "PCA-FD of 6 prior samples" in printed and str(out) in printed
    table = pd.read_csv(out / "reconstruction.csv")
    dataset = PreparedDataset.open(dataset_dir)
    assert list(table["row"]) == list(dataset.indices("test"))
    assert {"subject_id", "session", "mse", "ssim", "cw_ssim"} <= set(table.columns)
    assert table["mse"].between(0, 1).all() and table["cw_ssim"].between(0, 1.0001).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"] == str(pca_run) and summary["family"] == "pca"
    assert summary["n_scans"] == 8 and summary["samples"]["n"] == 6
    assert summary["reconstruction"]["mse_mean"] == pytest.approx(table["mse"].mean(), rel=1e-6)
    assert summary["samples"]["pca_frechet_distance"] > 0
    assert "mean scan above 0.1" in summary["brain_mask"]
    picture = (out / "examples.png").read_bytes()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n" and len(picture) > 10_000
    # the same seed gives the same distance; another seed another one
    again = tmp_path / "again"
    assert main([*args, "--out", str(again), "--quiet"]) == 0
    other = tmp_path / "other"
    args[-1] = "3"
    assert main([*args, "--out", str(other), "--quiet"]) == 0
    distance = [
        json.loads((folder / "summary.json").read_text())["samples"]["pca_frechet_distance"]
        for folder in (out, again, other)
    ]
    assert distance[0] == distance[1] != distance[2]


def test_evaluate_refuses_bad_input_naming_it(dataset_dir, pca_run, tmp_path, capsys):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["evaluate", str(pca_run), str(dataset_dir), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err

    no_test = write_blob_dataset(
        tmp_path / "no_test", subjects=6, seed=1, split_fractions=(0.8, 0.2, 0)
    )
    assert main(["evaluate", str(pca_run), str(no_test), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "no scan in the 'test' split" in err and "train (" in err and "val (" in err
    assert not (tmp_path / "a").exists()

    other = tmp_path / "other_shape"
    (other / "src").mkdir(parents=True)
    for i in range(6):
        np.save(other / "src" / f"sub-{i}_ses-1.npy", np.random.default_rng(i).random((20, 24)))
    assert main(["prepare", str(other / "src"), "--out", str(other / "ds"), "--quiet"]) == 0
    assert main(["evaluate", str(pca_run), str(other / "ds"), "--out", str(tmp_path / "b")]) == 2
    assert "do not fit the model" in capsys.readouterr().err

    assert main(["evaluate", str(pca_run), str(dataset_dir), "--split", "val", "--samples", "2",
                 "--out", str(tmp_path / "c")]) == 2  # fmt: skip
    assert "needs at least 4 real and 4 generated scans" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        main(["evaluate", str(pca_run), str(dataset_dir), "--samples", "0", "--out", "x"])
    assert "whole number >= 1" in capsys.readouterr().err


def test_evaluate_a_trained_beta_vae(dataset_dir, tmp_path, capsys):
    run = tmp_path / "run"
    fast = ["--arch", "small", "--batch", "4", "--lr", "1e-3", "--device", "cpu", "--quiet"]
    train = ["train", str(dataset_dir), "--latent", "2", "--epochs", "1", *fast]
    assert main([*train, "--out", str(run)]) == 0
    out = tmp_path / "eval"
    assert main(["evaluate", str(run), str(dataset_dir), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["family"] == "beta_vae" and "N(0, I)" in summary["samples"]["drawn"]
    assert 0 <= summary["active_latents"] <= 2


def test_evaluate_3d_volumes(tmp_path, capsys):
    source = tmp_path / "nifti"
    source.mkdir()
    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[:16, :20, :12]
    for i in range(12):
        radius = rng.uniform(3, 6)
        ball = np.exp(-((zz - 8) ** 2 + (yy - 10) ** 2 + (xx - 6) ** 2) / (2 * radius**2))
        volume = (0.05 + 0.85 * ball + rng.uniform(0, 0.02, ball.shape)).astype(np.float32)
        nib.save(nib.Nifti1Image(volume, np.eye(4)), source / f"sub-{i:02d}_ses-1.nii.gz")
    ds = prepare(
        source, tmp_path / "ds", PreprocessConfig.identity(split_fractions=SPLIT), workers=1
    ).path
    run = tmp_path / "pca"
    assert main(["train", str(ds), "--model", "pca", "--latent", "2", "--out", str(run)]) == 0
    out = tmp_path / "eval"
    assert main(["evaluate", str(run), str(ds), "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "reconstruction.csv")
    assert len(table) == len(PreparedDataset.open(ds).indices("test")) >= 4
    assert table["cw_ssim"].between(0, 1.0001).all()
    assert (out / "examples.png").stat().st_size > 5_000


def test_evaluate_help_shows_every_default(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default test)", "(default 0)", "(default 64)", "cpu (default)",
                    "as many as the split has scans"):  # fmt: skip
        assert default in text, default
