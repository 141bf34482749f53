"""The training engine on tiny data: learning, history, exact resume, cancel, NaN, bad folders."""

from __future__ import annotations

import dataclasses
import pickle
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from brainvae.data.prepare import prepare
from brainvae.data.preprocessing import PreprocessConfig
from brainvae.errors import DataFileError
from brainvae.models import ModelConfig, ModelError, build_model, load_model
from brainvae.training import (
    BatchReport,
    EpochReport,
    Finished,
    TrainConfig,
    active_units,
    bernoulli_entropy_floor,
    describe_device,
    latest_checkpoint,
    read_checkpoint,
    resolve_device,
    train,
)
from brainvae.training.checkpoint import OPTIMIZER_FILE
from helpers.determinism import deterministic

SHAPE = (24, 20)
LATENT = 4
LOSS_COLUMNS = ["train_loss", "train_reconstruction", "train_kl", "val_loss", "val_kl"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """24 blob images of 24 x 20 in [0, 1], one subject each, split 60/40 train/val."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for i in range(24):
        cy, cx = rng.uniform(6, 18), rng.uniform(5, 15)
        radius, level = rng.uniform(3, 7), rng.uniform(0.5, 0.95)
        blob = level * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
        np.save(root / f"s{i:02d}.npy", (0.05 + 0.9 * blob).astype(np.float32))
    config = PreprocessConfig.identity(split_fractions=(0.6, 0.4, 0.0))
    return prepare(root, root / "ds", config, workers=1)


def make_model(latent: int = LATENT):
    torch.manual_seed(0)
    return build_model(ModelConfig(input_shape=SHAPE, latent_dim=latent, architecture="small"))


def config(**changes) -> TrainConfig:
    values = {"epochs": 4, "batch_size": 4, "lr": 1e-3, "seed": 3, "device": "cpu"}
    return TrainConfig(**{**values, **changes})


def run(generator, on_report=None):
    """Drain a train() generator: (reports, result)."""
    reports = []
    try:
        while True:
            report = next(generator)
            reports.append(report)
            if on_report is not None:
                on_report(report)
    except StopIteration as stop:
        return reports, stop.value


@pytest.fixture(scope="module")
def uninterrupted(dataset, tmp_path_factory):
    """Four epochs in one go: the reference for the resume tests."""
    with deterministic():
        return run(train(make_model(), dataset, config(), tmp_path_factory.mktemp("ref") / "run"))


def losses(history) -> np.ndarray:
    return pd.DataFrame(history)[LOSS_COLUMNS].to_numpy(dtype=np.float64)


def test_train_config_json_round_trip_and_validation():
    original = config(max_grad_norm=1.5, precision="bf16", device="cuda:1")
    assert TrainConfig.from_json(original.to_json()) == original
    for bad in (
        {"epochs": 0},
        {"lr": -1.0},
        {"lr": float("nan")},
        {"device": "gpu"},
        {"precision": "fp16"},
        {"batch_size": 2.5},
        {"max_grad_norm": 0},
    ):
        with pytest.raises(ModelError):
            config(**bad)
    with pytest.raises(ModelError, match="unknown training config field"):
        TrainConfig.from_dict({"epochs": 2, "learning_rate": 1.0})
    with pytest.raises(ModelError, match="not valid JSON"):
        TrainConfig.from_json("{epochs: 2")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_auto_device_here_is_the_cpu():
    device = resolve_device("auto")
    assert device.type == "cpu"
    assert describe_device(device) == f"CPU ({torch.get_num_threads()} threads)"
    with pytest.raises(ModelError, match="no usable CUDA GPU"):
        resolve_device("cuda:0")


def test_loss_decreases_and_history_has_one_row_per_epoch(dataset, uninterrupted):
    reports, result = uninterrupted
    epochs = [r for r in reports if isinstance(r, EpochReport)]
    batches = [r for r in reports if isinstance(r, BatchReport)]
    n_train, n_batches = len(dataset.indices("train")), batches[0].n_batches
    assert n_batches == -(-n_train // 4) and len(batches) == 4 * n_batches
    assert [r.epoch for r in epochs] == [1, 2, 3, 4]
    assert isinstance(reports[-1], Finished) and reports[-1].reason == "completed"
    assert epochs[-1].train_loss < epochs[0].train_loss
    assert epochs[-1].val_loss < epochs[0].val_loss
    assert all(0 <= r.active_units <= LATENT and len(r.kl_per_latent) == LATENT for r in epochs)
    floor = bernoulli_entropy_floor(dataset.images, dataset.indices("val"))
    assert epochs[-1].reconstruction_net == pytest.approx(epochs[-1].val_reconstruction - floor)
    assert 0 < epochs[-1].reconstruction_net < epochs[-1].val_reconstruction
    run_dir = result.run_dir
    history = pd.read_csv(run_dir / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    expected = [
        "epoch",
        "step",
        *LOSS_COLUMNS,
        "reconstruction_net",
        "active_units",
        "images_per_s",
        "elapsed_s",
    ] + [f"kl_{i}" for i in range(1, LATENT + 1)]
    assert set(expected) <= set(history.columns)
    np.testing.assert_allclose(history[LOSS_COLUMNS].to_numpy(), losses(result.history), rtol=1e-8)
    saved = load_model(run_dir)
    assert saved.config.training["epochs_completed"] == 4
    assert saved.config.training["device"].startswith("CPU")
    assert (run_dir / "checkpoints").is_dir() and latest_checkpoint(run_dir).name == "epoch-0004"


def test_resume_gives_the_same_history_as_an_uninterrupted_run(dataset, uninterrupted, tmp_path):
    _, reference = uninterrupted
    run_dir = tmp_path / "run"
    with deterministic():
        _, first = run(train(make_model(), dataset, config(epochs=2), run_dir))
        assert first.epochs_completed == 2
        model = make_model()
        torch.manual_seed(12345)  # resume must not depend on the global RNG at call time
        _, resumed = run(train(model, dataset, config(epochs=4), run_dir, resume=True))
    np.testing.assert_allclose(
        losses(resumed.history), losses(reference.history), rtol=1e-6, atol=0
    )
    reference_weights = load_model(reference.run_dir).state_dict()
    for name, tensor in load_model(run_dir).state_dict().items():
        torch.testing.assert_close(tensor, reference_weights[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("when", ["second batch", "last batch", "epoch end"])
def test_cancel_stops_within_one_batch_and_resumes_exactly(dataset, uninterrupted, tmp_path, when):
    _, reference = uninterrupted
    run_dir, cancel = tmp_path / "run", threading.Event()

    def on_report(report):
        last = isinstance(report, BatchReport) and report.batch == report.n_batches
        if getattr(report, "epoch", 0) == 2 and (
            (when == "second batch" and isinstance(report, BatchReport) and report.batch == 2)
            or (when == "last batch" and last)
            or (when == "epoch end" and isinstance(report, EpochReport))
        ):
            cancel.set()

    with deterministic():
        reports, stopped = run(
            train(make_model(), dataset, config(), run_dir, cancel=cancel), on_report
        )
    assert isinstance(reports[-1], Finished) and reports[-1].reason == "cancelled"
    assert stopped.reason == "cancelled"
    before = reports[-2]  # the report that set cancel came right before the stop
    n_batches = next(r.n_batches for r in reports if isinstance(r, BatchReport))
    expected = {
        "second batch": ("epoch-0001-batch-0002", 1),
        "last batch": (f"epoch-0001-batch-{n_batches:04d}", 1),
        "epoch end": ("epoch-0002", 2),
    }[when]
    assert before.epoch == 2 and latest_checkpoint(run_dir).name == expected[0]
    assert len(pd.read_csv(run_dir / "history.csv")) == expected[1] == stopped.epochs_completed
    load_model(run_dir)  # the model saved at stop loads
    with deterministic():
        _, resumed = run(train(make_model(), dataset, config(), run_dir, resume=True))
    np.testing.assert_allclose(
        losses(resumed.history), losses(reference.history), rtol=1e-6, atol=0
    )


def test_nan_in_the_data_is_refused_before_anything_is_written(dataset, tmp_path):
    images = np.array(dataset.images)
    images[dataset.indices("train")[3], 5, 5] = np.nan
    poisoned = dataclasses.replace(dataset, images=images)
    with pytest.raises(ModelError, match="NaN or Inf"):
        next(train(make_model(), poisoned, config(), tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_exploding_loss_names_epoch_and_batch_and_keeps_the_checkpoint(dataset, tmp_path):
    run_dir = tmp_path / "run"
    run(train(make_model(), dataset, config(epochs=1), run_dir))
    good = latest_checkpoint(run_dir)
    before = (good / OPTIMIZER_FILE).read_bytes()
    with pytest.raises(ModelError, match=r"epoch \d+, batch \d+") as error:
        run(train(make_model(), dataset, config(epochs=6, lr=1e6), run_dir, resume=True))
    assert "epoch-0001" in str(error.value)
    assert latest_checkpoint(run_dir) == good and (good / OPTIMIZER_FILE).read_bytes() == before
    read_checkpoint(good)
    _, result = run(train(make_model(), dataset, config(epochs=2), run_dir, resume=True))
    assert result.epochs_completed == 2


class _Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("damage", ["truncated", "pickled"])
def test_damaged_optimizer_file_is_refused(dataset, tmp_path, damage):
    run_dir = tmp_path / "run"
    run(train(make_model(), dataset, config(epochs=1), run_dir))
    target = latest_checkpoint(run_dir) / OPTIMIZER_FILE
    marker = tmp_path / "executed"
    if damage == "truncated":
        target.write_bytes(target.read_bytes()[:100])
        expected = "truncated or corrupt"
    else:
        target.write_bytes(pickle.dumps(_Payload(marker)))
        expected = "pickle"
    with pytest.raises(DataFileError, match=expected) as error:
        next(train(make_model(), dataset, config(epochs=2), run_dir, resume=True))
    assert OPTIMIZER_FILE in str(error.value)
    assert not marker.exists()


def test_run_folder_holding_a_run_is_refused_unless_resume_or_overwrite(dataset, tmp_path):
    run_dir = tmp_path / "run"
    run(train(make_model(), dataset, config(epochs=1), run_dir))
    with pytest.raises(ModelError, match="already holds a training run"):
        next(train(make_model(), dataset, config(epochs=1), run_dir))
    with pytest.raises(ModelError, match="different run"):
        next(train(make_model(latent=3), dataset, config(epochs=2), run_dir, resume=True))
    with pytest.raises(ModelError, match="seed"):
        next(train(make_model(), dataset, config(epochs=2, seed=9), run_dir, resume=True))
    _, result = run(train(make_model(latent=3), dataset, config(epochs=1), run_dir, overwrite=True))
    assert load_model(run_dir).latent_dim == 3 and result.epochs_completed == 1
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match="not deleting"):
        next(train(make_model(), dataset, config(), other, overwrite=True))
    assert (other / "notes.txt").read_text() == "mine"
    with pytest.raises(ModelError, match="nothing to resume"):
        next(train(make_model(), dataset, config(), tmp_path / "empty", resume=True))


def test_active_units_and_entropy_floor_by_hand():
    rng = np.random.default_rng(1)
    mu = np.zeros((10, 3))
    mu[:, 0] = np.repeat(rng.normal(size=5), 2)  # varies across subjects: active
    mu[:, 1] = rng.normal(scale=1e-3, size=10)  # tiny variation: inactive
    mu[:, 2] = np.tile([1.0, -1.0], 5)  # varies between a subject's visits: active too
    assert active_units(mu) == 2
    images = np.stack([np.full((2, 3), 0.5), np.zeros((2, 3)), np.ones((2, 3))])
    assert bernoulli_entropy_floor(images, np.arange(3)) == pytest.approx(6 * np.log(2) / 3)


def test_bf16_autocast_trains_on_cpu(dataset, tmp_path):
    reports, result = run(
        train(make_model(), dataset, config(epochs=1, precision="bf16"), tmp_path / "r")
    )
    assert np.isfinite(losses(result.history)).all()
    assert load_model(tmp_path / "r").config.training["precision"] == "bf16"


def test_leftover_of_a_killed_checkpoint_write_is_ignored(dataset, tmp_path):
    run_dir = tmp_path / "run"
    run(train(make_model(), dataset, config(epochs=1), run_dir))
    leftover = run_dir / "checkpoints" / ".tmp-killed"
    leftover.mkdir()
    (leftover / OPTIMIZER_FILE).write_bytes(b"half a file")
    _, result = run(train(make_model(), dataset, config(epochs=2), run_dir, resume=True))
    assert result.epochs_completed == 2 and not leftover.exists()
    assert load_model(run_dir).config.preprocessing is not None


KILLED_RUN = """
import sys, torch
from brainvae.data.dataset import PreparedDataset
from brainvae.models import ModelConfig, build_model
from brainvae.training import TrainConfig, train
torch.manual_seed(0)
model = build_model(ModelConfig(input_shape=(24, 20), latent_dim=4, architecture="small"))
config = TrainConfig(epochs=100000, batch_size=4, lr=1e-3, seed=3, device="cpu")
for _ in train(model, PreparedDataset.open(sys.argv[1]), config, sys.argv[2]):
    pass
"""


def test_run_killed_with_sigkill_resumes(dataset, tmp_path):
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(dataset.path), str(run_dir)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            found = latest_checkpoint(run_dir)
            if found is not None and found.name >= "epoch-0003":
                break
            time.sleep(0.05)
        assert process.poll() is None, "the training process ended early"
    finally:
        process.kill()
        process.wait()
    done = read_checkpoint(latest_checkpoint(run_dir)).state.epoch
    _, result = run(train(make_model(), dataset, config(epochs=done + 1), run_dir, resume=True))
    assert [row["epoch"] for row in result.history] == list(range(1, done + 2))


def test_without_a_validation_split_the_training_split_is_evaluated(dataset, tmp_path):
    metadata = dataset.metadata.assign(split="train")
    only_train = dataclasses.replace(dataset, metadata=metadata)
    reports, result = run(train(make_model(), only_train, config(epochs=1), tmp_path / "run"))
    epoch = next(r for r in reports if isinstance(r, EpochReport))
    assert epoch.val_loss is None and epoch.reconstruction_net is not None
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["val_loss"].isna().all() and len(history) == 1
    assert load_model(tmp_path / "run").config.training["evaluated_on"] == "train"


def test_resume_keeps_the_precision_auto_chose_when_the_run_started(dataset, tmp_path):
    """ "auto" probes the CPU once, when the run starts; a resume on a machine whose probe
    now answers the other way (a busier machine) keeps the run's precision, so resume stays
    exact."""
    import json

    from brainvae.training.device import PRECISION_CACHE_FILE, machine_key
    from brainvae.user_cache import cache_dir

    run_dir = tmp_path / "run"
    run(train(make_model(), dataset, config(epochs=1), run_dir))
    state = json.loads(next(run_dir.glob("checkpoints/*/state.json")).read_text())
    chosen = state["train_config"]["resolved_precision"]
    assert chosen in ("bf16", "fp32")
    # the probe's cached answer for this machine flips to the other precision
    other = "fp32" if chosen == "bf16" else "bf16"
    cache = cache_dir() / PRECISION_CACHE_FILE
    record = {"precision": other, "fp32_s": 1.0, "bf16_s": 1.0}
    decisions = {machine_key(dims): record for dims in (2, 3)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"format": "brainvae-precision-cache", "decisions": decisions}))
    try:
        # a fresh run now follows the flipped probe...
        _, fresh = run(train(make_model(), dataset, config(epochs=1), tmp_path / "fresh"))
        fresh_state = next((tmp_path / "fresh").glob("checkpoints/*/state.json")).read_text()
        assert json.loads(fresh_state)["train_config"]["resolved_precision"] == other
        # ...while the resumed run keeps its own
        run(train(make_model(), dataset, config(epochs=2), run_dir, resume=True))
        states = sorted(run_dir.glob("checkpoints/*/state.json"))
        assert json.loads(states[-1].read_text())["train_config"]["resolved_precision"] == chosen
    finally:
        cache.unlink(missing_ok=True)  # the next test probes again
