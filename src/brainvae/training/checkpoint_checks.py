"""A checkpoint's contents checked before they reach torch, numpy or random.

Optimiser moments of the wrong shape make the fused Adam kernel write out of bounds (a
segfault, not an exception); an RNG state of the wrong size or type, an epoch order with
negative positions, a history row that is not a row end in errors far from the file. Each
check here raises DataFileError naming the file and the field instead.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainvae.errors import DataFileError
from brainvae.models.config_schema import check_int, check_number

MAX_EPOCHS = 10**9
MAX_STEPS = 2**53
"""Counts past these are no real run's (2^53: the largest step a float counts exactly)."""
ADAM_TENSORS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
RULE_FLAGS = ("amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay")
"""Adam settings that change the update rule: brainvae always uses the same ones, so a saved
value must equal the live optimiser's (None here breaks the fused kernel; differentiable=True
is refused by it; maximize=True would climb the loss)."""
SPEED_FLAGS = ("foreach", "fused")
"""Implementation choices that may differ between devices: true, false or null, and fused
only where this optimiser can fuse (else the first step fails)."""
EPOCH_SUM_KEYS = ("loss", "reconstruction", "kl", "images")
"""Running sums a mid-epoch checkpoint must carry (the loop adds to each)."""
HISTORY_NUMBERS = ("epoch", "step", "elapsed_s")
"""Fields every history row has as numbers: the loop and the loss plot read them."""


# -- optimiser --------------------------------------------------------------------------------
def check_optimizer_state(
    state: Any,
    optimizer: torch.optim.Optimizer,
    path: Path,
    tensors_path: Path,
    where: str = "optimizer",
) -> None:
    """A saved Adam state fits this optimiser: groups, hyperparameters, and per parameter the
    moments' shapes and dtypes (exactly the parameter's) and a finite step count.

    path: the structure file (optimizer.json), named for groups and settings; tensors_path
    (optimizer.safetensors), named for the moments and steps.
    """
    if not isinstance(state, dict) or set(state) != {"state", "param_groups"}:
        raise DataFileError(path, f"{where}: must hold 'state' and 'param_groups' only")
    groups, current = state["param_groups"], optimizer.param_groups
    if not isinstance(groups, list) or len(groups) != len(current):
        raise DataFileError(
            path, f"{where}.param_groups: this optimiser has {len(current)} parameter group(s)"
        )
    parameters: dict[int, torch.Tensor] = {}
    for g, (group, live) in enumerate(zip(groups, current, strict=True)):
        name = f"{where}.param_groups[{g}]"
        if not isinstance(group, dict):
            raise DataFileError(path, f"{name}: must be an object")
        _check_group(group, live, path, name)
        for index, parameter in zip(group["params"], live["params"], strict=True):
            parameters[index] = parameter
    if len(parameters) != sum(len(group["params"]) for group in groups):
        raise DataFileError(path, f"{where}.param_groups: a parameter index is listed twice")
    per_parameter = state["state"]
    if not isinstance(per_parameter, dict):
        raise DataFileError(path, f"{where}.state: must be an object")
    amsgrad = any(group.get("amsgrad") for group in groups)
    for index, values in per_parameter.items():
        name = f"{where}.state[{index!r}]"
        if isinstance(index, bool) or index not in parameters:
            raise DataFileError(path, f"{name}: no parameter has this index")
        _check_moments(values, parameters[index], amsgrad, tensors_path, name)


def _check_group(group: dict[str, Any], live: dict[str, Any], path: Path, name: str) -> None:
    unknown = sorted(set(group) - set(live), key=str)
    if unknown:
        raise DataFileError(path, f"{name}: unknown setting(s) {', '.join(map(str, unknown))}")
    params = group.get("params")
    if not isinstance(params, list) or len(params) != len(live["params"]):
        raise DataFileError(
            path, f"{name}.params: this optimiser's group has {len(live['params'])} parameters"
        )
    for i, index in enumerate(params):
        check_int(path, f"{name}.params[{i}]", index, 0, 2**31)
    for key in ("lr", "weight_decay"):
        if key in group and not isinstance(group[key], torch.Tensor):
            check_number(path, f"{name}.{key}", group[key], 0.0, 1e6)
    if "eps" in group:
        check_number(path, f"{name}.eps", group["eps"], 0.0, 1.0, low_open=True)
    if "betas" in group:
        betas = group["betas"]
        if not isinstance(betas, list | tuple) or len(betas) != 2:
            raise DataFileError(path, f"{name}.betas: must be two numbers, got {betas!r}")
        for i, beta in enumerate(betas):
            check_number(path, f"{name}.betas[{i}]", beta, 0.0, 1.0)
            if beta >= 1.0:
                raise DataFileError(path, f"{name}.betas[{i}]: must be below 1, got {beta!r}")
    for key in RULE_FLAGS:
        if key in group and (not isinstance(group[key], bool) or group[key] != live.get(key)):
            raise DataFileError(
                path,
                f"{name}.{key}: must be {live.get(key)!r} (as brainvae trains), got {group[key]!r}",
            )
    for key in SPEED_FLAGS:
        value = group.get(key)
        if value is not None and not isinstance(value, bool):
            raise DataFileError(path, f"{name}.{key}: must be true, false or null, got {value!r}")
    if group.get("fused") and not live.get("fused"):
        raise DataFileError(path, f"{name}.fused: this device's optimiser cannot be fused")


