"""Full training state on disk, written atomically and read back without unpickling anything.

A checkpoint is a folder run_dir/checkpoints/epoch-EEEE[-batch-BBBB]/ holding model and
optimiser tensors (safetensors), the optimiser's non-tensor structure (JSON), the RNG states
and the loop position (state.json). It is built in a temporary sibling folder and renamed
into place, so a crash mid-write leaves the previous checkpoints as they were.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from brainvae.atomic import atomic_folder
from brainvae.errors import DataFileError, DiskFullError
from brainvae.file_modes import give_usual_modes
from brainvae.models.serialization import save_safetensors
from brainvae.run_folder import RunFolder
from brainvae.training.checkpoint_checks import (
    check_cuda_state,
    check_generator_state,
    check_loop_state,
    check_numpy_random,
    check_optimizer_state,
    check_python_random,
)
from brainvae.training.checkpoint_files import (
    decode_state,
    encode_state,
    fsync_folder,
    read_count,
    read_state_json,
    read_tensors,
    storable,
    write_state_json,
)
from brainvae.training.random_state import RandomState

if TYPE_CHECKING:
    from brainvae.training.adversarial import OptimizerPair

FORMAT_NAME = "brainvae-checkpoint"
FORMAT_VERSION = 1
KEEP = 2
"""Complete checkpoints kept; older ones are removed only after a newer one is in place."""

MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
OPTIMIZER_STRUCTURE_FILE = "optimizer.json"
RNG_FILE = "rng.safetensors"
STATE_FILE = "state.json"
FILES = (MODEL_FILE, OPTIMIZER_FILE, OPTIMIZER_STRUCTURE_FILE, RNG_FILE, STATE_FILE)
NAME_PATTERN = re.compile(r"^epoch-(\d+)(?:-batch-(\d+))?$")


@dataclass
class TrainingState:
    """Where the loop stands: completed epochs, batches done in the current one, and so on.

    epoch_order is the current epoch's data order (only while mid-epoch); epoch_sums are
    that epoch's running loss sums, so its mean comes out exactly as without the stop.
    """

    epoch: int
    batch: int
    step: int
    history: list[dict[str, Any]]
    train_config: dict[str, Any]
    model_config: dict[str, Any]
    epoch_sums: dict[str, float] = field(default_factory=dict)
    epoch_order: torch.Tensor | None = None


def checkpoint_name(epoch: int, batch: int) -> str:
    """epoch-0003 at an epoch boundary, epoch-0003-batch-0007 when stopped inside epoch 4."""
    return f"epoch-{epoch:04d}" + (f"-batch-{batch:04d}" if batch else "")


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoint folders, oldest first (temporary folders are not listed).

    A checkpoints entry that is a file, not a folder, is refused rather than skipped: skipping
    it would quietly resume from an older checkpoint, or start the run again.
    """
    folder = RunFolder(run_dir).checkpoints
    if folder.exists() and not folder.is_dir():
        raise DataFileError(folder, "is a file; a run keeps its checkpoints in this folder")
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = NAME_PATTERN.match(path.name)
        if match and not path.is_dir():
            raise DataFileError(path, "is a file; a checkpoint is a folder (remove or rename it)")
        if match:
            found.append(((int(match.group(1)), int(match.group(2) or 0)), path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(
    run_dir: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | OptimizerPair,
    state: TrainingState,
    randomness: RandomState,
) -> Path:
    """Write a checkpoint atomically, then drop all but the newest KEEP; returns its folder.

    Its files get the umask's usual modes, so whoever may read the run folder can resume it.
    No room to write is a DiskFullError naming the checkpoint; the temporary folder goes.
    """
    parent = RunFolder(run_dir).checkpoints
    if parent.exists() and not parent.is_dir():
        raise DataFileError(parent, "is a file; a run keeps its checkpoints in this folder")
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / checkpoint_name(state.epoch, state.batch)
    metadata = {"format": FORMAT_NAME}
    try:
        with atomic_folder(final) as temporary:
            model_tensors = {k: storable(v) for k, v in model.state_dict().items()}
            save_safetensors(model_tensors, temporary / MODEL_FILE, metadata=metadata)
            optimizer_tensors: dict[str, torch.Tensor] = {}
            structure = encode_state(optimizer.state_dict(), "optimizer", optimizer_tensors)
            save_safetensors(optimizer_tensors, temporary / OPTIMIZER_FILE, metadata=metadata)
            write_state_json(temporary / OPTIMIZER_STRUCTURE_FILE, structure)
            rng_tensors = {"torch_cpu": randomness.torch_cpu, "data_order": randomness.data_order}
            rng_tensors |= {f"cuda_{i}": t for i, t in randomness.cuda.items()}
            if state.epoch_order is not None:
                rng_tensors["epoch_order"] = state.epoch_order.to(torch.int64)
            rng_storable = {k: storable(v) for k, v in rng_tensors.items()}
            save_safetensors(rng_storable, temporary / RNG_FILE)
            write_state_json(
                temporary / STATE_FILE,
                {
                    "format": FORMAT_NAME,
                    "format_version": FORMAT_VERSION,
                    "epoch": state.epoch,
                    "batch": state.batch,
                    "step": state.step,
                    "history": state.history,
                    "epoch_sums": state.epoch_sums,
                    "train_config": state.train_config,
                    "model_config": state.model_config,
                    "python_random": randomness.python,
                    "numpy_random": randomness.numpy,
                },
            )
            give_usual_modes(temporary)  # safetensors writes 0600
            fsync_folder(temporary)
    except DiskFullError:
        raise
    except (OSError, ValueError, TypeError) as error:
        raise DataFileError(final, f"checkpoint could not be written: {error}") from error
    for old in list_checkpoints(run_dir)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


@dataclass
class LoadedCheckpoint:
    """A checkpoint read and checked, not yet applied to a model."""

    folder: Path
    state: TrainingState
    randomness: RandomState
    model_tensors: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]


def read_checkpoint(folder: str | Path) -> LoadedCheckpoint:
    """Read every file of a checkpoint, refusing pickles and corrupt or truncated files.

    Counts, history rows, running sums, the data order and every random state are checked
    here (checkpoint_checks), each refusal naming the file and the field.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(folder, "is not a folder; a checkpoint is a folder of files")
    for name in FILES:
        if not (folder / name).is_file():
            raise DataFileError(folder / name, "is missing: this checkpoint is incomplete")
    model_tensors = read_tensors(folder / MODEL_FILE)
    optimizer_tensors = read_tensors(folder / OPTIMIZER_FILE)
    rng_tensors = read_tensors(folder / RNG_FILE)
    structure = read_state_json(folder / OPTIMIZER_STRUCTURE_FILE)
    data = read_state_json(folder / STATE_FILE)
    state_path = folder / STATE_FILE
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise DataFileError(state_path, f"is not a {FORMAT_NAME} state file")
    version = data.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise DataFileError(
            state_path,
            f"checkpoint format version {version!r} is not one this brainvae reads "
            f"(1..{FORMAT_VERSION}): upgrade napari-brainvae to resume it",
        )
    check_loop_state(data, rng_tensors.get("epoch_order"), state_path, folder / RNG_FILE)
    rng_path = folder / RNG_FILE
    for name in ("torch_cpu", "data_order"):
        check_generator_state(rng_tensors.get(name), rng_path, name, torch.get_rng_state())
    for name in rng_tensors:
        if name.startswith("cuda_"):
            if not name[5:].isdigit():
                raise DataFileError(rng_path, f"{name}: not a CUDA device's state")
            check_cuda_state(rng_tensors[name], rng_path, name)
    unknown = sorted(set(rng_tensors) - {"torch_cpu", "data_order", "epoch_order"})
    unknown = [name for name in unknown if not name.startswith("cuda_")]
    if unknown:
        raise DataFileError(rng_path, f"unknown entries {', '.join(unknown)}")
    check_python_random(data.get("python_random"), state_path)
    check_numpy_random(data.get("numpy_random"), state_path)
    try:
        optimizer_state = decode_state(structure, optimizer_tensors, OPTIMIZER_FILE)
        state = TrainingState(
            epoch=read_count(data, "epoch"),
            batch=read_count(data, "batch"),
            step=read_count(data, "step"),
            history=list(data["history"]),
            train_config=dict(data["train_config"]),
            model_config=dict(data["model_config"]),
            epoch_sums={k: float(v) for k, v in dict(data["epoch_sums"]).items()},
            epoch_order=rng_tensors.get("epoch_order"),
        )
        randomness = RandomState(
            torch_cpu=rng_tensors["torch_cpu"],
            data_order=rng_tensors["data_order"],
            python=list(data["python_random"]),
            numpy=dict(data["numpy_random"]),
            cuda={
                int(k.split("_", 1)[1]): v for k, v in rng_tensors.items() if k.startswith("cuda_")
            },
        )
    except (KeyError, TypeError, ValueError) as error:
        raise DataFileError(folder, f"checkpoint contents are malformed: {error!r}") from error
    return LoadedCheckpoint(folder, state, randomness, model_tensors, optimizer_state)


def apply_checkpoint(
    loaded: LoadedCheckpoint, model: Any, optimizer: torch.optim.Optimizer | OptimizerPair
) -> None:
    """Copy weights (checked by the model) and optimiser state (one Adam or a pair) into place.

    The optimiser state is checked against the live parameters first: a moment of another
    shape would make the fused Adam kernel write out of bounds on the next step.
    """
    model.load_tensors(loaded.model_tensors, loaded.folder / MODEL_FILE)
    check_optimizer_fits(loaded, optimizer)
    try:
        optimizer.load_state_dict(loaded.optimizer_state)
    except (KeyError, ValueError, TypeError, IndexError) as error:
        raise DataFileError(
            loaded.folder / OPTIMIZER_STRUCTURE_FILE,
            f"optimiser state does not fit this model's optimiser: {error}",
        ) from error
    for single in getattr(optimizer, "encoder", None), getattr(optimizer, "decoder", None):
        if single is not None:
            match_parameter_layout(single)
    if isinstance(optimizer, torch.optim.Optimizer):
        match_parameter_layout(optimizer)


def check_optimizer_fits(
    loaded: LoadedCheckpoint, optimizer: torch.optim.Optimizer | OptimizerPair
) -> None:
    """Each saved Adam state (one, or the encoder's and the decoder's) fits its optimiser."""
    path, tensors_path = loaded.folder / OPTIMIZER_STRUCTURE_FILE, loaded.folder / OPTIMIZER_FILE
    state = loaded.optimizer_state
    if isinstance(optimizer, torch.optim.Optimizer):
        check_optimizer_state(state, optimizer, path, tensors_path)
        return
    parts = {"encoder": optimizer.encoder, "decoder": optimizer.decoder}
    if not isinstance(state, dict) or set(state) != set(parts):
        raise DataFileError(
            path, "optimizer: must hold an 'encoder' and a 'decoder' state (this model trains both)"
        )
    for name, single in parts.items():
        check_optimizer_state(state[name], single, path, tensors_path, f"optimizer.{name}")


def match_parameter_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give each per-parameter state tensor its parameter's memory layout.

    Checkpoints store tensors contiguous; a channels-last conv weight's Adam moments must be
    channels-last again, or the fused Adam kernel, which walks memory in order, pairs each
    weight with another element's moment (measured: a resumed run drifted 6 % in loss).
    """
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            for key, value in optimizer.state.get(parameter, {}).items():
                if (
                    isinstance(value, torch.Tensor)
                    and value.shape == parameter.shape
                    and value.stride() != parameter.stride()
                ):
                    optimizer.state[parameter][key] = torch.empty_like(parameter).copy_(value)
