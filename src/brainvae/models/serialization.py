"""Model folders on disk: config.json + weights.safetensors, written atomically, never pickled."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from brainvae.atomic import atomic_folder
from brainvae.errors import NO_ROOM_ERRNOS, DataFileError, DiskFullError, ModelError
from brainvae.file_modes import give_usual_modes
from brainvae.json_files import read_json_file
from brainvae.models.config import FORMAT_NAME, ModelConfig
from brainvae.models.config_schema import check_config_dict
from brainvae.models.memory_budget import check_footprint, model_footprint
from brainvae.run_folder import RunFolder

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".joblib")
NEVER_UNPICKLED = "brainvae never loads pickles or torch.save files, which can run code when read"


def save_safetensors(
    tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None
) -> None:
    """safetensors' save_file, with no room to write (its Rust I/O error, "os error 28")
    raised as a DiskFullError naming `path` rather than an opaque SafetensorError."""
    from safetensors.torch import save_file

    try:
        save_file(tensors, str(path), metadata=metadata)
    except Exception as error:
        if isinstance(error, OSError):
            raise
        found = re.search(r"os error (\d+)", str(error))
        if found and int(found.group(1)) in NO_ROOM_ERRNOS:
            raise DiskFullError(path, code=int(found.group(1))) from error
        raise


def write_checkpoint(
    folder: str | Path, config_json: str, tensors: dict[str, torch.Tensor]
) -> Path:
    """Write into a temporary sibling folder, then rename it into place (replacing an old model).

    Files and folder get the umask's usual modes, so others who may read the folder can load it.
    No room to write is a DiskFullError naming the model folder; the temporary folder goes.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataFileError(folder, "exists and is not a folder; a saved model is a folder")
    if (
        folder.is_dir()
        and any(folder.iterdir())
        and not (folder / RunFolder.MODEL_CONFIG).is_file()
    ):
        raise DataFileError(
            folder, "is a non-empty folder that holds no saved model; not overwriting it"
        )
    with atomic_folder(folder) as temporary:
        save_safetensors(tensors, temporary / RunFolder.WEIGHTS, metadata={"format": FORMAT_NAME})
        (temporary / RunFolder.MODEL_CONFIG).write_text(config_json)
        give_usual_modes(temporary)
    return folder


def read_config(folder: str | Path, families: Iterable[str]) -> ModelConfig:
    """Read and validate config.json (format, version, family) before any weights are touched."""
    folder = Path(folder)
    if not folder.is_dir():
        if folder.is_file() and (folder.suffix in PICKLE_SUFFIXES or looks_pickled(folder)):
            raise DataFileError(
                folder, f"is a pickled checkpoint, not a model folder; {NEVER_UNPICKLED}"
            )
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise DataFileError(
            folder,
            f"{problem}; a saved model is a folder with {RunFolder.MODEL_CONFIG} and {RunFolder.WEIGHTS}",
        )
    config_path = folder / RunFolder.MODEL_CONFIG
    if not config_path.is_file():
        raise DataFileError(config_path, "is missing: this folder is not a saved brainvae model")
    data = read_json_file(config_path)  # size and nesting depth limited
    if isinstance(data, dict) and data.get("format") == FORMAT_NAME:
        check_config_dict(data, config_path)  # each field's type and range, naming it
    try:
        config = ModelConfig.from_dict(data)
    except ModelError as error:
        raise DataFileError(config_path, str(error)) from error
    known = sorted(families)
    if config.family not in known:
        raise DataFileError(
            config_path, f"unknown model family {config.family!r}; known: {', '.join(known)}"
        )
    return config