def _check_moments(
    values: Any, parameter: torch.Tensor, amsgrad: bool, path: Path, name: str
) -> None:
    if not isinstance(values, dict):
        raise DataFileError(path, f"{name}: must be an object of tensors")
    unknown = sorted(set(values) - {"step", *ADAM_TENSORS}, key=str)
    if unknown:
        raise DataFileError(path, f"{name}: unknown entries {', '.join(map(str, unknown))}")
    needed = ("step", "exp_avg", "exp_avg_sq", *(("max_exp_avg_sq",) if amsgrad else ()))
    missing = [key for key in needed if key not in values]
    if missing:
        raise DataFileError(path, f"{name}: lacks {', '.join(missing)}")
    for key in ADAM_TENSORS:
        if key not in values:
            continue
        moment = values[key]
        if not isinstance(moment, torch.Tensor):
            raise DataFileError(path, f"{name}.{key}: must be a tensor")
        if tuple(moment.shape) != tuple(parameter.shape) or moment.dtype != parameter.dtype:
            raise DataFileError(
                path,
                f"{name}.{key}: is {tuple(moment.shape)} {moment.dtype}; its parameter is "
                f"{tuple(parameter.shape)} {parameter.dtype}",
            )
        if not torch.isfinite(moment).all():
            raise DataFileError(path, f"{name}.{key}: holds NaN or Inf values")
        if key != "exp_avg" and (moment < 0).any():
            raise DataFileError(path, f"{name}.{key}: a second moment cannot be negative")
    step = values["step"]
    if isinstance(step, torch.Tensor):
        if step.numel() != 1 or step.dtype == torch.bool or step.is_complex():
            raise DataFileError(
                path, f"{name}.step: must be one number, got {tuple(step.shape)} {step.dtype}"
            )
        step = step.item()
    check_number(path, f"{name}.step", step, 0.0, float(MAX_STEPS))
    if step != math.floor(step):
        raise DataFileError(path, f"{name}.step: must be a whole number, got {step!r}")


# -- random states ----------------------------------------------------------------------------
def check_generator_state(tensor: Any, path: Path, name: str, reference: torch.Tensor) -> None:
    """A torch generator state: a 1-D uint8 tensor as long as reference, accepted by torch."""
    if (
        not isinstance(tensor, torch.Tensor)
        or tensor.dtype != torch.uint8
        or tuple(tensor.shape) != tuple(reference.shape)
    ):
        got = (
            f"{tuple(tensor.shape)} {tensor.dtype}"
            if isinstance(tensor, torch.Tensor)
            else type(tensor).__name__
        )
        raise DataFileError(
            path, f"{name}: must be a {tuple(reference.shape)} uint8 generator state, got {got}"
        )
    try:
        torch.Generator().set_state(tensor)
    except RuntimeError as error:
        raise DataFileError(path, f"{name}: torch refuses this generator state: {error}") from error


def check_cuda_state(tensor: Any, path: Path, name: str) -> None:
    """A CUDA generator state: a 1-D uint8 tensor, of the device's size where CUDA is running."""
    if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.uint8 or tensor.ndim != 1:
        raise DataFileError(path, f"{name}: must be a 1-D uint8 generator state")
    index = int(name.split("_", 1)[1])
    if torch.cuda.is_available() and index < torch.cuda.device_count():
        reference = torch.cuda.get_rng_state(index)
        if tensor.numel() != reference.numel():
            raise DataFileError(
                path, f"{name}: is {tensor.numel()} bytes; this GPU's state is {reference.numel()}"
            )


def check_python_random(value: Any, path: Path) -> None:
    """random.getstate() as stored: [version, 625 ints, gauss]; tried on a scratch Random."""
    name = "python_random"
    if not isinstance(value, list) or len(value) != 3 or not isinstance(value[1], list):
        raise DataFileError(path, f"{name}: must be [version, [625 integers], gauss]")
    version, internal, gauss = value
    check_int(path, f"{name}[0]", version, 3, 3)
    if len(internal) != 625 or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in internal
    ):
        raise DataFileError(path, f"{name}[1]: must be 625 integers in [0, 2^32)")
    if gauss is not None:
        check_number(path, f"{name}[2]", gauss, -1e308, 1e308)
    try:
        random.Random().setstate((version, tuple(internal), gauss))
    except (TypeError, ValueError, OverflowError) as error:
        raise DataFileError(path, f"{name}: Python refuses this state: {error}") from error


