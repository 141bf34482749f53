"""Pick the device (CUDA, then Apple MPS, then CPU) and the autocast precision, and describe them.

On a CPU, "auto" precision is decided by measuring, not by CPU flags: a short probe times a
small conv net's training steps in fp32 and under bf16 autocast, and the answer is cached per
machine in precision.json under the cache folder ($BRAINVAE_CACHE_DIR, else
$XDG_CACHE_HOME/brainvae, else ~/.cache/brainvae).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from brainvae.errors import ModelError
from brainvae.file_modes import file_mode
from brainvae.user_cache import cache_dir

PRECISION_CACHE_FILE = "precision.json"
PRECISION_CACHE_FORMAT = "brainvae-precision-cache"
BF16_MIN_SPEEDUP = 1.10
"""bf16 is picked only when its median step is at least this many times faster than fp32's:
a smaller gain is within the noise of a short probe and not worth bf16's rounding."""
PROBE_BUDGET_S = 1.0
"""Wall-clock budget of the probe, warm-up included: it stops at the first pair past it once
PROBE_MIN_PAIRS pairs are done (about 0.4 s per dims on an idle 2-core CPU; a machine busy
with other work takes longer, and its spread then says the timings prove nothing)."""
PROBE_MAX_SPREAD = 3.0
"""A probe whose slowest step took more than this many times its fastest (fp32 or bf16) was
disturbed by other work on the machine: it proves nothing, so this run takes fp32 and the
next one probes again (nothing is cached)."""
PROBE_MIN_PAIRS = 3
PROBE_MAX_PAIRS = 7
PROBE_BATCHES = {2: (16, 1, 64, 64), 3: (4, 1, 32, 32, 32)}


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


def autocast_dtype(precision: str, device: torch.device, dims: int = 2) -> torch.dtype | None:
    """bfloat16 when precision says so, else None (fp32).

    "auto" picks bf16 on a CUDA GPU that supports it; on a CPU only when a measured probe
    (cpu_precision, cached per machine, CPU model, torch version and dims) found bf16
    autocast at least BF16_MIN_SPEEDUP times faster than fp32 with steady timings (fp32
    when other work disturbed the probe). CPU flags are no guide:
    bf16 trained our nets 4-10x slower on AVX2-only CPUs and 1.4x slower on an AVX512-BF16
    CPU without AMX, yet faster on others. Other devices (MPS) train in fp32.
    """
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        return None
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if device.type == "cpu" and cpu_precision(dims).precision == "bf16":
        return torch.bfloat16
    return None


@dataclass(frozen=True)
class PrecisionChoice:
    """The CPU precision "auto" uses for nets of this many dims, and the timings behind it
    (median seconds per training step of the probe net; cached says it came from the cache)."""

    precision: str
    fp32_s: float
    bf16_s: float
    key: str
    cached: bool
    steady: bool = True


def prefers_bf16(fp32_s: float, bf16_s: float, min_speedup: float = BF16_MIN_SPEEDUP) -> bool:
    """Whether bf16 is clearly faster: fp32's step time over bf16's is at least min_speedup."""
    if not (fp32_s > 0 and bf16_s > 0):
        return False
    return fp32_s / bf16_s >= min_speedup


def is_steady(step_seconds: list[float], max_spread: float = PROBE_MAX_SPREAD) -> bool:
    """Whether a probe's step times agree: at least PROBE_MIN_PAIRS of them (fewer cannot
    show a spread) and slowest / fastest at most max_spread."""
    if len(step_seconds) < PROBE_MIN_PAIRS or min(step_seconds) <= 0:
        return False
    return max(step_seconds) / min(step_seconds) <= max_spread


