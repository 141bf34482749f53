"""The training loop: a generator yielding progress reports, checkpointing, resuming exactly.

One loop serves a GUI worker and a CLI progress bar alike:

    for report in train(model, dataset, TrainConfig(epochs=20), "runs/a"):
        print(report)

train() checks the request, opens the run folder (run_start), restores a checkpoint when
resuming and hands over to the TrainingLoop (loop), which reads batches (batching).
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from brainvae.errors import ModelError
from brainvae.training import distributed
from brainvae.training.adversarial import make_optimizer
from brainvae.training.batching import check_data, split_rows
from brainvae.training.checkpoint import (
    RNG_FILE,
    TrainingState,
    apply_checkpoint,
)
from brainvae.training.checkpoint_checks import check_epoch_order_fits
from brainvae.training.config import TrainConfig
from brainvae.training.device import autocast_dtype, resolve_device
from brainvae.training.loop import Report, TrainingLoop
from brainvae.training.progress import TrainResult
from brainvae.training.random_state import restore_random_state
from brainvae.training.run_start import model_identity, open_run_dir

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models.base import LatentModel

RESOLVED_PRECISION = "resolved_precision"
"""Key of the checkpoint's train_config that records the precision "auto" chose."""


def train(
    model: LatentModel,
    dataset: PreparedDataset,
    config: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    cancel: threading.Event | None = None,
) -> Generator[Report, None, TrainResult]:
    """Train model on the dataset's train split, evaluating on its val split every epoch.

    Yields a BatchReport per step, an EpochReport per epoch and a Finished at the end; returns
    a TrainResult. Setting cancel stops before the next batch with a checkpoint written.
    The seed fixes data order and sampling noise; build the model after torch.manual_seed
    for reproducible initial weights too. Being a generator, nothing (checks included) runs
    before the first next().

    Under torchrun (WORLD_SIZE > 1) every process calls this alike: each trains a
    DistributedDataParallel replica on its share of each epoch with batch_size images per
    step (batch_size x WORLD_SIZE per averaged step), losses in reports are means over the
    ranks, and only rank 0 writes the run folder. A resume must use the same number of
    processes (it fixes the data order).
    """
    run_dir = Path(run_dir)
    if not any(p.requires_grad for p in model.parameters()):
        raise ModelError(
            f"a {model.family!r} model has no trainable parameters: fit it directly "
            "(e.g. PCAModel.fit) instead of training it"
        )
    train_rows, eval_rows, has_val = split_rows(dataset)
    check_data(model, dataset, np.concatenate([train_rows, eval_rows]))
    ranks = distributed.ranks_from_environment()
    config = config.resolved(distributed.share_size(len(train_rows), ranks, config.drop_last))
    device = resolve_device(distributed.rank_device_name(config.device, ranks))
    distributed.join(ranks, device)
    loaded = open_run_dir(run_dir, model, dataset, config, resume, overwrite, ranks, device)

    model.to(device)
    precision = config.precision
    if loaded is not None and precision == "auto":
        # "auto" measured once, when the run started: a resumed run keeps that precision
        # (a probe on a busier machine could choose the other one and break exact resume)
        recorded = loaded.state.train_config.get(RESOLVED_PRECISION)
        precision = recorded if recorded in ("bf16", "fp32") else precision
    amp_dtype = _agreed_autocast_dtype(precision, device, model.config.dims, ranks)
    optimizer = make_optimizer(model, config.lr)
    data_generator = torch.Generator().manual_seed(config.seed)
    if loaded is None:
        torch.manual_seed(config.seed)
        state = TrainingState(0, 0, 0, [], config.to_dict(), model_identity(model))
    else:
        apply_checkpoint(loaded, model, optimizer)
        # a mid-epoch order indexes this dataset's training rows (on every rank)
        check_epoch_order_fits(loaded.state.epoch_order, len(train_rows), loaded.folder / RNG_FILE)
        for group in optimizer.param_groups:
            group["lr"] = config.lr
        restore_random_state(loaded.randomness, data_generator)
        state = loaded.state
        state.train_config = config.to_dict()
    state.train_config[RESOLVED_PRECISION] = "bf16" if amp_dtype is not None else "fp32"
    loop = TrainingLoop(
        model=model,
        dataset=dataset,
        config=config,
        run_dir=run_dir,
        optimizer=optimizer,
        data_generator=data_generator,
        state=state,
        cancel=cancel,
        device=device,
        amp_dtype=amp_dtype,
        train_rows=train_rows,
        eval_rows=eval_rows,
        has_val=has_val,
        last_saved=(state.epoch, state.batch) if loaded is not None else None,
        ranks=ranks,
    )
    return (yield from loop.run())


def _agreed_autocast_dtype(
    precision: str, device: torch.device, dims: int, ranks: distributed.Ranks
) -> torch.dtype | None:
    """The autocast dtype; under torchrun rank 0 decides (one CPU probe, not one per rank
    competing for the same cores) and every rank trains at that precision."""
    if not ranks.active:
        return autocast_dtype(precision, device, dims)
    mine = None
    if ranks.rank == 0:
        mine = "bf16" if autocast_dtype(precision, device, dims) is not None else "fp32"
    return torch.bfloat16 if distributed.from_rank_zero(mine, device) == "bf16" else None
