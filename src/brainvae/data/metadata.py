"""Per-subject metadata: find image files, read the CSV, and match its rows to files.

Matching rule, in this order:
1. The CSV has a `filename` column: each row names its file, relative to the CSV's
   folder (or absolute). A row whose file does not exist is an unmatched row.
2. Otherwise file stems (the name without .nii.gz/.nii/.npy/.tif/.tiff) are matched
   to rows: a row with a session matches the stem "<subject_id>_<session>" or
   "<subject_id>_ses-<session>" (e.g. sub-01_ses-2); a row without a session, or
   the only row of its subject, also matches the bare stem "<subject_id>".
Files in the folder that no row claims are unmatched files; with a `filename`
column only files in the folders the CSV's files live in count (side files such
as the phantom's atlas.nii.gz next to subjects.csv are listed as ignored files).
Without a CSV, the subject (and session) of each file come from, in this order:
1. BIDS-like entities in the stem: `sub-<label>` and optionally `ses-<label>` anywhere
   in the stem between `_` separators (sub-0005_ses-2_FLAIR -> subject_id "sub-0005",
   session "ses-2"), so all visits of a subject are one subject and share a split;
2. else, for a file in a subfolder of the source folder, the first-level folder name
   (SRC/sub01/T1.nii.gz -> "sub01"; SRC/patientA/visit2/scan.nii.gz -> "patientA");
3. else the file stem (each file its own subject).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from brainvae.data.io.images import image_stem, is_image_path
from brainvae.errors import DataFileError, DatasetError

if TYPE_CHECKING:
    import pandas as pd

REQUIRED_COLUMNS: tuple[str, ...] = ("subject_id",)
ID_COLUMNS: tuple[str, ...] = ("subject_id", "session", "filename")
SHOWN = 20  # names listed in one error message before "... and N more"


def listing(names: list[str], shown: int = SHOWN) -> str:
    """Comma-separated names, cut after `shown` with a count of the rest."""
    head = ", ".join(str(n) for n in names[:shown])
    return head + (f", ... and {len(names) - shown} more" if len(names) > shown else "")


def find_image_files(folder: str | Path) -> list[Path]:
    """Every supported image file under `folder`, sorted; skips hidden folders and
    prepared datasets (folders holding dataset.json) so an output inside it is not re-read."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(folder, "is not a folder")
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and not (Path(root, d) / "dataset.json").exists()
        )
        found += [Path(root, f) for f in files if not f.startswith(".") and is_image_path(f)]
    return sorted(found)


