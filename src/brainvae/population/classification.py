"""Linear discriminant analysis of a class column: held-out predictions, per-class precision and
recall with the TP / FP / FN / TN counts laid out like the FLAIR study's Table 2 (one column
per class), the confusion matrix, balanced accuracy with a subject bootstrap interval, the
chance level, and the discriminant axes for display.

scikit-learn's LinearDiscriminantAnalysis does the fitting; the counts come from one
vectorised confusion matrix (checked against scikit-learn's own metrics in the tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from brainvae.population.validation import Folds

DEFAULT_BOOTSTRAP = 1000
"""Bootstrap resamples (of subjects) for the balanced accuracy's 95 % interval."""
SHRINKAGE_CHOICES = ("none", "auto")
"""LDA covariance shrinkage: none (plain LDA, as published), auto (Ledoit-Wolf), or a number
in [0, 1]."""
TABLE_ROWS = ("TP", "FP", "FN", "TN", "precision", "recall")


def lda_factory(shrinkage: str | float | None = None) -> Callable[[], Any]:
    """A maker of scikit-learn LDAs: plain (SVD solver) or with covariance shrinkage."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    value = parse_shrinkage(shrinkage)
    if value is None:
        return lambda: LinearDiscriminantAnalysis(solver="svd")
    return lambda: LinearDiscriminantAnalysis(solver="eigen", shrinkage=value)


def parse_shrinkage(shrinkage: str | float | None) -> str | float | None:
    """None/'none' -> None, 'auto' -> 'auto', a number in [0, 1] -> float; else an error."""
    from brainvae.errors import PopulationAnalysisError

    if shrinkage is None or shrinkage == "none":
        return None
    if shrinkage == "auto":
        return "auto"
    try:
        value = float(shrinkage)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise PopulationAnalysisError(
            f"shrinkage must be none, auto or a number in [0, 1], not {shrinkage!r}"
        )
    return value


@dataclass(frozen=True)
class Classification:
    """Held-out classification of one class column from one set of features."""

    features: str  # what was classified from, in words
    classes: tuple[str, ...]
    truth: np.ndarray  # (n,) class index of every scan analysed
    predicted: np.ndarray  # (n,) held-out predicted class index, -1 where never held out
    confusion: np.ndarray  # (K, K) rows true, columns predicted, held-out scans
    balanced_accuracy: float
    interval: tuple[float, float]  # 95 % subject bootstrap interval
    chance: float  # balanced accuracy of guessing: 1 / K
    axes: np.ndarray  # (n, k) discriminant coordinates (display: see `axes_note`)
    axes_note: str
    validation: str

    @property
    def held_out(self) -> np.ndarray:
        return self.predicted >= 0

    @property
    def counts(self) -> dict[str, np.ndarray]:
        """TP, FP, FN, TN per class (one against the rest), over the held-out scans."""
        tp = np.diag(self.confusion).astype(np.int64)
        fp = self.confusion.sum(axis=0) - tp
        fn = self.confusion.sum(axis=1) - tp
        tn = self.confusion.sum() - tp - fp - fn
        return {"TP": tp, "FP": fp, "FN": fn, "TN": tn}

    @property
    def precision(self) -> np.ndarray:
        c = self.counts
        return _ratio(c["TP"], c["TP"] + c["FP"])

    @property
    def recall(self) -> np.ndarray:
        c = self.counts
        return _ratio(c["TP"], c["TP"] + c["FN"])

    def table(self) -> pd.DataFrame:
        """Table 2's layout: rows TP, FP, FN, TN, precision, recall; one column per class."""
        rows = {**self.counts, "precision": self.precision, "recall": self.recall}
        values = [[int(v) for v in rows[name]] for name in TABLE_ROWS[:4]]
        values += [[float(v) for v in rows[name]] for name in TABLE_ROWS[4:]]
        # object cells: the counts stay integers beside the ratios
        table = pd.DataFrame(values, index=list(TABLE_ROWS), dtype=object)
        table.columns = list(self.classes)
        table.index.name = "count"
        return table

    def confusion_table(self) -> pd.DataFrame:
        table = pd.DataFrame(
            self.confusion,
            index=[f"true {c}" for c in self.classes],
            columns=[f"predicted {c}" for c in self.classes],
        )
        table.index.name = "class"
        return table

    def describe(self) -> str:
        low, high = self.interval
        return (
            f"{self.features}: balanced accuracy {self.balanced_accuracy:.2f} "
            f"(95 % interval {low:.2f}-{high:.2f}; chance {self.chance:.2f})"
        )


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(bottom > 0, top / np.maximum(bottom, 1), np.nan)


