"""Evaluate a run on a dataset as `brainvae evaluate`, the sweep and the Evaluation dock do it:
the split's scans reconstructed and scored, prior samples compared with them.

    model, dataset = open_run_and_dataset("runs/a", "datasets/flair")
    evaluation = drive(evaluate_run(model, dataset, split="test"))

The scores are taken inside a brain mask: the split's mean scan above 10 % of its maximum
(brainvae.analysis.projective_maps.brain_mask_from_images, the projective field's rule), so
the empty background around the head does not inflate them.

cell_metrics is what `brainvae sweep` measures in each cell: these scores, the active latents
and total correlation of the codes, with a factors file MIG, DCI and SAP, with ROIs the
receptive-field separation (CellMetricsRequest says which; cell_inputs reads its files once).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.errors import DatasetError

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset
    from brainvae.evaluation.run_evaluation import EvaluationProgress, RunEvaluation
    from brainvae.models import LatentModel

DEFAULT_SPLIT = "test"
DEFAULT_SEED = 0
DEFAULT_BATCH = 64
"""The defaults of evaluate_run and CellMetricsRequest (and so of `brainvae evaluate` and
`brainvae sweep`): the split scored, the samples' seed, images per forward pass."""
MASK_FRACTION = 0.1
"""The brain mask: the split's mean scan above this fraction of its maximum."""
IDENTITY_COLUMNS = ("subject_id", "session", "split", "slice_index")
"""Metadata columns that say which scan a row of the per-scan table is (when present)."""


class SplitMissing(DatasetError):
    """The dataset has no scan in the split asked for."""


def open_run_and_dataset(
    run_dir: str | Path, dataset: str | Path, device: str = "cpu"
) -> tuple[LatentModel, PreparedDataset]:
    """The run's model (on `device`) and the prepared dataset, opened and checked to fit."""
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import load_model
    from brainvae.training import resolve_device
    from brainvae.usecases.encoding import check_fits

    model = load_model(run_dir).to(resolve_device(device))
    opened = PreparedDataset.open(dataset)
    check_fits(model, opened)
    return model, opened


def split_rows(dataset: PreparedDataset, split: str) -> np.ndarray:
    """The rows of a split; a split without scans is refused, naming the splits there are."""
    rows = dataset.indices(split)
    if len(rows) == 0:
        counts = dataset.metadata["split"].value_counts()
        there = ", ".join(f"{name} ({int(n)} scans)" for name, n in counts.items())
        raise SplitMissing(
            f"{dataset.path}: no scan in the {split!r} split (the dataset has: {there}); "
            "choose one of those or prepare the dataset with a split for it"
        )
    return rows


def split_condition(model: LatentModel, dataset: PreparedDataset, rows: np.ndarray) -> Any:
    """The condition values of an age-conditioned VAE's scans (None for other families);
    refused when the column is missing or has no number for a scan."""
    import pandas as pd

    from brainvae.models import ModelError

    if model.config.family != "age_vae":
        return None
    column = str(model.config.condition)
    if column not in dataset.metadata.columns:
        raise ModelError(
            f"{dataset.path}: the age-conditioned VAE samples at each scan's {column!r} value, "
            f"but the metadata has no such column (columns: {', '.join(dataset.metadata)})"
        )
    values = pd.to_numeric(dataset.metadata[column], errors="coerce").to_numpy(np.float64)[rows]
    if not np.isfinite(values).all():
        raise ModelError(
            f"{dataset.path}: {int((~np.isfinite(values)).sum())} of the {len(rows)} scans have "
            f"no numeric {column!r} value to sample the conditional prior at"
        )
    return values


