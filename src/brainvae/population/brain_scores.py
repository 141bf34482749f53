"""Brain scores: how well the latents predict a numeric measure (age, a clinical score, a
regional volume), and which latent carries it.

A ridge (or lasso, for sparse one-to-one correspondences) regression from the standardised
latents to the measure, fitted fold by fold with every subject in one fold, predicts each
held-out scan; the score is Pearson's r between held-out predictions and the truth, and its
p-value comes from refitting on permuted measures (the permuted targets are fitted together:
ridge fits many targets at once, each choosing its own penalty by efficient leave-one-out).
The weights shown are the standardised coefficients of one fit on every scan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from brainvae.errors import PopulationAnalysisError
from brainvae.population.validation import Folds

REGRESSIONS = ("ridge", "lasso")
DEFAULT_PERMUTATIONS = 1000
RIDGE_ALPHAS = np.logspace(-3, 4, 15)
"""Penalties ridge chooses from (per fold and target, by leave-one-out on the fold's train
rows); the latents are standardised first, so one grid suits every model."""


@dataclass(frozen=True)
class BrainScore:
    """Held-out prediction of one measure from the latents."""

    measure: str
    method: str
    r: float  # Pearson r, held-out predictions vs truth
    p: float  # permutation p-value (one-sided: r at least this large)
    n_permutations: int
    truth: np.ndarray  # (n,) values of the scans that have one
    predicted: np.ndarray  # (n,) held-out predictions (NaN where never held out)
    keep: np.ndarray  # (N,) which scans of the population have a value
    weights: np.ndarray  # (L,) standardised coefficients of the fit on all scans
    validation: str
    n_missing: int = 0
    correlations: np.ndarray | None = None  # (L,) Pearson r of each latent with the measure

    def describe(self) -> str:
        return (
            f"{self.measure} from the latents ({self.method}): r = {self.r:.2f} on held-out "
            f"scans, permutation p = {self.p:.3g} ({self.n_permutations} permutations)"
        )


def weights_table(
    scores: tuple[BrainScore, ...], latent_names: list[str], field: str = "weights"
) -> pd.DataFrame:
    """Latent x measure standardised weights (each latent's part given all the others: with
    correlated latents they can exceed 1 and cancel), or with field="correlations" each
    latent's own Pearson r with the measure."""
    table = pd.DataFrame(
        {score.measure: getattr(score, field) for score in scores}, index=list(latent_names)
    )
    table.index.name = "latent"
    return table


def _pearson_columns(truth: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Pearson r between `truth` (n,) and each column of `predictions` (n, P)."""
    t = truth - truth.mean()
    p = predictions - predictions.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (t @ p) / (np.sqrt((t**2).sum()) * np.sqrt((p**2).sum(axis=0)))
    return np.nan_to_num(r, nan=0.0)


def _standardise(train: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = train.mean(axis=0)
    sd = train.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return (train - mean) / sd, (other - mean) / sd


def _fit_predict(method: str, x_train, y_train, x_test, folds_within) -> np.ndarray:
    """Predictions (n_test, T) of T targets at once."""
    if method == "ridge":
        from sklearn.linear_model import RidgeCV

        model = RidgeCV(alphas=RIDGE_ALPHAS, alpha_per_target=True).fit(x_train, y_train)
        return np.asarray(model.predict(x_test)).reshape(len(x_test), -1)
    from sklearn.linear_model import Lasso, LassoCV

    observed = LassoCV(cv=folds_within, random_state=0, max_iter=5000).fit(x_train, y_train[:, 0])
    model = Lasso(alpha=observed.alpha_, max_iter=5000).fit(x_train, y_train)
    return np.asarray(model.predict(x_test)).reshape(len(x_test), -1)


def _inner_folds(groups: np.ndarray, n_folds: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """Subject-grouped folds inside one training set (for lasso's choice of penalty)."""
    from sklearn.model_selection import GroupKFold

    n = min(n_folds, len(np.unique(groups)))
    return list(GroupKFold(n_splits=max(n, 2)).split(np.zeros(len(groups)), groups=groups))


def fold_predictions(
    method: str, codes: np.ndarray, targets: np.ndarray, groups: np.ndarray, folds: Folds
) -> np.ndarray:
    """(n, T) held-out predictions of T targets at once (NaN where no fold tests a row)."""
    predictions = np.full(targets.shape, np.nan)
    for train, test in zip(folds.train, folds.test, strict=True):
        x_train, x_test = _standardise(codes[train], codes[test])
        inner = _inner_folds(groups[train]) if method == "lasso" else None
        predictions[test] = _fit_predict(method, x_train, targets[train], x_test, inner)
    return predictions


def brain_score(
    codes: np.ndarray,
    values: np.ndarray,
    groups: np.ndarray,
    folds: Folds,
    measure: str,
    method: str = "ridge",
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    keep: np.ndarray | None = None,
    n_missing: int = 0,
    shuffles: np.ndarray | None = None,
) -> BrainScore:
    """Held-out r and permutation p of `values` (n,) from `codes` (n, L); `folds` index rows.

    `shuffles` (P, n): row indices giving each permutation's values (default: P plain
    permutations of the scans); every permuted target is refitted fold by fold."""
    if method not in REGRESSIONS:
        raise PopulationAnalysisError(
            f"regression must be one of {', '.join(REGRESSIONS)}, not {method!r}"
        )
    if n_permutations < 0:
        raise PopulationAnalysisError(f"permutations must be >= 0, got {n_permutations}")
    codes = np.asarray(codes, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if shuffles is None:
        rng = np.random.default_rng(seed)
        shuffles = np.stack([rng.permutation(len(values)) for _ in range(n_permutations)])
    shuffles = np.asarray(shuffles, dtype=np.int64).reshape(-1, len(values))
    targets = np.concatenate([values[:, None], values[shuffles].T], axis=1)
    predictions = fold_predictions(method, codes, targets, groups, folds)
    held = folds.held_out(len(values))
    r_all = _pearson_columns(values[held], predictions[held])
    r = float(r_all[0])
    count = len(shuffles)
    p = float((1 + np.sum(r_all[1:] >= r)) / (1 + count)) if count else float("nan")
    x_all, _ = _standardise(codes, codes[:1])
    inner = _inner_folds(groups) if method == "lasso" else None
    weights = _coefficients(method, x_all, values, inner)
    return BrainScore(
        measure=measure,
        method=method,
        r=r,
        p=p,
        n_permutations=count,
        truth=values,
        predicted=predictions[:, 0],
        keep=np.ones(len(values), dtype=bool) if keep is None else keep,
        weights=weights,
        validation=folds.describe(),
        n_missing=n_missing,
        correlations=_pearson_columns(values, codes),
    )


def _coefficients(method: str, x: np.ndarray, y: np.ndarray, inner) -> np.ndarray:
    """Standardised coefficients of one fit on all scans (the weight matrix's column)."""
    sd = y.std()
    target = (y - y.mean()) / (sd if sd > 0 else 1.0)
    if method == "ridge":
        from sklearn.linear_model import RidgeCV

        return RidgeCV(alphas=RIDGE_ALPHAS).fit(x, target).coef_.astype(np.float64)
    from sklearn.linear_model import LassoCV

    return LassoCV(cv=inner, random_state=0, max_iter=5000).fit(x, target).coef_.astype(float)
