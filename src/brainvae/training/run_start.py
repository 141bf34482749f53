"""Starting or resuming a run in its folder: what identifies a run (its model and its data),
the run record (run.json) written at the start, and the refusals (a different run, nothing
to resume, a folder that is not a run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from brainvae.atomic import atomic_file, has_partial
from brainvae.data.run_dataset import dataset_record
from brainvae.errors import ModelError
from brainvae.run_folder import RunFolder
from brainvae.training import distributed
from brainvae.training.checkpoint import LoadedCheckpoint, latest_checkpoint, read_checkpoint
from brainvae.training.config import TrainConfig

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models.base import LatentModel

RUN_FORMAT = "brainvae-run"


def model_identity(model: LatentModel) -> dict[str, Any]:
    """The model config without the parts training fills in (summary, preprocessing)."""
    data = model.config.to_dict()
    data.pop("training", None)
    data.pop("preprocessing", None)
    return data


def dataset_identity(dataset: PreparedDataset) -> dict[str, Any]:
    return {
        "path": str(dataset.path),
        "n_samples": len(dataset.images),
        "sample_shape": list(dataset.images.shape[1:]),
        "n_train": len(dataset.indices("train")),
    }


def open_run_dir(
    run_dir: Path,
    model: LatentModel,
    dataset: PreparedDataset,
    config: TrainConfig,
    resume: bool,
    overwrite: bool,
    ranks: distributed.Ranks,
    device: torch.device,
) -> LoadedCheckpoint | None:
    """prepare_run_dir on rank 0; other ranks wait, then read the same checkpoint.

    Rank 0's refusal (a different run, nothing to resume...) is raised on every rank.
    """
    if not ranks.active:
        return prepare_run_dir(run_dir, model, dataset, config, resume, overwrite, 1)
    loaded, outcome = None, None
    if ranks.writes:
        try:
            loaded = prepare_run_dir(
                run_dir, model, dataset, config, resume, overwrite, ranks.world_size
            )
            outcome = "start" if loaded is None else f"resume:{loaded.folder}"
        except ModelError as error:
            outcome = f"error:{error}"
    outcome = distributed.from_rank_zero(outcome, device) or ""
    kind, _, detail = outcome.partition(":")
    if kind == "error":
        raise ModelError(detail)
    if kind == "resume" and not ranks.writes:
        loaded = read_checkpoint(Path(detail))
    return loaded


def prepare_run_dir(
    run_dir: Path,
    model: LatentModel,
    dataset: PreparedDataset,
    config: TrainConfig,
    resume: bool,
    overwrite: bool,
    world_size: int,
) -> LoadedCheckpoint | None:
    """Check the folder fits the request; give the checkpoint to resume from, if any."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ModelError(f"{run_dir}: exists and is not a folder; a run is a folder")
    folder = RunFolder(run_dir)
    run_file = folder.run_record
    if resume and run_file.is_file():
        check_same_run(run_dir, model, dataset, config, world_size)
        for stale in folder.checkpoints.glob(".*"):
            shutil.rmtree(stale, ignore_errors=True)
        found = latest_checkpoint(run_dir)
        if found is None and folder.holds_model():
            raise ModelError(
                f"{run_dir}: nothing to resume: it holds a saved model but no checkpoint in "
                f"{RunFolder.CHECKPOINTS}/; start again with overwrite=True"
            )
        if found is None:  # killed before its first checkpoint: nothing done, start at 0
            return None
        loaded = read_checkpoint(found)
        if loaded.state.model_config != model_identity(model):
            raise ModelError(f"{found}: this checkpoint is of a different model configuration")
        return loaded
    interrupted = not run_file.is_file() and interrupted_run(run_dir)
    if resume and interrupted:
        raise ModelError(
            f"{run_dir}: nothing to resume: the run was interrupted before it wrote "
            f"{RunFolder.RUN_RECORD}; start again with overwrite=True"
        )
    if resume:
        raise ModelError(
            f"{run_dir}: nothing to resume (no {RunFolder.RUN_RECORD}); start a new run without resume"
        )
    if run_dir.is_dir() and any(run_dir.iterdir()):
        is_run = run_file.is_file() or folder.holds_model() or interrupted
        if not overwrite and interrupted:
            raise ModelError(
                f"{run_dir}: holds a run interrupted before it wrote {RunFolder.RUN_RECORD}; "
                "start again with overwrite=True, or choose an empty folder"
            )
        if not overwrite:
            what = "a training run" if is_run else "other files"
            raise ModelError(
                f"{run_dir}: already holds {what}; pass resume=True to continue it, "
                "overwrite=True to replace it, or choose an empty folder"
            )
        if not is_run:
            raise ModelError(
                f"{run_dir}: is not a brainvae run folder; not deleting its contents even "
                "with overwrite"
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "format": RUN_FORMAT,
        "train_config": config.to_dict(),
        "model_config": model_identity(model),
        "dataset": {**dataset_identity(dataset), **dataset_record(dataset.path, run_dir)},
        "processes": world_size,
    }
    with atomic_file(run_file) as temporary:
        temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return None