def split_brain_mask(dataset: PreparedDataset, rows: np.ndarray, spatial: tuple) -> np.ndarray:
    """The split's mean scan above MASK_FRACTION of its maximum, (spatial) bool."""
    from brainvae.analysis.projective_maps import brain_mask_from_images

    total = np.zeros(spatial, dtype=np.float64)
    for start in range(0, len(rows), 256):
        chosen = rows[start : start + 256]
        total += np.asarray(dataset.images[chosen], dtype=np.float64).reshape(-1, *spatial).sum(0)
    return brain_mask_from_images(total / len(rows), MASK_FRACTION)


def identity_table(dataset: PreparedDataset, rows: np.ndarray) -> Any:
    """Who each scan is: its row in the dataset and the identity columns it has."""
    import pandas as pd

    table = pd.DataFrame({"row": rows})
    metadata = dataset.metadata.iloc[rows].reset_index(drop=True)
    for column in IDENTITY_COLUMNS:
        if column in metadata.columns:
            table[column] = metadata[column].to_numpy()
    return table


def evaluate_run(
    model: LatentModel,
    dataset: PreparedDataset,
    split: str = DEFAULT_SPLIT,
    n_samples: int | None = None,
    seed: int = DEFAULT_SEED,
    batch: int = DEFAULT_BATCH,
) -> Generator[EvaluationProgress, None, RunEvaluation]:
    """Check, then yield EvaluationProgress reports; return the RunEvaluation of the split.

    n_samples: prior samples compared with the split's scans (None: as many as scans). Being
    a generator, nothing (the checks included) runs before the first next().
    """
    from brainvae.evaluation.run_evaluation import evaluation_steps
    from brainvae.usecases.encoding import check_fits

    rows = split_rows(dataset, split)
    check_fits(model, dataset)
    spatial = tuple(int(s) for s in model.config.input_shape)
    condition = split_condition(model, dataset, rows)
    mask = split_brain_mask(dataset, rows, spatial)
    note = (
        f"the {split} split's mean scan above {MASK_FRACTION:g} of its maximum "
        f"({int(mask.sum())} of {mask.size} voxels)"
    )
    return (
        yield from evaluation_steps(
            model,
            dataset.images,
            rows,
            mask,
            split=split,
            identity=identity_table(dataset, rows),
            n_samples=n_samples,
            condition=condition,
            seed=seed,
            batch=batch,
            mask_note=note,
        )
    )


@dataclass(frozen=True)
class CellMetricsRequest:
    """What a sweep measures in each cell, besides evaluate_run's scores: with factors_path
    (a phantom subjects.csv) the ground-truth disentanglement metrics, with rois_path (a label
    image on the dataset's grid) the receptive-field separation. Its record() goes into each
    cell's metrics.json, so a cell measured otherwise is measured again."""

    split: str = DEFAULT_SPLIT
    n_samples: int | None = None
    seed: int = DEFAULT_SEED
    batch: int = DEFAULT_BATCH
    factors_path: str | None = None
    rois_path: str | None = None
    roi_names_path: str | None = None

    def record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CellInputs:
    """The request's files read once for every cell: the factors of each dataset row
    (FactorTable) and the ROI masks with their names (None where not asked)."""

    factors: Any = None
    roi_masks: np.ndarray | None = None
    roi_names: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def check_cell_metrics(dataset: PreparedDataset, request: CellMetricsRequest) -> None:
    """Refuse, before a sweep trains anything, a split the measurements cannot use: missing,
    or too small for the PCA-based Frechet distance (SCANS_PER_COMPONENT scans per axis)."""
    from brainvae.evaluation.frechet import SCANS_PER_COMPONENT
    from brainvae.models import ModelError

    rows = split_rows(dataset, request.split)
    samples = len(rows) if request.n_samples is None else request.n_samples
    if min(len(rows), samples) < SCANS_PER_COMPONENT:
        raise ModelError(
            f"{dataset.path}: the {request.split} split has {len(rows)} scan(s) and "
            f"{samples} prior sample(s) would be drawn; the PCA-based Frechet distance needs "
            f"at least {SCANS_PER_COMPONENT} of each: evaluate on a larger split, or train "
            "without the measurements (--no-metrics)"
        )


