"""A run folder works for others and elsewhere: umask file modes, dataset found when copied."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from brainvae.cli import main
from brainvae.data.prepare import prepare
from brainvae.data.preprocessing import PreprocessConfig
from brainvae.models import ModelConfig, build_model, load_model
from brainvae.training import TrainConfig, latest_checkpoint, train

SHAPE = (24, 20)
PROJECTIVE = ["--range=-1,1", "--step", "0.25", "--split", "0.5", "--quiet"]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run with a given umask (as a user on a shared cluster would have), then restore it."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def write_blobs(folder: Path, n: int = 12) -> None:
    """n blob images in [0, 1], one subject each."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for i in range(n):
        cy, cx, radius = rng.uniform(6, 18), rng.uniform(5, 15), rng.uniform(3, 7)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
        np.save(folder / f"s{i:02d}.npy", (0.05 + 0.9 * blob).astype(np.float32))


def train_to_end(dataset_path: str, run_dir: str, epochs: int, resume: bool = False) -> None:
    """Train the small VAE on a prepared dataset folder (paths as a user would type them)."""
    from brainvae.data.dataset import PreparedDataset

    torch.manual_seed(0)
    model = build_model(ModelConfig(input_shape=SHAPE, latent_dim=3, architecture="small"))
    config = TrainConfig(epochs=epochs, batch_size=4, lr=1e-3, seed=3, device="cpu")
    for _ in train(model, PreparedDataset.open(dataset_path), config, run_dir, resume=resume):
        pass


def modes(folder: Path) -> dict[str, int]:
    """Permission bits of every file and folder under folder (folder itself included)."""
    found = {".": stat.S_IMODE(folder.stat().st_mode)}
    for path in folder.rglob("*"):
        found[str(path.relative_to(folder))] = stat.S_IMODE(path.stat().st_mode)
    return found


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_run_files_get_the_modes_the_umask_gives(tmp_path, monkeypatch, mask):
    """Weights and checkpoints were 0600 in 0700 folders (safetensors, mkdtemp), so a colleague
    could not load the model; every file and folder must follow the umask like the rest."""
    write_blobs(tmp_path / "images")
    monkeypatch.chdir(tmp_path)
    with umask(mask):
        prepare("images", "ds", PreprocessConfig.identity(split_fractions=(0.5, 0.5, 0.0)))
        train_to_end("ds", "run", epochs=1)
        model = load_model("run")
        model.save(tmp_path / "saved")
    for folder in (tmp_path / "run", tmp_path / "saved"):
        found = modes(folder)
        expected = {name: (0o777 if (folder / name).is_dir() else 0o666) & ~mask for name in found}
        assert found == expected, folder
    assert (tmp_path / "run" / "weights.safetensors").is_file()
    assert latest_checkpoint(tmp_path / "run") is not None


def test_run_copied_with_its_dataset_opens_from_anywhere(tmp_path, monkeypatch, capsys):
    """A run trained with relative paths, copied with its dataset side by side to another
    folder (the originals gone, as on another machine), loads, resumes and runs
    `brainvae projective RUN` without --dataset from an unrelated working folder."""
    first = tmp_path / "first"
    write_blobs(first / "images")
    monkeypatch.chdir(first)
    prepare("images", "data/ds", PreprocessConfig.identity(split_fractions=(0.5, 0.5, 0.0)))
    train_to_end("data/ds", "runs/a", epochs=1)
    record = json.loads((first / "runs/a/run.json").read_text())["dataset"]
    assert record["absolute_path"] == str(first / "data/ds")
    assert record["relative_path"] == "../../data/ds"
    training = json.loads((first / "runs/a/config.json").read_text())["training"]
    assert training["dataset"] == {
        "absolute_path": str(first / "data/ds"),
        "relative_path": "../../data/ds",
    }

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(first / "runs", elsewhere / "runs")
    shutil.copytree(first / "data", elsewhere / "data")
    shutil.rmtree(first)
    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    monkeypatch.chdir(unrelated)

    run_dir = elsewhere / "runs/a"
    assert load_model(run_dir).latent_dim == 3
    from brainvae.data.run_dataset import open_run_dataset

    found = open_run_dataset(run_dir)
    assert found.dataset.path == run_dir / "../../data/ds"
    assert found.note is not None
    assert str(first / "data/ds") in found.note and "relative to the run folder" in found.note

    train_to_end(str(elsewhere / "data/ds"), str(run_dir), epochs=2, resume=True)
    assert latest_checkpoint(run_dir).name == "epoch-0002"
    assert open_run_dataset(run_dir).note is None  # resumed here: the summary names this copy

    shutil.move(elsewhere, tmp_path / "moved_again")
    run_dir = tmp_path / "moved_again/runs/a"
    out = unrelated / "fields"
    assert main(["projective", str(run_dir), "--out", str(out), *PROJECTIVE]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert Path(summary["dataset"]).resolve() == (tmp_path / "moved_again/data/ds").resolve()
    assert "relative to the run folder" in capsys.readouterr().err


def test_an_unopenable_record_names_every_path_tried(tmp_path, monkeypatch, capsys):
    """Absolute, relative and old as-typed paths are all tried; the error lists each one, and
    a run from an older brainvae (one path as typed) still opens from where it was trained."""
    write_blobs(tmp_path / "images")
    monkeypatch.chdir(tmp_path)
    prepare("images", "ds", PreprocessConfig.identity(split_fractions=(0.5, 0.5, 0.0)))
    model = build_model(ModelConfig(input_shape=SHAPE, latent_dim=3, family="pca"))
    model.fit(np.random.default_rng(0).random((12, *SHAPE), dtype=np.float32))
    model.save("new_run", training={"dataset": {"absolute_path": "/gone/ds", "relative_path": "x"}})
    (tmp_path / "new_run/run.json").write_text(json.dumps({"dataset": {"path": "typed/ds"}}))
    monkeypatch.chdir(tmp_path / "images")
    assert main(["projective", str(tmp_path / "new_run"), "--out", "o", *PROJECTIVE]) == 2
    err = capsys.readouterr().err
    for tried in ("/gone/ds (absolute path)", f"{tmp_path / 'new_run' / 'x'} (path relative"):
        assert tried in err
    assert "typed/ds (path as recorded by an older brainvae" in err
    assert "give it with --dataset" in err

    from brainvae.data.run_dataset import open_run_dataset

    monkeypatch.chdir(tmp_path)
    model.save("old_run", training={"dataset": "ds"})
    (tmp_path / "old_run/run.json").write_text(json.dumps({"dataset": {"path": "ds"}}))
    found = open_run_dataset("old_run")
    assert found.dataset.path == Path("ds") and found.note is None
