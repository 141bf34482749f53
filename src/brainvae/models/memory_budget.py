"""The memory a saved model would take, worked out before anything is allocated, against a
budget: a crafted config.json (a 10^12-parameter net) is refused naming the file."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brainvae.errors import DataFileError

BUDGET_VARIABLE = "BRAINVAE_MODEL_MEMORY_BUDGET"
"""Environment variable overriding the memory budget of a model load: bytes, or e.g. 8G."""
BUDGET_FRACTION = 0.5
"""Default budget: this fraction of the machine's physical memory."""
FALLBACK_MEMORY = 8 * 2**30
"""Physical memory assumed where the system does not say (no sysconf, no psutil)."""


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