def cpu_precision(
    dims: int, budget_s: float = PROBE_BUDGET_S, max_spread: float = PROBE_MAX_SPREAD
) -> PrecisionChoice:
    """This machine's measured CPU precision for dims: from the cache, else probed. Timings
    disturbed by other work (PROBE_MAX_SPREAD) prove nothing: fp32 for this run, not cached."""
    if dims not in PROBE_BATCHES:
        raise ModelError(f"the precision probe needs dims 2 or 3, got {dims!r}")
    key = machine_key(dims)
    path = cache_dir() / PRECISION_CACHE_FILE
    entry = read_precision_cache(path).get(key)
    if entry is not None:
        return PrecisionChoice(entry["precision"], entry["fp32_s"], entry["bf16_s"], key, True)
    times = probe_step_times(dims, budget_s)
    fp32_s, bf16_s = statistics.median(times["fp32"]), statistics.median(times["bf16"])
    steady = all(is_steady(samples, max_spread) for samples in times.values())
    precision = "bf16" if steady and prefers_bf16(fp32_s, bf16_s) else "fp32"
    if steady:
        record = {"precision": precision, "fp32_s": fp32_s, "bf16_s": bf16_s}
        record["measured"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        remember_precision(path, key, record)
    return PrecisionChoice(precision, fp32_s, bf16_s, key, False, steady)


def probe_step_times(dims: int, budget_s: float = PROBE_BUDGET_S) -> dict[str, list[float]]:
    """Seconds of each forward+backward step of a small conv net, fp32 and bf16 autocast.

    The net has the model's layer kinds (strided conv, batch-norm, LeakyReLU, transposed
    conv, channels-last) in 2D or 3D. After one warm-up step of each, the two run in
    alternating pairs (ABBA order, so drift hits both alike) until the budget is spent.
    The global random state is left untouched, so a probe never changes a training run.
    """
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net, batch = _probe_net(dims), torch.rand(PROBE_BATCHES[dims])
        layout = torch.channels_last if dims == 2 else torch.channels_last_3d
        net, batch = net.to(memory_format=layout), batch.contiguous(memory_format=layout)
        fp32 = _timed_step(net, batch, contextlib.nullcontext)
        bf16 = _timed_step(net, batch, lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        fp32(), bf16()  # warm-up: oneDNN builds its kernels on the first call
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for pair in range(PROBE_MAX_PAIRS):
            order = (("fp32", fp32), ("bf16", bf16))
            for name, step in order if pair % 2 == 0 else order[::-1]:
                times[name].append(step())
            if pair + 1 >= PROBE_MIN_PAIRS and time.perf_counter() - started > budget_s:
                break
    return times


def _probe_net(dims: int) -> torch.nn.Module:
    """A small encoder-decoder of the model's layer kinds, 1 channel in and out."""
    from torch import nn

    conv, up, norm = (
        (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d)
        if dims == 2
        else (nn.Conv3d, nn.ConvTranspose3d, nn.BatchNorm3d)
    )
    return nn.Sequential(
        conv(1, 16, 3, 2, 1), norm(16), nn.LeakyReLU(),
        conv(16, 32, 3, 2, 1), norm(32), nn.LeakyReLU(),
        up(32, 16, 4, 2, 1), norm(16), nn.LeakyReLU(),
        up(16, 1, 4, 2, 1),
    )  # fmt: skip


def _timed_step(
    net: torch.nn.Module, batch: torch.Tensor, context: Callable[[], Any]
) -> Callable[[], float]:
    """A function running one BCE training step (no optimiser) and returning its seconds."""
    import torch.nn.functional as F

    def step() -> float:
        started = time.perf_counter()
        with context():
            logits = net(batch)
        F.binary_cross_entropy_with_logits(logits.float(), batch).backward()
        net.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    return step


# -- the per-machine cache ------------------------------------------------------------------
def machine_key(dims: int) -> str:
    """What a cached precision holds for: CPU model (and a hash of its flags, since virtual
    machines often report only a family name), torch version and dims."""
    model, flags = _cpu_identity()
    digest = hashlib.sha256(flags.encode()).hexdigest()[:12]
    return f"{model} | flags {digest} | torch {torch.__version__} | {dims}D"


def _cpu_identity() -> tuple[str, str]:
    """The CPU's model name and its feature-flag line (Linux /proc/cpuinfo, else platform)."""
    model, flags = "", ""
    with contextlib.suppress(OSError):
        for line in (
            Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
        ):
            name, _, value = line.partition(":")
            name = name.strip()
            if name in ("model name", "Model", "cpu model") and not model:
                model = value.strip()
            elif name in ("flags", "Features") and not flags:
                flags = " ".join(sorted(value.split()))
    return model or platform.processor() or platform.machine() or "unknown CPU", flags


def read_precision_cache(path: Path) -> dict[str, dict[str, Any]]:
    """The cached decisions by machine key; a missing or corrupt file (or entry) counts as none,
    and is rewritten by the next probe."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(data, dict) or data.get("format") != PRECISION_CACHE_FORMAT:
        return {}
    decisions = data.get("decisions")
    if not isinstance(decisions, dict):
        return {}
    return {key: entry for key, entry in decisions.items() if _valid_entry(entry)}


def _valid_entry(entry: Any) -> bool:
    """A cached decision we can trust: a known precision and two positive timings."""
    return (
        isinstance(entry, dict)
        and entry.get("precision") in ("bf16", "fp32")
        and all(
            isinstance(entry.get(name), (int, float)) and entry[name] > 0
            for name in ("fp32_s", "bf16_s")
        )
    )


def remember_precision(path: Path, key: str, record: dict[str, Any]) -> None:
    """Add one decision to the cache file atomically (temporary file, then rename); a cache
    that cannot be written only costs a probe next time, so it warns instead of failing."""
    decisions = {**read_precision_cache(path), key: record}
    content = json.dumps(
        {"format": PRECISION_CACHE_FORMAT, "decisions": decisions}, indent=2, sort_keys=True
    )
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(content + "\n")
        os.chmod(temporary, file_mode())  # mkstemp makes it 0600
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        warnings.warn(
            f"{path}: could not write the precision cache ({error}); the probe will run again",
            stacklevel=2,
        )


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
