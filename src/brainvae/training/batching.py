"""The data side of training: the train and evaluation rows, a check that the images fit
the model before anything is written, and batches read ahead in threads.

A model that asks for a condition (a `condition_column` attribute, as the age_vae family has)
also gets each batch's values of that metadata column; rows without a value are refused before
anything is written. Every other model's batches are the images alone, as before."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import torch

from brainvae.errors import ModelError
from brainvae.training.config import TrainConfig

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models.base import LatentModel


def split_rows(dataset: PreparedDataset) -> tuple[np.ndarray, np.ndarray, bool]:
    """Training rows, evaluation rows (val, or train when there is no val split), has_val."""
    train_rows = dataset.indices("train")
    val_rows = dataset.indices("val")
    if len(train_rows) == 0:
        raise ModelError(f"{dataset.path}: the dataset has no training split to train on")
    has_val = len(val_rows) > 0
    return train_rows, val_rows if has_val else train_rows, has_val


def condition_column(model: LatentModel) -> str | None:
    """The metadata column the model's loss needs per scan, or None (every family but age_vae)."""
    column = getattr(model, "condition_column", None)
    return column if isinstance(column, str) else None


def condition_values(
    model: LatentModel, dataset: PreparedDataset, rows: np.ndarray | None = None
) -> np.ndarray | None:
    """Every row's value of the model's condition column (float64, NaN where missing), or None
    when the model takes no condition. Refuses a missing column (naming those there are) and,
    among `rows`, values that are missing or not numbers (naming the column and the count)."""
    table_of = getattr(model, "condition_table", None)
    if callable(table_of):  # several columns per scan (the longitudinal VAE's visit pairs)
        return table_of(dataset.metadata, rows, where=dataset.path)
    column = condition_column(model)
    if column is None:
        return None
    metadata = dataset.metadata
    if column not in metadata.columns:
        raise ModelError(
            f"{dataset.path}: the model's condition column {column!r} is not in the dataset's "
            f"metadata (columns: {', '.join(map(str, metadata.columns))})"
        )
    import pandas as pd

    values = pd.to_numeric(metadata[column], errors="coerce").to_numpy(dtype=np.float64)
    if rows is not None:
        used = np.unique(rows)
        missing = used[~np.isfinite(values[used])]
        if len(missing):
            raise ModelError(
                f"{dataset.path}: {len(missing)} of the {len(used)} scans to train and evaluate "
                f"on have no numeric {column!r} value (first: {_name(dataset, missing[0])}); "
                f"fill in {column!r} in the subjects table or leave those scans out"
            )
    return values


def batch_conditions(conditions: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    """The condition values (or rows) of a batch's dataset rows, in the order its images come."""
    return torch.from_numpy(conditions[rows].astype(np.float32))


def check_data(model: LatentModel, dataset: PreparedDataset, rows: np.ndarray) -> None:
    """Refuse, before anything is written, data that do not fit the model or hold NaN/Inf
    (and, for a model that asks for a condition, rows without its value)."""
    condition_values(model, dataset, rows)
    config = model.config
    shape = tuple(dataset.images.shape[1:])
    expected = (config.channels, *config.input_shape)
    if shape != expected and not (config.channels == 1 and shape == tuple(config.input_shape)):
        raise ModelError(
            f"{dataset.path}: images of shape {shape} do not fit this model, which expects "
            f"{expected}" + (f" or {tuple(config.input_shape)}" if config.channels == 1 else "")
        )
    bernoulli = config.likelihood == "bernoulli"
    rows = np.unique(rows)
    for start in range(0, len(rows), 256):
        chunk = rows[start : start + 256]
        block = np.asarray(dataset.images[chunk]).reshape(len(chunk), -1)
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            raise ModelError(
                f"{dataset.path}: sample {_name(dataset, chunk[np.argmax(bad)])} contains NaN or "
                "Inf values; prepare the dataset again with nonfinite='zero'"
            )
        if bernoulli and (block.min() < 0 or block.max() > 1):
            row = chunk[np.argmax((block < 0).any(axis=1) | (block > 1).any(axis=1))]
            raise ModelError(
                f"{dataset.path}: sample {_name(dataset, row)} has values outside [0, 1], which "
                "the Bernoulli likelihood cannot score: rescale the data or use "
                "likelihood='gaussian'"
            )


def _name(dataset: PreparedDataset, row: int) -> str:
    return f"{int(row)} (subject {dataset.metadata['subject_id'].iloc[int(row)]})"


def read_rows(images: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(images[rows], dtype=np.float32))


def batches(
    images: np.ndarray, plan: list[np.ndarray], first: int, config: TrainConfig
) -> Iterator[tuple[int, torch.Tensor]]:
    """(batch index, images) from batch first on, each batch's dataset rows from the epoch's
    plan (brainvae.training.epoch_plan); threads read ahead."""
    n_batches = len(plan)
    if config.num_workers == 0:
        for b in range(first, n_batches):
            yield b, read_rows(images, plan[b])
        return
    with ThreadPoolExecutor(config.num_workers, thread_name_prefix="brainvae-read") as pool:
        pending: dict[int, Future] = {}
        for b in range(first, n_batches):
            for ahead in range(b, min(b + config.num_workers + 1, n_batches)):
                if ahead not in pending:
                    pending[ahead] = pool.submit(read_rows, images, plan[ahead])
            yield b, pending.pop(b).result()
        for future in pending.values():
            future.cancel()
