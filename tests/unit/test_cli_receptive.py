"""`brainvae receptive` end to end through brainvae.cli.main, on phantom datasets (2D and 3D)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainvae.cli import main
from helpers.oracle_model import ROI_NAMES
from helpers.phantom_datasets import prepared_phantom


def _prepared(root: Path, shape: tuple[int, ...], n: int, record: bool = False):
    """The phantom dataset, a 4-component PCA saved from it, and the ROI labels."""
    return prepared_phantom(root, shape, n, latent_dim=4, record_dataset=record)


@pytest.fixture(scope="module")
def setup_2d(tmp_path_factory):
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.io.nifti_writing import write_nifti

    root = tmp_path_factory.mktemp("receptive2d")
    dataset_dir, run_dir, labels = _prepared(root, (32, 40), 40)
    dataset = PreparedDataset.open(dataset_dir)
    rois = write_nifti(
        root / "rois.nii.gz", labels, dataset.affine, squeezed_axes=dataset.squeezed_axes
    )
    names = root / "names.csv"
    rows = [*enumerate(ROI_NAMES, start=1), (9, "cerebellum")]
    pd.DataFrame(rows, columns=["label", "name"]).to_csv(names, index=False)
    return {"root": root, "ds": dataset_dir, "run": run_dir, "rois": rois, "names": names,
            "labels": labels, "dataset": dataset}  # fmt: skip


def _run(setup, out, *extra: str) -> int:
    args = ["receptive", str(setup["run"]), str(setup["ds"]), "--rois", str(setup["rois"])]
    return main([*args, "--out", str(out), "--quiet", *extra])


def test_writes_impact_covariance_gaussians_and_summary(setup_2d, capsys):
    out = setup_2d["root"] / "out"
    assert _run(setup_2d, out, "--roi-names", str(setup_2d["names"])) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "covariance.csv", "gaussians.csv", "impact.csv", "impact_per_voxel.csv", "latents.csv",
        "summary.json",
    ]  # fmt: skip
    impact = pd.read_csv(out / "impact.csv", index_col="roi")
    assert list(impact.index) == list(ROI_NAMES) and list(impact.columns) == [
        "z1",
        "z2",
        "z3",
        "z4",
    ]
    covariance = pd.read_csv(out / "covariance.csv", index_col="latent")
    assert covariance.shape == (4, 4)
    np.testing.assert_allclose(covariance.to_numpy(), np.cov(impact.to_numpy(), rowvar=False), 1e-6)
    gaussians = pd.read_csv(out / "gaussians.csv")
    assert list(gaussians.columns) == ["roi", "latent", "weight", "mean", "variance", "active"]
    assert len(gaussians) == 4 * 4 * 5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "remove" and summary["n_images"] == 40
    assert summary["weights"] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert 0.0 <= summary["separation"] <= 1.0 and 0.0 <= summary["separation_raw_impact"] <= 1
    assert isinstance(summary["published_s"], float) and summary["headline_score"] == "separation"
    assert summary["activity"]["inactive"] == [] and summary["scored_latents"] == list(impact)
    assert summary["skipped_empty_rois"] == ["cerebellum (label 9)"]
    assert summary["variance_floor_hits"] == [] and summary["floor_fraction"] > 0
    per_voxel = pd.read_csv(out / "impact_per_voxel.csv", index_col="roi")
    sizes = np.array([summary["rois"][name] for name in ROI_NAMES], dtype=float)
    np.testing.assert_allclose(per_voxel.to_numpy(), impact.to_numpy() / sizes[:, None], 1e-6)
    latents = pd.read_csv(out / "latents.csv", index_col="latent")
    assert list(latents["status"]) == ["active"] * 4
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out.")]
    printed = capsys.readouterr().out
    assert "Separation =" in printed and "published s =" in printed
    assert printed.index("Separation =") < printed.index("published s =")


def test_collapsed_model_names_its_inactive_latents_and_why(setup_2d, capsys):
    from helpers.collapsed_model import collapsed_beta_vae

    images = np.asarray(setup_2d["dataset"].images)
    run = setup_2d["root"] / "collapsed"
    collapsed_beta_vae(images, latent_dim=4, live=(0,)).save(run)
    out = setup_2d["root"] / "collapsed_out"
    args = ["receptive", str(run), str(setup_2d["ds"]), "--rois", str(setup_2d["rois"])]
    assert main([*args, "--out", str(out), "--quiet", "--roi-names", str(setup_2d["names"])]) == 0
    printed = capsys.readouterr().out
    assert "1 of 4 latents active; inactive: z2, z3, z4" in printed
    assert "the decoder cannot use them" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["activity"]["inactive"] == ["z2", "z3", "z4"]
    assert summary["separation"] is None and summary["scored_latents"] == ["z1"]
    assert "need at least 2" in summary["scores_note"]
    latents = pd.read_csv(out / "latents.csv", index_col="latent")
    assert latents.loc["z1", "status"] == "active"
    assert set(latents.loc[["z2", "z3", "z4"], "status"]) <= {"inactive", "encoder-only"}
    encoder_only = [entry["latent"] for entry in summary["encoder_only"]]
    assert encoder_only == [n for n in ("z2", "z3", "z4") if latents.loc[n, "status"] != "inactive"]
    for name in encoder_only:
        assert f"{name} is encoder-only" in printed


def test_split_kind_weights_and_one_sided(setup_2d):
    out = setup_2d["root"] / "split"
    extra = ["--split", "train", "--kind", "add", "--weights=-0.5,0.5", "--one-sided"]
    assert _run(setup_2d, out, *extra) == 0
    summary = json.loads((out / "summary.json").read_text())
    n_train = int((setup_2d["dataset"].metadata["split"] == "train").sum())
    assert summary["n_images"] == n_train and summary["one_sided"] is True
    assert summary["weights"] == [-0.5, 0.5] and summary["kind"] == "add"
    assert list(pd.read_csv(out / "impact.csv", index_col=0).index) == [
        "roi_1", "roi_2", "roi_3", "roi_4",
    ]  # fmt: skip


def test_chosen_subjects_only(setup_2d, capsys):
    out = setup_2d["root"] / "subjects"
    assert _run(setup_2d, out, "--subjects", "sub-003, sub-007,sub-011") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == 3
    assert summary["subjects"] == ["sub-003", "sub-007", "sub-011"]
    assert _run(setup_2d, setup_2d["root"] / "nobody", "--subjects", "sub-003,ghost") == 2
    err = capsys.readouterr().err
    assert "no subject(s) ghost" in err and "sub-000" in err
    assert not (setup_2d["root"] / "nobody").exists()


def test_existing_output_needs_overwrite_and_interrupts_leave_nothing(setup_2d, monkeypatch):
    from brainvae.analysis.receptive_field import ReceptiveField

    out = setup_2d["root"] / "again"
    assert _run(setup_2d, out) == 0
    before = (out / "impact.csv").read_text()
    assert _run(setup_2d, out) == 2
    assert _run(setup_2d, out, "--overwrite", "--kind", "add") == 0
    assert (out / "impact.csv").read_text() != before

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(ReceptiveField, "gaussian_table", interrupted)
    fresh = setup_2d["root"] / "fresh"
    assert _run(setup_2d, fresh) == 130
    assert not fresh.exists()
    assert not [p for p in fresh.parent.iterdir() if p.name.startswith(".fresh")]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("elsewhere", "does not overlap the dataset's grid"),
        ("empty", "has no non-zero label"),
        ("fractional", "non-integer or negative"),
    ],
)
def test_bad_roi_files_are_named(setup_2d, capsys, case, message):
    from brainvae.data.io.nifti_writing import write_nifti

    dataset, labels = setup_2d["dataset"], setup_2d["labels"]
    affine, data = dataset.affine.copy(), labels
    if case == "elsewhere":  # another grid is resampled; one 500 mm away cannot be
        affine[:3, 3] += 500.0
    elif case == "empty":
        data = np.zeros_like(labels)
    else:
        data = labels + 0.5
    path = write_nifti(setup_2d["root"] / f"{case}.nii.gz", data, affine, squeezed_axes=(0,))
    setup = {**setup_2d, "rois": path}
    assert _run(setup, setup_2d["root"] / f"out_{case}") == 2
    err = capsys.readouterr().err
    assert "brainvae receptive: error:" in err and f"{case}.nii.gz" in err and message in err
    assert not (setup_2d["root"] / f"out_{case}").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--weights", "1"], "at least two different perturbation weights"),
        (["--weights", "a,b"], "--weights must be comma-separated numbers"),
        (["--roi-names", "missing.csv"], "missing.csv: cannot read the ROI names CSV"),
    ],
)
def test_bad_arguments_are_named(setup_2d, capsys, extra, message):
    assert _run(setup_2d, setup_2d["root"] / "bad", *extra) == 2
    assert message in capsys.readouterr().err


def test_model_of_another_shape_is_refused(setup_2d, tmp_path, capsys):
    from brainvae.models import ModelConfig, build_model

    config = ModelConfig(input_shape=(16, 20), latent_dim=2, family="pca", likelihood="gaussian")
    rng = np.random.default_rng(0)
    build_model(config).fit(rng.uniform(size=(10, 16, 20))).save(tmp_path / "small")
    assert _run({**setup_2d, "run": tmp_path / "small"}, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "(32, 40) do not fit the model" in err and "(16, 20)" in err


def test_volume_dataset_single_roi(tmp_path, capsys):
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.io.nifti_writing import write_nifti

    dataset_dir, run_dir, labels = _prepared(tmp_path, (12, 14, 10), 12)
    dataset = PreparedDataset.open(dataset_dir)
    rois = write_nifti(tmp_path / "rois.nii.gz", (labels == 1).astype(np.int16), dataset.affine)
    out = tmp_path / "out"
    setup = {"run": run_dir, "ds": dataset_dir, "rois": rois}
    assert _run(setup, out, "--kind", "blur", "--batch", "5") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["published_s"] is None and "at least 2 ROIs" in summary["scores_note"]
    assert summary["rois"] == {"roi_1": int((labels == 1).sum())}
    assert not (out / "covariance.csv").exists()
    assert pd.read_csv(out / "impact.csv", index_col=0).shape == (1, 4)


def _pca_on_4mm_scans(root: Path, n: int):
    """A 4 mm LAS scan dataset (see test_roi_resampling) and a 2-component PCA saved from it."""
    from test_roi_resampling import scans_at_4mm

    from brainvae.models import ModelConfig, build_model

    dataset = scans_at_4mm(root, n)
    config = ModelConfig(
        input_shape=tuple(dataset.scan_shape), latent_dim=2, family="pca", likelihood="gaussian"
    )
    build_model(config).fit(np.asarray(dataset.images)).save(root / "run")
    return dataset, root / "run"


def test_rois_at_2mm_for_4mm_scans_are_resampled_and_it_is_said(tmp_path, capsys):
    from test_roi_resampling import ROI_AFFINE, atlas_2mm, write_labels

    dataset, run = _pca_on_4mm_scans(tmp_path, 6)
    rois = write_labels(tmp_path / "atlas_2mm.nii.gz", atlas_2mm(), ROI_AFFINE)
    args = ["receptive", str(run), str(dataset.path), "--rois", str(rois), "--weights=-1,1"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert f"brainvae receptive: {rois}: ROIs resampled from 42 x 50 x 38 at 2 mm" in err
    assert "to the dataset's 20 x 24 x 18 at 4 mm" in err and "label(s) 4 vanished" in err
    impact = pd.read_csv(tmp_path / "out" / "impact.csv", index_col="roi")
    assert list(impact.index) == ["roi_1", "roi_2", "roi_3"]
    assert main([*args, "--out", str(tmp_path / "quiet"), "--quiet"]) == 0
    assert "resampled" not in capsys.readouterr().err
