"""Hyperparameter sweep over beta x latent size: one run folder per grid cell, each trained,
then evaluated into its metrics.json; sweep.csv gathers the cells.

    rows = yield from run_sweep(base_config, dataset, TrainConfig(epochs=5), "sweeps/a",
                                betas=[1, 3, 10], latents=[4, 8], evaluate=measure)

The grid's order: betas outer, latent sizes inner; cell K (1-based) is beta number
(K - 1) // len(latents) + 1 with latent size number (K - 1) % len(latents) + 1, so a cluster
job array runs one cell per task (cells=[K]). Every cell is resumable on its own: a cell whose
model is complete and whose metrics.json records the same measurements is skipped; a complete
one without them is only evaluated; a half-trained one resumes from its last checkpoint.
SWEEP/sweep.json records the grid (brainvae.evaluation.sweep_report reads it to name the cells
still missing).
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from brainvae.evaluation.sweep_report import (
    CELL_FORMAT,
    GRID_FILE,
    METRICS,
    METRICS_FILE,
    cell_row,
    grid_record,
    read_cell,
    read_grid,
    run_name,
)
from brainvae.models import ModelConfig, ModelError, build_model
from brainvae.run_folder import RunFolder
from brainvae.training.config import TrainConfig
from brainvae.training.distributed import ranks_from_environment, share_size
from brainvae.training.history import finite_or_none
from brainvae.training.progress import BatchReport, EpochReport, Finished
from brainvae.training.trainer import train

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import LatentModel

__all__ = ["COLUMNS", "SWEEP_FILE", "SweepPoint", "SweepReport", "run_name", "run_sweep"]

SWEEP_FILE = "sweep.csv"
TRAINING_COLUMNS = (
    "reason",
    "epochs",
    "final_val_loss",
    "reconstruction",
    "reconstruction_net",
    "active_units",
    "seconds",
)
COLUMNS = (
    "cell",
    "beta",
    "latent_dim",
    "run",
    *TRAINING_COLUMNS,
    *(name for name in METRICS if name not in TRAINING_COLUMNS and name != "final_val_loss"),
    "receptive_published_s",
    "evaluation_seconds",
)
"""sweep.csv's columns: the cell, its training (final_val_loss and active_units on the
validation split, as training recorded them), its measurements on the evaluated split."""

Evaluator = Callable[["LatentModel"], Generator[Any, None, dict[str, Any]]]
"""Measures one trained cell's model: yields progress reports, returns {"metrics": {name:
number}, "details": {...}} (brainvae.usecases.evaluate_run.cell_metrics)."""


@dataclass(frozen=True)
class SweepPoint:
    """One (beta, L) cell of the grid, its run folder and its number K (from 1)."""

    beta: float
    latent_dim: int
    run_dir: Path
    cell: int = 0


@dataclass(frozen=True)
class SweepReport:
    """A report of one cell (index counts the cells this call runs, from 1 of total): a
    training report, or the evaluator's progress (stage, done, total)."""

    point: SweepPoint
    index: int
    total: int
    report: BatchReport | EpochReport | Finished | Any


def sweep_points(
    out_dir: str | Path, betas: Sequence[float], latents: Sequence[int]
) -> list[SweepPoint]:
    """Every (beta, L) cell, betas outer, numbered from 1; duplicates refused."""
    if not betas or not latents:
        raise ModelError("a sweep needs at least one beta and one latent size")
    points = [
        SweepPoint(float(b), int(n), Path(out_dir) / run_name(b, n), cell)
        for cell, (b, n) in enumerate(((b, n) for b in betas for n in latents), start=1)
    ]
    names = [p.run_dir.name for p in points]
    if len(set(names)) != len(names):
        raise ModelError(f"the sweep repeats a combination: {', '.join(names)}")
    return points


def chosen_points(points: list[SweepPoint], cells: Sequence[int] | None) -> list[SweepPoint]:
    """The cells asked for (numbers from 1), or all; a number outside the grid is refused."""
    if cells is None:
        return points
    wrong = [k for k in cells if not 1 <= int(k) <= len(points)]
    if wrong:
        raise ModelError(
            f"cell {', '.join(map(str, wrong))} is not in the grid: its cells are numbered 1 to "
            f"{len(points)} (betas outer, latent sizes inner)"
        )
    return [points[int(k) - 1] for k in dict.fromkeys(cells)]


