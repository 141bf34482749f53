"""The training loop behind train(): epochs and batches, evaluation, checkpoints, the end.

One TrainingLoop holds what one train() call works on; its run() generator yields batch and
epoch reports and returns the TrainResult, writing checkpoints and history.csv on the way.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from brainvae.data.fingerprint import TRAINING_DATA_KEY, dataset_fingerprint
from brainvae.data.run_dataset import dataset_record
from brainvae.errors import ModelError
from brainvae.run_folder import RunFolder
from brainvae.training import distributed
from brainvae.training.adversarial import OptimizerPair, introspective_step
from brainvae.training.batching import batch_conditions, batches, condition_values, read_rows
from brainvae.training.checkpoint import (
    TrainingState,
    latest_checkpoint,
    save_checkpoint,
)
from brainvae.training.config import TrainConfig
from brainvae.training.device import describe_device
from brainvae.training.epoch_plan import EpochPlanner
from brainvae.training.history import (
    active_units,
    bernoulli_entropy_floor,
    finite_or_none,
    history_row,
    write_history,
)
from brainvae.training.progress import BatchReport, EpochReport, Finished, TrainResult
from brainvae.training.random_state import capture_random_state

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models.base import LatentModel

Report = BatchReport | EpochReport | Finished


@dataclass
class TrainingLoop:
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
    conditions: np.ndarray | None = None
    started: float = field(default_factory=time.perf_counter)
    elapsed_before: float = 0.0

    def __post_init__(self) -> None:
        history, sums = self.state.history, self.state.epoch_sums
        self.elapsed_before = sums.get("elapsed_s") or (
            history[-1]["elapsed_s"] if history else 0.0
        )
        if self.ranks.active and not isinstance(self.optimizer, OptimizerPair):
            self.replica = distributed.wrap(self.model, self.device)
        # each row's condition value, for a model that asks for one (age_vae); else None
        self.conditions = condition_values(
            self.model, self.dataset, np.concatenate([self.train_rows, self.eval_rows])
        )

    def planner(self) -> EpochPlanner:
        """The epochs' batches: plain, or whole subjects together for a model that trains
        over visit pairs (its condition rows start with a subject code and a visit time)."""
        by_subject = bool(getattr(self.model, "batches_by_subject", False))
        conditions = self.conditions if by_subject else None
        return EpochPlanner(
            self.train_rows,
            self.config.batch_size,
            self.config.drop_last,
            self.config.seed,
            self.ranks,
            subjects=None if conditions is None else conditions[:, 0].astype(np.int64),
            times=None if conditions is None else conditions[:, 1],
        )

    def elapsed(self) -> float:
        """Seconds of training in this run, earlier sessions included."""
        return self.elapsed_before + time.perf_counter() - self.started

    def run(self) -> Generator[Report, None, TrainResult]:
        """Epochs and batches from the saved position to config.epochs, or until cancelled."""
        config, state, ranks = self.config, self.state, self.ranks
        planner = self.planner()
        self.entropy_floor = (
            bernoulli_entropy_floor(self.dataset.images, self.eval_rows)
            if self.model.config.likelihood == "bernoulli"
            else None
        )
        self.model.train()
        while state.epoch < config.epochs:
            epoch = state.epoch + 1
            order_state = self.data_generator.get_state()
            if ranks.active or state.batch == 0:
                order = planner.draw(self.data_generator, epoch)
            else:
                order = state.epoch_order
            plan = planner.batches(order)
            n_batches = len(plan)
            if state.batch == 0:
                state.epoch_sums = {"loss": 0.0, "reconstruction": 0.0, "kl": 0.0, "images": 0.0}
            sums = state.epoch_sums
            timed_images, timed_s = 0, 0.0
            for batch_index, x in batches(self.dataset.images, plan, state.batch, config):
                if self.cancelled():
                    if batch_index == 0:  # nothing done yet: draw this order again on resume
                        self.data_generator.set_state(order_state)
                    else:
                        state.batch, state.epoch_order = batch_index, order
                    return (yield from self.finish("cancelled"))
                tick = time.perf_counter()
                seed = planner.batch_seed(epoch, batch_index)
                if seed is not None:
                    torch.manual_seed(seed)
                condition = (
                    None
                    if self.conditions is None
                    else batch_conditions(self.conditions, plan[batch_index])
                )
                loss = self.step(x, epoch, batch_index + 1, condition)
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

    def step(
        self, x: torch.Tensor, epoch: int, batch: int, condition: torch.Tensor | None = None
    ) -> tuple[float, float, float]:
        """One Adam step; a non-finite loss stops the run naming epoch and batch. condition:
        the batch's condition values, for a model that asks for them (else None)."""
        model, optimizer = self.model, self.optimizer
        x = x.to(self.device, non_blocking=True)
        given = {} if condition is None else {"condition": condition.to(self.device)}
        if isinstance(optimizer, OptimizerPair):
            return self.introspective_step(x, epoch, batch)
        optimizer.zero_grad(set_to_none=True)
        try:
            with self.autocast():
                if self.replica is not None:
                    terms = self.replica(x, self.state.step, **given)
                else:
                    loss = model.loss(x, step=self.state.step, **given)
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
            direction_cosines=evaluation["direction_cosines"],
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
                x = read_rows(self.dataset.images, chunk).to(self.device)
                given = (
                    {}
                    if self.conditions is None
                    else {"condition": torch.from_numpy(self.conditions[chunk].astype(np.float32))}
                )
                # fp32: bf16 rounds small KLs to 0
                loss = model.loss(x, step=self.state.step, **given)
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
        codes = np.concatenate(means)
        return {
            "direction_cosines": self.direction_cosines(codes, rows),
            "loss": float(totals[0] / n),
            "reconstruction": float(totals[1] / n),
            "kl": float(totals[2] / n),
            "kl_per_latent": [float(v) for v in kl_per_latent / n],
            "active_units": active_units(codes),
        }

    def direction_cosines(self, codes: np.ndarray, rows: np.ndarray) -> dict[str, float | None]:
        """For a model with learned directions (the longitudinal VAE), each one's mean cosine
        with the evaluation rows' visit changes (None without a pair); else empty."""
        learned = getattr(self.model, "learned_directions", None)
        if not callable(learned) or self.conditions is None:
            return {}
        from brainvae.analysis.trained_directions import direction_agreement

        directions = learned()  # {"aging": tau_a, <group>: tau_d, ...}
        agreement = direction_agreement(codes, self.conditions[rows], directions)
        return {
            name: finite_or_none(group.mean_cosine) if group.n_pairs else None
            for name, group in zip(directions, agreement.groups, strict=True)
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
            RunFolder(self.run_dir).save_model(self.model, self.summary(reason))
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
