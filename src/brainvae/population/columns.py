"""The subjects table's columns as a population analysis needs them: a column that exists
(else the ones that do, named), class labels with classes merged, numeric values with the
scans that lack one counted, and each scan's subject for grouping."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from brainvae.errors import PopulationAnalysisError

SUBJECT_COLUMN = "subject_id"
BOOKKEEPING_COLUMNS = frozenset(
    {"subject_id", "session", "filename", "split", "slice_index", "source_file", "row"}
)
"""Columns that identify or locate a scan: never a class, a measure or a nuisance."""


def require_column(table: pd.DataFrame, column: str, what: str) -> pd.Series:
    """The column, or an error naming the columns the table has."""
    if column not in table.columns:
        have = ", ".join(str(c) for c in table.columns if c not in BOOKKEEPING_COLUMNS)
        raise PopulationAnalysisError(
            f"{what}: the subjects table has no column {column!r}; it has: {have}"
        )
    return table[column]


def parse_merge(texts: Sequence[str] | str | None) -> dict[str, str]:
    """'leuko_1,leuko_2,leuko_3=leuko' (one or several) as {old class: new class}."""
    if not texts:
        return {}
    merge: dict[str, str] = {}
    for text in [texts] if isinstance(texts, str) else texts:
        old, sep, new = str(text).partition("=")
        names = [name.strip() for name in old.split(",") if name.strip()]
        if not sep or not new.strip() or not names:
            raise PopulationAnalysisError(
                f"--merge {text!r}: write the classes to merge, then = and the new name "
                "(e.g. leuko_1,leuko_2,leuko_3=leuko)"
            )
        for name in names:
            merge[name] = new.strip()
    return merge


@dataclass(frozen=True)
class ClassLabels:
    """One class label per kept scan (merged), which scans were kept and what was dropped."""

    column: str
    labels: np.ndarray  # (n_kept,) str
    keep: np.ndarray  # (N,) bool: scans with a class
    classes: tuple[str, ...]
    n_missing: int
    merged: dict[str, str]

    def note(self) -> str | None:
        """A sentence on scans left out, else None."""
        if not self.n_missing:
            return None
        return f"{self.n_missing} scan(s) without a {self.column} were left out"


def class_labels(
    table: pd.DataFrame, column: str, merge: Mapping[str, str] | None = None
) -> ClassLabels:
    """The column as class labels (strings), merged; empty cells dropped and counted."""
    values = require_column(table, column, "classify")
    keep = values.notna().to_numpy() & (values.astype(str).str.strip() != "").to_numpy()
    labels = values[keep].astype(str).str.strip().to_numpy()
    merge = dict(merge or {})
    unknown = sorted(set(merge) - set(labels))
    if unknown:
        raise PopulationAnalysisError(
            f"--merge names class(es) {', '.join(unknown)} that {column!r} does not have; "
            f"its classes are: {', '.join(sorted(set(labels)))}"
        )
    labels = np.array([merge.get(label, label) for label in labels], dtype=object)
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise PopulationAnalysisError(
            f"classify: {column!r} has {len(classes)} class(es) ({', '.join(classes)}); "
            "a classifier needs at least 2"
        )
    return ClassLabels(column, labels, keep, classes, int((~keep).sum()), merge)


@dataclass(frozen=True)
class Measure:
    """A numeric column's values on the scans that have one."""

    column: str
    values: np.ndarray  # (n_kept,) float
    keep: np.ndarray  # (N,) bool
    n_missing: int

    def note(self) -> str | None:
        if not self.n_missing:
            return None
        return f"{self.column}: {self.n_missing} scan(s) without a value were left out"


def measure(table: pd.DataFrame, column: str) -> Measure:
    """A numeric column (NaN and empty cells dropped and counted); a text column is refused."""
    raw = require_column(table, column, "regress")
    values = pd.to_numeric(raw, errors="coerce")
    text = raw.notna() & values.isna() & (raw.astype(str).str.strip() != "")
    if text.any():
        example = raw[text].iloc[0]
        raise PopulationAnalysisError(
            f"regress: {column!r} is not numeric ({int(text.sum())} cell(s) such as {example!r}); "
            "classify it instead"
        )
    keep = np.isfinite(values.to_numpy(dtype=float))
    if keep.sum() < 3:
        raise PopulationAnalysisError(
            f"regress: {column!r} has {int(keep.sum())} numeric value(s); a regression needs more"
        )
    return Measure(column, values.to_numpy(dtype=float)[keep], keep, int((~keep).sum()))


def subject_groups(table: pd.DataFrame) -> np.ndarray:
    """Each scan's subject (its row number when the table has no subject_id), as integers."""
    if SUBJECT_COLUMN not in table.columns:
        return np.arange(len(table))
    return pd.factorize(table[SUBJECT_COLUMN].astype(str))[0]


def is_categorical(values: pd.Series, max_levels: int = 12) -> bool:
    """Text, or a number with few distinct values (a site code, a TR of 2000 or 2500 ms):
    treated as categories."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().sum() > values.isna().sum():
        return True
    return len(numeric.dropna().unique()) <= max_levels