def load_checked(
    folder: str | Path,
    config: ModelConfig,
    build: Callable[[], Any],
    memory_budget: int | None = None,
) -> Any:
    """The model (a LatentModel; not imported here: base imports this module) `build` makes of the checked `config`, with the folder's weights, in eval mode.

    Before anything is allocated the model is built on the meta device: its memory (weights and
    one image's activations) must fit memory_budget bytes (None: BRAINVAE_MODEL_MEMORY_BUDGET,
    else half the machine's memory), and the weights file's header must match its parameters.
    """
    folder = RunFolder(folder)
    try:
        footprint, shapes = model_footprint(build)
    except ModelError as error:
        raise DataFileError(folder.model_config, str(error)) from error
    except (RuntimeError, OverflowError) as error:  # sizes past what torch can even describe
        raise DataFileError(
            folder.model_config,
            f"fields input_shape/latent_dim/network describe a model too large to build: {error}",
        ) from error
    check_footprint(footprint, folder.model_config, memory_budget)
    tensors = read_weights(folder.path, expected=shapes.state_dict())
    model = build()
    model.load_tensors(tensors, folder.weights)
    return model.eval()


def read_weights(
    folder: str | Path, expected: dict[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """Tensors of weights.safetensors; anything safetensors rejects, or a pickle, is refused.

    expected (a state dict, e.g. of a model built on the meta device): the file's header is
    checked against its names, shapes and dtypes before any tensor is read.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    weights_path = folder / RunFolder.WEIGHTS
    if not weights_path.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        found = f"; found {', '.join(pickles)}: {NEVER_UNPICKLED}" if pickles else ""
        raise DataFileError(weights_path, f"is missing{found}")
    if looks_pickled(weights_path):
        raise DataFileError(
            weights_path,
            f"holds a pickle or torch.save archive, not safetensors; {NEVER_UNPICKLED}",
        )
    if expected is not None:
        check_tensor_layout(tensor_layout(weights_path), expected, weights_path)
    try:
        return load_file(str(weights_path))
    except Exception as error:  # safetensors raises its own error types; all mean "unusable"
        raise DataFileError(
            weights_path, f"is not a valid safetensors file (truncated or corrupt?): {error}"
        ) from error


SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
STORED_FLOAT_DTYPES = (torch.float32, torch.bfloat16)
"""What a float32 parameter may be stored as: float32, or bfloat16 (widened exactly on load)."""


def tensor_layout(path: Path) -> dict[str, tuple[tuple[int, ...], torch.dtype | str]]:
    """Name -> (shape, dtype) from a safetensors header, reading no tensor data."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            layout = {}
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                piece = handle.get_slice(name)
                dtype = piece.get_dtype()
                layout[name] = (tuple(piece.get_shape()), SAFETENSORS_DTYPES.get(dtype, dtype))
            return layout
    except Exception as error:  # safetensors raises its own error types; all mean "unusable"
        raise DataFileError(
            path, f"is not a valid safetensors file (truncated or corrupt?): {error}"
        ) from error


def check_tensor_layout(
    found: dict[str, tuple[tuple[int, ...], torch.dtype | str]],
    expected: dict[str, torch.Tensor],
    path: str | Path,
) -> None:
    """Same names, shapes and dtypes as the model's state dict (float32 may come as bfloat16)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise DataFileError(
            path,
            "weights do not match the model this configuration describes: "
            f"missing {_few(missing)}; unexpected {_few(unexpected)}",
        )
    for name, (shape, dtype) in found.items():
        want = expected[name]
        if tuple(shape) != tuple(want.shape):
            raise DataFileError(
                path,
                f"weight {name!r} has shape {tuple(shape)}, the config needs {tuple(want.shape)}",
            )
        allowed = STORED_FLOAT_DTYPES if want.dtype == torch.float32 else (want.dtype,)
        if dtype not in allowed:
            raise DataFileError(
                path,
                f"weight {name!r} is stored as {dtype}; this model keeps it as "
                f"{' or '.join(str(a) for a in allowed)}",
            )


def _few(names: list[str], limit: int = 4) -> str:
    if not names:
        return "none"
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def looks_pickled(path: Path) -> bool:
    """Whether a file is a pickle (protocol >= 2: 0x80, version) or a torch.save zip ("PK").

    A safetensors file starts with its header's length (8 bytes, little-endian) and then "{";
    a header of 128 + 256 k bytes makes its first byte 0x80 too, so that file is not a pickle.
    """
    with open(path, "rb") as handle:
        head = handle.read(9)
    if head[:4] == b"PK\x03\x04":
        return True
    if head[:1] != b"\x80" or len(head) < 2 or head[1] not in (2, 3, 4, 5):
        return False
    return head[8:9] != b"{"
