"""The training loop: a generator yielding progress reports, checkpointing, resuming exactly.

One loop serves a GUI worker and a CLI progress bar alike:

    for report in train(model, dataset, TrainConfig(epochs=20), "runs/a"):
        print(report)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import threading
import time
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from brainvae.atomic import atomic_file, has_partial, new_partial_folder
from brainvae.data.fingerprint import TRAINING_DATA_KEY, dataset_fingerprint
from brainvae.data.run_dataset import dataset_record
from brainvae.models.errors import ModelError
from brainvae.training import distributed
from brainvae.training.adversarial import (
    OptimizerPair,
    introspective_step,
    make_optimizer,
)
from brainvae.training.checkpoint import (
    CHECKPOINTS_DIR,
    RNG_FILE,
    LoadedCheckpoint,
    TrainingState,
    apply_checkpoint,
    capture_random_state,
    latest_checkpoint,
    read_checkpoint,
    restore_random_state,
    save_checkpoint,
)
from brainvae.training.checkpoint_checks import check_epoch_order_fits
from brainvae.training.config import TrainConfig
from brainvae.training.device import autocast_dtype, describe_device, resolve_device
from brainvae.training.history import (
    active_units,
    bernoulli_entropy_floor,
    finite_or_none,
    history_row,
    write_history,
)
from brainvae.training.progress import BatchReport, EpochReport, Finished, TrainResult

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models.base import LatentModel

RUN_FILE = "run.json"
RESOLVED_PRECISION = "resolved_precision"
"""Key of the checkpoint's train_config that records the precision "auto" chose."""
RUN_FORMAT = "brainvae-run"
MODEL_FILES = ("weights.safetensors", "config.json")
Report = BatchReport | EpochReport | Finished


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
    train_rows, eval_rows, has_val = _split_rows(dataset)
    _check_data(model, dataset, np.concatenate([train_rows, eval_rows]))
    ranks = distributed.ranks_from_environment()
    config = config.resolved(distributed.share_size(len(train_rows), ranks, config.drop_last))
    device = resolve_device(distributed.rank_device_name(config.device, ranks))
    distributed.join(ranks, device)
    loaded = _open_run_dir(run_dir, model, dataset, config, resume, overwrite, ranks, device)

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
        state = TrainingState(0, 0, 0, [], config.to_dict(), _model_identity(model))
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
    loop = _Loop(
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


@dataclass
class _Loop:
    """The state one train() call works on; run() is the generator behind train()."""

    model: LatentModel
    dataset: PreparedDataset
    config: TrainConfig
    run_dir: Path
    optimizer: torch.optim.Optimizer | OptimizerPair
    data_generator: torch.Generator
    state: TrainingState
    cancel: threading.Event | None
    device: torch.device
    amp_dtype: torch.dtype | None
    train_rows: np.ndarray
    eval_rows: np.ndarray
    has_val: bool
    last_saved: tuple[int, int] | None
    ranks: distributed.Ranks = field(default_factory=distributed.Ranks)
    entropy_floor: float | None = None
    replica: torch.nn.Module | None = None
    started: float = field(default_factory=time.perf_counter)
    elapsed_before: float = 0.0

    def __post_init__(self) -> None:
        history, sums = self.state.history, self.state.epoch_sums
        self.elapsed_before = sums.get("elapsed_s") or (
            history[-1]["elapsed_s"] if history else 0.0
        )
        if self.ranks.active and not isinstance(self.optimizer, OptimizerPair):
            self.replica = distributed.wrap(self.model, self.device)

    def elapsed(self) -> float:
        """Seconds of training in this run, earlier sessions included."""
        return self.elapsed_before + time.perf_counter() - self.started

    def run(self) -> Generator[Report, None, TrainResult]:
        """Epochs and batches from the saved position to config.epochs, or until cancelled."""
        config, state, ranks = self.config, self.state, self.ranks
        n_train = distributed.share_size(len(self.train_rows), ranks, config.drop_last)
        n_batches = (
            n_train // config.batch_size
            if config.drop_last
            else math.ceil(n_train / config.batch_size)
        )
        if n_batches == 0:
            raise ModelError(
                f"drop_last with batch_size {config.batch_size} leaves no batch of the "
                f"{n_train} training images: lower batch_size or set drop_last=False"
            )
        self.entropy_floor = (
            bernoulli_entropy_floor(self.dataset.images, self.eval_rows)
            if self.model.config.likelihood == "bernoulli"
            else None
        )
        self.model.train()
        while state.epoch < config.epochs:
            epoch = state.epoch + 1
            order_state = self.data_generator.get_state()
            if ranks.active:  # DistributedSampler's share: a function of seed and epoch
                order = distributed.epoch_order(
                    len(self.train_rows), epoch, config.seed, ranks, config.drop_last
                )
            elif state.batch == 0:
                order = torch.randperm(n_train, generator=self.data_generator)
            else:
                order = state.epoch_order
            if state.batch == 0:
                state.epoch_sums = {"loss": 0.0, "reconstruction": 0.0, "kl": 0.0, "images": 0.0}
            sums = state.epoch_sums
            timed_images, timed_s = 0, 0.0
            for batch_index, x in _batches(
                self.dataset.images, self.train_rows, order, state.batch, n_batches, config
            ):
                if self.cancelled():
                    if batch_index == 0:  # nothing done yet: draw this order again on resume
                        self.data_generator.set_state(order_state)
                    else:
                        state.batch, state.epoch_order = batch_index, order
                    return (yield from self.finish("cancelled"))
                tick = time.perf_counter()
                loss = self.step(x, epoch, batch_index + 1)
                n = len(x) * ranks.world_size
                for name, value in zip(("loss", "reconstruction", "kl"), loss, strict=True):
                    sums[name] += value * n
                sums["images"] += n
                timed_images += n
                timed_s += time.perf_counter() - tick
                state.batch = batch_index + 1
                rate = timed_images / timed_s if timed_s > 0 else 0.0
                remaining = (n_batches - state.batch) + (config.epochs - epoch) * n_batches
                yield BatchReport(
                    epoch=epoch,
                    batch=state.batch,
                    n_batches=n_batches,
                    loss=loss[0],
                    reconstruction=loss[1],
                    kl=loss[2],
                    images_per_s=rate,
                    elapsed_s=self.elapsed(),
                    eta_s=remaining * config.batch_size * ranks.world_size / rate
                    if rate > 0
                    else math.inf,
                )
            if self.cancelled():  # stop before evaluating
                state.epoch_order = order
                return (yield from self.finish("cancelled"))
            report = self.end_epoch(epoch, timed_images / timed_s if timed_s > 0 else 0.0)
            yield report
        return (yield from self.finish("completed"))

    def step(self, x: torch.Tensor, epoch: int, batch: int) -> tuple[float, float, float]:
        """One Adam step; a non-finite loss stops the run naming epoch and batch."""
        model, optimizer = self.model, self.optimizer
        x = x.to(self.device, non_blocking=True)
        if isinstance(optimizer, OptimizerPair):
            return self.introspective_step(x, epoch, batch)
        optimizer.zero_grad(set_to_none=True)
        try:
            with self.autocast():
                if self.replica is not None:
                    terms = self.replica(x, self.state.step)
                else:
                    loss = model.loss(x, step=self.state.step)
                    terms = (loss.total, loss.reconstruction, loss.kl)
        except ModelError as error:
            raise self.stopped(epoch, batch, str(error)) from error
        values = tuple(float(t.detach()) for t in terms)
        if self.ranks.active:  # every rank sees the same mean, so all stop together on NaN
            values = distributed.mean_over_ranks(values, self.device)
        if not all(math.isfinite(v) for v in values):
            raise self.stopped(epoch, batch, f"the loss became {values[0]}")
        terms[0].backward()
        if self.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.config.max_grad_norm)
        optimizer.step()
        self.state.step += 1
        return values

    def introspective_step(self, x: torch.Tensor, epoch: int, batch: int) -> tuple[float, ...]:
        """Encoder step then decoder step (two optimisers); errors name epoch and batch."""
        try:
            values = introspective_step(
                self.model,
                self.optimizer,
                x,
                self.autocast(),
                self.config.max_grad_norm,
                replicas=distributed.Replicas(self.ranks.world_size, self.device)
                if self.ranks.active
                else None,
            )
        except ModelError as error:
            raise self.stopped(epoch, batch, str(error)) from error
        if self.ranks.active:
            values = distributed.mean_over_ranks(values, self.device)
        if not all(math.isfinite(v) for v in values):
            raise self.stopped(epoch, batch, f"the loss became {values[0]}")
        self.state.step += 1
        return values

    def cancelled(self) -> bool:
        """Whether to stop now; under torchrun, when any rank was asked to (all stop alike)."""
        asked = self.cancel is not None and self.cancel.is_set()
        if self.ranks.active:
            return distributed.any_rank(asked, self.device)
        return asked

    def stopped(self, epoch: int, batch: int, problem: str) -> ModelError:
        """The error that ends a run mid-batch; says which checkpoint is still good."""
        good = latest_checkpoint(self.run_dir)
        kept = (
            f"the last good checkpoint {good} is kept" if good else "no checkpoint was written yet"
        )
        return ModelError(
            f"training stopped at epoch {epoch}, batch {batch}: {problem}; {kept} "
            "(train again with resume=True to continue from it)"
        )

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast when the precision asks for it, else nothing."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def end_epoch(self, epoch: int, images_per_s: float) -> EpochReport:
        """Evaluate, record history, write history.csv and (every N epochs) a checkpoint."""
        state, sums = self.state, self.state.epoch_sums
        evaluation = self.evaluate(epoch)
        count = max(sums["images"], 1.0)
        net_of = evaluation["reconstruction"] if self.has_val else sums["reconstruction"] / count
        report = EpochReport(
            epoch=epoch,
            train_loss=sums["loss"] / count,
            train_reconstruction=sums["reconstruction"] / count,
            train_kl=sums["kl"] / count,
            val_loss=evaluation["loss"] if self.has_val else None,
            val_reconstruction=evaluation["reconstruction"] if self.has_val else None,
            val_kl=evaluation["kl"] if self.has_val else None,
            reconstruction_net=None if self.entropy_floor is None else net_of - self.entropy_floor,
            kl_per_latent=evaluation["kl_per_latent"],
            active_units=evaluation["active_units"],
            images_per_s=images_per_s,
            elapsed_s=self.elapsed(),
        )
        state.history.append(history_row(report, state.step))
        state.epoch, state.batch, state.epoch_order, state.epoch_sums = epoch, 0, None, {}
        if self.ranks.writes:
            write_history(state.history, self.run_dir)
        if epoch % self.config.checkpoint_every == 0 or epoch == self.config.epochs:
            self.checkpoint()
        return report

    @torch.no_grad()
    def evaluate(self, epoch: int) -> dict[str, Any]:
        """Losses, KL per latent and active units on the evaluation rows (eval mode, fp32)."""
        model, rows = self.model, self.eval_rows
        model.eval()
        totals = np.zeros(3)
        kl_per_latent = np.zeros(model.latent_dim)
        means = []
        try:
            for start in range(0, len(rows), self.config.batch_size):
                chunk = rows[start : start + self.config.batch_size]
                x = _read(self.dataset.images, chunk).to(self.device)
                loss = model.loss(x, step=self.state.step)  # fp32: bf16 rounds small KLs to 0
                mu, _ = model.encode(x)
                n = len(chunk)
                totals += n * np.array(
                    [float(loss.total), float(loss.reconstruction), float(loss.kl)]
                )
                kl_per_latent += n * loss.kl_per_latent.float().cpu().numpy()
                means.append(mu.float().cpu().numpy())
        except ModelError as error:
            raise ModelError(f"evaluation after epoch {epoch} failed: {error}") from error
        finally:
            model.train()
        n = max(len(rows), 1)
        return {
            "loss": float(totals[0] / n),
            "reconstruction": float(totals[1] / n),
            "kl": float(totals[2] / n),
            "kl_per_latent": [float(v) for v in kl_per_latent / n],
            "active_units": active_units(np.concatenate(means)),
        }

    def checkpoint(self) -> Path | None:
        """Write a checkpoint of the current position unless one was just written there."""
        position = (self.state.epoch, self.state.batch)
        if self.last_saved == position:
            return None
        if self.state.batch:
            self.state.epoch_sums["elapsed_s"] = self.elapsed()
        if not self.ranks.writes:
            self.last_saved = position
            return None
        randomness = capture_random_state(self.data_generator)
        path = save_checkpoint(self.run_dir, self.model, self.optimizer, self.state, randomness)
        self.last_saved = position
        return path

    def finish(self, reason: str) -> Generator[Report, None, TrainResult]:
        """Checkpoint, history.csv and the model (config.json + weights) in the run folder."""
        self.checkpoint()
        if self.model.config.preprocessing is None:
            self.model.config.preprocessing = self.dataset.config.to_dict()
        if self.ranks.writes:
            write_history(self.state.history, self.run_dir)
            _save_model(self.model, self.run_dir, self.summary(reason))
        if self.ranks.active:  # the files exist on every rank's return
            distributed.barrier()
        yield Finished(reason, self.run_dir)
        return TrainResult(
            reason=reason,
            run_dir=self.run_dir,
            epochs_completed=self.state.epoch,
            step=self.state.step,
            history=list(self.state.history),
        )

    def summary(self, reason: str) -> dict[str, Any]:
        """The training summary stored in the saved model's config.json."""
        last = self.state.history[-1] if self.state.history else {}
        return {
            "reason": reason,
            "epochs_completed": self.state.epoch,
            "steps": self.state.step,
            "config": self.config.to_dict(),
            "device": describe_device(self.device),
            "processes": self.ranks.world_size,
            "precision": "bf16" if self.amp_dtype is not None else "fp32",
            "dataset": dataset_record(self.dataset.path, self.run_dir),
            "evaluated_on": "val" if self.has_val else "train",
            "entropy_floor": self.entropy_floor,
            "final_val_loss": finite_or_none(last.get("val_loss")),
            "final_reconstruction_net": finite_or_none(last.get("reconstruction_net")),
            "active_units": last.get("active_units"),
            TRAINING_DATA_KEY: dataset_fingerprint(self.dataset),
        }


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


