"""The denoising comparison of several runs on a dataset, as `brainvae denoise` and the
Evaluation dock run it: open and check the runs and the dataset, then corrupt the split's scans,
reconstruct them with every run and score them (brainvae.evaluation.denoising).

    models = open_runs(["runs/beta3", "runs/vae", "runs/pca"], device="cpu")
    dataset = open_dataset_for(models, "datasets/flair")
    run = drive(denoise_run(models, dataset, DenoiseRequest(split="test")))

denoise_run is a generator (nothing runs, the checks included, before the first next()): it
yields DenoisingProgress reports and returns a DenoiseRun; the dock runs it in a napari
thread_worker, the command drives it on the terminal.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.evaluation.artefacts import ARTEFACTS

if TYPE_CHECKING:
    import pandas as pd

    from brainvae.data.dataset import PreparedDataset
    from brainvae.evaluation.denoising import DenoisingComparison, DenoisingProgress


@dataclass(frozen=True)
class DenoiseRequest:
    """What to compare: the artefacts (in rows' order), their severity (1: the phantom's),
    the split whose scans are corrupted, the seed of the artefacts' draws, the scans per
    forward pass and which scan of the split (0-based) the montage shows."""

    artefacts: tuple[str, ...] = ARTEFACTS
    severity: float = 1.0
    split: str = "test"
    seed: int = 0
    batch: int = 64
    montage_scan: int = 0


@dataclass(frozen=True)
class LoadedRun:
    """A run opened for the comparison: its folder and model."""

    path: Path
    model: Any

    def description(self) -> str:
        """Family, beta (VAEs), L and likelihood, in words for tables and figures."""
        return describe_model(self.model)


def describe_model(model: Any) -> str:
    """ "beta-VAE, beta 3, L 8, gaussian" / "PCA, L 8": what a reader needs to compare runs."""
    config = model.config
    family = str(config.family)
    parts = {"beta_vae": "beta-VAE", "pca": "PCA", "soft_intro_vae": "Soft-IntroVAE"}
    words = [parts.get(family, family)]
    if family == "beta_vae":
        words[0] = "VAE" if float(config.beta) == 1.0 else "beta-VAE"
        words.append(f"beta {float(config.beta):g}")
    words.append(f"L {int(config.latent_dim)}")
    if family != "pca":
        words.append(str(config.likelihood))
    return ", ".join(words)


@dataclass(frozen=True)
class DenoiseRun:
    """A finished comparison: the DenoisingComparison, who each compared scan is (identity:
    position, dataset row, subject_id, ...), the runs by name, the dataset and the request."""

    comparison: DenoisingComparison
    identity: pd.DataFrame
    runs: Mapping[str, LoadedRun]
    dataset: PreparedDataset
    request: DenoiseRequest

    def table(self) -> pd.DataFrame:
        """comparison.table with who each scan is (dataset row, subject, ...) after `scan`."""
        return _with_identity(self.comparison.table, self.identity)

    def inputs(self) -> pd.DataFrame:
        """comparison.inputs with who each scan is."""
        return _with_identity(self.comparison.inputs, self.identity)

    def montage_row(self) -> int:
        """The dataset row of the montage scan."""
        return int(self.identity["row"].iloc[self.request.montage_scan])


def _with_identity(table: pd.DataFrame, identity: pd.DataFrame) -> pd.DataFrame:
    joined = table.merge(identity, on="scan", how="left", sort=False)
    front = ["scan", *[c for c in identity.columns if c != "scan"]]
    return joined[front + [c for c in table.columns if c not in front]]


class RowView:
    """Some rows of a (memory-mapped) stack, read only when sliced: len, shape, [i], [a:b]."""

    def __init__(self, images: Any, rows: np.ndarray, spatial: tuple[int, ...]):
        self.images, self.rows, self.spatial = images, np.asarray(rows, np.int64), spatial
        self.shape = (len(self.rows), *spatial)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: Any) -> np.ndarray:
        chosen = self.rows[key]
        values = np.asarray(self.images[chosen], dtype=np.float32)
        return values.reshape(*np.shape(chosen), *self.spatial)


def run_names(paths: Sequence[str | Path], names: Sequence[str] | None = None) -> list[str]:
    """Names for the runs: the given ones, else each folder's name (with its parent's when two
    folders share a name); names must be distinct."""
    from brainvae.errors import ModelError

    paths = [Path(p) for p in paths]
    if names is not None:
        names = [str(n).strip() for n in names]
        if len(names) != len(paths):
            raise ModelError(f"{len(names)} name(s) for {len(paths)} run(s): give one per run")
    else:
        names = [p.resolve().name or str(p) for p in paths]
        for i, name in enumerate(names):
            if names.count(name) > 1:
                names[i] = f"{paths[i].resolve().parent.name}/{name}"
    if any(not n for n in names) or len(set(names)) != len(names):
        raise ModelError(f"the runs need distinct, non-empty names, got {', '.join(names)}")
    return names


def open_runs(
    paths: Sequence[str | Path], names: Sequence[str] | None = None, device: str = "cpu"
) -> dict[str, LoadedRun]:
    """{name: LoadedRun} of every run folder (models on `device`), refused when two runs take
    scans of different shapes (naming both runs and their shapes)."""
    from brainvae.errors import ModelError
    from brainvae.models import load_model
    from brainvae.training import resolve_device

    if not paths:
        raise ModelError("the denoising comparison needs at least one run")
    chosen = resolve_device(device)
    loaded = {
        name: LoadedRun(Path(path), load_model(path).to(chosen))
        for name, path in zip(run_names(paths, names), paths, strict=True)
    }
    first_name, first = next(iter(loaded.items()))
    first_shape = tuple(first.model.config.input_shape)
    for name, run in loaded.items():
        shape = tuple(run.model.config.input_shape)
        if shape != first_shape:
            raise ModelError(
                f"{first.path} ({first_name}) takes scans of shape {first_shape} but "
                f"{run.path} ({name}) takes {shape}: compare runs trained on the same grid"
            )
    return loaded


def open_dataset_for(runs: Mapping[str, LoadedRun], dataset: str | Path) -> PreparedDataset:
    """The prepared dataset, refused when its scans do not fit the runs (naming the run)."""
    from brainvae.data.dataset import PreparedDataset
    from brainvae.errors import ModelError

    opened = PreparedDataset.open(dataset)
    for run in runs.values():
        expected = tuple(run.model.config.input_shape)
        shape = tuple(opened.scan_shape)
        if shape != expected and shape != (1, *expected):
            raise ModelError(
                f"{opened.path}: scans of shape {shape} do not fit {run.path}, trained on "
                f"scans of shape {expected}; compare on a dataset prepared with its recipe"
            )
    return opened


def check_request(request: DenoiseRequest, n_scans: int | None = None) -> None:
    """Refuse artefacts, severity, seed, batch or montage scan that cannot be used."""
    from brainvae.errors import ModelError
    from brainvae.evaluation.artefacts import ArtefactError, check_artefacts, check_severity

    check_artefacts(request.artefacts)
    check_severity(request.severity)
    if request.seed < 0:
        raise ArtefactError(f"the seed must be >= 0, got {request.seed}")
    if request.batch < 1:
        raise ModelError(f"the batch must be >= 1, got {request.batch}")
    if n_scans is not None and not 0 <= request.montage_scan < n_scans:
        raise ModelError(
            f"the montage scan {request.montage_scan} is not among the split's {n_scans} "
            f"scans (0..{n_scans - 1})"
        )


def denoise_run(
    runs: Mapping[str, LoadedRun], dataset: PreparedDataset, request: DenoiseRequest
) -> Generator[DenoisingProgress, None, DenoiseRun]:
    """Check, then yield DenoisingProgress reports; return the DenoiseRun of the split.

    The scores are taken inside the split's mean scan above 10 % of its maximum (the
    evaluation's rule); the artefacts are placed on each scan's own brain."""
    from brainvae.evaluation.denoising import denoising_comparison
    from brainvae.usecases.evaluate_run import identity_table, split_rows

    check_request(request)
    rows = split_rows(dataset, request.split)  # names the splits there are when empty
    check_request(request, len(rows))
    spatial = tuple(int(s) for s in next(iter(runs.values())).model.config.input_shape)
    clean = RowView(dataset.images, rows, spatial)
    models = {name: run.model for name, run in runs.items()}
    comparison = yield from denoising_comparison(
        models, clean, request.artefacts, request.severity, request.seed, None, request.batch
    )
    identity = identity_table(dataset, rows)
    identity.insert(0, "scan", np.arange(len(rows)))
    return DenoiseRun(comparison, identity, dict(runs), dataset, request)
