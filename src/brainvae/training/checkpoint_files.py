"""The pieces a checkpoint is stored as: nested optimiser state as JSON plus named tensors,
safetensors and size-limited JSON read back without unpickling, and files synced to disk."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from brainvae.errors import DataFileError, ModelError
from brainvae.json_files import read_json_file
from brainvae.models.serialization import NEVER_UNPICKLED, looks_pickled

MAX_STATE_BYTES = 256 * 2**20
"""state.json and optimizer.json grow with epochs and layers; a real one is well below this."""


def storable(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to("cpu").contiguous().clone()


def encode_state(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON form of a nested state: tensors go to the tensors dict, replaced by their key."""
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}:{path}"
        tensors[key] = storable(value)
        return {"__tensor__": key}
    if isinstance(value, dict):
        return {
            "__dict__": [[k, encode_state(v, f"{path}.{k}", tensors)] for k, v in value.items()]
        }
    if isinstance(value, tuple):
        return {"__tuple__": [encode_state(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode_state(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ModelError(f"optimiser state holds a {type(value).__name__} at {path}; cannot store it")


def decode_state(value: Any, tensors: dict[str, torch.Tensor], source: str) -> Any:
    """Inverse of encode_state; only plain JSON values and stored tensors come back
    (`source`: the file the tensors came from, named when one is missing)."""
    if isinstance(value, list):
        return [decode_state(v, tensors, source) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            key = value["__tensor__"]
            if key not in tensors:
                raise ValueError(f"optimiser tensor {key!r} is missing from {source}")
            return tensors[key]
        if set(value) == {"__tuple__"}:
            return tuple(decode_state(v, tensors, source) for v in value["__tuple__"])
        if set(value) == {"__dict__"}:
            return {_key(k): decode_state(v, tensors, source) for k, v in value["__dict__"]}
        raise ValueError(f"unexpected object with keys {sorted(value)}")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"unexpected value {value!r}")


def _key(key: Any) -> Any:
    if key is None or isinstance(key, bool | int | float | str):
        return key
    raise ValueError(f"unexpected dictionary key {key!r}")


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if looks_pickled(path):
        raise DataFileError(path, f"holds a pickle or torch.save archive; {NEVER_UNPICKLED}")
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own types; all mean "unusable"
        raise DataFileError(
            path, f"is not a valid safetensors file (truncated or corrupt?): {error}"
        ) from error


def read_state_json(path: Path) -> Any:
    if looks_pickled(path):
        raise DataFileError(path, f"holds a pickle or torch.save archive; {NEVER_UNPICKLED}")
    return read_json_file(path, MAX_STATE_BYTES)  # size and nesting depth limited


def write_state_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, allow_nan=False)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def read_count(data: dict[str, Any], name: str) -> int:
    value = data[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a count >= 0, got {value!r}")
    return value
