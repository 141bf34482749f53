"""config.json checked before anything is built: JSON depth, field types and ranges, and the
memory the model it describes would take, against a budget.

A config file alone decides how large a model gets built, so a crafted one (a 10^12-parameter
net, a float latent_dim, a list for network, 100k nested brackets) is refused here, naming the
file and the field, before torch allocates anything.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brainvae.errors import DataFileError

MAX_JSON_DEPTH = 64
"""Deepest nesting of [ and { accepted in a brainvae JSON file (real files use fewer than 8)."""
MAX_CONFIG_BYTES = 16 * 2**20
"""config.json is a few KB; anything past this is not one."""
BUDGET_VARIABLE = "BRAINVAE_MODEL_MEMORY_BUDGET"
"""Environment variable overriding the memory budget of a model load: bytes, or e.g. 8G."""
BUDGET_FRACTION = 0.5
"""Default budget: this fraction of the machine's physical memory."""
FALLBACK_MEMORY = 8 * 2**30
"""Physical memory assumed where the system does not say (no sysconf, no psutil)."""
MAX_SIDE = 2**16
MAX_CHANNELS = 4096
MAX_LATENT = 2**16
MAX_LAYERS = 32
MAX_WIDTH = 2**16
MAX_KERNEL = 31
MAX_STEPS = 2**53
MAX_WEIGHT = 1e9
"""Largest loss weight (beta, capacity_gamma, beta_neg...) accepted: finite and below this."""
SIGMA_RANGE = (1e-6, 1e6)
"""gaussian_sigma bounds: 1 / sigma^2 of a pixel error of 1 stays far inside float32."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(text: str) -> int:
    """Deepest nesting of [ and { in JSON text, brackets inside strings not counted."""
    bare = _STRING.sub("", text).encode("utf-8", "surrogatepass")
    codes = np.frombuffer(bare, dtype=np.uint8)
    steps = (np.isin(codes, (ord("["), ord("{")))).astype(np.int32) - np.isin(
        codes, (ord("]"), ord("}"))
    ).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def parse_json(text: str, path: str | Path, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads, after refusing nesting deeper than max_depth (which would recurse away)."""
    import json

    depth = json_depth(text)
    if depth > max_depth:
        raise DataFileError(
            path, f"JSON nested {depth} levels deep; brainvae files nest at most {max_depth}"
        )
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise DataFileError(path, f"is not valid JSON (truncated or corrupt?): {error}") from error


def read_json_file(path: Path, max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """A JSON file read with a size and depth limit; errors name the file."""
    size = path.stat().st_size
    if size > max_bytes:
        raise DataFileError(path, f"is {size} bytes; a brainvae JSON file is at most {max_bytes}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataFileError(path, f"is not text ({error})") from error
    return parse_json(text, path)


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
    sigma = data.get("gaussian_sigma")
    if sigma is not None:
        check_number(path, "gaussian_sigma", sigma, *SIGMA_RANGE)
    network = data.get("network")
    if network is not None:
        check_network_dict(network, path)


def check_network_dict(network: Any, path: Path) -> None:
    """The "network" object: layer lists of bounded integers, an odd kernel, a dropout < 1."""
    if not isinstance(network, dict):
        raise _fail(path, "network", "must be a JSON object (the layer spec) or null", network)
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


# -- memory -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelFootprint:
    """What a config implies, worked out on torch's meta device (which allocates nothing).

    parameters: trainable values; state_bytes: parameters and buffers as stored;
    activation_bytes: every layer's output for one image in one forward pass;
    load_bytes: what loading takes at its peak (the model, the weights file read beside it,
    and one image through the net).
    """

    parameters: int
    state_bytes: int
    activation_bytes: int

    @property
    def load_bytes(self) -> int:
        return 2 * self.state_bytes + self.activation_bytes


def model_footprint(build: Callable[[], Any]) -> tuple[ModelFootprint, Any]:
    """Build the model on the meta device and run one image through it; give (footprint, model).

    The meta model has every parameter's name, shape and dtype but no storage, so a config
    describing terabytes costs nothing here.
    """
    import torch

    with torch.device("meta"):
        model = build().eval()  # eval: batch-norm takes a single image
    parameters = sum(p.numel() for p in model.parameters())
    state_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return ModelFootprint(parameters, state_bytes, _activation_bytes(model)), model


def _activation_bytes(model: Any) -> int:
    """Bytes of every layer's output for one image, from the layers' own sizes and strides.

    Walking the (meta) modules takes milliseconds; a meta-device forward pass would give the
    same figure (activation_bytes_traced, checked in the tests) but its first call imports
    torch's meta kernels, ~3 s added to every first model load.
    """
    config = model.config
    if not (hasattr(model, "encoder") and hasattr(model, "decoder")):
        return 4 * (config.n_features + 2 * config.latent_dim)  # a projection and its inverse
    encoder, decoder = model.encoder, model.decoder
    walked = _walk(encoder.features, config.channels, encoder.geometry.padded_shape)
    walked = walked and _chain(walked, encoder.dense, encoder.head)
    start = (decoder.start_channels, decoder.geometry.bottleneck_shape)
    dense = _walk(decoder.dense, config.latent_dim, ())
    features = _walk(decoder.features, *start)
    if walked is None or dense is None or features is None:
        return activation_bytes_traced(model)
    return 4 * (walked[0] + dense[0] + features[0])  # float32


def _chain(walked: tuple[int, int, tuple[int, ...]], *stages: Any) -> tuple | None:
    total, channels, spatial = walked
    channels = channels * math.prod(spatial)  # flattened
    for stage in stages:
        step = _walk(stage, channels, ())
        if step is None:
            return None
        total, channels = total + step[0], step[1]
    return total, channels, ()


def _walk(stage: Any, channels: int, spatial: tuple[int, ...]) -> tuple | None:
    """(values written, channels, spatial) after a layer or a Sequential; None: unknown layer."""
    from torch import nn

    layers = list(stage) if isinstance(stage, nn.Sequential) else [stage]
    shape_keeping = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.ReLU, nn.LeakyReLU)
    shape_keeping += (nn.Dropout,)
    total = 0
    for layer in layers:
        if isinstance(layer, nn.Linear):
            channels = layer.out_features
        elif isinstance(layer, nn.Conv2d | nn.Conv3d):
            channels = layer.out_channels
            spatial = tuple(
                (s + 2 * p - d * (k - 1) - 1) // st + 1
                for s, p, d, k, st in zip(
                    spatial,
                    layer.padding,
                    layer.dilation,
                    layer.kernel_size,
                    layer.stride,
                    strict=True,
                )
            )
        elif isinstance(layer, nn.ConvTranspose2d | nn.ConvTranspose3d):
            channels = layer.out_channels
            spatial = tuple(
                (s - 1) * st - 2 * p + d * (k - 1) + o + 1
                for s, st, p, d, k, o in zip(
                    spatial,
                    layer.stride,
                    layer.padding,
                    layer.dilation,
                    layer.kernel_size,
                    layer.output_padding,
                    strict=True,
                )
            )
        elif isinstance(layer, nn.MaxPool2d | nn.MaxPool3d) and layer.padding == 0:
            k, st = layer.kernel_size, layer.stride or layer.kernel_size
            spatial = tuple((s - k) // st + 1 for s in spatial)
        elif isinstance(layer, nn.Upsample) and isinstance(layer.scale_factor, int | float):
            spatial = tuple(int(s * layer.scale_factor) for s in spatial)
        elif not isinstance(layer, shape_keeping):
            return None
        total += channels * math.prod(spatial)
    return total, channels, spatial


def activation_bytes_traced(model: Any) -> int:
    """Sum of every leaf layer's output for one image, by a forward pass on meta tensors."""
    import torch

    config = model.config
    total = 0

    def count(_module: Any, _inputs: Any, output: Any) -> None:
        nonlocal total
        for tensor in output if isinstance(output, tuple) else (output,):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()

    leaves = [  # an empty Sequential (no dense layers) passes its input on: nothing new
        m
        for m in model.modules()
        if not any(True for _ in m.children()) and not isinstance(m, torch.nn.Sequential)
    ]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            image = torch.empty((1, config.channels, *config.input_shape), device="meta")
            model._decode_raw(model._encode(image)[0])
    finally:
        for handle in handles:
            handle.remove()
    return total


def physical_memory() -> int | None:
    """The machine's physical memory in bytes, or None where the system does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # psutil absent or unable to read the system: fall back
        return None


def parse_size(text: str) -> int:
    """Bytes from "8589934592", "8G", "512M", "1.5T" (powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"not a size: {text!r} (give bytes, or a number with K, M, G or T)")
    power = " KMGT".index(match.group(2).upper() or " ")
    return int(float(match.group(1)) * 1024**power)


def memory_budget() -> tuple[int, str]:
    """(bytes, where that figure comes from): the environment variable, else half the RAM."""
    from brainvae.errors import BrainVAEError

    override = os.environ.get(BUDGET_VARIABLE)
    if override:
        try:
            return parse_size(override), f"{BUDGET_VARIABLE}={override}"
        except ValueError as error:
            raise BrainVAEError(f"{BUDGET_VARIABLE}: {error}") from error
    memory = physical_memory()
    if memory is None:
        return int(FALLBACK_MEMORY * BUDGET_FRACTION), (
            f"half of an assumed {format_bytes(FALLBACK_MEMORY)} (physical memory unknown); "
            f"set {BUDGET_VARIABLE} to change it"
        )
    return int(memory * BUDGET_FRACTION), (
        f"half of this machine's {format_bytes(memory)} of memory; "
        f"set {BUDGET_VARIABLE} (e.g. 32G) to change it"
    )


def check_footprint(footprint: ModelFootprint, path: str | Path, budget: int | None = None) -> None:
    """Refuse a model whose load would need more than the budget, giving both figures."""
    limit, source = memory_budget() if budget is None else (budget, "the budget given")
    if footprint.load_bytes > limit:
        raise DataFileError(
            path,
            f"fields input_shape/latent_dim/network describe a model of "
            f"{footprint.parameters:,} parameters ({format_bytes(footprint.state_bytes)} of "
            f"weights) and {format_bytes(footprint.activation_bytes)} of activations per "
            f"image: loading it needs about {format_bytes(footprint.load_bytes)}, over the "
            f"budget of {format_bytes(limit)} ({source})",
        )


def format_bytes(count: float) -> str:
    """1536 -> "1.5 KiB"; readable sizes up to exbibytes."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} EiB"
