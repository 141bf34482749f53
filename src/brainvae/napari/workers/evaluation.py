"""The Evaluation dock's background jobs: the denoising comparison of several runs (with the
montage scan's pictures, which run the models), each run's evaluation on a split, and the
export of a comparison. Generators that yield small Step reports and return plain results;
none touches a layer or a widget (the dock shows what they return).

The dataset is a prepared dataset folder, or a population read from a folder of scans
(File > Open Sample), prepared once into the dataset cache the way the Training dock does
(the same key, so both reuse one prepared copy).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Step:
    """One step of a job: what is being done, done of total."""

    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class DatasetSource:
    """Where the scans come from: a prepared dataset folder, or a population folder of scans
    (images/ + subjects.csv) with its number of spatial dimensions, prepared when needed."""

    prepared: Path | None = None
    population_folder: Path | None = None
    ndim: int = 2

    def describe(self) -> str:
        return str(self.prepared or self.population_folder)


@dataclass(frozen=True)
class RunChoice:
    """A run to compare: a run folder (loaded in the job), or a model already loaded (the
    viewer's model in use) with where it came from; `name` labels it in tables and layers."""

    name: str
    folder: Path | None = None
    model: Any = None


@dataclass(frozen=True)
class ComparisonResult:
    """A finished denoising comparison (DenoiseRun) and its montage scan's pictures:
    montage {artefact: (C, *spatial)} in comparison.columns order, changed {artefact: bool}."""

    run: Any
    montage: dict[str, np.ndarray]
    changed: dict[str, np.ndarray]


@dataclass(frozen=True)
class RunScores:
    """One run's evaluation (RunEvaluation) under its name, and what it is in words."""

    name: str
    description: str
    evaluation: Any


def _steps(reports: Generator[Any, None, Any], prefix: str = "") -> Generator[Step, None, Any]:
    """Re-yield any report with stage/done/total as a Step (the stage prefixed); return the
    generator's value."""
    while True:
        try:
            report = next(reports)
        except StopIteration as stop:
            return stop.value
        stage = str(getattr(report, "stage", "working"))
        yield Step(f"{prefix}{stage}", int(getattr(report, "done", 0)),
                   int(getattr(report, "total", 1)))  # fmt: skip


def dataset_folder(source: DatasetSource) -> Generator[Step, None, Path]:
    """The prepared dataset's folder: the given one, or the population folder prepared into
    the dataset cache (reused when it is there)."""
    from brainvae.data.dataset_cache import folder_request
    from brainvae.napari.workers.prepare import prepare_population

    if source.prepared is not None:
        return Path(source.prepared)
    if source.population_folder is None:
        raise ValueError("choose a population or a prepared dataset folder")
    request = folder_request(Path(source.population_folder), source.ndim)
    prepared = yield from _steps(
        prepare_population(request.source, request.cache_folder(), request.config, request.csv),
        "preparing the population (once, cached): ",
    )
    return Path(prepared)


def load_runs(choices: Sequence[RunChoice], device: str = "cpu") -> dict[str, Any]:
    """{name: LoadedRun}: folders loaded, the model in use taken as it is; runs taking scans
    of different shapes are refused, naming both runs and their shapes."""
    from brainvae.errors import ModelError
    from brainvae.models import load_model
    from brainvae.training import resolve_device
    from brainvae.usecases.denoise_run import LoadedRun

    if not choices:
        raise ModelError("choose at least one run: the model in use or a run folder")
    chosen = resolve_device(device)
    loaded = {}
    for choice in choices:
        model = choice.model if choice.model is not None else load_model(choice.folder)
        loaded[choice.name] = LoadedRun(Path(choice.folder or choice.name), model.to(chosen))
    names = list(loaded)
    first = tuple(int(s) for s in loaded[names[0]].model.config.input_shape)
    for name in names[1:]:
        shape = tuple(int(s) for s in loaded[name].model.config.input_shape)
        if shape != first:
            raise ModelError(
                f"{names[0]} takes scans of shape {first} but {name} takes {shape}: compare "
                "runs trained on the same grid"
            )
    return loaded


def compare_job(
    choices: Sequence[RunChoice], source: DatasetSource, request: Any
) -> Generator[Step, None, ComparisonResult]:
    """Load the runs, open (or prepare) the dataset, run the denoising comparison on the
    request's split, then reconstruct the montage scan (brainvae.usecases.denoise_run)."""
    from brainvae.usecases.denoise_run import check_request, denoise_run, open_dataset_for

    check_request(request)
    runs = load_runs(choices)
    yield Step("runs loaded", 1, 1)
    folder = yield from dataset_folder(source)
    dataset = open_dataset_for(runs, folder)
    run = yield from _steps(denoise_run(runs, dataset, request), "denoising: ")
    yield Step("reconstructing the montage scan", 0, 1)
    montage, changed = run.comparison.pictures(request.montage_scan)
    yield Step("reconstructing the montage scan", 1, 1)
    return ComparisonResult(run, montage, changed)


def evaluate_job(
    choices: Sequence[RunChoice],
    source: DatasetSource,
    split: str,
    seed: int = 0,
    batch: int = 64,
) -> Generator[Step, None, list[RunScores]]:
    """Each run's reconstructions of the split scored and its prior samples compared with the
    split (brainvae.usecases.evaluate_run), one run after the other."""
    from brainvae.data.dataset import PreparedDataset
    from brainvae.usecases.denoise_run import describe_model
    from brainvae.usecases.evaluate_run import evaluate_run

    runs = load_runs(choices)
    folder = yield from dataset_folder(source)
    dataset = PreparedDataset.open(folder)
    found = []
    for number, (name, loaded) in enumerate(runs.items(), start=1):
        prefix = f"{name} ({number} of {len(runs)}): "
        evaluation = yield from _steps(
            evaluate_run(loaded.model, dataset, split, None, seed, batch), prefix
        )
        found.append(RunScores(name, describe_model(loaded.model), evaluation))
    return found


def export_job(out: Path, result: ComparisonResult, info: Mapping[str, Any]) -> Iterator[Step]:
    """Write the comparison's folder as `brainvae denoise` does (it reruns the montage scan)."""
    from brainvae.exports.denoise_folder import write_denoise_folder

    yield Step("writing the denoising folder", 0, 1)
    write_denoise_folder(out, result.run, dict(info), overwrite=True)
    yield Step("writing the denoising folder", 1, 1)
    return out
