"""Is the separation disease, or scanner? For each nuisance column of the subjects table (site,
scanner, an acquisition parameter such as TR, TE or pixel bandwidth), how well it predicts the
class on its own (the same folds as the latents), and how well the latents predict it.

Two warnings, in plain words:
- confounded: the column alone predicts the class about as well as the latents (within
  CONFOUND_MARGIN of balanced accuracy, and its interval clear of chance): the latents may
  separate the classes by acquisition, not by anatomy;
- encoded: the latents predict the column better than chance beyond what the class explains
  (refitted on the column shuffled between the subjects of each class: p < ENCODED_P):
  acquisition is part of what the model learned.

Columns derived from the disease itself (lesion load, severity) would trivially "predict" it,
so by default only columns named like acquisition settings are checked (NUISANCE_WORDS);
name others explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from brainvae.population.brain_scores import brain_score, fold_predictions
from brainvae.population.classification import (
    balanced_accuracy_interval,
    classify,
    lda_factory,
)
from brainvae.population.columns import (
    BOOKKEEPING_COLUMNS,
    is_categorical,
    require_column,
)

CONFOUND_MARGIN = 0.10
ENCODED_P = 0.05
NUISANCE_WORDS = (
    "site", "scanner", "center", "centre", "manufacturer", "vendor", "institution", "station",
    "field", "strength", "tesla", "protocol", "sequence", "coil", "acquisition", "repetition",
    "echo", "inversion", "flip", "bandwidth", "thickness", "spacing", "tr", "te", "ti", "fov",
    "voxel", "resolution", "software", "batch", "stain",
)  # fmt: skip
"""Words in a column name (split at non-letters) that mark it as an acquisition setting."""


def nuisance_columns(table: pd.DataFrame, class_column: str) -> list[str]:
    """Columns named like acquisition settings (site, scanner, TR, echo_time, ...)."""
    found = []
    for column in table.columns:
        if column in BOOKKEEPING_COLUMNS or column == class_column:
            continue
        words = set(re.split(r"[^a-z]+", str(column).lower()))
        if words & set(NUISANCE_WORDS):
            found.append(str(column))
    return found


@dataclass(frozen=True)
class NuisanceCheck:
    """One nuisance column against the class and the latents."""

    column: str
    kind: str  # "categorical" or "numeric"
    class_from_column: float  # balanced accuracy of the class from this column alone
    class_from_column_interval: tuple[float, float]
    class_from_latents: float
    latents_to_column: float  # categorical: balanced accuracy; numeric: Pearson r
    latents_to_column_chance: float  # categorical: 1 / levels; numeric: 0
    latents_to_column_interval: tuple[float, float] | None  # categorical only
    latents_to_column_p: float  # within-class permutation p (see within_class_p)
    confounded: bool
    encoded: bool
    distribution: pd.DataFrame  # per class: counts per level, or quantiles
    note: str = ""


@dataclass(frozen=True)
class BiasCheck:
    checks: tuple[NuisanceCheck, ...]
    warnings: tuple[str, ...]
    class_column: str
    chance: float

    def table(self) -> pd.DataFrame:
        rows = [
            {
                "column": c.column,
                "kind": c.kind,
                "class_from_column": c.class_from_column,
                "class_from_column_low": c.class_from_column_interval[0],
                "class_from_column_high": c.class_from_column_interval[1],
                "class_from_latents": c.class_from_latents,
                "latents_to_column": c.latents_to_column,
                "latents_to_column_chance": c.latents_to_column_chance,
                "latents_to_column_p": c.latents_to_column_p,
                "confounded": c.confounded,
                "encoded": c.encoded,
            }
            for c in self.checks
        ]
        return pd.DataFrame(rows)


class LevelMajority:
    """Predicts, for each level of a categorical column, the class most of the training scans
    at that level have (ties and unseen levels: the most common class): the best any rule
    using that column alone can do on the training scans."""

    def fit(self, levels: np.ndarray, truth: np.ndarray) -> LevelMajority:
        levels = np.asarray(levels).reshape(len(levels), -1)[:, 0].astype(np.int64)
        n_classes = int(truth.max()) + 1
        counts = np.zeros((int(levels.max()) + 1, n_classes), dtype=np.int64)
        np.add.at(counts, (levels, truth), 1)
        self.fallback_ = int(np.bincount(truth, minlength=n_classes).argmax())
        best = counts.argmax(axis=1)
        tied = (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1
        self.table_ = np.where(tied | (counts.sum(axis=1) == 0), self.fallback_, best)
        return self

    def predict(self, levels: np.ndarray) -> np.ndarray:
        levels = np.asarray(levels).reshape(len(levels), -1)[:, 0].astype(np.int64)
        known = levels < len(self.table_)
        return np.where(known, self.table_[np.minimum(levels, len(self.table_) - 1)],
                        self.fallback_)  # fmt: skip


def _column_features(values: pd.Series, categorical: bool) -> np.ndarray:
    """Level codes (categorical) or the standardised value (numeric), one column."""
    if categorical:
        return pd.factorize(values.astype(str))[0].astype(np.float64)[:, None]
    numeric = values.to_numpy(dtype=np.float64)
    sd = numeric.std()
    return ((numeric - numeric.mean()) / (sd if sd > 0 else 1.0))[:, None]


def _distribution(values: pd.Series, labels: np.ndarray, categorical: bool) -> pd.DataFrame:
    frame = pd.DataFrame({"class": labels, "value": values.to_numpy()})
    if categorical:
        table = pd.crosstab(frame["class"], frame["value"].astype(str))
    else:
        table = frame.groupby("class")["value"].describe()[["count", "mean", "std", "min", "50%",
                                                            "max"]]  # fmt: skip
    table.index.name = "class"
    return table


def acquisition_bias(
    codes: np.ndarray,
    table: pd.DataFrame,
    truth: np.ndarray,
    classes: tuple[str, ...],
    groups: np.ndarray,
    folds,
    class_column: str,
    latent_accuracy: float,
    columns: Sequence[str] | None = None,
    n_bootstrap: int = 1000,
    n_permutations: int = 1000,
    seed: int = 0,
) -> BiasCheck:
    """Check `columns` (default: nuisance_columns) of `table` (rows = the classified scans)."""
    chosen = nuisance_columns(table, class_column) if columns is None else list(columns)
    labels = np.asarray(classes, dtype=object)[truth]
    checks, warnings = [], []
    for column in chosen:
        values = require_column(table, column, "bias check")
        present = values.notna().to_numpy()
        categorical = is_categorical(values)
        note = ""
        if not present.all():
            note = f"{int((~present).sum())} scan(s) without a value counted as their own level"
            values = values.astype(object).where(present, "missing") if categorical else values
            if not categorical:
                values = values.fillna(values.median())
        features = _column_features(values, categorical)
        from_column = classify(
            features, truth, classes, groups, folds, column,
            LevelMajority if categorical else lda_factory(), n_bootstrap, seed, axes=False,
        )  # fmt: skip
        reverse = _latents_to_column(
            codes, values, categorical, truth, groups, folds, n_bootstrap, n_permutations, seed
        )
        confounded = (
            from_column.interval[0] > from_column.chance
            and from_column.balanced_accuracy >= latent_accuracy - CONFOUND_MARGIN
        )
        score, chance, interval, p = reverse
        encoded = p < ENCODED_P and score > chance
        check = NuisanceCheck(
            column=column,
            kind="categorical" if categorical else "numeric",
            class_from_column=from_column.balanced_accuracy,
            class_from_column_interval=from_column.interval,
            class_from_latents=latent_accuracy,
            latents_to_column=score,
            latents_to_column_chance=chance,
            latents_to_column_interval=interval if categorical else None,
            latents_to_column_p=p,
            confounded=bool(confounded),
            encoded=bool(encoded),
            distribution=_distribution(values, labels, categorical),
            note=note,
        )
        checks.append(check)
        warnings += _warnings(check, class_column)
    return BiasCheck(tuple(checks), tuple(warnings), class_column, 1.0 / len(classes))


def _latents_to_column(codes, values, categorical, truth, groups, folds, n_bootstrap, n_perm,
                       seed):  # fmt: skip
    """(score, chance, interval, p) of predicting the column from the latents.

    Numeric columns: ridge, scored by r. Categorical columns: least-squares classification
    (ridge on the one-hot levels, the largest output wins; it refits every permutation at
    once, which LDA cannot), scored by balanced accuracy with a subject bootstrap interval.
    p: refits on the column shuffled between the subjects of each class (within_class_shuffles).
    """
    shuffles = within_class_shuffles(truth, groups, n_perm, seed)
    if not categorical:
        numeric = values.to_numpy(dtype=np.float64)
        score = brain_score(codes, numeric, groups, folds, "nuisance", "ridge", n_perm, seed,
                            shuffles=shuffles)  # fmt: skip
        return (score.r, 0.0, (float("nan"), float("nan")), score.p)
    levels, index = np.unique(values.astype(str).to_numpy(), return_inverse=True)
    k = len(levels)
    if k < 2:
        return (float("nan"), 1.0, (float("nan"), float("nan")), 1.0)
    labellings = np.vstack([index[None, :], index[shuffles]])  # (1 + P, n)
    onehot = np.eye(k)[labellings]  # (1 + P, n, k)
    targets = onehot.transpose(1, 0, 2).reshape(len(index), -1)
    outputs = fold_predictions("ridge", np.asarray(codes, float), targets, groups, folds)
    held = folds.held_out(len(index))
    predicted = outputs[held].reshape(held.sum(), -1, k).argmax(axis=2).T  # (1 + P, n held)
    truths = labellings[:, held]
    cells = (np.arange(len(truths))[:, None] * k * k + truths * k + predicted).ravel()
    confusion = np.bincount(cells, minlength=len(truths) * k * k).reshape(-1, k, k)
    per_level = confusion.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.diagonal(confusion, axis1=1, axis2=2) / per_level
    scores = np.nanmean(np.where(per_level > 0, recall, np.nan), axis=1)
    p = (
        float((1 + np.sum(scores[1:] >= scores[0])) / (1 + len(shuffles)))
        if len(shuffles)
        else float("nan")
    )
    observed = np.full(len(index), -1)
    observed[held] = predicted[0]
    interval = balanced_accuracy_interval(index, observed, groups, k, n_bootstrap, seed)
    return (float(scores[0]), 1.0 / k, interval, p)


def within_class_shuffles(
    truth: np.ndarray, groups: np.ndarray, n_permutations: int, seed: int
) -> np.ndarray:
    """(P, n) scan indices: each scan takes the value of the first scan of another subject of
    its class.

    Shuffling within class keeps how the column and the class go together, so a column that
    differs by class is not "encoded" merely because the latents know the class: only what
    they know of it beyond the class counts. Whole subjects are shuffled: a subject's scans
    share their site and have similar codes, so shuffling scans would make chance agreement
    look rare.
    """
    if n_permutations < 1:
        return np.zeros((0, len(truth)), dtype=np.int64)
    rng = np.random.default_rng(seed)
    units, unit_of = np.unique(np.column_stack([truth, groups]), axis=0, return_inverse=True)
    unit_of = unit_of.reshape(-1)
    first = np.full(len(units), -1, dtype=np.int64)
    first[unit_of[::-1]] = np.arange(len(unit_of))[::-1]  # each subject's first scan
    mapping = np.empty((n_permutations, len(units)), dtype=np.int64)
    for label in np.unique(units[:, 0]):
        members = np.flatnonzero(units[:, 0] == label)
        order = np.argsort(rng.random((n_permutations, len(members))), axis=1)
        mapping[:, members] = members[order]
    return first[mapping[:, unit_of]]


def _split_of(folds, n: int) -> np.ndarray:
    split = np.full(n, "train", dtype=object)
    split[folds.test[0]] = "test"
    return split


def _warnings(check: NuisanceCheck, class_column: str) -> list[str]:
    found = []
    if check.confounded:
        found.append(
            f"{check.column} alone predicts {class_column} about as well as the latents "
            f"(balanced accuracy {check.class_from_column:.2f} vs {check.class_from_latents:.2f}): "
            f"the classes differ by {check.column}, so their separation in the latent space may "
            f"be acquisition, not anatomy. Compare the classes within one {check.column}, or "
            "harmonise the scans."
        )
    if check.encoded:
        how = (
            f"balanced accuracy {check.latents_to_column:.2f}, chance "
            f"{check.latents_to_column_chance:.2f}"
            if check.kind == "categorical"
            else f"r = {check.latents_to_column:.2f}"
        ) + f", p = {check.latents_to_column_p:.3g} with the classes held fixed"
        found.append(
            f"The latents predict {check.column} better than chance ({how}): acquisition "
            "differences are part of what the model learned."
        )
    return found
