"""config.json checked before anything is built: JSON depth, field types and ranges (the
memory the model it describes would take is brainvae.models.memory_budget).

A config file alone decides how large a model gets built, so a crafted one (a 10^12-parameter
net, a float latent_dim, a list for network, 100k nested brackets) is refused here, naming the
file and the field, before torch allocates anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from brainvae.errors import DataFileError

MAX_SIDE = 2**16
MAX_CHANNELS = 4096
MAX_LATENT = 2**16
MAX_LAYERS = 32
MAX_WIDTH = 2**16
MAX_KERNEL = 31
MAX_STEPS = 2**53
MAX_WEIGHT = 1e9
"""Largest loss weight (beta, capacity_gamma, beta_neg...) accepted: finite and below this."""
MAX_LABELS = 256
"""Most disease groups a longitudinal_vae config may name (one direction each)."""
SIGMA_RANGE = (1e-6, 1e6)
"""gaussian_sigma bounds: 1 / sigma^2 of a pixel error of 1 stays far inside float32."""


# -- field checks ---------------------------------------------------------------------------
def _fail(path: Path, name: str, problem: str, value: Any) -> DataFileError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return DataFileError(path, f"field {name!r} {problem}, got {shown}")


def check_int(path: Path, name: str, value: Any, low: int, high: int) -> int:
    """An integer (not a bool, not a float) in [low, high]."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(path, name, "must be an integer", value)
    if not low <= value <= high:
        raise _fail(path, name, f"must be in [{low}, {high}]", value)
    return value


