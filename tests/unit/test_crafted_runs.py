"""Crafted run folders and checkpoints: every one is refused with a DataFileError naming the file
and the field, before anything large is allocated, never with a crash or a stray exception."""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from brainvae.cli import main
from brainvae.errors import DataFileError
from brainvae.json_files import json_depth
from brainvae.models import build_model, load_model
from brainvae.models.config import ModelConfig
from brainvae.models.memory_budget import (
    BUDGET_VARIABLE,
    activation_bytes_traced,
    model_footprint,
)
from brainvae.run_folder import RunFolder
from brainvae.training.adversarial import make_optimizer
from brainvae.training.checkpoint import (
    OPTIMIZER_FILE,
    OPTIMIZER_STRUCTURE_FILE,
    RNG_FILE,
    STATE_FILE,
    apply_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    read_checkpoint,
)
from brainvae.training.checkpoint_checks import check_epoch_order_fits
from helpers.blob_population import write_blob_dataset
from helpers.json_strategies import JSON_SCALARS

FAST = ["--arch", "small", "--batch", "4", "--lr", "1e-3", "--device", "cpu", "--quiet"]
LATENT = ["--latent", "3"]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return write_blob_dataset(tmp_path_factory.mktemp("crafted"), subjects=4, seed=2)


@pytest.fixture(scope="module")
def base_run(dataset_dir, tmp_path_factory) -> Path:
    """A real run folder, one epoch of the small net, trained by the CLI."""
    run = tmp_path_factory.mktemp("runs") / "run"
    args = ["train", str(dataset_dir), *LATENT, "--epochs", "1", *FAST, "--out", str(run)]
    assert main(args) == 0
    return run


@pytest.fixture
def run(base_run, tmp_path) -> Path:
    """A copy of the base run to craft."""
    return Path(shutil.copytree(base_run, tmp_path / "run"))


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))  # allow_nan: Infinity and NaN are written as such


def refused(call, file: str, field: str) -> DataFileError:
    """call() raises DataFileError naming file and field (and nothing else escapes)."""
    with pytest.raises(DataFileError) as caught:
        call()
    message = str(caught.value)
    assert file in message, message
    assert field in message, message
    return caught.value


def resume(run: Path):
    """Read the run's latest checkpoint and apply it to its model and a fresh optimiser."""
    model = load_model(run)
    loaded = read_checkpoint(latest_checkpoint(run))
    apply_checkpoint(loaded, model, make_optimizer(model, 1e-3))


