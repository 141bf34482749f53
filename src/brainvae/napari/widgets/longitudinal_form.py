"""The Aging and disease dock's form as a request, and the run it starts: the choices its combo
boxes offer (the table's categorical columns for the group, that column's values for the
control, every column for the visit order), the LongitudinalRequest the fields stand for
(every default is the request's) and the worker's job: `longitudinal_run` on the latent
explorer's codes when the viewer holds them, else on codes it encodes itself."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

BY_AGE = "(by age)"
"""The order column's choice for 'order a subject's visits by age' (request.order None)."""


@dataclass(frozen=True)
class LongitudinalRun:
    """One finished analysis with what the dock shows and exports: the model, the population,
    the result (analysis and decoded trajectories) and whether the codes were the explorer's."""

    model: Any
    population: Any
    result: Any  # brainvae.usecases.longitudinal_run.LongitudinalResult
    reused_codes: bool


def longitudinal_job(
    model: Any, population: Any, request: Any, statistics: Any
) -> Generator[Any, None, LongitudinalRun]:
    """The analysis on the explorer's codes when `statistics` (its) are given, else encoding
    first (inside longitudinal_run)."""
    from brainvae.usecases.longitudinal_run import longitudinal_run

    codes = None if statistics is None else np.asarray(statistics.codes)
    result = yield from longitudinal_run(model, population, request, codes)
    return LongitudinalRun(model, population, result, statistics is not None)


def group_columns(table: Any) -> list[str]:
    """The table's categorical-looking columns (a diagnosis, a site): a group per value."""
    from brainvae.population.columns import BOOKKEEPING_COLUMNS, is_categorical

    if table is None:
        return []
    return [
        str(c) for c in table.columns if c not in BOOKKEEPING_COLUMNS and is_categorical(table[c])
    ]


def column_values(table: Any, column: str | None) -> list[str]:
    """The distinct values of a column as text, sorted (empty cells left out)."""
    if table is None or column is None or column not in table.columns:
        return []
    return sorted({str(v) for v in table[column].dropna()})


def all_columns(table: Any) -> list[str]:
    """Every column of the table (the subject, age and visit-order fields may use any)."""
    return [] if table is None else [str(c) for c in table.columns]


def parse_years(first: str, last: str) -> tuple[float, float] | None:
    """The trajectory's age range from the two fields: both empty -> None (the controls'
    10th-90th percentile); one empty or not a number -> a ValueError naming the field."""
    first, last = str(first).strip(), str(last).strip()
    if not first and not last:
        return None
    values = []
    for name, text in (("years from", first), ("years to", last)):
        if not text:
            raise ValueError(f"'{name}' is empty: give both ages, or neither (the controls' "
                             "10th to 90th percentile)")  # fmt: skip
        try:
            values.append(float(text))
        except ValueError:
            raise ValueError(f"'{name}' must be an age in years, not {text!r}") from None
    if not values[1] > values[0]:
        raise ValueError(f"'years to' ({values[1]:g}) must be above 'years from' ({values[0]:g})")
    return values[0], values[1]


def combo_text(combo: Any) -> str:
    """What an editable combo box shows: a chosen value or text typed into it."""
    return str(combo.native.currentText()).strip()


def request_of(form: Any) -> Any:
    """The LongitudinalRequest a dock's fields stand for (errors name the field)."""
    from brainvae.longitudinal import LongitudinalRequest

    if not form.group_column.value:
        raise ValueError("the population's table has no group column (e.g. diagnosis)")
    control = combo_text(form.control)
    if not control:
        raise ValueError(f"choose the control value of '{form.group_column.value}'")
    order = form.order_column.value
    return LongitudinalRequest(
        group=str(form.group_column.value),
        control=control,
        subject=str(form.subject_column.value),
        age=str(form.age_column.value),
        order=None if order in (None, BY_AGE) else str(order),
        pairing=str(form.pairing.value),
        n_splits=int(form.n_splits.value),
        years=parse_years(form.years_from.value, form.years_to.value),
        frames=int(form.frames.value),
        seed=LongitudinalRequest().seed,
    )
