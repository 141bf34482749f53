"""Every random stream a training loop draws from, captured and put back, so a resumed run
draws the same numbers as one never stopped (torch CPU and CUDA, numpy, python, data order)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class RandomState:
    """Every random stream the loop draws from, in storable form."""

    torch_cpu: torch.Tensor
    data_order: torch.Tensor
    python: list[Any]
    numpy: dict[str, Any]
    cuda: dict[int, torch.Tensor] = field(default_factory=dict)


def capture_random_state(data_generator: torch.Generator) -> RandomState:
    """Snapshot torch (CPU and CUDA), numpy, python and the data-order generator."""
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    numpy_state = {
        **numpy_state,
        "state": {k: np.asarray(v).tolist() for k, v in numpy_state["state"].items()},
    }
    cuda = {}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = {i: torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())}
    return RandomState(
        torch_cpu=torch.get_rng_state(),
        data_order=data_generator.get_state(),
        python=[version, list(internal), gauss],
        numpy=numpy_state,
        cuda=cuda,
    )


def restore_random_state(state: RandomState, data_generator: torch.Generator) -> None:
    """Put every random stream back where the snapshot left it."""
    torch.set_rng_state(state.torch_cpu)
    data_generator.set_state(state.data_order)
    version, internal, gauss = state.python
    random.setstate((version, tuple(internal), gauss))
    numpy_state = dict(state.numpy)
    numpy_state["state"] = {
        k: np.asarray(v, dtype=np.uint32) if k == "key" else v
        for k, v in numpy_state["state"].items()
    }
    np.random.set_state(numpy_state)
    for index, value in state.cuda.items():
        if torch.cuda.is_available() and index < torch.cuda.device_count():
            torch.cuda.set_rng_state(value, index)
