"""Hyperparameter sweep over beta x latent size: one run folder each, one comparison table.

rows = yield from run_sweep(base_config, dataset, TrainConfig(epochs=5), "sweeps/a",
                            betas=[1, 3, 10], latents=[4, 8])
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from brainvae.models import ModelConfig, ModelError, build_model
from brainvae.run_folder import RunFolder
from brainvae.training.config import TrainConfig
from brainvae.training.distributed import ranks_from_environment
from brainvae.training.history import finite_or_none
from brainvae.training.progress import BatchReport, EpochReport, Finished
from brainvae.training.trainer import train

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset

SWEEP_FILE = "sweep.csv"
COLUMNS = (
    "beta",
    "latent_dim",
    "run",
    "reason",
    "epochs",
    "final_val_loss",
    "reconstruction",
    "reconstruction_net",
    "active_units",
    "seconds",
)


@dataclass(frozen=True)
class SweepPoint:
    """One (beta, L) combination and its run folder."""

    beta: float
    latent_dim: int
    run_dir: Path


@dataclass(frozen=True)
class SweepReport:
    """A training report of one point of the sweep (index counts from 1 of total)."""

    point: SweepPoint
    index: int
    total: int
    report: BatchReport | EpochReport | Finished


def run_name(beta: float, latent_dim: int) -> str:
    """The run folder name of one point: beta-3_latent-8."""
    return f"beta-{beta:g}_latent-{latent_dim}"


def sweep_points(
    out_dir: str | Path, betas: Sequence[float], latents: Sequence[int]
) -> list[SweepPoint]:
    """Every (beta, L) combination, betas outer; duplicates refused."""
    if not betas or not latents:
        raise ModelError("a sweep needs at least one beta and one latent size")
    points = [
        SweepPoint(float(b), int(n), Path(out_dir) / run_name(b, n)) for b in betas for n in latents
    ]
    names = [p.run_dir.name for p in points]
    if len(set(names)) != len(names):
        raise ModelError(f"the sweep repeats a combination: {', '.join(names)}")
    return points


def run_sweep(
    base: ModelConfig,
    dataset: PreparedDataset,
    config: TrainConfig,
    out_dir: str | Path,
    betas: Sequence[float],
    latents: Sequence[int],
    *,
    resume: bool = False,
    overwrite: bool = False,
    cancel: threading.Event | None = None,
) -> Generator[SweepReport, None, list[dict[str, Any]]]:
    """Train base with each (beta, L) into out_dir/<run_name>; write sweep.csv after each run.

    Yields every training report wrapped in a SweepReport; returns the table rows. A
    cancelled run ends the sweep (its row says "cancelled"; resume=True continues it).
    """
    if base.family == "pca":
        raise ModelError("a beta x L sweep needs a VAE family; PCA has no beta")
    points = sweep_points(out_dir, betas, latents)
    for point in points:  # refuse a bad latent size before training anything
        dataclasses.replace(base, beta=point.beta, latent_dim=point.latent_dim, training={})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for index, point in enumerate(points, start=1):
        model_config = dataclasses.replace(
            base, beta=point.beta, latent_dim=point.latent_dim, training={}
        )
        torch.manual_seed(config.seed)
        model = build_model(model_config)
        started = time.perf_counter()
        again = resume and RunFolder(point.run_dir).holds_run_record()  # else start afresh
        generator = train(
            model, dataset, config, point.run_dir, resume=again, overwrite=overwrite, cancel=cancel
        )
        result = None
        while result is None:
            try:
                report = next(generator)
            except StopIteration as stop:
                result = stop.value
                break
            yield SweepReport(point, index, len(points), report)
        rows.append(_row(point, result, time.perf_counter() - started))
        if ranks_from_environment().writes:  # under torchrun, rank 0 alone writes
            write_table(rows, out_dir)
        if result.reason == "cancelled":
            break
    return rows


def _row(point: SweepPoint, result: Any, seconds: float) -> dict[str, Any]:
    """One sweep.csv row from a TrainResult."""
    last = result.history[-1] if result.history else {}
    reconstruction = last.get("val_reconstruction")
    if reconstruction is None or (isinstance(reconstruction, float) and math.isnan(reconstruction)):
        reconstruction = last.get("train_reconstruction")
    return {
        "beta": point.beta,
        "latent_dim": point.latent_dim,
        "run": point.run_dir.name,
        "reason": result.reason,
        "epochs": result.epochs_completed,
        "final_val_loss": finite_or_none(last.get("val_loss")),
        "reconstruction": finite_or_none(reconstruction),
        "reconstruction_net": finite_or_none(last.get("reconstruction_net")),
        "active_units": last.get("active_units"),
        "seconds": round(seconds, 3),
    }


def write_table(rows: list[dict[str, Any]], out_dir: str | Path) -> Path:
    """Write sweep.csv atomically (temporary file, then rename)."""
    import pandas as pd

    from brainvae.atomic import atomic_file
    from brainvae.data.csv_safety import neutralised

    path = Path(out_dir) / SWEEP_FILE
    table = neutralised(pd.DataFrame(rows, columns=list(COLUMNS)))
    with atomic_file(path) as temporary:
        table.to_csv(temporary, index=False, float_format="%.6g")
    return path