def record_grid(out_dir: Path, betas: Sequence[float], latents: Sequence[int], overwrite: bool):
    """Write sweep.json; a sweep folder recording another grid is refused unless overwrite
    (its cell numbers would mean other cells)."""
    from brainvae.atomic import atomic_file

    record = grid_record(list(betas), list(latents))
    found = read_grid(out_dir)
    if found is not None and (found[0], found[1]) != (record["betas"], record["latents"]):
        if not overwrite:
            raise ModelError(
                f"{out_dir / GRID_FILE}: this sweep folder holds the grid betas "
                f"{', '.join(f'{b:g}' for b in found[0])} x L {', '.join(map(str, found[1]))}; "
                "run that grid, choose another folder, or pass overwrite=True"
            )
    if found == (record["betas"], record["latents"]):
        return
    with atomic_file(out_dir / GRID_FILE) as temporary:
        temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _json_copy(value: Any) -> Any:
    """value as JSON gives it back (tuples as lists), to compare with a file's contents."""
    return json.loads(json.dumps(value))


def saved_training(run_dir: Path) -> dict[str, Any] | None:
    """The training summary the saved model of a run folder records, or None."""
    folder = RunFolder(run_dir)
    if not folder.holds_model():
        return None
    try:
        saved = json.loads(folder.model_config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    training = saved.get("training") if isinstance(saved, dict) else None
    return training if isinstance(training, dict) else None


def is_complete(run_dir: Path, model: LatentModel, epochs: int) -> bool:
    """Whether the folder holds this model's run, trained to the end for `epochs` epochs."""
    from brainvae.training.run_start import model_identity

    training = saved_training(run_dir)
    if training is None or training.get("reason") != "completed":
        return False
    if int(training.get("epochs_completed") or 0) < epochs:
        return False
    try:
        record = json.loads(RunFolder(run_dir).run_record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(record, dict) and record.get("model_config") == _json_copy(
        model_identity(model)
    )


def _with_seconds(row: dict[str, Any], seconds: float | None) -> dict[str, Any]:
    """The training row with the seconds this sweep measured, or (a cell trained earlier and
    only evaluated now) those its history.csv records."""
    return {**row, "seconds": row.get("seconds") if seconds is None else seconds}


def training_row(run_dir: Path) -> dict[str, Any]:
    """The training columns of a cell from its saved model and history.csv."""
    from brainvae.errors import BrainVAEError
    from brainvae.training.history import read_history

    training = saved_training(run_dir) or {}
    reconstruction = net = None
    try:
        history = read_history(RunFolder(run_dir).history)
        last = history.iloc[-1].to_dict() if len(history) else {}
    except (OSError, ValueError, BrainVAEError):
        last = {}
    reconstruction = last.get("val_reconstruction")
    if reconstruction is None or (isinstance(reconstruction, float) and math.isnan(reconstruction)):
        reconstruction = last.get("train_reconstruction")
    net = last.get("reconstruction_net")
    active = training.get("active_units")
    return {
        "reason": training.get("reason"),
        "epochs": training.get("epochs_completed"),
        "final_val_loss": finite_or_none(training.get("final_val_loss")),
        "reconstruction": finite_or_none(reconstruction),
        "reconstruction_net": finite_or_none(net),
        "active_units": None if active is None else int(active),
        "seconds": finite_or_none(last.get("elapsed_s")),  # training time history.csv records
    }


def write_cell(point: SweepPoint, record: dict[str, Any]) -> Path:
    """The cell's metrics.json, atomically."""
    from brainvae.atomic import atomic_file

    path = point.run_dir / METRICS_FILE
    with atomic_file(path) as temporary:
        temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def gathered_rows(points: list[SweepPoint]) -> list[dict[str, Any]]:
    """One row per cell that has something: its metrics.json, else (a cancelled or
    interrupted cell) its saved model's training summary."""
    rows = []
    for point in points:
        record = read_cell(point.run_dir)
        if record is not None:
            rows.append(cell_row(record))
        elif saved_training(point.run_dir) is not None:
            rows.append(
                {
                    "cell": point.cell,
                    "beta": point.beta,
                    "latent_dim": point.latent_dim,
                    "run": point.run_dir.name,
                    **training_row(point.run_dir),
                }
            )
    return rows


def run_sweep(
    base: ModelConfig,
    dataset: PreparedDataset,
    config: TrainConfig,
    out_dir: str | Path,
    betas: Sequence[float],
    latents: Sequence[int],
    *,
    overwrite: bool = False,
    cancel: threading.Event | None = None,
    cells: Sequence[int] | None = None,
    evaluate: Evaluator | None = None,
    measurements: dict[str, Any] | None = None,
) -> Generator[SweepReport, None, list[dict[str, Any]]]:
    """Train and evaluate each cell asked for (all without `cells`) into out_dir/<run_name>;
    rewrite sweep.csv (every cell present) after each.

    evaluate measures a trained cell's model (None: training only); measurements describes
    what it measures (JSON), recorded in metrics.json so a cell measured otherwise is measured
    again. overwrite retrains the cells asked for. Yields every training and evaluation report
    wrapped in a SweepReport; returns the rows of sweep.csv. A cancelled run ends the sweep
    (its row says "cancelled"; running again resumes it).
    """
    if base.family == "pca":
        raise ModelError("a beta x L sweep needs a VAE family; PCA has no beta")
    grid = sweep_points(out_dir, betas, latents)
    points = chosen_points(grid, cells)
    for point in points:  # refuse a bad latent size before training anything
        dataclasses.replace(base, beta=point.beta, latent_dim=point.latent_dim, training={})
    out_dir = Path(out_dir)
    ranks = ranks_from_environment()
    out_dir.mkdir(parents=True, exist_ok=True)
    if ranks.writes:
        record_grid(out_dir, betas, latents, overwrite)
    epochs = config.resolved(
        share_size(len(dataset.indices("train")), ranks, config.drop_last)
    ).epochs
    measured = _json_copy(measurements or {})
    for index, point in enumerate(points, start=1):
        model_config = dataclasses.replace(
            base, beta=point.beta, latent_dim=point.latent_dim, training={}
        )
        torch.manual_seed(config.seed)
        model = build_model(model_config)
        previous = read_cell(point.run_dir) if not overwrite else None
        complete = not overwrite and is_complete(point.run_dir, model, epochs)
        if complete and previous is not None and previous.get("measurements") == measured:
            continue
        seconds = (previous or {}).get("training", {}).get("seconds")
        if not complete:
            started = time.perf_counter()
            again = not overwrite and RunFolder(point.run_dir).holds_run_record()
            steps = train(
                model, dataset, config, point.run_dir,
                resume=again, overwrite=overwrite, cancel=cancel,
            )  # fmt: skip
            result = yield from _wrapped(steps, point, index, len(points))
            seconds = round(time.perf_counter() - started, 3)
            if result.reason == "cancelled":
                if ranks.writes:
                    write_table(gathered_rows(grid), out_dir)
                break
        if not ranks.writes:
            continue
        record = {
            "format": CELL_FORMAT,
            "cell": point.cell,
            "beta": point.beta,
            "latent_dim": point.latent_dim,
            "run": point.run_dir.name,
            "training": _with_seconds(training_row(point.run_dir), seconds),
            "measurements": measured,
            "metrics": {},
        }
        if evaluate is not None:
            from brainvae.models import load_model
            from brainvae.training.device import resolve_device

            started = time.perf_counter()
            trained = load_model(point.run_dir).to(resolve_device(config.device))
            found = yield from _wrapped(evaluate(trained), point, index, len(points))
            record["metrics"] = {
                **found.get("metrics", {}),
                "evaluation_seconds": round(time.perf_counter() - started, 3),
            }
            record["details"] = found.get("details", {})
        write_cell(point, record)
        write_table(gathered_rows(grid), out_dir)
    return gathered_rows(grid)


def _wrapped(
    steps: Generator[Any, None, Any], point: SweepPoint, index: int, total: int
) -> Generator[SweepReport, None, Any]:
    """Pass a generator's reports on as SweepReports; return its value."""
    while True:
        try:
            report = next(steps)
        except StopIteration as stop:
            return stop.value
        yield SweepReport(point, index, total, report)


def write_table(rows: list[dict[str, Any]], out_dir: str | Path) -> Path:
    """Write sweep.csv atomically (temporary file, then rename): COLUMNS, then any other."""
    import pandas as pd

    from brainvae.atomic import atomic_file
    from brainvae.data.csv_safety import neutralised

    path = Path(out_dir) / SWEEP_FILE
    extra = sorted({key for row in rows for key in row} - set(COLUMNS))
    table = neutralised(pd.DataFrame(rows, columns=[*COLUMNS, *extra]))
    with atomic_file(path) as temporary:
        table.to_csv(temporary, index=False, float_format="%.6g")
    return path