def check_numpy_random(value: Any, path: Path) -> None:
    """np.random.get_state(legacy=False) as stored; tried on a scratch RandomState."""
    name = "numpy_random"
    if not isinstance(value, dict) or set(value) != {
        "bit_generator",
        "state",
        "has_gauss",
        "gauss",
    }:
        raise DataFileError(path, f"{name}: must hold bit_generator, state, has_gauss and gauss")
    if value["bit_generator"] != "MT19937":
        raise DataFileError(path, f"{name}.bit_generator: must be 'MT19937'")
    inner = value["state"]
    if not isinstance(inner, dict) or set(inner) != {"key", "pos"}:
        raise DataFileError(path, f"{name}.state: must hold key and pos")
    key = inner["key"]
    if not isinstance(key, list) or len(key) != 624:
        raise DataFileError(path, f"{name}.state.key: must be 624 integers")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in key):
        raise DataFileError(path, f"{name}.state.key: must be integers in [0, 2^32)")
    check_int(path, f"{name}.state.pos", inner["pos"], 0, 624)
    check_int(path, f"{name}.has_gauss", value["has_gauss"], 0, 1)
    check_number(path, f"{name}.gauss", value["gauss"], -1e308, 1e308)
    try:
        np.random.RandomState().set_state(
            {**value, "state": {"key": np.asarray(key, dtype=np.uint32), "pos": inner["pos"]}}
        )
    except (TypeError, ValueError, KeyError) as error:
        raise DataFileError(path, f"{name}: numpy refuses this state: {error}") from error


# -- loop position and history ------------------------------------------------------------------
def check_loop_state(data: dict[str, Any], epoch_order: Any, path: Path, rng_path: Path) -> None:
    """state.json's counts, running sums and history rows, and the mid-epoch data order."""
    epoch = check_int(path, "epoch", data.get("epoch"), 0, MAX_EPOCHS)
    batch = check_int(path, "batch", data.get("batch"), 0, MAX_STEPS)
    check_int(path, "step", data.get("step"), 0, MAX_STEPS)
    for name in ("train_config", "model_config"):
        if not isinstance(data.get(name), dict):
            raise DataFileError(path, f"field {name!r} must be a JSON object")
    sums = data.get("epoch_sums")
    if not isinstance(sums, dict):
        raise DataFileError(path, "field 'epoch_sums' must be a JSON object")
    for key, value in sums.items():
        check_number(path, f"epoch_sums.{key}", value, 0.0 if key == "images" else -1e308, 1e308)
    if batch:
        missing = [key for key in EPOCH_SUM_KEYS if key not in sums]
        if missing:
            raise DataFileError(path, f"field 'epoch_sums' lacks {', '.join(missing)} mid-epoch")
    _check_history(data.get("history"), epoch, path)
    if epoch_order is None:
        if batch:
            raise DataFileError(rng_path, "epoch_order: a mid-epoch checkpoint needs it")
        return
    if not isinstance(epoch_order, torch.Tensor) or epoch_order.dtype != torch.int64:
        raise DataFileError(rng_path, "epoch_order: must be an int64 tensor of positions")
    if epoch_order.ndim != 1 or epoch_order.numel() == 0:
        raise DataFileError(rng_path, f"epoch_order: must be 1-D, got {tuple(epoch_order.shape)}")
    if (epoch_order < 0).any():
        raise DataFileError(rng_path, "epoch_order: holds negative positions")
    if batch > epoch_order.numel():
        raise DataFileError(
            path, f"field 'batch' is {batch}, past the {epoch_order.numel()} images of the epoch"
        )


def check_epoch_order_fits(epoch_order: torch.Tensor | None, n_rows: int, path: Path) -> None:
    """Every stored position indexes one of the n_rows training images (call on resume)."""
    if epoch_order is not None and epoch_order.numel() and int(epoch_order.max()) >= n_rows:
        raise DataFileError(
            path,
            f"epoch_order: position {int(epoch_order.max())} is past the {n_rows} training "
            "images of this dataset",
        )


def _check_history(history: Any, epoch: int, path: Path) -> None:
    if not isinstance(history, list):
        raise DataFileError(path, "field 'history' must be a list of rows")
    if len(history) > epoch:
        raise DataFileError(
            path, f"field 'history' has {len(history)} rows, more than the {epoch} epochs done"
        )
    for i, row in enumerate(history):
        if not isinstance(row, dict):
            raise DataFileError(path, f"history[{i}] must be an object, got {type(row).__name__}")
        for key in HISTORY_NUMBERS:
            if key not in row:
                raise DataFileError(path, f"history[{i}] lacks {key!r}")
        for key, value in row.items():
            if value is not None and not isinstance(value, int | float) or isinstance(value, bool):
                raise DataFileError(path, f"history[{i}].{key} must be a number or null")
        for key in HISTORY_NUMBERS:
            check_number(path, f"history[{i}].{key}", row[key], 0.0, 1e308)