def held_out_predictions(
    make: Callable[[], Any], features: Any, truth: np.ndarray, folds: Folds
) -> np.ndarray:
    """(n,) class index predicted for each scan by the estimator of the fold holding it out;
    -1 for scans no fold tests (the train split)."""
    predicted = np.full(len(truth), -1, dtype=np.int64)
    for train, test in zip(folds.train, folds.test, strict=True):
        estimator = make().fit(_rows(features, train), truth[train])
        predicted[test] = estimator.predict(_rows(features, test))
    return predicted


def _rows(features: Any, rows: np.ndarray) -> np.ndarray:
    """Rows of a feature array or of a (memory-mapped) image stack, flattened to 2D float32."""
    taken = np.asarray(features[rows])
    return taken.reshape(len(rows), -1).astype(np.float32, copy=False)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) counts of held-out scans (predicted >= 0), rows true, columns predicted."""
    kept = predicted >= 0
    pairs = truth[kept] * n_classes + predicted[kept]
    return np.bincount(pairs, minlength=n_classes**2).reshape(n_classes, n_classes)


def balanced_accuracy_interval(
    truth: np.ndarray,
    predicted: np.ndarray,
    groups: np.ndarray,
    n_classes: int,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> tuple[float, float]:
    """95 % percentile interval of the balanced accuracy over subject bootstrap resamples.

    Subjects (not scans) are drawn with replacement, since a subject's scans are not
    independent; every resample's confusion matrix is one weighted count, all at once.
    """
    kept = predicted >= 0
    if n_bootstrap < 1 or not kept.any():
        return (float("nan"), float("nan"))
    subject = np.unique(groups[kept], return_inverse=True)[1]
    n_subjects = int(subject.max()) + 1
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_subjects, size=(n_bootstrap, n_subjects))
    offsets = (np.arange(n_bootstrap)[:, None] * n_subjects + draws).ravel()
    times = np.bincount(offsets, minlength=n_bootstrap * n_subjects).reshape(n_bootstrap, -1)
    weights = times[:, subject].astype(np.float64)  # (B, n held out)
    cells = truth[kept] * n_classes + predicted[kept]
    onehot = np.zeros((len(cells), n_classes**2))
    onehot[np.arange(len(cells)), cells] = 1.0
    confusion = (weights @ onehot).reshape(n_bootstrap, n_classes, n_classes)
    per_class = confusion.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.diagonal(confusion, axis1=1, axis2=2) / per_class
    scores = np.nanmean(np.where(per_class > 0, recall, np.nan), axis=1)
    low, high = np.nanpercentile(scores, [2.5, 97.5])
    return (float(low), float(high))


def balanced_accuracy(confusion: np.ndarray) -> float:
    """Mean recall over the classes that have held-out scans."""
    per_class = confusion.sum(axis=1)
    present = per_class > 0
    return float(np.mean(np.diag(confusion)[present] / per_class[present]))


def classify(
    features: Any,
    truth: np.ndarray,
    classes: tuple[str, ...],
    groups: np.ndarray,
    folds: Folds,
    description: str,
    make: Callable[[], Any] | None = None,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    axes: bool = True,
) -> Classification:
    """Held-out LDA classification of `truth` (class indices into `classes`) from `features`
    ((n, p) codes, or an (n, ...) image stack with `make` building a PCA+LDA pipeline).
    axes=False skips the display axes (an estimator without `transform`)."""
    make = make or lda_factory()
    n_classes = len(classes)
    predicted = held_out_predictions(make, features, truth, folds)
    confusion = confusion_matrix(truth, predicted, n_classes)
    coordinates, note = np.zeros((len(truth), 0)), "no axes: not a discriminant analysis"
    if axes:
        coordinates, note = discriminant_axes(make, features, truth, folds)
    return Classification(
        features=description,
        classes=tuple(classes),
        truth=truth,
        predicted=predicted,
        confusion=confusion,
        balanced_accuracy=balanced_accuracy(confusion),
        interval=balanced_accuracy_interval(truth, predicted, groups, n_classes, n_bootstrap, seed),
        chance=1.0 / n_classes,
        axes=coordinates,
        axes_note=note,
        validation=folds.describe(),
    )


def discriminant_axes(
    make: Callable[[], Any], features: Any, truth: np.ndarray, folds: Folds
) -> tuple[np.ndarray, str]:
    """Every scan on the first (up to three) discriminant axes, for display.

    With a test split the LDA is fitted on the train split (test points are then new to it);
    under cross-validation on all scans (the axes are one picture of the population, and the
    scores above come from the held-out predictions, never from this fit).
    """
    n = len(truth)
    if folds.scheme == "split":
        rows, note = folds.train[0], "axes fitted on the train split; test scans are new to them"
    else:
        rows = np.arange(n)
        note = "axes fitted on all scans (display only: the scores are held-out predictions)"
    estimator = make().fit(_rows(features, rows), truth[rows])
    coordinates = estimator.transform(_rows(features, np.arange(n)))
    return np.asarray(coordinates[:, :3], dtype=np.float64), note