def check_number(
    path: Path, name: str, value: Any, low: float, high: float, *, low_open: bool = False
) -> float:
    """A finite int or float (not a bool) in [low, high] (or (low, high] with low_open)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _fail(path, name, "must be a number", value)
    if not math.isfinite(value):
        raise _fail(path, name, "must be finite", value)
    if value < low or (low_open and value == low) or value > high:
        bracket = "(" if low_open else "["
        raise _fail(path, name, f"must be in {bracket}{low:g}, {high:g}]", value)
    return float(value)


def check_int_list(
    path: Path, name: str, value: Any, low: int, high: int, max_length: int = MAX_LAYERS
) -> None:
    """A list of integers in [low, high], at most max_length long."""
    if not isinstance(value, list):
        raise _fail(path, name, "must be a list of integers", value)
    if len(value) > max_length:
        raise _fail(path, name, f"must have at most {max_length} entries", value)
    for index, item in enumerate(value):
        check_int(path, f"{name}[{index}]", item, low, high)


def _check_type(path: Path, name: str, value: Any, kinds: tuple[type, ...], what: str) -> None:
    if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
        raise _fail(path, name, f"must be {what}", value)


NUMBER_FIELDS: dict[str, tuple[float, float, bool]] = {
    "beta": (0.0, MAX_WEIGHT, False),
    "capacity_gamma": (0.0, MAX_WEIGHT, True),
    "capacity_max": (0.0, MAX_WEIGHT, False),
    "beta_rec": (0.0, MAX_WEIGHT, True),
    "beta_kl": (0.0, MAX_WEIGHT, False),
    "beta_neg": (0.0, MAX_WEIGHT, True),
    "gamma_r": (0.0, MAX_WEIGHT, False),
    "margin": (0.0, MAX_WEIGHT, False),
    "w_neg": (0.0, MAX_WEIGHT, False),
}
"""Numeric fields: (low, high, low excluded); None is allowed only for capacity_max."""


def check_config_dict(data: Any, path: str | Path) -> None:
    """Types and ranges of every config.json field that shapes the model or its loss.

    ModelConfig checks how fields relate (latent_dim <= values per sample, presets, choices);
    this checks each value alone, so that nothing odd (a float size, Infinity, a list where an
    object belongs) reaches the constructors.
    """
    path = Path(path)
    if not isinstance(data, dict):
        raise DataFileError(path, f"must hold a JSON object, got {type(data).__name__}")
    shape = data.get("input_shape")
    if not isinstance(shape, list) or len(shape) not in (2, 3):
        raise _fail(path, "input_shape", "must be a list of 2 or 3 sizes", shape)
    for index, side in enumerate(shape):
        check_int(path, f"input_shape[{index}]", side, 1, MAX_SIDE)
    checks: dict[str, Callable[[str, Any], Any]] = {
        "latent_dim": lambda n, v: check_int(path, n, v, 1, MAX_LATENT),
        "channels": lambda n, v: check_int(path, n, v, 1, MAX_CHANNELS),
        "capacity_anneal_steps": lambda n, v: check_int(path, n, v, 1, MAX_STEPS),
        "kl_warmup_steps": lambda n, v: check_int(path, n, v, 0, MAX_STEPS),
        "format_version": lambda n, v: check_int(path, n, v, 0, 2**31),
        "dims": lambda n, v: check_int(path, n, v, 2, 3),
        "family": lambda n, v: _check_type(path, n, v, (str,), "a string"),
        "architecture": lambda n, v: _check_type(path, n, v, (str,), "a string"),
        "likelihood": lambda n, v: _check_type(path, n, v, (str,), "a string"),
        "intro_variant": lambda n, v: _check_type(path, n, v, (str,), "a string"),
        "condition": lambda n, v: _check_type(path, n, v, (str, type(None)), "a string"),
        **{
            name: lambda n, v: _check_type(path, n, v, (str, type(None)), "a string")
            for name in ("subject_column", "time_column", "group_column", "control_label")
        },
        "disease_labels": lambda n, v: _check_labels(path, n, v),
        "learn_sigma": lambda n, v: _check_type(path, n, v, (bool,), "true or false"),
        "channels_last": lambda n, v: _check_type(path, n, v, (bool,), "true or false"),
        "training": lambda n, v: _check_type(path, n, v, (dict,), "a JSON object"),
        "preprocessing": lambda n, v: _check_type(path, n, v, (dict, type(None)), "an object"),
    }
    for name, check in checks.items():
        if name in data:
            check(name, data[name])
    for name, (low, high, low_open) in NUMBER_FIELDS.items():
        if name in data and not (name == "capacity_max" and data[name] is None):
            check_number(path, name, data[name], low, high, low_open=low_open)
    if "direction_weight" in data:
        check_number(path, "direction_weight", data["direction_weight"], 0.0, MAX_WEIGHT)
    for name in ("condition_mean", "condition_sd"):
        if data.get(name) is not None:
            check_number(path, name, data[name], -MAX_WEIGHT, MAX_WEIGHT)
    sigma = data.get("gaussian_sigma")
    if sigma is not None:
        check_number(path, "gaussian_sigma", sigma, *SIGMA_RANGE)
    network = data.get("network")
    if network is not None:
        check_network_dict(network, path)


def _check_labels(path: Path, name: str, value: Any) -> None:
    """null or a list of at most MAX_LABELS short strings (group names)."""
    if value is None:
        return
    if not isinstance(value, list) or len(value) > MAX_LABELS:
        raise _fail(path, name, f"must be a list of at most {MAX_LABELS} group names", value)
    for index, label in enumerate(value):
        if not isinstance(label, str) or not 0 < len(label) <= 200:
            raise _fail(path, f"{name}[{index}]", "must be a group name (a short string)", label)


def check_network_dict(network: Any, path: Path) -> None:
    """The "network" object: layer lists of bounded integers, an odd kernel, a dropout < 1."""
    if not isinstance(network, dict):
        raise _fail(path, "network", "must be a JSON object (the layer spec) or null", network)
    for name in ("conv_widths", "strides"):  # the spec cannot be built without them
        if name not in network:
            raise DataFileError(path, f"field network.{name} is missing (a layer list)")
    for name in ("conv_widths", "dense_widths", "decoder_widths"):
        if name in network and not (name == "decoder_widths" and network[name] is None):
            check_int_list(path, f"network.{name}", network[name], 1, MAX_WIDTH)
    for name in ("strides", "decoder_strides"):
        if name in network and not (name == "decoder_strides" and network[name] is None):
            check_int_list(path, f"network.{name}", network[name], 1, 2)
    if "kernel_size" in network:
        check_int(path, "network.kernel_size", network["kernel_size"], 1, MAX_KERNEL)
    if "dropout" in network:
        check_number(path, "network.dropout", network["dropout"], 0.0, 0.99)
    if "batch_norm" in network:
        _check_type(path, "network.batch_norm", network["batch_norm"], (bool,), "true or false")
    for name in ("downsample", "upsample", "activation"):
        if name in network:
            _check_type(path, f"network.{name}", network[name], (str,), "a string")
