"""`brainvae sweep` with its measurements (issue 19.5): each cell trained, evaluated into its
metrics.json and gathered into sweep.csv; resumable per cell; one cell at a time (--cell K,
--cell env); `brainvae sweep-report` gathering whatever cells exist. Tiny blob population
(24 x 20, 12 subjects) whose true generating factors (blob centre and radius) are written
as a factors file the way a phantom's subjects.csv holds them."""

from __future__ import annotations

import argparse
import json
import threading

import numpy as np
import pandas as pd
import pytest

from brainvae.cli import main
from brainvae.data.dataset import PreparedDataset
from brainvae.evaluation.factors import PHANTOM_FACTORS
from helpers.blob_population import write_blob_dataset

FAST = ["--arch", "small", "--batch", "4", "--lr", "1e-3", "--device", "cpu", "--quiet"]
SUBJECTS, SEED = 12, 1
SPLIT = (0.5, 0.17, 0.33)  # 6 train, 2 val, 4 test subjects (2 sessions each)


def write_factors(path, subjects: int, seed: int):
    """The blobs' drawn centre and radius (write_blob_dataset's draws, in its order) as the
    phantom's independent factor columns (age, lesion_burden, leuko_extent_mm); the other
    phantom factors constant (so left out)."""
    rng = np.random.default_rng(seed)
    rows = []
    for subject in range(subjects):
        for session in (1, 2):
            cy, cx, radius = rng.uniform(7, 17), rng.uniform(6, 14), rng.uniform(3, 7)
            row = dict.fromkeys(PHANTOM_FACTORS, 0.0)
            row.update(age=cy, lesion_burden=cx, leuko_extent_mm=radius)
            rows.append({"subject_id": f"sub-{subject:02d}", "session": session, **row})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep_metrics")
    return write_blob_dataset(root, subjects=SUBJECTS, seed=SEED, split_fractions=SPLIT)


@pytest.fixture(scope="module")
def factors_file(dataset_dir):
    return write_factors(dataset_dir.parent / "subjects.csv", SUBJECTS, SEED)


def sweep_args(dataset_dir, out, *extra):
    grid = ["--betas", "1,3", "--latents", "2", "--epochs", "1"]
    return ["sweep", str(dataset_dir), *grid, *FAST, "--out", str(out), *extra]


