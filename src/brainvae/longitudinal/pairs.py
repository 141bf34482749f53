"""Pairs of visits of one subject, from the subjects table: which scan came earlier and which
later, the years between them, and the subject's group. What the aging and disease directions
are learned from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from brainvae.errors import PopulationAnalysisError
from brainvae.population.columns import require_column

PAIRINGS = ("consecutive", "all")
"""consecutive: each visit with the next one; all: every ordered pair of a subject's visits."""


@dataclass(frozen=True)
class VisitPairs:
    """P pairs of scans (rows of the table): earlier[p] before later[p], years apart."""

    earlier: np.ndarray  # (P,) int
    later: np.ndarray  # (P,) int
    subject: np.ndarray  # (P,) subject id of each pair
    years: np.ndarray  # (P,) float, > 0
    group: np.ndarray  # (P,) the group column's value of each pair's subject (str)
    n_single_visit: int  # subjects with one usable visit (no pair)
    n_missing_age: int  # visits left out for want of an age (or date)

    @property
    def n_pairs(self) -> int:
        return len(self.earlier)

    def notes(self) -> list[str]:
        found = []
        if self.n_single_visit:
            found.append(f"{self.n_single_visit} subject(s) with one visit give no pair")
        if self.n_missing_age:
            found.append(f"{self.n_missing_age} visit(s) without an age were left out")
        return found


def visit_pairs(
    table: pd.DataFrame,
    group: str,
    subject: str = "subject_id",
    age: str = "age",
    order: str | None = None,
    pairing: str = "consecutive",
) -> VisitPairs:
    """Ordered pairs of each subject's visits. Visits are ordered by `order` (a session number
    or a visit date; None: by age) and their interval is the age difference in years."""
    if pairing not in PAIRINGS:
        raise PopulationAnalysisError(
            f"pairing must be one of {', '.join(PAIRINGS)}, not {pairing!r}"
        )
    subjects = require_column(table, subject, "longitudinal pairs").astype(str).to_numpy()
    ages = pd.to_numeric(require_column(table, age, "longitudinal pairs"), errors="coerce")
    groups = require_column(table, group, "longitudinal groups").astype(str).to_numpy()
    ordering = ages if order is None else _order_values(table, order)
    usable = np.isfinite(ages.to_numpy(dtype=float)) & np.isfinite(ordering)
    rows = np.flatnonzero(usable)
    frame = pd.DataFrame(
        {"row": rows, "subject": subjects[rows], "order": ordering[rows],
         "age": ages.to_numpy(dtype=float)[rows]}
    ).sort_values(["subject", "order", "row"], kind="stable")  # fmt: skip
    tied = frame.duplicated(["subject", "order"], keep=False)
    if tied.any():
        names = sorted(frame.loc[tied, "subject"].unique())
        raise PopulationAnalysisError(
            f"subject(s) {', '.join(names[:5])}{' ...' if len(names) > 5 else ''} have visits "
            f"with the same {order or age}: their order is unknown; fix the table"
        )
    position = frame.groupby("subject").cumcount().to_numpy()
    counts = frame.groupby("subject")["row"].transform("size").to_numpy()
    earlier, later = _pairs(frame["row"].to_numpy(), position, counts, pairing)
    n_single = int((frame.groupby("subject").size() == 1).sum())
    if len(earlier) == 0:
        raise PopulationAnalysisError(
            f"no subject has two visits with an age ({len(frame)} usable visit(s) of "
            f"{frame['subject'].nunique()} subject(s)): longitudinal directions need pairs"
        )
    age_values = ages.to_numpy(dtype=float)
    years = age_values[later] - age_values[earlier]
    if np.any(years <= 0):
        bad = sorted(set(subjects[earlier[years <= 0]]))
        raise PopulationAnalysisError(
            f"subject(s) {', '.join(bad[:5])} have a later visit that is not older (age "
            f"interval <= 0 years): check the {age} and {order or age} columns"
        )
    return VisitPairs(
        earlier=earlier,
        later=later,
        subject=subjects[earlier],
        years=years,
        group=groups[earlier],
        n_single_visit=n_single,
        n_missing_age=int((~usable).sum()),
    )


def _order_values(table: pd.DataFrame, order: str) -> np.ndarray:
    """A session number, or a visit date (read as days), as floats; NaN where missing."""
    raw = require_column(table, order, "longitudinal order")
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers.notna().sum() >= raw.notna().sum():
        return numbers.to_numpy(dtype=float)
    dates = pd.to_datetime(raw, errors="coerce")
    if dates.notna().sum() < raw.notna().sum():
        raise PopulationAnalysisError(
            f"{order!r} is neither a visit number nor a date (e.g. {raw.dropna().iloc[0]!r})"
        )
    return (dates - dates.min()).dt.days.to_numpy(dtype=float)


def _pairs(rows, position, counts, pairing) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs within subjects: rows are sorted by subject then order."""
    if pairing == "consecutive":
        has_next = position < counts - 1
        first = np.flatnonzero(has_next)
        return rows[first], rows[first + 1]
    starts = np.flatnonzero(position == 0)
    earlier, later = [], []
    for start, count in zip(starts, counts[starts], strict=True):  # per subject: a few visits
        i, j = np.triu_indices(int(count), k=1)
        earlier.append(rows[start + i])
        later.append(rows[start + j])
    if not earlier:
        return np.zeros(0, int), np.zeros(0, int)
    return np.concatenate(earlier), np.concatenate(later)
