"""Pick the device (CUDA, then Apple MPS, then CPU) and the autocast precision, and describe them."""

from __future__ import annotations

from pathlib import Path

import torch

from brainvae.models.errors import ModelError


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for "auto", "cpu", "mps" or "cuda[:N]"; refuses one that is not there."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"device {name!r} asked for, but this machine has no usable CUDA GPU")
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ModelError(
                f"device {name!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist"
            )
        return torch.device("cuda", index)
    if device.type == "mps" and not _mps_available():
        raise ModelError("device 'mps' asked for, but Apple MPS is not available here")
    return device


def describe_device(device: torch.device) -> str:
    """One line for people: the GPU's name, "Apple GPU (MPS)" or "CPU (N threads)"."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"{torch.cuda.get_device_name(index)} (cuda:{index})"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bfloat16 when precision says so, else None (fp32).

    "auto" picks bf16 on a CUDA GPU that supports it, and on a CPU only when oneDNN reports
    native bf16 instructions (AVX512-BF16 or AMX): on an AVX2-only CPU, measured by
    benchmarks/bench_training.py, bf16 autocast trained our nets 4-10x *slower* than fp32.
    """
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        return None
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX), so autocast can pay.

    On Linux the kernel's CPU flags say it; elsewhere oneDNN's own check stands in (it also
    accepts plain AVX512, where bf16 is emulated).
    """
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").split()
    except OSError:
        flags = None
    if flags is not None:
        return "avx512_bf16" in flags or "amx_bf16" in flags
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