def cell_inputs(
    request: CellMetricsRequest, dataset: PreparedDataset, rois: Any = None
) -> CellInputs:
    """Read the factors file for the dataset's rows and turn `rois` (labels on the dataset's
    grid, read by the caller from request.rois_path) into masks; a missing factors file is an
    error naming it."""
    from brainvae.analysis.roi_masks import roi_masks
    from brainvae.data.roi_files import read_roi_names
    from brainvae.evaluation.factors import dataset_factors
    from brainvae.usecases.receptive_run import present_rois

    factors = None
    notes: list[str] = []
    if request.factors_path is not None:
        factors = dataset_factors(dataset.metadata, request.factors_path)
        notes.extend(factors.notes)
    masks, names = None, ()
    if rois is not None:
        given = read_roi_names(request.roi_names_path) if request.roi_names_path else None
        present = present_rois(rois, given)
        if present.skipped:
            notes.append(f"ROIs without voxels skipped: {', '.join(present.skipped)}")
        masks, names = roi_masks(rois, present.names, tuple(rois.shape))
    return CellInputs(factors, masks, tuple(names), tuple(notes))


def encoded_rows(model: LatentModel, dataset: PreparedDataset, rows: np.ndarray, batch: int):
    """(N, L) posterior means of some rows of the dataset."""
    import torch

    spatial = tuple(int(s) for s in model.config.input_shape)
    model.eval()
    codes = np.empty((len(rows), model.latent_dim), dtype=np.float64)
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            chosen = rows[start : start + batch]
            x = np.asarray(dataset.images[chosen], dtype=np.float32).reshape(-1, *spatial)
            codes[start : start + len(chosen)] = model.embed(x).float().cpu().numpy()
    return codes


def cell_metrics(
    model: LatentModel,
    dataset: PreparedDataset,
    request: CellMetricsRequest,
    inputs: CellInputs,
) -> Generator[EvaluationProgress, None, dict[str, Any]]:
    """evaluate_run's scores, the active latents and Gaussian total correlation of the split's
    codes, the ground-truth metrics with factors (MIG and TC on the split, DCI and SAP trained
    on the train split and tested on it) and the receptive-field separation on the split with
    ROIs. Returns {"metrics": {name: number or None}, "details": {...}}."""
    from brainvae.evaluation.run_evaluation import EvaluationProgress

    evaluation = yield from evaluate_run(
        model, dataset, request.split, request.n_samples, request.seed, request.batch
    )
    scores = evaluation.reconstruction
    codes = evaluation.codes
    metrics: dict[str, Any] = {
        "cw_ssim": _mean(scores.cw_ssim),
        "ssim": _mean(scores.ssim),
        "mse": _mean(scores.mse),
        "pca_fd": _number(evaluation.pca_fd.distance),
        "active_latents": evaluation.activity().n_active,
        "total_correlation": None,
    }
    details: dict[str, Any] = {"evaluation": evaluation.summary(), "notes": list(inputs.notes)}
    metrics["total_correlation"], note = _total_correlation(codes)
    if note:
        details["notes"].append(note)
    rows = split_rows(dataset, request.split)
    if inputs.factors is not None:
        yield EvaluationProgress("disentanglement metrics", 0, 1)
        found, more = factor_metrics(model, dataset, rows, codes, inputs.factors, request)
        metrics.update(found)
        details.update(more)
        yield EvaluationProgress("disentanglement metrics", 1, 1)
    if inputs.roi_masks is not None:
        metrics.update((yield from receptive_metrics(model, dataset, rows, inputs, request.batch)))
    return {"metrics": metrics, "details": details}


def _number(value: Any) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None


