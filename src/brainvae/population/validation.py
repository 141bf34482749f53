"""How a population question is validated: the train/test split the dataset carries (as in the
FLAIR study), or cross-validation grouped by subject (every scan of a subject in one fold, so a
model is never tested on a subject it was fitted on), the default for populations under
GROUPED_CV_BELOW subjects, where one test split is too small to trust."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainvae.errors import PopulationAnalysisError

VALIDATION_SCHEMES = ("auto", "cv", "split")
"""auto: grouped cross-validation under GROUPED_CV_BELOW subjects, else the dataset's test split
(cross-validation when it has none); cv: always grouped cross-validation; split: train on every
scan not in the test split, test on the test split."""
DEFAULT_FOLDS = 5
GROUPED_CV_BELOW = 1000
"""Subjects under which `auto` cross-validates (a test split of a few dozen scans is noise)."""


@dataclass(frozen=True)
class Folds:
    """Train and test rows (indices into the scans analysed) of each fold."""

    scheme: str  # "cv" or "split"
    train: tuple[np.ndarray, ...]
    test: tuple[np.ndarray, ...]
    n_subjects: int

    @property
    def n_folds(self) -> int:
        return len(self.test)

    def held_out(self, n: int) -> np.ndarray:
        """(n,) bool: rows some fold tests (all of them under cross-validation)."""
        mask = np.zeros(n, dtype=bool)
        for rows in self.test:
            mask[rows] = True
        return mask

    def describe(self) -> str:
        if self.scheme == "split":
            return (
                f"fitted on the train split ({len(self.train[0])} scans), "
                f"tested on the test split ({len(self.test[0])} scans)"
            )
        return (
            f"{self.n_folds}-fold cross-validation grouped by subject ({self.n_subjects} subjects)"
        )


def choose_scheme(scheme: str, n_subjects: int, split: np.ndarray | None) -> str:
    """The scheme `auto` stands for with this many subjects and this split column."""
    if scheme not in VALIDATION_SCHEMES:
        raise PopulationAnalysisError(
            f"validation must be one of {', '.join(VALIDATION_SCHEMES)}, not {scheme!r}"
        )
    if scheme != "auto":
        return scheme
    has_test = split is not None and bool(np.any(split == "test"))
    return "split" if n_subjects >= GROUPED_CV_BELOW and has_test else "cv"


def plan_folds(
    groups: np.ndarray,
    labels: np.ndarray | None = None,
    split: np.ndarray | None = None,
    scheme: str = "auto",
    n_folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    what: str = "",
) -> Folds:
    """Folds over n scans: `groups` their subjects, `labels` their classes (stratified folds)
    or None (a measure), `split` their train/val/test split or None (no split column)."""
    groups = np.asarray(groups)
    n_subjects = len(np.unique(groups))
    chosen = choose_scheme(scheme, n_subjects, split)
    if chosen == "split":
        return _split_folds(split, labels, n_subjects, what)
    if n_folds < 2:
        raise PopulationAnalysisError(f"folds must be at least 2, got {n_folds}")
    if labels is not None:
        return _stratified_folds(groups, np.asarray(labels), n_folds, seed, n_subjects, what)
    if n_subjects < n_folds:
        raise PopulationAnalysisError(
            f"{what}: {n_subjects} subject(s) cannot fill {n_folds} folds; use fewer folds"
        )
    from sklearn.model_selection import GroupKFold

    splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    pairs = list(splitter.split(np.zeros(len(groups)), groups=groups))
    return Folds("cv", tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), n_subjects)


def _stratified_folds(groups, labels, n_folds, seed, n_subjects, what) -> Folds:
    from sklearn.model_selection import StratifiedGroupKFold

    small = []
    for name in np.unique(labels):
        count = len(np.unique(groups[labels == name]))
        if count < n_folds:
            small.append(f"{name!r} has {count} subject(s)")
    if small:
        raise PopulationAnalysisError(
            f"{what}: {'; '.join(small)}, fewer than the {n_folds} folds, so a fold would "
            "test a class it never saw: merge it with another class (--merge A,B=AB) or use "
            "fewer folds"
        )
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    pairs = list(splitter.split(np.zeros(len(labels)), labels, groups))
    return Folds("cv", tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), n_subjects)


def _split_folds(split, labels, n_subjects, what) -> Folds:
    if split is None:
        raise PopulationAnalysisError(
            f"{what}: the population has no split column, so there is no test split to test "
            "on; prepare it as a dataset (`brainvae prepare`) or use cross-validation (cv)"
        )
    split = np.asarray(split).astype(str)
    test = np.flatnonzero(split == "test")
    train = np.flatnonzero(split != "test")
    if len(test) == 0 or len(train) == 0:
        raise PopulationAnalysisError(
            f"{what}: the split column has {len(test)} test and {len(train)} other scan(s); "
            "a train/test evaluation needs both (use cross-validation: cv)"
        )
    if labels is not None:
        missing = sorted(set(np.asarray(labels)[test]) - set(np.asarray(labels)[train]))
        if missing:
            raise PopulationAnalysisError(
                f"{what}: class(es) {', '.join(map(str, missing))} appear only in the test "
                "split; merge them (--merge) or use cross-validation"
            )
    return Folds("split", (train,), (test,), n_subjects)
