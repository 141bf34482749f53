"""The longitudinal VAE (Ouyang et al. 2022): its cosine terms against a numpy transcription,
batches of whole subjects, exact resume (one process and torchrun), the CLI, bad input, and
directions that hold on subjects it never trained on."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from brainvae.analysis.trained_directions import dataset_direction_agreement
from brainvae.cli import main
from brainvae.data.dataset import PreparedDataset
from brainvae.models import ModelConfig, ModelError, build_model, load_model
from brainvae.models.longitudinal_vae.model import consecutive_pairs
from brainvae.training import BatchReport, TrainConfig, latest_checkpoint, train
from brainvae.training.distributed import Ranks
from brainvae.training.epoch_plan import EpochPlanner
from brainvae.training.recipe import DEFAULT_RECIPE
from brainvae.usecases.fit_and_save import model_config_for
from helpers.determinism import deterministic
from helpers.visit_population import write_visit_population


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> PreparedDataset:
    return PreparedDataset.open(write_visit_population(tmp_path_factory.mktemp("visits")))


def make_model(dataset: PreparedDataset, **changes):
    torch.manual_seed(0)
    options = {"latent_dim": 4, "architecture": "small", **changes}
    return build_model(
        model_config_for(DEFAULT_RECIPE, dataset, family="longitudinal_vae", **options)
    )


def fit(model, dataset, run_dir, epochs, cancel=None, **options):
    config = TrainConfig(epochs=epochs, batch_size=8, lr=2e-3, seed=3, device="cpu")
    generator = train(model, dataset, config, run_dir, cancel=cancel, **options)
    reports = []
    try:
        while True:
            reports.append(next(generator))
            if cancel is not None and isinstance(reports[-1], BatchReport):
                if (reports[-1].epoch, reports[-1].batch) == (2, 2):
                    cancel.set()
    except StopIteration as stop:
        return reports, stop.value


# -- the pure parts --------------------------------------------------------------------------
def test_consecutive_pairs_match_a_brute_force():
    rng = np.random.default_rng(1)
    subjects = rng.integers(0, 6, 40).astype(float)
    times = rng.permutation(40).astype(float)
    times[:3] = times[3]  # ties give no pair
    subjects[:4] = 7
    earlier, later = consecutive_pairs(subjects, times)
    expected = set()
    for s in np.unique(subjects):
        rows = sorted(np.flatnonzero(subjects == s), key=lambda r: times[r])
        for a, b in zip(rows[:-1], rows[1:], strict=True):
            if times[b] > times[a]:
                expected.add((a, b))
    assert set(zip(earlier.tolist(), later.tolist(), strict=True)) == expected


def test_the_cosine_terms_match_a_numpy_transcription(dataset):
    model = make_model(dataset).eval()
    rows = np.arange(12)
    x = np.asarray(dataset.images[rows], np.float32)
    table = model.condition_table(dataset.metadata, rows)[rows]
    loss = model.loss(x, condition=table)
    mu = model.encode(x)[0].detach().double().numpy()
    tau = {k: v.astype(np.float64) for k, v in model.learned_directions().items()}
    cos_a, cos_d = [], []
    for i in range(len(rows)):  # every consecutive pair of one subject, by hand
        later = [
            j for j in range(len(rows)) if table[j, 0] == table[i, 0] and table[j, 1] > table[i, 1]
        ]
        if not later:
            continue
        j = min(later, key=lambda r: table[r, 1])
        dz = mu[j] - mu[i]
        if table[i, 2] == 0:
            cos_a.append(dz @ tau["aging"] / np.linalg.norm(dz))
        else:
            dz_d = dz - (dz @ tau["aging"]) * tau["aging"]
            cos_d.append(dz_d @ tau["ms"] / np.linalg.norm(dz_d))
    assert cos_a and cos_d
    assert float(loss.aging.detach()) == pytest.approx(1 - np.mean(cos_a), abs=1e-5)
    assert float(loss.disease.detach()) == pytest.approx(1 - np.mean(cos_d), abs=1e-5)
    assert (loss.control_pairs, loss.patient_pairs) == (len(cos_a), len(cos_d))
    expected = float((loss.reconstruction + loss.kl).detach()) + 100.0 * (
        2 - np.mean(cos_a) - np.mean(cos_d)
    )
    assert float(loss.total.detach()) == pytest.approx(expected, rel=1e-5)


def test_the_disease_term_leaves_tau_a_to_the_controls(dataset):
    model = make_model(dataset, direction_weight=1.0).eval()
    metadata = dataset.metadata
    rows = np.flatnonzero(metadata["diagnosis"].to_numpy() == "ms")[:6]
    table = model.condition_table(metadata, rows)[rows]
    loss = model.loss(np.asarray(dataset.images[rows], np.float32), condition=table)
    assert loss.aging is None and loss.disease is not None
    loss.disease.backward()
    gradient = model.direction_parameters.grad
    assert torch.count_nonzero(gradient[0]) == 0 and torch.count_nonzero(gradient[1]) > 0


def test_subject_batches_hold_whole_subjects_once_each():
    rng = np.random.default_rng(0)
    subjects = np.repeat(np.arange(30), rng.integers(1, 4, 30))
    times = rng.uniform(0, 10, len(subjects))
    train_rows = np.flatnonzero(rng.uniform(size=len(subjects)) < 0.8)
    planner = EpochPlanner(train_rows, 7, False, 5, subjects=subjects, times=times)
    order = planner.draw(torch.Generator().manual_seed(1), epoch=1)
    plan = planner.batches(order)
    assert sorted(np.concatenate(plan).tolist()) == sorted(train_rows.tolist())
    for batch in plan:
        assert len(batch) <= 7
        for s in np.unique(subjects[batch]):  # every training visit of the subject is here
            assert set(train_rows[subjects[train_rows] == s]) <= set(batch.tolist())
        within = [times[batch][subjects[batch] == s] for s in np.unique(subjects[batch])]
        assert all((np.diff(t) > 0).all() for t in within)  # visits in time order
    again = planner.batches(order)
    assert all(np.array_equal(a, b) for a, b in zip(plan, again, strict=True))
    other = planner.batches(planner.draw(torch.Generator().manual_seed(2), epoch=1))
    assert not all(np.array_equal(a, b) for a, b in zip(plan, other, strict=False))
    shares = [
        EpochPlanner(train_rows, 7, False, 5, Ranks(r, 2, r), subjects, times) for r in (0, 1)
    ]
    dealt = [p.batches(p.draw(torch.Generator(), epoch=3)) for p in shares]
    assert len(dealt[0]) == len(dealt[1])
    covered = np.concatenate(dealt[0] + dealt[1])
    assert set(covered.tolist()) == set(train_rows.tolist())


# -- config, saving, bad input ---------------------------------------------------------------
def test_config_round_trip_and_other_families_refuse_pairing_fields(dataset, tmp_path):
    model = make_model(dataset)
    config = model.config
    assert (config.group_column, config.control_label, config.disease_labels) == (
        "diagnosis",
        "healthy",
        ("ms",),
    )
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    for name, vector in model.learned_directions().items():
        np.testing.assert_array_equal(loaded.learned_directions()[name], vector)
    assert "group_column" not in ModelConfig((8, 8), family="beta_vae").to_dict()
    with pytest.raises(ModelError, match="longitudinal_vae family only"):
        ModelConfig((8, 8), family="beta_vae", group_column="diagnosis")


def test_bad_pairing_input_is_refused_naming_what_exists(dataset, tmp_path):
    with pytest.raises(ModelError, match=r"its values are: healthy, ms"):
        make_model(dataset, control_label="control")
    with pytest.raises(ModelError, match=r"no column 'cohort'.*columns: .*diagnosis"):
        make_model(dataset, group_column="cohort")
    with pytest.raises(ModelError, match="no 'ms' subject has two visits"):
        make_model(dataset, control_label="ms", group_column="diagnosis", subject_column="filename")
    same = PreparedDataset.open(write_visit_population(tmp_path / "same", same_time_subject=True))
    model = make_model(same)
    with pytest.raises(ModelError, match="subject sub-00 has two visits with the same 'age'"):
        fit(model, same, tmp_path / "run", epochs=1)
    assert not (tmp_path / "run" / "config.json").exists()


# -- training --------------------------------------------------------------------------------
def test_resume_after_a_cancel_mid_epoch_is_bit_identical(dataset, tmp_path):
    with deterministic():
        _, reference = fit(make_model(dataset), dataset, tmp_path / "ref", epochs=3)
        fit(make_model(dataset), dataset, tmp_path / "run", epochs=3, cancel=threading.Event())
        assert latest_checkpoint(tmp_path / "run").name == "epoch-0001-batch-0002"
        torch.manual_seed(999)
        _, resumed = fit(make_model(dataset), dataset, tmp_path / "run", epochs=3, resume=True)
    assert resumed.step == reference.step
    expected = load_model(tmp_path / "ref").state_dict()
    for name, tensor in load_model(tmp_path / "run").state_dict().items():
        assert torch.equal(tensor, expected[name]), name


@pytest.mark.slow
def test_learned_directions_hold_on_subjects_never_trained_on(dataset, tmp_path):
    """Aging and the growing 'lesion' each follow their direction on held-out subjects."""
    model = make_model(dataset)
    fit(model, dataset, tmp_path / "run", epochs=25)
    agreement = dataset_direction_agreement(load_model(tmp_path / "run"), dataset)
    assert agreement.splits == ("val", "test")
    control, ms = agreement.groups
    assert control.n_pairs >= 2 and ms.n_pairs >= 2
    assert control.mean_cosine >= 0.9 and ms.mean_cosine >= 0.9, agreement.describe()


def test_cli_trains_prints_the_directions_and_refuses_pairing_options_elsewhere(
    dataset, tmp_path, capsys
):
    args = ["train", str(dataset.path), "--latent", "3", "--epochs", "1", "--batch", "8"]
    assert main([*args, "--model", "longitudinal-vae", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "Trained a longitudinal VAE" in out and "controls: diagnosis = healthy" in out
    assert "diagnosis = healthy: aging (tau_a)" in out and "ms: disease (tau_d" in out
    assert main([*args, "--model", "beta-vae", "--group", "diagnosis", "--out", "x"]) == 2
    assert "for --model longitudinal-vae only" in capsys.readouterr().err


def test_help_shows_the_pairing_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: diagnosis)" in text and "(default: healthy)" in text
    assert "(default 100.0)" in text


@pytest.mark.slow
def test_two_torchrun_processes_train_and_resume_exactly(dataset, tmp_path):
    import os
    import subprocess
    import sys

    def torchrun(*args: str) -> None:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command += ["--nproc_per_node", "2", "-m", "brainvae", "train", str(dataset.path)]
        command += ["--model", "longitudinal-vae", "--latent", "3", "--batch", "6"]
        command += ["--device", "cpu", "--precision", "fp32", *args]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    torchrun("--epochs", "3", "--out", "whole")
    torchrun("--epochs", "2", "--out", "split")
    torchrun("--epochs", "3", "--out", "split", "--resume")
    columns = ["train_loss", "train_reconstruction", "train_kl", "val_loss"]
    reference = pd.read_csv(tmp_path / "whole" / "history.csv")[columns].to_numpy()
    resumed = pd.read_csv(tmp_path / "split" / "history.csv")[columns].to_numpy()
    np.testing.assert_allclose(resumed, reference, rtol=1e-6)
    expected = load_model(tmp_path / "whole").state_dict()
    for name, tensor in load_model(Path(tmp_path / "split")).state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_the_longitudinal_analysis_compares_its_directions_with_the_trained_ones(
    dataset, tmp_path, capsys
):
    import json

    model = make_model(dataset)
    fit(model, dataset, tmp_path / "run", epochs=1)
    out = tmp_path / "out"
    code = main(["longitudinal", str(tmp_path / "run"), str(dataset.path), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    cosines = json.loads((out / "summary.json").read_text())["trained_directions_cosine"]
    assert set(cosines) == {"tau_a", "tau_d (ms)"}
    assert all(-1.0 <= value <= 1.0 for value in cosines.values())
    assert "The model's own directions (learned in training)" in capsys.readouterr().out


def test_history_records_each_direction_on_the_evaluation_pairs(dataset, tmp_path):
    """history.csv gains one column per direction: the mean cosine of the validation subjects'
    visit changes with it, as direction_agreement computes it from the saved model."""
    from brainvae.analysis.trained_directions import direction_agreement
    from brainvae.training.history import read_history

    model = make_model(dataset)
    fit(model, dataset, tmp_path / "run", epochs=2)
    history = read_history(tmp_path / "run")
    assert {"eval_cosine_aging", "eval_cosine_ms"} <= set(history.columns)
    saved = load_model(tmp_path / "run")
    rows = dataset.indices("val")
    codes = saved.encode(np.asarray(dataset.images[rows], np.float32))[0].detach().numpy()
    table = saved.condition_table(dataset.metadata, rows)[rows]
    expected = direction_agreement(codes, table, saved.learned_directions())
    last = history.iloc[-1]
    for name, group in zip(("aging", "ms"), expected.groups, strict=True):
        if group.n_pairs:
            assert last[f"eval_cosine_{name}"] == pytest.approx(group.mean_cosine, abs=1e-5)
        else:
            assert np.isnan(last[f"eval_cosine_{name}"])
    plain = build_model(ModelConfig((24, 20), latent_dim=2, family="beta_vae"))
    config = TrainConfig(epochs=1, batch_size=8, device="cpu")
    for _ in train(plain, dataset, config, tmp_path / "plain"):
        pass
    assert not any(c.startswith("eval_cosine_") for c in read_history(tmp_path / "plain").columns)