def test_sweep_measures_each_cell_and_the_report_gathers_them(
    dataset_dir, factors_file, tmp_path, capsys
):
    out = tmp_path / "sweep"
    assert main(sweep_args(dataset_dir, out, "--factors", str(factors_file))) == 0
    printed = capsys.readouterr().out
    assert "cw_ssim" in printed and "mig" in printed and "2 cell(s) present" in printed
    table = pd.read_csv(out / "sweep.csv")
    assert list(table["cell"]) == [1, 2] and list(table["beta"]) == [1.0, 3.0]
    for column in ("cw_ssim", "ssim", "mse", "pca_fd", "active_latents", "mig",
                   "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap"):  # fmt: skip
        assert table[column].notna().all(), column
    assert table["cw_ssim"].between(0, 1.0001).all() and (table["pca_fd"] > 0).all()
    assert table["receptive_separation"].isna().all()  # no --rois
    record = json.loads((out / "beta-3_latent-2" / "metrics.json").read_text())
    assert record["cell"] == 2 and record["training"]["reason"] == "completed"
    assert record["measurements"]["factors_path"] == str(factors_file)
    details = record["details"]
    assert details["factors"] == ["age", "lesion_burden", "leuko_extent_mm"]
    assert details["evaluation"]["n_scans"] == len(
        PreparedDataset.open(dataset_dir).indices("test")
    )
    assert json.loads((out / "sweep.json").read_text())["betas"] == [1.0, 3.0]

    report = tmp_path / "report"
    assert main(["sweep-report", str(out), "--out", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "2 of 2 cells have results" in printed and "against beta: L = 2: beta = " in printed
    assert (report / "metrics_vs_beta.png").is_file() and (report / "metrics_vs_beta.pdf").is_file()
    assert not (report / "metrics_vs_latent.png").exists()  # one latent size: nothing to draw
    assert len(pd.read_csv(report / "report.csv")) == 2


def test_a_finished_cell_is_skipped_and_one_without_metrics_only_evaluated(
    dataset_dir, tmp_path, capsys
):
    out = tmp_path / "sweep"
    assert main(sweep_args(dataset_dir, out)) == 0
    first, second = out / "beta-1_latent-2", out / "beta-3_latent-2"
    stamps = {
        p: p.stat().st_mtime_ns for p in (first / "metrics.json", first / "weights.safetensors")
    }
    trained = (second / "weights.safetensors").stat().st_mtime_ns
    (second / "metrics.json").unlink()
    assert main(sweep_args(dataset_dir, out)) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # cell 1 untouched
    assert (second / "weights.safetensors").stat().st_mtime_ns == trained  # not retrained
    assert json.loads((second / "metrics.json").read_text())["metrics"]["cw_ssim"] is not None
    assert len(pd.read_csv(second / "history.csv")) == 1
    # asking for other measurements evaluates again, without training
    assert main(sweep_args(dataset_dir, out, "--samples", "5")) == 0
    assert (first / "weights.safetensors").stat().st_mtime_ns == stamps[
        first / "weights.safetensors"
    ]
    assert (
        json.loads((first / "metrics.json").read_text())["details"]["evaluation"]["samples"]["n"]
        == 5
    )
    # --overwrite retrains the cell asked for
    assert main(sweep_args(dataset_dir, out, "--cell", "1", "--overwrite")) == 0
    assert (first / "weights.safetensors").stat().st_mtime_ns != stamps[
        first / "weights.safetensors"
    ]
    assert (second / "weights.safetensors").stat().st_mtime_ns == trained


def test_a_half_trained_cell_resumes(dataset_dir, tmp_path):
    from brainvae.cli._options import model_config, train_config
    from brainvae.cli.sweep import add_parser
    from brainvae.training import BatchReport
    from brainvae.training.sweep import run_sweep

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    out = tmp_path / "sweep"
    args = parser.parse_args(
        ["sweep", str(dataset_dir), "--betas", "1", "--latents", "2", "--epochs", "2", *FAST,
         "--out", str(out)]
    )  # fmt: skip
    dataset = PreparedDataset.open(dataset_dir)
    base = model_config(args, dataset, family="beta_vae", latent=2, beta=1.0)
    cancel = threading.Event()
    steps = run_sweep(base, dataset, train_config(args), out, [1.0], [2], cancel=cancel)
    epochs_seen = set()
    while True:
        try:
            item = next(steps)
        except StopIteration as stop:
            rows = stop.value
            break
        if isinstance(item.report, BatchReport):
            epochs_seen.add(item.report.epoch)
            if item.report.epoch == 2:
                cancel.set()  # stop in the second epoch, after the first one's checkpoint
    assert rows[0]["reason"] == "cancelled" and rows[0]["epochs"] == 1
    assert not (out / "beta-1_latent-2" / "metrics.json").exists()
    assert pd.read_csv(out / "sweep.csv")["reason"].tolist() == ["cancelled"]
    again = run_sweep(base, dataset, train_config(args), out, [1.0], [2])
    epochs_again = set()
    while True:
        try:
            item = next(again)
        except StopIteration as stop:
            rows = stop.value
            break
        if isinstance(item.report, BatchReport):
            epochs_again.add(item.report.epoch)
    assert epochs_again == {2}  # resumed in epoch 2, epoch 1 not trained again
    assert rows[0]["reason"] == "completed" and rows[0]["epochs"] == 2
    assert len(pd.read_csv(out / "beta-1_latent-2" / "history.csv")) == 2


def test_one_cell_at_a_time_and_the_report_gathers_what_exists(
    dataset_dir, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "sweep"
    assert main(sweep_args(dataset_dir, out, "--cell", "2")) == 0
    assert (
        not (out / "beta-1_latent-2").exists()
        and (out / "beta-3_latent-2" / "metrics.json").is_file()
    )
    capsys.readouterr()
    report = tmp_path / "report"
    assert main(["sweep-report", str(out), "--out", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "1 of 2 cells have results" in printed and "Missing: beta-1_latent-2" in printed
    assert json.loads((report / "summary.json").read_text())["missing"] == ["beta-1_latent-2"]

    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    assert main(sweep_args(dataset_dir, out, "--cell", "env")) == 0
    assert (out / "beta-1_latent-2" / "metrics.json").is_file()
    assert main(["sweep-report", str(out), "--out", str(report), "--overwrite"]) == 0
    assert "2 of 2 cells have results" in capsys.readouterr().out
    assert list(pd.read_csv(out / "sweep.csv")["cell"]) == [1, 2]

    assert main(sweep_args(dataset_dir, out, "--cell", "3")) == 2
    assert "numbered 1 to 2" in capsys.readouterr().err
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
    assert main(sweep_args(dataset_dir, out, "--cell", "env")) == 2
    assert "SLURM_ARRAY_TASK_ID" in capsys.readouterr().err
    # another grid in the same folder would renumber its cells: refused
    other = ["sweep", str(dataset_dir), "--betas", "1,10", "--latents", "2", "--epochs", "1"]
    assert main([*other, *FAST, "--out", str(out)]) == 2
    assert "holds the grid betas 1, 3 x L 2" in capsys.readouterr().err


def test_bad_measurement_inputs_are_refused_before_training(dataset_dir, tmp_path, capsys):
    out = tmp_path / "sweep"
    missing = tmp_path / "nowhere" / "subjects.csv"
    assert main(sweep_args(dataset_dir, out, "--factors", str(missing))) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "MIG, DCI and SAP need" in err
    assert not (out / "beta-1_latent-2").exists()
    small = write_blob_dataset(
        tmp_path / "small", subjects=6, seed=1, split_fractions=(0.67, 0.17, 0.16)
    )
    assert main(sweep_args(small, tmp_path / "s2")) == 2
    err = capsys.readouterr().err
    assert "the test split has 2 scan(s)" in err and "--no-metrics" in err
    assert not (tmp_path / "s2" / "beta-1_latent-2").exists()


def test_cell_metrics_match_the_metrics_computed_directly(dataset_dir, factors_file, tmp_path):
    """The sweep's numbers are the library's: MIG, DCI, SAP of the model's codes against the
    factors, and the receptive usecase's separation over the ROIs (a PCA has active latents)."""
    from brainvae.analysis.receptive_field import DEFAULT_WEIGHTS
    from brainvae.evaluation.disentanglement_metrics import dci, mig, sap
    from brainvae.evaluation.factors import dataset_factors
    from brainvae.models import ModelConfig, build_model
    from brainvae.usecases.evaluate_run import CellMetricsRequest, cell_inputs, cell_metrics
    from brainvae.usecases.receptive_run import receptive_run

    dataset = PreparedDataset.open(dataset_dir)
    train, test = dataset.indices("train"), dataset.indices("test")
    images = np.asarray(dataset.images, dtype=np.float32)
    config = ModelConfig(input_shape=(24, 20), latent_dim=3, family="pca", likelihood="gaussian")
    model = build_model(config).fit(images[train])
    labels = np.zeros((24, 20), dtype=np.int16)
    labels[:12, :] = 1
    labels[12:, :] = 2
    request = CellMetricsRequest(factors_path=str(factors_file), rois_path="given")
    inputs = cell_inputs(request, dataset, labels)
    steps = cell_metrics(model, dataset, request, inputs)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            found = stop.value
            break
    metrics = found["metrics"]
    factors = dataset_factors(dataset.metadata, factors_file)
    codes_train, codes_test = model.embed(images[train]).numpy(), model.embed(images[test]).numpy()
    y_train, y_test = factors.values[train], factors.values[test]
    assert metrics["mig"] == pytest.approx(mig(codes_test, y_test).score, abs=1e-6)
    continuous = [not discrete for discrete in factors.discrete]  # regression for these
    expected_sap = sap(codes_train, y_train, codes_test, y_test, continuous_factors=continuous)
    assert metrics["sap"] == pytest.approx(expected_sap.score, abs=1e-6)
    expected = dci(codes_train, y_train, codes_test, y_test, seed=0)
    assert metrics["dci_disentanglement"] == pytest.approx(expected.disentanglement, abs=1e-6)
    assert metrics["dci_informativeness"] == pytest.approx(expected.informativeness_test, abs=1e-6)
    masks = np.stack([labels == 1, labels == 2])
    steps = receptive_run(model, dataset.images, masks, ["roi_1", "roi_2"], DEFAULT_WEIGHTS,
                          "remove", False, test)  # fmt: skip
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            direct = stop.value
            break
    assert metrics["receptive_separation"] == pytest.approx(direct.scores.separation, abs=1e-9)
    assert metrics["active_latents"] == 3 and metrics["total_correlation"] >= 0


def test_sweep_help_shows_every_default_and_the_grid_order(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in ("(default test)", "(default 64)", "(default: every cell)", "SLURM_ARRAY_TASK_ID",
                  "betas outer, latent sizes inner", "cell 2 beta 1 L 8",
                  "as many as the split has scans", "(default: none)",
                  "(default: evaluate each cell)"):  # fmt: skip
        assert words in text, words
