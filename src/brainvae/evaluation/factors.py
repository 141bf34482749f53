"""The ground-truth factors MIG, SAP and DCI score codes against, read from a table.

A phantom scan is drawn from a handful of independent random factors (brainvae.data.phantom
.factors.sample_population): age, the MS lesion burden, the leukoencephalopathy extent, the
acquisition site and per-scan nuisances (in-plane or 3D rotation and shift, intensity scale,
bias-field amplitude, noise level, artefact flags). Its subjects.csv also lists values that
are NOT independent factors and would break the metrics' assumption that factors vary apart:
ventricle_expansion, cortical_thinning and shrinkage are all computed from age (r 0.97-1.0 on
the sample), severity is a step function of leuko_extent_mm, diagnosis is implied by which of
lesion_burden and leuko_extent_mm is non-zero, and ventricle_volume_ml, lesion_load_ml and
leuko_load_ml are measurements of the rendered image. PHANTOM_FACTORS lists only the drawn
factors. A population drawn with ventricles="independent" adds one:
INDEPENDENT_VENTRICLES_FACTOR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from brainvae.errors import DataFileError, DatasetError

if TYPE_CHECKING:
    import pandas as pd

PHANTOM_FACTORS: tuple[str, ...] = (
    "age",
    "lesion_burden",
    "leuko_extent_mm",
    "site",
    "rotation_axial_deg",
    "rotation_coronal_deg",
    "rotation_sagittal_deg",
    "shift_inferior_mm",
    "shift_posterior_mm",
    "shift_right_mm",
    "intensity_scale",
    "bias_amplitude",
    "noise_sd",
    "artefact_leakage",
    "artefact_missing",
    "artefact_grid",
)
"""The phantom's independently drawn generating factors (columns of its subjects.csv). In a
2D population the rotations about and shifts across the other planes, and the artefact flags
of a population drawn without artefacts, are constant: factor_table drops them."""
INDEPENDENT_VENTRICLES_FACTOR = "ventricle_expansion"
"""A factor of its own only in populations drawn with ventricles="independent" (phantom.json
config); with the default ventricles="age" it follows age and must stay out."""
DISCRETE_LEVELS = 20
"""A numeric column whose values are all whole numbers, at most this many distinct, is a
discrete factor (site, an artefact flag, a severity); text and true/false columns are too."""
CORRELATED = 0.5
"""Two chosen factors whose values correlate at least this much (|Pearson r|) get a note:
the metrics assume the factors vary independently."""
KEY_COLUMNS = ("subject_id", "session")


@dataclass(frozen=True)
class FactorTable:
    """Factor values, one row per scan, one column per factor; `discrete` marks the
    columns holding classes (site) rather than measurements (age). `dropped` names the chosen
    columns left out (constant in this population) and `notes` says why, plus any pair of
    chosen factors that correlate."""

    names: tuple[str, ...]
    values: np.ndarray  # (N, K) float64
    discrete: tuple[bool, ...]
    dropped: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def correlation(self) -> np.ndarray:
        """(K, K) Pearson correlation between the factors (how independent they are here)."""
        return np.atleast_2d(np.corrcoef(self.values, rowvar=False))


def _column_values(column: pd.Series) -> tuple[np.ndarray, bool]:
    """A column as numbers and whether it is discrete: text becomes class numbers in sorted
    order, true/false 1/0."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64), True
    if not pd.api.types.is_numeric_dtype(column):
        classes = sorted(column.astype(str).unique())
        return column.astype(str).map(classes.index).to_numpy(dtype=np.float64), True
    values = column.to_numpy(dtype=np.float64)
    whole = np.all(values == np.round(values))
    return values, bool(whole and len(np.unique(values)) <= DISCRETE_LEVELS)


def _correlation_notes(names: list[str], values: np.ndarray) -> list[str]:
    """A note per pair of factors correlating at least CORRELATED."""
    if values.shape[1] < 2:
        return []
    matrix = np.corrcoef(values, rowvar=False)
    return [
        f"{names[a]} and {names[b]} correlate (r = {matrix[a, b]:.2f}): the metrics assume "
        "independent factors; keep only one if one drives the other"
        for a in range(len(names))
        for b in range(a + 1, len(names))
        if abs(matrix[a, b]) >= CORRELATED
    ]