def interrupted_run(run_dir: Path) -> bool:
    """Whether the folder holds what a run writes before or instead of run.json: its
    temporary record, checkpoints/ or a saved model (a run killed while starting, or a
    folder whose run.json was lost). Such a folder can only be started again."""
    if not run_dir.is_dir():
        return False
    folder = RunFolder(run_dir)
    if has_partial(folder.run_record):
        return True
    if folder.holds_model() or folder.weights.is_file():
        return True
    return folder.checkpoints.is_dir()


def check_same_run(
    run_dir: Path,
    model: LatentModel,
    dataset: PreparedDataset,
    config: TrainConfig,
    world_size: int,
) -> None:
    """Resume only the run this folder holds: same model, same data layout, same seed."""
    run_file = RunFolder(run_dir).run_record
    try:
        record = json.loads(run_file.read_text(encoding="utf-8"))
        previous = TrainConfig.from_dict(record["train_config"])
        model_config, data = record["model_config"], record["dataset"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ModelError(f"{run_file}: unreadable run record ({error})") from error
    if not isinstance(record, dict) or record.get("format") != RUN_FORMAT:
        raise ModelError(f"{run_file}: not a {RUN_FORMAT} record")
    for key in ("train_config", "model_config", "dataset"):
        if not isinstance(record.get(key), dict):
            raise ModelError(
                f"{run_file}: damaged run record: field {key} is {record.get(key)!r}, "
                "expected an object"
            )
    processes = record.get("processes", 1)
    if not isinstance(processes, int) or isinstance(processes, bool) or processes < 1:
        raise ModelError(
            f"{run_file}: damaged run record: field processes is {processes!r}, expected a "
            "whole number >= 1"
        )
    current = model_identity(model)
    differing = sorted(
        k for k in set(current) | set(model_config) if current.get(k) != model_config.get(k)
    )
    if differing:
        raise ModelError(
            f"{run_dir}: holds a different run (model differs in {', '.join(differing)}); "
            "resume with the same model, or start a new run folder"
        )
    now = dataset_identity(dataset)
    changed = [k for k in ("n_samples", "sample_shape", "n_train") if now[k] != data.get(k)]
    if changed:
        raise ModelError(
            f"{run_dir}: holds a run on different data ({', '.join(changed)} differ from "
            f"{data.get('path')}); resume with the same dataset"
        )
    conflicts = config.resume_conflicts(previous)
    if conflicts:
        raise ModelError(
            f"{run_dir}: cannot resume with a different {'; '.join(conflicts)} "
            "(they fix the data order)"
        )
    processes = record.get("processes", 1)
    if processes != world_size:
        raise ModelError(
            f"{run_dir}: was trained by {processes} process(es) and cannot resume with "
            f"{world_size} (the number of processes fixes the data order); use "
            f"torchrun --nproc_per_node {processes}"
            if processes > 1
            else f"{run_dir}: was trained by 1 process and cannot resume with {world_size} "
            "(the number of processes fixes the data order); resume without torchrun"
        )
