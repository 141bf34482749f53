"""The use-case layer: `brainvae train` and the Training dock's worker fit and save through the
same brainvae.usecases.fit_and_save, so from the same inputs they write the same run folder.

Each family is trained (or fitted) once through brainvae.cli.main and once through
brainvae.napari.workers.train.train_run, the generator the Training dock runs in a napari
worker (drained here directly: it never touches a viewer). The two run folders are compared
file by file. Ignored, and only these: the timing columns `elapsed_s` and `images_per_s`
(wall-clock seconds and images per second, in history.csv and in the history each
checkpoint's state.json carries), which measure this machine's load, not the run. Everything
else must be equal: the file names, config.json and run.json (the dataset's absolute and
relative paths agree because both folders sit at the same depth beside the dataset), every
other history value, and the weights, bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from brainvae.cli import main
from brainvae.models import ModelError
from brainvae.napari.workers.train import ModelChoice, train_run
from brainvae.training import TrainConfig
from helpers.blob_population import write_blob_dataset

TIMING_COLUMNS = ("elapsed_s", "images_per_s")
"""Wall-clock measurements: they differ between any two runs, whoever starts them."""

LATENT, EPOCHS, BATCH, LR, BETA = 2, 1, 4, 1e-3, 4.0

FAMILIES = {
    # CLI --model: (the dock's family field, the extra CLI options for the same model)
    "beta-vae": ("beta_vae", ["--beta", str(BETA)]),
    "vae": ("vae", []),
    "soft-intro-vae": ("soft_intro_vae", []),
    "pca": ("pca", []),
}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    """12 blob scans of 6 subjects, 8 in the train split."""
    root = tmp_path_factory.mktemp("usecases")
    return write_blob_dataset(root, subjects=6, seed=1, split_fractions=(0.67, 0.17, 0.16))


def train_with_cli(model: str, dataset: Path, out: Path) -> int:
    """`brainvae train` with the options the dock's form sets (the rest left to the recipe)."""
    args = ["train", str(dataset), "--model", model, "--latent", str(LATENT)]
    args += ["--arch", "small", "--likelihood", "bernoulli", "--epochs", str(EPOCHS)]
    args += ["--batch", str(BATCH), "--lr", str(LR), "--device", "cpu", "--checkpoint-every", "1"]
    return main([*args, *FAMILIES[model][1], "--quiet", "--out", str(out)])


def dock_inputs(model: str) -> tuple[ModelChoice, TrainConfig]:
    """What the Training dock's form hands its worker (TrainingWidget.model_choice and
    .train_config): "vae" is the beta-VAE at beta 1, a Soft-IntroVAE gets beta 1, and PCA
    the form's beta field as it stands (beta means nothing to PCA)."""
    family = FAMILIES[model][0]
    choice = ModelChoice(
        family="beta_vae" if family == "vae" else family,
        architecture="small",
        latent_dim=LATENT,
        beta=1.0 if family in ("vae", "soft_intro_vae") else BETA,
        likelihood="bernoulli",
        gaussian_sigma=0.1,
        steps=None,
        epochs=EPOCHS,
    )
    config = TrainConfig(
        epochs=EPOCHS, steps=None, batch_size=BATCH, lr=LR, device="cpu", checkpoint_every=1
    )
    return choice, config


def train_with_dock_worker(model: str, dataset: Path, out: Path) -> list:
    """Drain the dock's worker generator; returns what it yielded."""
    choice, config = dock_inputs(model)
    return list(train_run(choice, dataset, config, out))


def files_of(run: Path) -> list[str]:
    return sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())


