"""What a longitudinal analysis is asked, with the one set of defaults the command line, the
Python API and the Aging and disease dock share."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from brainvae.longitudinal.directions import DEFAULT_SPLITS

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class LongitudinalRequest:
    """group: the column naming each subject's group; control: its value for healthy
    controls (tau_a is learned from their pairs; every other group gets a tau_d); order: the
    column ordering a subject's visits (a visit number or a date; None: by age); pairing:
    consecutive visits or every ordered pair; years: (first, last) age of the simulated
    trajectories (None: the 10th and 90th percentile of the controls' ages); frames: ages
    simulated between them."""

    group: str = "diagnosis"
    control: str = "healthy"
    subject: str = "subject_id"
    age: str = "age"
    order: str | None = None
    pairing: str = "consecutive"
    n_splits: int = DEFAULT_SPLITS
    years: tuple[float, float] | None = None
    frames: int = 7
    seed: int = 0

    def to_json(self) -> dict:
        info = asdict(self)
        info["years"] = None if self.years is None else list(self.years)
        return info


def check_request(request: LongitudinalRequest, table: pd.DataFrame) -> None:
    """Before any encoding: every named column exists (else all the table's columns, named:
    a subject or session column is a fair answer here) and the control label is one of the
    group column's values (else those, named)."""
    from brainvae.errors import PopulationAnalysisError

    for role, column in (
        ("group", request.group),
        ("subject", request.subject),
        ("age", request.age),
        ("order", request.order),
    ):
        if column is not None and column not in table.columns:
            raise PopulationAnalysisError(
                f"{role} column (--{role}): the subjects table has no column {column!r}; it "
                "has: " + ", ".join(str(c) for c in table.columns if str(c) != "filename")
            )
    labels = sorted(set(table[request.group].dropna().astype(str)))
    if request.control not in labels:
        raise PopulationAnalysisError(
            f"control (--control): no scan has {request.group} = {request.control!r}; the "
            f"{request.group} values are: {', '.join(labels)}"
        )