def factor_table(table: pd.DataFrame, names=None, source: str | Path | None = None) -> FactorTable:
    """The factors `names` (default PHANTOM_FACTORS) of a table with one row per scan (a
    phantom's subjects.csv, a prepared dataset's metadata): missing columns are an error
    naming those present; columns constant over the table are dropped with a note, since a
    factor that never varies has no entropy to score. `source` names the file in errors."""
    chosen = list(PHANTOM_FACTORS if names is None else names)
    where = f"{source}: " if source is not None else ""
    missing = [name for name in chosen if name not in table.columns]
    if missing:
        hint = (
            "; name the factors to use, or give the phantom's subjects.csv as the factors file"
            if names is None
            else ""
        )
        raise DatasetError(
            f"{where}factor column(s) {', '.join(missing)} not found (columns: "
            f"{', '.join(map(str, table.columns))}){hint}"
        )
    if len(table) < 2:
        raise DatasetError(f"{where}{len(table)} row(s): the metrics need 2 scans or more")
    kept, columns, discrete, dropped, notes = [], [], [], [], []
    for name in chosen:
        if table[name].isna().any():
            rows = np.flatnonzero(table[name].isna().to_numpy())
            raise DatasetError(
                f"{where}factor {name} is empty on {len(rows)} row(s) (first: row {rows[0]}): "
                "every scan needs a value"
            )
        values, is_discrete = _column_values(table[name])
        if len(np.unique(values)) < 2:
            dropped.append(name)
            notes.append(f"{name} left out: {table[name].iloc[0]} on every scan")
            continue
        kept.append(name)
        columns.append(values)
        discrete.append(is_discrete)
    if not kept:
        raise DatasetError(f"{where}every factor ({', '.join(chosen)}) is constant")
    values = np.column_stack(columns)
    notes.extend(_correlation_notes(kept, values))
    return FactorTable(tuple(kept), values, tuple(discrete), tuple(dropped), tuple(notes))


def _session_key(value) -> str:
    """A session as text to match on: "ses-01", "01", "1" and 1.0 are the same session."""
    text = str(value).strip()
    text = re.sub(r"^ses-", "", text)
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if np.isfinite(number) and number == int(number) else text


def _keys(table: pd.DataFrame, with_session: bool) -> list[tuple[str, str]]:
    """(subject, session) per row; the session is "" when not matched on."""
    subjects = table["subject_id"].astype(str).str.strip()
    if not with_session:
        return [(subject, "") for subject in subjects]
    sessions = table["session"].map(_session_key)
    return list(zip(subjects, sessions, strict=True))


def dataset_factors(metadata: pd.DataFrame, factors_path=None, names=None) -> FactorTable:
    """Factors for each row of a prepared dataset's metadata, in its order: looked up in the
    factors file (a phantom's subjects.csv) by subject_id and session (several rows of one
    scan, e.g. slices, share its factors), or taken from the metadata's own columns when no
    file is given."""
    if factors_path is None:
        return factor_table(metadata, names, source="the dataset's metadata")
    from brainvae.data.metadata import read_metadata

    path = Path(factors_path)
    if not path.is_file():
        raise DataFileError(
            path,
            "factors file does not exist; MIG, DCI and SAP need each scan's true generating "
            "factors (a phantom population's subjects.csv)",
        )
    factors = read_metadata(path)
    if "subject_id" not in metadata.columns:
        raise DatasetError(
            f"the dataset's metadata has no subject_id column to match {path} by (columns: "
            f"{', '.join(map(str, metadata.columns))})"
        )
    with_session = "session" in factors.columns and "session" in metadata.columns
    lookup = {key: row for row, key in enumerate(_keys(factors, with_session))}
    if len(lookup) < len(factors):
        problem = (
            "several rows share one subject_id and session (ses-01, 01 and 1 are one session)"
            if with_session
            else "several rows per subject_id, and the dataset's metadata has no session "
            "column to tell them apart"
        )
        raise DataFileError(path, problem)
    wanted = _keys(metadata, with_session)
    rows = [lookup.get(key) for key in wanted]
    unmatched = [key for key, row in zip(wanted, rows, strict=True) if row is None]
    if unmatched:
        subject, session = unmatched[0]
        first = f"subject_id={subject}" + (f" session={session}" if with_session else "")
        by = "subject_id and session" if with_session else "subject_id"
        raise DataFileError(
            path,
            f"{len(unmatched)} of {len(wanted)} dataset rows have no row here (matched by "
            f"{by}; first: {first})",
        )
    matched = factors.iloc[rows].reset_index(drop=True)
    return factor_table(matched, names, source=path)