def assert_same_weights(one: Path, other: Path) -> None:
    """Same tensor names, dtypes, shapes and values (torch.equal), and the same metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    first, second = load_file(one), load_file(other)
    assert sorted(first) == sorted(second), one
    for name in first:
        assert first[name].dtype == second[name].dtype, (one, name)
        assert torch.equal(first[name], second[name]), f"{one}: {name} differs"
    with safe_open(one, "pt") as a, safe_open(other, "pt") as b:
        assert a.metadata() == b.metadata(), one


def without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in history]


def assert_same_run_folder(cli: Path, dock: Path) -> None:
    """The comparison the module docstring describes."""
    names = files_of(cli)
    assert names == files_of(dock)
    assert "config.json" in names and "weights.safetensors" in names
    for name in names:
        one, other = cli / name, dock / name
        if name.endswith(".safetensors"):
            assert_same_weights(one, other)
        elif name.endswith("history.csv"):
            left, right = pd.read_csv(one), pd.read_csv(other)
            assert list(left.columns) == list(right.columns)
            assert set(TIMING_COLUMNS) <= set(left.columns)
            pd.testing.assert_frame_equal(
                left.drop(columns=list(TIMING_COLUMNS)), right.drop(columns=list(TIMING_COLUMNS))
            )
        elif name.endswith("state.json"):  # a checkpoint's state: its history has timings
            left, right = json.loads(one.read_text()), json.loads(other.read_text())
            assert without_timing(left.pop("history")) == without_timing(right.pop("history"))
            assert left == right, name
        elif name.endswith(".json"):
            assert json.loads(one.read_text()) == json.loads(other.read_text()), name
        else:
            assert one.read_bytes() == other.read_bytes(), name


@pytest.mark.parametrize("model", list(FAMILIES))
def test_cli_and_dock_write_the_same_run_folder(model, dataset_dir, tmp_path):
    """Same inputs, same run folder, from `brainvae train` and from the Training dock."""
    cli, dock = tmp_path / "cli" / model, tmp_path / "dock" / model
    assert train_with_cli(model, dataset_dir, cli) == 0
    reports = train_with_dock_worker(model, dataset_dir, dock)
    assert_same_run_folder(cli, dock)
    config = json.loads((dock / "config.json").read_text())
    if model == "pca":
        # the dock's PCA records what the CLI's always did: its loss and the entropy floor,
        # and beta 1 (the form's beta field is the beta-VAE's)
        training = config["training"]
        assert training["final_val_loss"] > training["entropy_floor"] > 0
        assert config["beta"] == 1.0
        assert [type(r).__name__ for r in reports] == ["Preview"]
    else:
        assert len(pd.read_csv(dock / "history.csv")) == EPOCHS
        assert config["beta"] == (BETA if model == "beta-vae" else 1.0)


@pytest.mark.parametrize("model", ["pca", "beta-vae"])
def test_an_empty_training_split_is_refused_alike(model, tmp_path, capsys):
    """One subject, split to validation: nothing to fit on. Both entry points refuse with the
    same message (before, the dock's PCA fitted on no images) and write no run folder."""
    dataset = write_blob_dataset(tmp_path, subjects=1, seed=1, split_fractions=(0.4, 0.6, 0.0))
    capsys.readouterr()
    cli, dock = tmp_path / "cli", tmp_path / "dock"
    assert train_with_cli(model, dataset, cli) == 2
    error = capsys.readouterr().err.strip()
    assert "no training split" in error
    with pytest.raises(ModelError) as refused:
        train_with_dock_worker(model, dataset, dock)
    assert error == f"brainvae train: error: {refused.value}"
    assert not cli.exists() and not dock.exists()


def test_projective_command_and_dock_worker_compute_the_same_fields(tmp_path):
    """`brainvae projective` and the Projective dock's worker run one pipeline
    (brainvae.usecases.projective_run): on the same model, scans, ROIs and sweep they give the
    same enrichment, activity and far-side asymmetry."""
    from dataclasses import replace

    import numpy as np

    from brainvae.analysis.projective_maps import split_projective_table
    from brainvae.analysis.projective_sweep import SweepSettings
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.io.nifti_writing import write_nifti
    from brainvae.models import load_model
    from brainvae.napari.workers.projective import projective_run
    from helpers.oracle_model import ROI_NAMES
    from helpers.phantom_datasets import prepared_phantom

    dataset_dir, run_dir, labels = prepared_phantom(tmp_path, (24, 30), 24, latent_dim=3)
    dataset = PreparedDataset.open(dataset_dir)
    rois = write_nifti(
        tmp_path / "rois.nii.gz", labels, dataset.affine, squeezed_axes=dataset.squeezed_axes
    )
    names = dict(enumerate(ROI_NAMES, start=1))
    names_csv = tmp_path / "names.csv"
    pd.DataFrame(list(names.items()), columns=["label", "name"]).to_csv(names_csv, index=False)
    out = tmp_path / "out"
    sweep = ["--range=-1,1", "--step", "0.25", "--split", "0.5", "--latents", "1,3"]
    assert main(["projective", str(run_dir), "--dataset", str(dataset_dir), *sweep, "--quiet",
                 "--rois", str(rois), "--roi-names", str(names_csv), "--out", str(out)]) == 0  # fmt: skip

    settings = replace(SweepSettings.preset("prior"), low=-1.0, high=1.0, step=0.25, split=0.5)
    present = {label: name for label, name in names.items() if np.any(labels == label)}
    worker = projective_run(
        load_model(run_dir), dataset.images, dataset.metadata, [0, 2], "mean", settings,
        "paper", labels, present, 32, "per-latent",
    )  # fmt: skip
    reports = []
    try:
        while True:
            reports.append(next(worker))
    except StopIteration as finished:
        run = finished.value
    assert reports and reports[-1].decodes_done == reports[-1].total_decodes

    table, active = split_projective_table(pd.read_csv(out / "projective.csv", index_col="roi"))
    assert list(table.index) == list(run.roi_names) and list(table.columns) == ["z1", "z3"]
    np.testing.assert_allclose(table.to_numpy(), run.matrix, rtol=1e-6, equal_nan=True)
    assert active.tolist() == run.active.tolist()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["brain_mask_voxels"] == int(run.brain_mask.sum())
    assert set(run.asymmetry) == {"z1", "z3"}
    for latent, entry in run.asymmetry.items():
        ratio = entry["large_negative_over_positive"]
        written = summary["far_side_asymmetry"][latent]["large_negative_over_positive"]
        assert written == pytest.approx(ratio, rel=1e-6) if ratio is not None else written is None