def read_metadata(csv_path: str | Path) -> pd.DataFrame:
    """The CSV with id columns as text ("01" stays "01"), other columns as pandas infers."""
    import pandas as pd

    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataFileError(csv_path, "metadata CSV does not exist")
    try:
        table = pd.read_csv(csv_path, dtype={c: str for c in ID_COLUMNS}, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise DataFileError(csv_path, f"not a readable CSV ({type(err).__name__}: {err})") from err
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise DataFileError(
            csv_path,
            f"missing required column(s) {', '.join(missing)} (found: {', '.join(table.columns)})",
        )
    for column in ID_COLUMNS:
        if column in table.columns:
            table[column] = table[column].fillna("").astype(str).str.strip()
    empty = _lines(table.index[table["subject_id"] == ""])
    if empty:
        raise DataFileError(csv_path, f"empty subject_id on line(s) {listing(empty)}")
    _check_duplicates(table, csv_path)
    return table.reset_index(drop=True)


def _lines(index) -> list[str]:
    """CSV line numbers (header is line 1) of table rows."""
    return [str(int(i) + 2) for i in index]


def _check_duplicates(table: pd.DataFrame, csv_path: Path) -> None:
    keys = ["subject_id"] + (["session"] if "session" in table.columns else [])
    dup = table[table.duplicated(keys, keep=False)]
    if len(dup):
        groups = [
            f"{_describe_key(key, keys)} (lines {', '.join(_lines(rows.index))})"
            for key, rows in dup.groupby(keys, sort=False)
        ]
        what = "subject_id and session" if len(keys) == 2 else "subject_id"
        raise DataFileError(csv_path, f"duplicate {what}: {listing(groups)}")
    if "filename" in table.columns:
        named = table[table["filename"] != ""]
        dup = named[named.duplicated("filename", keep=False)]
        if len(dup):
            names = sorted(set(dup["filename"]))
            raise DataFileError(csv_path, f"several rows name the same file: {listing(names)}")


def _describe_key(key, keys: list[str]) -> str:
    values = key if isinstance(key, tuple) else (key,)
    return " ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))


def _describe_row(table: pd.DataFrame, i: int) -> str:
    row = table.loc[i]
    parts = [f"line {i + 2}: subject_id={row['subject_id']}"]
    if "session" in table.columns and row["session"]:
        parts.append(f"session={row['session']}")
    return " ".join(parts)


@dataclass
class MatchResult:
    """Matched rows (CSV columns plus `source`, in CSV order) and what did not match."""

    table: pd.DataFrame
    unmatched_rows: list[str] = field(default_factory=list)
    unmatched_files: list[str] = field(default_factory=list)
    rule: str = "filename"
    ignored_files: list[str] = field(default_factory=list)


def match_files(table: pd.DataFrame, files: list[Path], csv_dir: str | Path) -> MatchResult:
    """Pair CSV rows with image files by the `filename` column, else by file stem."""
    if "filename" in table.columns:
        return _match_by_filename(table, files, Path(csv_dir))
    return _match_by_stem(table, files)


def _match_by_filename(table: pd.DataFrame, files: list[Path], csv_dir: Path) -> MatchResult:
    sources: list[str | None] = []
    unmatched_rows: list[str] = []
    for i, name in enumerate(table["filename"]):
        path = Path(name) if Path(name).is_absolute() else csv_dir / name
        if name and path.is_file():
            sources.append(str(path.resolve()))
        else:
            sources.append(None)
            problem = "no filename" if not name else f"file {name} not found"
            unmatched_rows.append(f"{_describe_row(table, i)} ({problem})")
    claimed = {s for s in sources if s is not None}
    image_dirs = {str(Path(s).parent) for s in claimed}
    unclaimed = [f for f in files if str(f.resolve()) not in claimed]
    unmatched_files = [str(f) for f in unclaimed if str(f.resolve().parent) in image_dirs]
    ignored = [str(f) for f in unclaimed if str(f.resolve().parent) not in image_dirs]
    matched = table.assign(source=sources)
    matched = matched[matched["source"].notna()].reset_index(drop=True)
    return MatchResult(matched, unmatched_rows, unmatched_files, "filename", ignored)


def _row_keys(subject: str, session: str, only_row: bool) -> list[str]:
    keys = []
    if session:
        keys += [f"{subject}_{session}"]
        if not session.startswith("ses-"):
            keys += [f"{subject}_ses-{session}"]
    if not session or only_row:
        keys.append(subject)
    return keys


def _match_by_stem(table: pd.DataFrame, files: list[Path]) -> MatchResult:
    by_stem: dict[str, list[Path]] = {}
    for f in files:
        by_stem.setdefault(image_stem(f), []).append(f)
    clashes = [f"{s} ({', '.join(str(p) for p in ps)})" for s, ps in by_stem.items() if len(ps) > 1]
    if clashes:
        raise DatasetError(
            f"several files share a stem, so rows cannot be matched by stem: {listing(clashes)}"
        )
    sessions = table["session"] if "session" in table.columns else [""] * len(table)
    rows_per_subject = table["subject_id"].value_counts()
    sources: list[str | None] = []
    unmatched_rows: list[str] = []
    claimed: dict[str, int] = {}
    for i, (subject, session) in enumerate(zip(table["subject_id"], sessions, strict=True)):
        keys = _row_keys(subject, session, rows_per_subject[subject] == 1)
        hits = [k for k in keys if k in by_stem]
        if not hits:
            sources.append(None)
            unmatched_rows.append(
                f"{_describe_row(table, i)} (no file with stem {' or '.join(keys)})"
            )
            continue
        stem = hits[0]
        if stem in claimed:
            raise DatasetError(
                f"file {by_stem[stem][0]} matches both CSV line {claimed[stem] + 2} and line {i + 2}"
            )
        claimed[stem] = i
        sources.append(str(by_stem[stem][0].resolve()))
    unmatched_files = [str(ps[0]) for s, ps in by_stem.items() if s not in claimed]
    matched = table.assign(source=sources)
    matched = matched[matched["source"].notna()].reset_index(drop=True)
    return MatchResult(matched, unmatched_rows, unmatched_files, rule="stem")


def bids_entities(stem: str) -> dict[str, str]:
    """The `sub-<label>` and `ses-<label>` parts of a stem split at `_` (first of each)."""
    found: dict[str, str] = {}
    for part in stem.split("_"):
        key, dash, label = part.partition("-")
        if dash and label and key in ("sub", "ses") and key not in found:
            found[key] = part
    return found


def subject_of(path: Path, root: Path | None) -> tuple[str, str]:
    """(subject_id, session) of a file without a CSV, by the rule in the module docstring."""
    stem = image_stem(path)
    entities = bids_entities(stem)
    if "sub" in entities:
        return entities["sub"], entities.get("ses", "")
    if root is not None:
        try:
            parts = path.resolve().relative_to(root.resolve()).parts
        except ValueError:
            parts = ()
        if len(parts) > 1:
            return parts[0], entities.get("ses", "")
    return stem, entities.get("ses", "")


def files_as_subjects(files: list[Path], root: str | Path | None = None) -> pd.DataFrame:
    """The no-CSV table: one row per file, subject (and session) from the file's name or folder."""
    import pandas as pd

    root = Path(root) if root is not None else None
    keys = [subject_of(f, root) for f in files]
    table = pd.DataFrame({"subject_id": [subject for subject, _ in keys]})
    if any(session for _, session in keys):
        table["session"] = [session for _, session in keys]
    table["source"] = [str(f.resolve()) for f in files]
    return table


def unmatched_error(result: MatchResult, csv_path: Path) -> DatasetError:
    """The default refusal: lists the rows without files and files without rows."""
    parts = []
    if result.unmatched_rows:
        parts.append(
            f"{len(result.unmatched_rows)} CSV row(s) without a file: {listing(result.unmatched_rows)}"
        )
    if result.unmatched_files:
        parts.append(
            f"{len(result.unmatched_files)} file(s) without a CSV row: {listing(result.unmatched_files)}"
        )
    return DatasetError(
        f"{csv_path} does not match the image files (matched by {result.rule}): "
        + "; ".join(parts)
        + ". Fix the CSV or pass allow_unmatched=True (--allow-unmatched) to go on without them"
    )