def _mean(values: Any) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def _total_correlation(codes: np.ndarray) -> tuple[float | None, str | None]:
    """Gaussian total correlation of the codes, or None and why."""
    from brainvae.evaluation.disentanglement_metrics import gaussian_total_correlation

    try:
        value = gaussian_total_correlation(codes)
    except DatasetError as error:
        return None, f"total correlation not computed: {error}"
    if not np.isfinite(value):
        return None, "total correlation is infinite: some latents are linear combinations of others"
    return float(value), None


def factor_metrics(
    model: LatentModel,
    dataset: PreparedDataset,
    rows: np.ndarray,
    codes: np.ndarray,
    factors: Any,
    request: CellMetricsRequest,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """MIG of the split's codes; DCI and SAP fitted on the train split's codes and scored on
    the split's. Factors constant on the split are left out (MIG divides by their entropy)."""
    from brainvae.evaluation.disentanglement_metrics import dci, mig, sap

    test = np.asarray(factors.values, dtype=np.float64)[rows]
    varying = np.ptp(test, axis=0) > 0
    names = tuple(n for n, keep in zip(factors.names, varying, strict=True) if keep)
    left_out = [n for n, keep in zip(factors.names, varying, strict=True) if not keep]
    train_rows = dataset.indices("train")
    if request.split == "train" or len(train_rows) < 2:
        raise DatasetError(
            f"{dataset.path}: DCI and SAP fit on the train split and score on the "
            f"{request.split!r} split: both need scans ({len(train_rows)} training scans)"
        )
    train_codes = encoded_rows(model, dataset, train_rows, request.batch)
    train = np.asarray(factors.values, dtype=np.float64)[train_rows][:, varying]
    test = test[:, varying]
    found_mig = mig(codes, test, factor_names=names)
    found_dci = dci(train_codes, train, codes, test, seed=request.seed, factor_names=names)
    # continuous factors are scored by regression (R^2), discrete ones by classification
    continuous = [not d for d, keep in zip(factors.discrete, varying, strict=True) if keep]
    found_sap = sap(
        train_codes, train, codes, test, continuous_factors=continuous, factor_names=names
    )
    metrics = {
        "mig": float(found_mig.score),
        "dci_disentanglement": float(found_dci.disentanglement),
        "dci_completeness": float(found_dci.completeness),
        "dci_informativeness": float(found_dci.informativeness_test),
        "sap": float(found_sap.score),
    }
    details = {
        "factors": list(names),
        "factors_left_out": left_out,
        "mig_per_factor": dict(zip(names, map(float, found_mig.per_factor), strict=True)),
        "sap_per_factor": dict(zip(names, map(float, found_sap.per_factor), strict=True)),
        "factor_metrics_on": f"MIG on the {request.split} split's codes; DCI and SAP fitted "
        f"on the train split's {len(train_rows)} codes, scored on the {request.split} split's",
    }
    return metrics, details


def receptive_metrics(
    model: LatentModel, dataset: PreparedDataset, rows: np.ndarray, inputs: CellInputs, batch: int
) -> Generator[EvaluationProgress, None, dict[str, Any]]:
    """The receptive field of every ROI on the split's scans (the `brainvae receptive`
    defaults: remove, weights -1..1, symmetric KL) and its separation and published s."""
    from brainvae.analysis.receptive_field import DEFAULT_WEIGHTS
    from brainvae.evaluation.run_evaluation import EvaluationProgress
    from brainvae.usecases.receptive_run import receptive_run

    steps = receptive_run(
        model, dataset.images, inputs.roi_masks, inputs.roi_names, DEFAULT_WEIGHTS, "remove",
        False, rows, batch_size=batch,
    )  # fmt: skip
    while True:
        try:
            report = next(steps)
        except StopIteration as finished:
            run = finished.value
            break
        yield EvaluationProgress("receptive fields", report.done, report.total)
    scores = run.scores
    if scores is None:
        return {"receptive_separation": None, "receptive_published_s": None}
    return {
        "receptive_separation": _number(scores.separation),
        "receptive_published_s": _number(scores.published),
    }