# -- data ----------------------------------------------------------------------------------
def _split_rows(dataset: PreparedDataset) -> tuple[np.ndarray, np.ndarray, bool]:
    """Training rows, evaluation rows (val, or train when there is no val split), has_val."""
    train_rows = dataset.indices("train")
    val_rows = dataset.indices("val")
    if len(train_rows) == 0:
        raise ModelError(f"{dataset.path}: the dataset has no training split to train on")
    has_val = len(val_rows) > 0
    return train_rows, val_rows if has_val else train_rows, has_val


def _check_data(model: LatentModel, dataset: PreparedDataset, rows: np.ndarray) -> None:
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


def _read(images: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(images[rows], dtype=np.float32))


def _batches(
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
            yield b, _read(images, rows[b])
        return
    with ThreadPoolExecutor(config.num_workers, thread_name_prefix="brainvae-read") as pool:
        pending: dict[int, Future] = {}
        for b in range(first, n_batches):
            for ahead in range(b, min(b + config.num_workers + 1, n_batches)):
                if ahead not in pending:
                    pending[ahead] = pool.submit(_read, images, rows[ahead])
            yield b, pending.pop(b).result()
        for future in pending.values():
            future.cancel()


# -- run folder ----------------------------------------------------------------------------
def _model_identity(model: LatentModel) -> dict[str, Any]:
    """The model config without the parts training fills in (summary, preprocessing)."""
    data = model.config.to_dict()
    data.pop("training", None)
    data.pop("preprocessing", None)
    return data


def _dataset_identity(dataset: PreparedDataset) -> dict[str, Any]:
    return {
        "path": str(dataset.path),
        "n_samples": len(dataset.images),
        "sample_shape": list(dataset.images.shape[1:]),
        "n_train": len(dataset.indices("train")),
    }


def _open_run_dir(
    run_dir: Path,
    model: LatentModel,
    dataset: PreparedDataset,
    config: TrainConfig,
    resume: bool,
    overwrite: bool,
    ranks: distributed.Ranks,
    device: torch.device,
) -> LoadedCheckpoint | None:
    """_prepare_run_dir on rank 0; other ranks wait, then read the same checkpoint.

    Rank 0's refusal (a different run, nothing to resume...) is raised on every rank.
    """
    if not ranks.active:
        return _prepare_run_dir(run_dir, model, dataset, config, resume, overwrite, 1)
    loaded, outcome = None, None
    if ranks.writes:
        try:
            loaded = _prepare_run_dir(
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


def _prepare_run_dir(
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
    run_file = run_dir / RUN_FILE
    if resume and run_file.is_file():
        _check_same_run(run_dir, model, dataset, config, world_size)
        for stale in (run_dir / CHECKPOINTS_DIR).glob(".*"):
            shutil.rmtree(stale, ignore_errors=True)
        found = latest_checkpoint(run_dir)
        if found is None and (run_dir / "config.json").is_file():
            raise ModelError(
                f"{run_dir}: nothing to resume: it holds a saved model but no checkpoint in "
                f"{CHECKPOINTS_DIR}/; start again with overwrite=True"
            )
        if found is None:  # killed before its first checkpoint: nothing done, start at 0
            return None
        loaded = read_checkpoint(found)
        if loaded.state.model_config != _model_identity(model):
            raise ModelError(f"{found}: this checkpoint is of a different model configuration")
        return loaded
    interrupted = not run_file.is_file() and _interrupted_run(run_dir)
    if resume and interrupted:
        raise ModelError(
            f"{run_dir}: nothing to resume: the run was interrupted before it wrote "
            f"{RUN_FILE}; start again with overwrite=True"
        )
    if resume:
        raise ModelError(
            f"{run_dir}: nothing to resume (no {RUN_FILE}); start a new run without resume"
        )
    if run_dir.is_dir() and any(run_dir.iterdir()):
        is_run = run_file.is_file() or (run_dir / "config.json").is_file() or interrupted
        if not overwrite and interrupted:
            raise ModelError(
                f"{run_dir}: holds a run interrupted before it wrote {RUN_FILE}; "
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
        "model_config": _model_identity(model),
        "dataset": {**_dataset_identity(dataset), **dataset_record(dataset.path, run_dir)},
        "processes": world_size,
    }
    with atomic_file(run_file) as temporary:
        temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return None


def _interrupted_run(run_dir: Path) -> bool:
    """Whether the folder holds what a run writes before or instead of run.json: its
    temporary record, checkpoints/ or a saved model (a run killed while starting, or a
    folder whose run.json was lost). Such a folder can only be started again."""
    if not run_dir.is_dir():
        return False
    if has_partial(run_dir / RUN_FILE):
        return True
    if any((run_dir / name).is_file() for name in ("config.json", "weights.safetensors")):
        return True
    return (run_dir / CHECKPOINTS_DIR).is_dir()


def _check_same_run(
    run_dir: Path,
    model: LatentModel,
    dataset: PreparedDataset,
    config: TrainConfig,
    world_size: int,
) -> None:
    """Resume only the run this folder holds: same model, same data layout, same seed."""
    try:
        record = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
        previous = TrainConfig.from_dict(record["train_config"])
        model_config, data = record["model_config"], record["dataset"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelError(f"{run_dir / RUN_FILE}: unreadable run record ({error})") from error
    if record.get("format") != RUN_FORMAT:
        raise ModelError(f"{run_dir / RUN_FILE}: not a {RUN_FORMAT} record")
    current = _model_identity(model)
    differing = sorted(
        k for k in set(current) | set(model_config) if current.get(k) != model_config.get(k)
    )
    if differing:
        raise ModelError(
            f"{run_dir}: holds a different run (model differs in {', '.join(differing)}); "
            "resume with the same model, or start a new run folder"
        )
    now = _dataset_identity(dataset)
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


def _save_model(model: LatentModel, run_dir: Path, summary: dict[str, Any]) -> None:
    """model.save into a staging folder, then move its files into the run folder.

    model.save replaces its whole target folder, which would drop checkpoints/ and
    history.csv; staging keeps the run folder's other files.
    """
    staging = new_partial_folder(run_dir / "model")  # tidies a killed save's leftovers
    try:
        model.save(staging, training=summary)
        for name in MODEL_FILES:
            os.replace(staging / name, run_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