# -- the segfault ---------------------------------------------------------------------------
def test_out_of_bounds_adam_moments_exit_cleanly_on_resume(run, dataset_dir):
    """The largest parameter's two Adam moments cut to 3 values: fused Adam then reads and
    writes past them (exit 139 where the write leaves the heap, NaN or worse where it does not)."""
    checkpoint = latest_checkpoint(run)
    tensors = load_file(str(checkpoint / OPTIMIZER_FILE))
    paths = {key.split(":", 1)[1]: key for key in tensors}  # "t12:optimizer.state.3.exp_avg"
    largest = max(
        (p for p in paths if p.endswith(".exp_avg")), key=lambda p: tensors[paths[p]].numel()
    )
    for path in (largest, largest + "_sq"):
        tensors[paths[path]] = torch.zeros(3)
    save_file(tensors, str(checkpoint / OPTIMIZER_FILE))
    args = ["train", str(dataset_dir), *LATENT, "--epochs", "3", *FAST, "--out", str(run)]
    done = subprocess.run(
        [sys.executable, "-m", "brainvae", *args, "--resume"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (1, 2), (done.returncode, done.stderr[-2000:])
    assert OPTIMIZER_FILE in done.stderr and "exp_avg" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_untouched_checkpoint_resumes(run):
    resume(run)  # the checks pass on what brainvae itself writes


# -- config.json ------------------------------------------------------------------------------
def _set(data: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for name in parents:
        data = data[name]
        if not isinstance(data, dict):  # a parent already replaced by another mutation
            return
    data[last] = value


CRAFTED_CONFIGS = [
    ("latent_dim", 3.5),
    ("latent_dim", True),
    ("network.kernel_size", 3.0),
    ("network.kernel_size", 10**6),
    ("network", [8, 16]),
    ("network", "small"),
    ("network.conv_widths", [8, "16", 32]),
    ("network.dropout", math.nan),
    ("beta", math.inf),
    ("gaussian_sigma", math.inf),
    ("gaussian_sigma", 1e-300),
    ("capacity_max", -math.inf),
    ("input_shape", [24, 20.0]),
    ("input_shape", [24]),
    ("channels", 0),
    ("learn_sigma", "yes"),
    ("training", [1, 2]),
]


@pytest.mark.parametrize(("field", "value"), CRAFTED_CONFIGS)
def test_crafted_config_value_is_refused_naming_field(run, field, value):
    edit_json(run / "config.json", lambda data: _set(data, field, value))
    refused(lambda: load_model(run), "config.json", field.split(".")[-1])


def test_deeply_nested_config_is_refused_without_recursion(run):
    depth = 100_000
    path = run / "config.json"
    data = json.loads(path.read_text())
    text = json.dumps(data)[:-1] + ', "training": ' + "[" * depth + "]" * depth + "}"
    path.write_text(text)
    assert json_depth(text) == depth + 1  # the config object itself, then the brackets
    refused(lambda: load_model(run), "config.json", "nested")


def test_brackets_inside_strings_do_not_count_as_nesting():
    assert json_depth('{"a": "[[[[{{{{\\"[[["}') == 1
    assert json_depth('[[1], {"b": [2]}]') == 3


def test_config_of_a_trillion_parameters_is_refused_fast_with_both_figures(run):
    def huge(data):
        data["input_shape"], data["dims"] = [2048, 2048, 2048], 3
        data["network"]["dense_widths"] = [1024]
        data["architecture"] = "small"

    edit_json(run / "config.json", huge)
    footprint, _ = model_footprint(
        lambda: build_model(ModelConfig.from_json((run / "config.json").read_text()))
    )
    assert footprint.parameters >= 10**12
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    error = refused(lambda: load_model(run), "config.json", "input_shape")
    assert time.perf_counter() - start < 2.0
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 512 * 1024  # no large allocation (ru_maxrss is in KiB on Linux)
    message = str(error)
    assert f"{footprint.parameters:,} parameters" in message and "activations" in message
    assert "budget" in message and BUDGET_VARIABLE in message


@pytest.mark.parametrize(
    ("architecture", "shape", "family"),
    [
        ("small", (24, 20), "beta_vae"),
        ("small", (13, 17, 9), "soft_intro_vae"),
        ("mouse2d", (64, 90), "beta_vae"),
        ("flair3d", (20, 24, 20), "beta_vae"),
        ("ct2d", (64, 64), "soft_intro_vae"),
    ],
)
def test_activation_count_agrees_with_a_meta_forward_pass(architecture, shape, family):
    """The layer walk used on load gives the bytes torch's own shape inference gives."""
    config = ModelConfig(input_shape=shape, latent_dim=3, architecture=architecture, family=family)
    footprint, meta_model = model_footprint(lambda: build_model(config))
    assert footprint.activation_bytes == activation_bytes_traced(meta_model) > 0
    real = build_model(config)
    assert footprint.parameters == sum(p.numel() for p in real.parameters())


def test_sizes_past_what_torch_can_describe_are_refused(run):
    def beyond(data):
        data["input_shape"], data["dims"] = [65536] * 3, 3
        data["network"].update(conv_widths=[65536] * 3, dense_widths=[65536])

    edit_json(run / "config.json", beyond)
    start = time.perf_counter()
    refused(lambda: load_model(run), "config.json", "input_shape")
    assert time.perf_counter() - start < 2.0


def test_large_config_beside_small_weights_is_refused_before_building(run, monkeypatch):
    """A 2 GB model described beside the real few-KB weights: the header check refuses it,
    before the model is built (it used to take gigabytes for seconds, then refuse)."""
    monkeypatch.setenv(BUDGET_VARIABLE, "64G")  # within budget: the weights check must act

    def larger(data):
        data["input_shape"] = [512, 512]
        data["network"]["dense_widths"] = [4096]

    edit_json(run / "config.json", larger)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    refused(lambda: load_model(run), "weights.safetensors", "shape")
    assert time.perf_counter() - start < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 512 * 1024


def test_budget_is_overridable_by_variable_and_argument(run, monkeypatch):
    model = load_model(run)  # the real tiny model fits the default budget
    needed = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    refused(lambda: load_model(run, memory_budget=needed), "config.json", "budget")
    monkeypatch.setenv(BUDGET_VARIABLE, "1K")
    error = refused(lambda: load_model(run), "config.json", f"{BUDGET_VARIABLE}=1K")
    assert "1.0 KiB" in str(error)
    monkeypatch.setenv(BUDGET_VARIABLE, "1G")
    assert load_model(run).latent_dim == 3


# -- weights ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.int64, torch.float16, torch.bool, torch.float64])
def test_weights_of_another_dtype_are_refused_before_loading(run, dtype):
    path = run / "weights.safetensors"
    tensors = load_file(str(path))
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name] = tensors[name].to(dtype)
    save_file(tensors, str(path))
    refused(lambda: load_model(run), "weights.safetensors", name)


def test_bfloat16_weights_load_widened(run):
    path = run / "weights.safetensors"
    tensors = load_file(str(path))
    halved = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tensors.items()}
    save_file(halved, str(path))
    model = load_model(run)
    for name, value in model.state_dict().items():
        assert value.dtype == tensors[name].dtype
        assert torch.equal(value, halved[name].to(value.dtype))


def test_weights_header_of_other_shape_is_refused(run):
    path = run / "weights.safetensors"
    tensors = load_file(str(path))
    name = next(iter(tensors))
    tensors[name] = torch.zeros(7)
    save_file(tensors, str(path))
    refused(lambda: load_model(run), "weights.safetensors", name)


# -- checkpoints ------------------------------------------------------------------------------
def _optimizer_structure_edit(change):
    def edit(run: Path) -> None:
        edit_json(latest_checkpoint(run) / OPTIMIZER_STRUCTURE_FILE, change)

    return edit


def _set_group(key: str, value: Any):
    def change(data: dict) -> None:
        groups = dict(data["__dict__"])["param_groups"]
        entries = groups[0]["__dict__"]
        for entry in entries:
            if entry[0] == key:
                entry[1] = value

    return change


def _optimizer_tensor_edit(suffix: str, make):
    def edit(run: Path) -> None:
        path = latest_checkpoint(run) / OPTIMIZER_FILE
        tensors = load_file(str(path))
        key = next(k for k in tensors if k.endswith(suffix))
        tensors[key] = make(tensors[key])
        save_file(tensors, str(path))

    return edit


def _rng_edit(name: str, make):
    def edit(run: Path) -> None:
        path = latest_checkpoint(run) / RNG_FILE
        tensors = load_file(str(path))
        tensors[name] = make(tensors.get(name))
        save_file(tensors, str(path))

    return edit


def _state_edit(change):
    def edit(run: Path) -> None:
        edit_json(latest_checkpoint(run) / STATE_FILE, change)

    return edit


def _mid_epoch(order: torch.Tensor, batch: int = 1):
    """State edits making a mid-epoch checkpoint with the given data order."""

    def edit(run: Path) -> None:
        def change(data):
            data["batch"] = batch
            data["epoch_sums"] = {"loss": 1.0, "reconstruction": 1.0, "kl": 0.0, "images": 4.0}

        _state_edit(change)(run)
        _rng_edit("epoch_order", lambda _: order)(run)

    return edit


CRAFTED_CHECKPOINTS = [
    (_optimizer_tensor_edit(".exp_avg", lambda t: t.double()), OPTIMIZER_FILE, "exp_avg"),
    (_optimizer_tensor_edit(".exp_avg_sq", lambda t: -t - 1), OPTIMIZER_FILE, "exp_avg_sq"),
    (_optimizer_tensor_edit(".exp_avg", lambda t: t.reshape(1, -1)), OPTIMIZER_FILE, "exp_avg"),
    (_optimizer_tensor_edit(".step", lambda t: t * math.inf), OPTIMIZER_FILE, "step"),
    (_optimizer_tensor_edit(".step", lambda t: torch.ones(4)), OPTIMIZER_FILE, "step"),
    (_optimizer_structure_edit(_set_group("eps", -1)), OPTIMIZER_STRUCTURE_FILE, "eps"),
    (_optimizer_structure_edit(_set_group("fused", "yes")), OPTIMIZER_STRUCTURE_FILE, "fused"),
    (_optimizer_structure_edit(_set_group("amsgrad", None)), OPTIMIZER_STRUCTURE_FILE, "amsgrad"),
    (_optimizer_structure_edit(_set_group("maximize", True)), OPTIMIZER_STRUCTURE_FILE, "maximize"),
    (
        _optimizer_structure_edit(_set_group("differentiable", True)),
        OPTIMIZER_STRUCTURE_FILE,
        "differentiable",
    ),
    (_optimizer_structure_edit(_set_group("betas", [0.9, 1.5])), OPTIMIZER_STRUCTURE_FILE, "betas"),
    (_rng_edit("torch_cpu", lambda t: t[:100]), RNG_FILE, "torch_cpu"),
    (_rng_edit("torch_cpu", lambda t: t.float()), RNG_FILE, "torch_cpu"),
    (_rng_edit("data_order", lambda t: torch.zeros(3, dtype=torch.int64)), RNG_FILE, "data_order"),
    (_rng_edit("cuda_x", lambda _: torch.zeros(16, dtype=torch.uint8)), RNG_FILE, "cuda_x"),
    (_state_edit(lambda d: d.update(python_random=[3, [1, 2], None])), STATE_FILE, "python_random"),
    (_state_edit(lambda d: d.update(python_random="abc")), STATE_FILE, "python_random"),
    (
        _state_edit(lambda d: d["numpy_random"]["state"].update(key=[1, 2, 3])),
        STATE_FILE,
        "numpy_random.state.key",
    ),
    (_state_edit(lambda d: d.update(epoch=2**64)), STATE_FILE, "epoch"),
    (_state_edit(lambda d: d.update(step=-1)), STATE_FILE, "step"),
    (_state_edit(lambda d: d.update(history=["row"])), STATE_FILE, "history[0]"),
    (_state_edit(lambda d: d.update(history=[[1, 2]])), STATE_FILE, "history[0]"),
    (_state_edit(lambda d: d["history"][0].update(elapsed_s="1")), STATE_FILE, "elapsed_s"),
    (_state_edit(lambda d: d["history"][0].pop("epoch")), STATE_FILE, "epoch"),
    (_state_edit(lambda d: d.update(epoch_sums={"loss": math.inf})), STATE_FILE, "epoch_sums"),
    (_mid_epoch(torch.tensor([-1, 0, 1, 2])), RNG_FILE, "epoch_order"),
    (_mid_epoch(torch.tensor([0.0, 1.0, 2.0, 3.0])), RNG_FILE, "epoch_order"),
    (_mid_epoch(torch.arange(4), batch=9), STATE_FILE, "batch"),
]


@pytest.mark.parametrize(("edit", "file", "field"), CRAFTED_CHECKPOINTS)
def test_crafted_checkpoint_is_refused_naming_file_and_field(run, edit, file, field):
    edit(run)
    refused(lambda: resume(run), file, field)


def test_deeply_nested_optimizer_structure_is_refused(run):
    path = latest_checkpoint(run) / OPTIMIZER_STRUCTURE_FILE
    path.write_text("[" * 100_000 + "]" * 100_000)
    refused(lambda: read_checkpoint(path.parent), OPTIMIZER_STRUCTURE_FILE, "nested")


def test_checkpoint_that_is_a_file_is_refused_not_skipped(run):
    checkpoint = latest_checkpoint(run)
    shutil.rmtree(checkpoint)
    checkpoint.write_text("not a folder")
    refused(lambda: list_checkpoints(run), checkpoint.name, "is a file")
    shutil.rmtree(run / RunFolder.CHECKPOINTS)
    (run / RunFolder.CHECKPOINTS).write_text("not a folder")
    refused(lambda: list_checkpoints(run), RunFolder.CHECKPOINTS, "is a file")


def test_epoch_order_past_the_training_images_is_refused():
    order = torch.tensor([0, 5, 2])
    check_epoch_order_fits(order, 6, Path("rng.safetensors"))
    refused(
        lambda: check_epoch_order_fits(order, 5, Path("rng.safetensors")),
        "rng.safetensors",
        "epoch_order",
    )


# -- random mutations (hypothesis) -------------------------------------------------------------
ODD_VALUES = [
    -1, 0, 1, 2, 3, 7, 64, 2**31, 2**64, 10**6, 0.5, -0.0, 1e-300, 1e300,
    math.inf, -math.inf, math.nan, True, False, None, "", "small", "gaussian", [], [1],
    [24, 20], [2, 2, 2], {}, {"a": 1}, [[[[1]]]],
]  # fmt: skip

ODD = st.one_of(
    st.sampled_from(ODD_VALUES),
    JSON_SCALARS,
    st.recursive(
        JSON_SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
        max_leaves=8,
    ),
)
"""What a field or entry may become: the hand-picked odd values, any integer (past int64
too), any float (NaN, infinities, subnormals), text, and small nested lists and objects."""

# Hypothesis keeps caches (constants, unicode tables) in .hypothesis/ of the working folder
# even with database=None: keep them under .pytest_cache, beside pytest's own.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY",
    str(Path(__file__).resolve().parents[2] / ".pytest_cache" / "hypothesis"),
)
MUTATIONS = settings(
    max_examples=100,
    derandomize=True,  # the same examples on every run: a failure is reproducible
    deadline=None,  # the first load imports torch's meta kernels; the time bound is asserted
    database=None,  # no .hypothesis folder in the repository
    suppress_health_check=[HealthCheck.too_slow],
)
"""Each test copies the run once; every example rewrites the files it changes."""


