"""The data side of training: the train and evaluation rows, a check that the images fit
the model before anything is written, and batches read ahead in threads."""

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


def check_data(model: LatentModel, dataset: PreparedDataset, rows: np.ndarray) -> None:
    """Refuse, before anything is written, data that do not fit the model or hold NaN/Inf."""
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
    images: np.ndarray,
    train_rows: np.ndarray,
    order: torch.Tensor,
    first: int,
    n_batches: int,
    config: TrainConfig,
) -> Iterator[tuple[int, torch.Tensor]]:
    """(batch index, images) from batch first on, in the epoch's order; threads read ahead."""
    size = config.batch_size
    rows = [train_rows[order[b * size : (b + 1) * size].numpy()] for b in range(n_batches)]
    if config.num_workers == 0:
        for b in range(first, n_batches):
            yield b, read_rows(images, rows[b])
        return
    with ThreadPoolExecutor(config.num_workers, thread_name_prefix="brainvae-read") as pool:
        pending: dict[int, Future] = {}
        for b in range(first, n_batches):
            for ahead in range(b, min(b + config.num_workers + 1, n_batches)):
                if ahead not in pending:
                    pending[ahead] = pool.submit(read_rows, images, rows[ahead])
            yield b, pending.pop(b).result()
        for future in pending.values():
            future.cancel()
