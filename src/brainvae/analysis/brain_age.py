"""Brain age: an age-conditioned VAE's regressor q(c|x) as a predictor of the condition.

brain_age_agreement is the pure core (predicted and true values in, Pearson r and mean
absolute error out); predicted_condition runs a model over images in batches;
dataset_brain_age scores a prepared dataset's test split (or val, or train when neither).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from brainvae.errors import ModelError

SPLIT_PREFERENCE = ("test", "val", "train")
"""The split brain age is scored on: the first of these that has scans."""


@dataclass(frozen=True)
class BrainAgeResult:
    """How well the predicted condition follows the true one on n scans of `split`.

    pearson_r: correlation of predicted with true; mae: mean absolute error in the condition's
    units (years for age); mean_error: mean of predicted - true (the bias); column: the
    condition's metadata column.
    """

    column: str
    split: str
    n: int
    pearson_r: float
    mae: float
    mean_error: float

    def describe(self) -> str:
        """One line for the command line and the docks."""
        return (
            f"Brain age ({self.column} predicted by the regressor q(c|x)) on the {self.split} "
            f"split, {self.n} scans: Pearson r {self.pearson_r:.3f}, mean absolute error "
            f"{self.mae:.2f} (bias {self.mean_error:+.2f})"
        )


def brain_age_agreement(
    predicted: np.ndarray, true: np.ndarray, column: str = "age", split: str = ""
) -> BrainAgeResult:
    """Pearson r and mean absolute error of predicted against true values (1-D, same length)."""
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    true = np.asarray(true, dtype=np.float64).reshape(-1)
    if predicted.shape != true.shape:
        raise ModelError(f"{len(predicted)} predicted values for {len(true)} true ones")
    if len(true) < 2:
        raise ModelError(
            f"brain age needs at least 2 scans with a {column!r} value, got {len(true)}"
        )
    if not (np.isfinite(predicted).all() and np.isfinite(true).all()):
        raise ModelError("brain age needs finite predicted and true values")
    error = predicted - true
    spread = predicted.std() * true.std()
    r = (
        float(np.mean((predicted - predicted.mean()) * (true - true.mean())) / spread)
        if spread > 0
        else float("nan")
    )
    return BrainAgeResult(
        column, split, len(true), r, float(np.abs(error).mean()), float(error.mean())
    )


def predicted_condition(model: Any, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The regressor's predicted condition (its units) for each image, in eval mode, (N,)."""
    if not callable(getattr(model, "predict_condition", None)):
        raise ModelError(
            f"a {model.config.family!r} model has no regressor: brain age needs an "
            "age-conditioned VAE (family age_vae)"
        )
    was_training = model.training
    model.eval()
    try:
        parts = [
            model.predict_condition(np.asarray(images[start : start + batch_size], np.float32))[0]
            for start in range(0, len(images), batch_size)
        ]
    finally:
        model.train(was_training)
    return np.concatenate(parts) if parts else np.zeros(0)


def dataset_brain_age(model: Any, dataset: Any, split: str | None = None) -> BrainAgeResult:
    """Brain age on a prepared dataset's split (None: test, else val, else train); scans
    without a value of the condition column are left out."""
    import pandas as pd

    column = model.config.condition
    if split is None:
        split = next(s for s in SPLIT_PREFERENCE if len(dataset.indices(s)) or s == "train")
    rows = dataset.indices(split)
    if column not in dataset.metadata.columns:
        raise ModelError(
            f"{dataset.path}: no {column!r} column in the metadata (columns: "
            f"{', '.join(map(str, dataset.metadata.columns))})"
        )
    true = pd.to_numeric(dataset.metadata[column], errors="coerce").to_numpy(np.float64)[rows]
    rows = rows[np.isfinite(true)]
    predicted = predicted_condition(model, dataset.images[rows])
    return brain_age_agreement(predicted, true[np.isfinite(true)], column, split)


def held_out_brain_age(model: Any, dataset: Any) -> BrainAgeResult | None:
    """dataset_brain_age on the test split (else val) of the run's own dataset, or None when
    neither split has a scan: brain age on training scans would flatter the regressor."""
    for split in ("test", "val"):
        if len(dataset.indices(split)):
            return dataset_brain_age(model, dataset, split)
    return None