def _fields(data: Any, prefix: str = "") -> list[str]:
    """Dotted names of every field (network's included) of a config dict."""
    names = []
    for key, value in data.items():
        names.append(prefix + key)
        if isinstance(value, dict) and key == "network":
            names += _fields(value, f"{key}.")
    return names


def test_random_config_mutations_load_or_raise_data_file_error(run):
    """1-3 fields of config.json (network's included) set to odd values: either a valid
    model loads and reconstructs finitely, or a DataFileError names config.json (or
    weights.safetensors, which no longer fits); each within 2 s. Both happen."""
    original = json.loads((run / "config.json").read_text())
    outcomes = {"loaded": 0, "refused": 0}

    @settings(MUTATIONS, report_multiple_bugs=False)
    @given(
        changes=st.lists(
            st.tuples(st.sampled_from(_fields(original)), ODD),
            min_size=1,
            max_size=3,
            unique_by=lambda change: change[0],
        )
    )
    @example(changes=[("network", {})])  # once a TypeError escaping ConvNetSpec(**{})
    def attempt(changes):
        data = json.loads(json.dumps(original))
        for name, value in changes:
            _set(data, name, value)
        (run / "config.json").write_text(json.dumps(data))
        start = time.perf_counter()
        try:
            model = load_model(run)
        except DataFileError as error:
            assert "config.json" in str(error) or "weights.safetensors" in str(error)
            outcomes["refused"] += 1
        else:
            assert isinstance(model.config, ModelConfig) and not model.training
            image = torch.rand(1, model.config.channels, *model.config.input_shape)
            with torch.no_grad():
                assert torch.isfinite(model.reconstruct(image)).all()
            outcomes["loaded"] += 1
        assert time.perf_counter() - start < 2.0, data

    attempt()
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0, outcomes


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every entry of nested JSON (the first few items of long lists)."""
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:6]):
            found += _leaves(item, (*path, index))
    return found


def test_random_checkpoint_mutations_resume_and_step_or_raise_data_file_error(run):
    """1-2 entries of state.json or optimizer.json replaced by odd values: either the
    checkpoint applies and a fused Adam step then leaves every parameter finite, or a
    DataFileError names the checkpoint; each within 2 s. Both happen."""
    checkpoint = latest_checkpoint(run)
    files = (STATE_FILE, OPTIMIZER_STRUCTURE_FILE)
    originals = {name: (checkpoint / name).read_text() for name in files}
    paths = {name: _leaves(json.loads(text)) for name, text in originals.items()}
    outcomes = {"resumed": 0, "refused": 0}

    @MUTATIONS
    @given(choice=st.data())
    def attempt(choice):
        name = choice.draw(st.sampled_from(files), label="file")
        data = json.loads(originals[name])
        chosen = choice.draw(
            st.lists(st.sampled_from(paths[name]), min_size=1, max_size=2, unique=True),
            label="entries",
        )
        for path in chosen:
            target = data
            try:  # an earlier mutation may have replaced a parent of this path
                for key in path[:-1]:
                    target = target[key]
                target[path[-1]] = choice.draw(ODD, label=str(path))
            except (KeyError, IndexError, TypeError):
                continue
        for other in files:
            text = json.dumps(data) if other == name else originals[other]
            (checkpoint / other).write_text(text)
        model = load_model(run).train()
        optimizer = make_optimizer(model, 1e-3)
        start = time.perf_counter()
        try:
            apply_checkpoint(read_checkpoint(checkpoint), model, optimizer)
        except DataFileError as error:
            assert checkpoint.name in str(error)
            outcomes["refused"] += 1
        else:
            sum(p.square().sum() for p in model.parameters()).backward()
            optimizer.step()
            assert all(torch.isfinite(p).all() for p in model.parameters())
            outcomes["resumed"] += 1
        assert time.perf_counter() - start < 2.0

    attempt()
    assert outcomes["refused"] > 0 and outcomes["resumed"] > 0, outcomes
