"""`brainvae population` on the shipped sample model and population: every file of the result
folder is there and agrees with the library's own result and with scikit-learn's metrics, the
figures are real PNGs, and bad input exits 2 with a message that says what to do."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from brainvae.cli import main

FAST = ["--bootstrap", "100", "--permutations", "100"]


@pytest.fixture(scope="module")
def sample_2d(sample_data_dir):
    return sample_data_dir / "models" / "beta_vae_2d", sample_data_dir / "population_2d"


@pytest.fixture(scope="module")
def full_run(sample_2d, tmp_path_factory):
    """One run of the command with classification, reference, bias check and two measures,
    and the library's analysis of the same request (without the reference, which is checked
    against scikit-learn's metrics instead: it is the slow part)."""
    from brainvae.models import load_model
    from brainvae.population import PopulationRequest
    from brainvae.usecases.population_run import open_population, population_run

    model_dir, population_dir = sample_2d
    out = tmp_path_factory.mktemp("population") / "result"
    code = main(
        ["population", str(model_dir), str(population_dir), "--classify", "diagnosis",
         "--regress", "age,lesion_load_ml", *FAST, "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    request = PopulationRequest(
        classify="diagnosis", regress=("age", "lesion_load_ml"), n_bootstrap=100,
        n_permutations=100, reference=False,
    )  # fmt: skip
    population = open_population(population_dir)
    steps = population_run(load_model(model_dir), population, request)
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            analysis = finished.value
            break
    return out, analysis, population


def read(out, name, **options) -> pd.DataFrame:
    return pd.read_csv(out / name, **options)


def test_every_file_is_written(full_run):
    out, analysis, _ = full_run
    expected = {
        "classification.csv", "confusion.csv", "reference_classification.csv",
        "reference_confusion.csv", "scans.csv", "bias.csv", "bias_site.csv", "brain_scores.csv",
        "brain_score_predictions.csv", "weights.csv", "summary.json", "lda_axes.png",
        "confusion.png", "reference_confusion.png", "latent_map.png", "brain_score_age.png",
        "brain_score_lesion_load_ml.png", "weights.png",
    }  # fmt: skip
    written = {path.name for path in out.iterdir()}
    assert expected <= written
    # the site check is flagged on the sample (the latents encode the site), so it is drawn
    assert any(c.encoded or c.confounded for c in analysis.bias.checks)
    assert "bias_site.png" in written
    assert not [name for name in written if name.startswith(".")]


def test_tables_equal_the_library_result(full_run):
    out, analysis, _ = full_run
    pd.testing.assert_frame_equal(
        read(out, "classification.csv", index_col=0), analysis.classification.table(),
        check_dtype=False, check_names=False, rtol=1e-6,
    )  # fmt: skip
    confusion = read(out, "confusion.csv", index_col=0).to_numpy()
    np.testing.assert_array_equal(confusion, analysis.classification.confusion)
    weights = read(out, "weights.csv", index_col=0)
    np.testing.assert_allclose(weights.to_numpy(), analysis.weights().to_numpy(), rtol=1e-6)
    assert list(weights.columns) == ["age", "lesion_load_ml"]
    scores = read(out, "brain_scores.csv")
    assert list(scores["measure"]) == ["age", "lesion_load_ml"]
    np.testing.assert_allclose(scores["r"], [s.r for s in analysis.scores], rtol=1e-6)
    np.testing.assert_allclose(scores["p"], [s.p for s in analysis.scores], rtol=1e-6)
    assert (scores["n"] == 244).all() and (scores["n_permutations"] == 100).all()
    bias = read(out, "bias.csv")
    assert list(bias["column"]) == [c.column for c in analysis.bias.checks]


def test_scans_agree_with_the_counts_and_with_scikit_learn(full_run, sample_2d):
    """scans.csv's class and held-out prediction give back classification.csv through
    scikit-learn's own metrics."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    out, analysis, population = full_run
    scans = read(out, "scans.csv", keep_default_na=False)
    assert len(scans) == population.n_scans == 244
    assert list(scans["subject_id"]) == list(population.table["subject_id"])
    assert {"session", "class", "predicted", "held_out", "map_x", "map_y", "LD1", "LD2"} <= set(
        scans.columns
    )
    held = scans["held_out"].astype(str) == "True"
    assert held.all()  # cross-validation holds every scan out once
    for prefix, column in (("", "predicted"), ("reference_", "predicted_reference")):
        table = read(out, f"{prefix}classification.csv", index_col=0)
        classes = list(table.columns)
        truth, predicted = scans.loc[held, "class"], scans.loc[held, column]
        confusion = confusion_matrix(truth, predicted, labels=classes)
        written = read(out, f"{prefix}confusion.csv", index_col=0).to_numpy()
        np.testing.assert_array_equal(confusion, written)
        precision, recall, _, _ = precision_recall_fscore_support(
            truth, predicted, labels=classes, zero_division=0
        )
        np.testing.assert_allclose(table.loc["precision"].to_numpy(float), precision, rtol=1e-6)
        np.testing.assert_allclose(table.loc["recall"].to_numpy(float), recall, rtol=1e-6)
        np.testing.assert_array_equal(table.loc["TP"].to_numpy(float), np.diag(confusion))
        fp = confusion.sum(axis=0) - np.diag(confusion)
        np.testing.assert_array_equal(table.loc["FP"].to_numpy(float), fp)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reference"]["features"].startswith("PCA of the images")
    # the class column is the subjects table's own
    np.testing.assert_array_equal(scans["class"], population.table["diagnosis"].astype(str))
    np.testing.assert_allclose(scans[["map_x", "map_y"]], analysis.map.coordinates, rtol=1e-6)


def test_brain_score_predictions_give_the_stated_r(full_run):
    out, _, _ = full_run
    predictions = read(out, "brain_score_predictions.csv")
    scores = read(out, "brain_scores.csv").set_index("measure")
    for measure, part in predictions.groupby("measure"):
        r = np.corrcoef(part["true"], part["predicted"])[0, 1]
        assert r == pytest.approx(scores.loc[measure, "r"], abs=1e-6)


def test_summary_json(full_run):
    out, analysis, _ = full_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["request"]["classify"] == "diagnosis"
    assert summary["request"]["n_bootstrap"] == 100
    assert summary["classification"]["balanced_accuracy"] == pytest.approx(
        analysis.classification.balanced_accuracy
    )
    assert summary["validation"]["classify diagnosis"].startswith("5-fold cross-validation")
    assert summary["warnings"] == list(analysis.warnings())
    assert set(summary["figures"]) == {p.name for p in out.glob("*.png")}
    assert "classification.csv" in summary["tables"]
    assert summary["n_scans"] == 244 and summary["run"].endswith("beta_vae_2d")


def test_figures_are_real_pictures(full_run):
    out, _, _ = full_run
    for path in sorted(out.glob("*.png")):
        with Image.open(path) as picture:
            picture.load()
            assert picture.format == "PNG"
            assert picture.width >= 300 and picture.height >= 200, path.name
            pixels = np.asarray(picture.convert("L"))
        assert pixels.std() > 5, f"{path.name} is blank"


def test_printed_summary(sample_2d, tmp_path, capsys):
    """Two classes (merged), the LDA map (one discriminant axis), no reference, no bias check:
    what is printed, and the files that are and are not written."""
    model_dir, population_dir = sample_2d
    out = tmp_path / "merged"
    code = main(
        ["population", str(model_dir), str(population_dir), "--classify", "diagnosis",
         "--merge", "ms,leuko=patient", "--no-reference", "--nuisance", "none", "--map", "lda",
         *FAST, "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr()
    assert "healthy: precision" in printed.out and "patient: precision" in printed.out
    assert "balanced accuracy" in printed.out and "chance 0.50" in printed.out
    assert "Classes merged: leuko, ms -> patient." in printed.out
    assert "population analysis" in printed.err  # progress on stderr
    table = read(out, "classification.csv", index_col=0)
    assert list(table.columns) == ["healthy", "patient"]
    assert not (out / "reference_classification.csv").exists()
    assert not (out / "bias.csv").exists()
    scans = read(out, "scans.csv")
    assert "LD2" not in scans.columns and np.isfinite(scans["LD1"]).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["map"]["x_label"] == "LD1" and summary["request"]["merge"] == {
        "ms": "patient", "leuko": "patient"
    }  # fmt: skip
    with Image.open(out / "lda_axes.png") as picture:
        assert picture.width >= 300


def test_file_names_of_columns_are_safe_and_distinct():
    from brainvae.exports.population_folder import unique_names

    names = unique_names(["TE (ms)", "TE_ms", "te ms", "../x"], "bias_", ".csv")
    assert names == ["bias_TE_ms.csv", "bias_TE_ms_2.csv", "bias_te_ms_3.csv", "bias_x.csv"]


def test_3d_sample_regression_only(sample_data_dir, tmp_path):
    out = tmp_path / "three"
    code = main(
        ["population", str(sample_data_dir / "models" / "beta_vae_3d"),
         str(sample_data_dir / "population_3d"), "--regress", "age", *FAST, "--out", str(out),
         "--quiet"]
    )  # fmt: skip
    assert code == 0
    assert not (out / "classification.csv").exists()
    scores = read(out, "brain_scores.csv")
    assert list(scores["measure"]) == ["age"] and np.isfinite(scores["r"]).all()
    assert len(read(out, "scans.csv")) == 83
    assert (out / "brain_score_age.png").is_file() and (out / "weights.png").is_file()


# ---- bad input: exit 2, one line that says what to do, nothing written -------------------


def run_bad(sample_2d, tmp_path, capsys, *options, population=None) -> str:
    model_dir, population_dir = sample_2d
    out = tmp_path / "out"
    code = main(
        ["population", str(model_dir), str(population or population_dir), *options, *FAST,
         "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 2
    assert not out.exists()
    return capsys.readouterr().err


def test_missing_column_names_the_columns_there_are(sample_2d, tmp_path, capsys):
    err = run_bad(sample_2d, tmp_path, capsys, "--classify", "diagnosis_typo")
    assert "diagnosis_typo" in err and "diagnosis" in err.split("it has:")[1]
    assert "age" in err.split("it has:")[1]
    err = run_bad(sample_2d, tmp_path, capsys, "--classify", "diagnosis", "--regress", "weight")
    assert "'weight'" in err and "age" in err


def test_merge_of_an_unknown_class(sample_2d, tmp_path, capsys):
    err = run_bad(sample_2d, tmp_path, capsys, "--classify", "diagnosis", "--merge", "ms,alz=x")
    assert "alz" in err and "healthy, leuko, ms" in err


def test_nothing_asked(sample_2d, tmp_path, capsys):
    err = run_bad(sample_2d, tmp_path, capsys)
    assert "--classify" in err and "--regress" in err


def test_existing_output_needs_overwrite(sample_2d, tmp_path, capsys):
    model_dir, population_dir = sample_2d
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code = main(
        ["population", str(model_dir), str(population_dir), "--classify", "diagnosis",
         "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


def test_population_folder_without_subjects_table(sample_2d, tmp_path, capsys):
    _, population_dir = sample_2d
    folder = tmp_path / "no_table"
    shutil.copytree(population_dir, folder, ignore=shutil.ignore_patterns("subjects.csv"))
    err = run_bad(sample_2d, tmp_path, capsys, "--classify", "diagnosis", population=folder)
    assert "subjects.csv" in err and str(folder) in err


def test_umap_map_without_umap_learn(sample_2d, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # as if umap-learn were not installed
    err = run_bad(sample_2d, tmp_path, capsys, "--classify", "diagnosis", "--map", "umap")
    assert "umap-learn" in err and "--map pca" in err


def test_bad_shrinkage(sample_2d, tmp_path, capsys):
    err = run_bad(sample_2d, tmp_path, capsys, "--classify", "diagnosis", "--shrinkage", "2")
    assert "shrinkage" in err and "[0, 1]" in err


def test_help_shows_the_request_defaults(capsys):
    from brainvae.population import PopulationRequest

    with pytest.raises(SystemExit):
        main(["population", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    request = PopulationRequest()
    assert f"(default {request.n_bootstrap})" in text
    assert f"(default {request.folds})" in text
    assert f"(default {request.map_method})" in text
    assert f"(default {request.regression})" in text
