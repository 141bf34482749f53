"""Matching image files to the rows of a metadata table, or to subjects when there is none.

Matching rule, in this order:
1. The CSV has a `filename` column: each row names its file, relative to the CSV's
   folder (or absolute). A row whose file does not exist is an unmatched row.
2. Otherwise file stems (the name without .nii.gz/.nii/.npy/.tif/.tiff) are matched
   to rows: a row with a session matches the stem "<subject_id>_<session>" or
   "<subject_id>_ses-<session>" (e.g. sub-01_ses-2); a row without a session, or
   the only row of its subject, also matches the bare stem "<subject_id>".
3. Rows no stem matched are matched by BIDS entities: a row (subject, session) claims the
   files whose stem holds sub-<subject> and ses-<session> ("01" and "sub-01" alike); a
   row without a session claims every file of its subject left unclaimed (a subject-level
   table such as participants.tsv against sub-01_ses-1_T1w, sub-01_ses-2_T1w ...), the
   session then taken from the file name.
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

from brainvae.data.dataset_folder import DatasetFolder
from brainvae.data.io.images import image_stem, is_image_path
from brainvae.data.metadata import listing
from brainvae.errors import DataFileError, DatasetError

if TYPE_CHECKING:
    import pandas as pd


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
            if not d.startswith(".") and not (Path(root, d) / DatasetFolder.DESCRIPTION).exists()
        )
        found += [Path(root, f) for f in files if not f.startswith(".") and is_image_path(f)]
    return sorted(found)


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
    _refuse_shared_sources(table, sources)
    claimed = {s for s in sources if s is not None}
    image_dirs = {str(Path(s).parent) for s in claimed}
    unclaimed = [f for f in files if str(f.resolve()) not in claimed]
    unmatched_files = [str(f) for f in unclaimed if str(f.resolve().parent) in image_dirs]
    ignored = [str(f) for f in unclaimed if str(f.resolve().parent) not in image_dirs]
    matched = table.assign(source=sources)
    matched = matched[matched["source"].notna()].reset_index(drop=True)
    return MatchResult(matched, unmatched_rows, unmatched_files, "filename", ignored)


def _refuse_shared_sources(table: pd.DataFrame, sources: list[str | None]) -> None:
    """Two rows whose files are one file (however the rows spell it) would put one scan in
    the dataset twice, possibly in two splits: refuse, naming both rows."""
    first_row: dict[str, int] = {}
    for i, source in enumerate(sources):
        if source is None:
            continue
        if source in first_row:
            j = first_row[source]
            raise DatasetError(
                f"CSV {_describe_row(table, j)} ({table['filename'].iloc[j]}) and "
                f"{_describe_row(table, i)} ({table['filename'].iloc[i]}) name the same "
                f"file {source}; keep one row per scan"
            )
        first_row[source] = i


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
    """Rule 2 (exact stems), then rule 3 (BIDS entities) for the rows rule 2 left over."""
    by_stem: dict[str, list[Path]] = {}
    for f in files:
        by_stem.setdefault(image_stem(f), []).append(f)
    clashes = [f"{s} ({', '.join(str(p) for p in ps)})" for s, ps in by_stem.items() if len(ps) > 1]
    if clashes:
        raise DatasetError(
            f"several files share a stem, so rows cannot be matched by stem: {listing(clashes)}"
        )
    subjects = list(table["subject_id"])
    sessions = list(table["session"]) if "session" in table.columns else [""] * len(table)
    rows_per_subject = table["subject_id"].value_counts()
    claims: dict[int, list[str]] = {}  # row -> stems it claims
    claimed: dict[str, int] = {}
    leftover: list[int] = []
    for i, (subject, session) in enumerate(zip(subjects, sessions, strict=True)):
        keys = _row_keys(subject, session, rows_per_subject[subject] == 1)
        hits = [k for k in keys if k in by_stem]
        if not hits:
            leftover.append(i)
            continue
        stem = hits[0]
        if stem in claimed:
            raise DatasetError(
                f"file {by_stem[stem][0]} matches both CSV line {claimed[stem] + 2} and line {i + 2}"
            )
        claimed[stem] = i
        claims[i] = [stem]
    by_entities = _entity_claims(subjects, sessions, leftover, by_stem, claimed)
    claims.update(by_entities)
    unmatched_rows = [
        _unmatched_row(table, i, sessions[i], rows_per_subject[subjects[i]] == 1)
        for i in leftover
        if i not in by_entities
    ]
    unmatched_files = [str(ps[0]) for s, ps in by_stem.items() if s not in claimed]
    order = [(i, stem) for i in sorted(claims) for stem in claims[i]]
    matched = table.iloc[[i for i, _ in order]].reset_index(drop=True)
    matched = matched.assign(source=[str(by_stem[stem][0].resolve()) for _, stem in order])
    file_sessions = [bids_entities(stem).get("ses", "") for _, stem in order]
    if by_entities and any(file_sessions):
        own = matched["session"] if "session" in matched.columns else [""] * len(matched)
        matched["session"] = [s or f for s, f in zip(own, file_sessions, strict=True)]
    rule = "stem, then sub-/ses- entities" if by_entities else "stem"
    return MatchResult(matched, unmatched_rows, unmatched_files, rule=rule)


def _entity_key(subject: str, session: str) -> tuple[str, str]:
    """A row's (sub-<label>, ses-<label>) as BIDS names them; "01" and "sub-01" alike."""
    subject = subject if subject.startswith("sub-") else f"sub-{subject}"
    session = session if not session or session.startswith("ses-") else f"ses-{session}"
    return subject, session


def _unmatched_row(table: pd.DataFrame, i: int, session: str, only_row: bool) -> str:
    """Why a row found no file: the stems and the BIDS names it looked for."""
    subject = str(table["subject_id"].iloc[i])
    keys = _row_keys(subject, session, only_row)
    sub, ses = _entity_key(subject, session)
    named = f"{sub}_{ses}_..." if ses else f"{sub}_..."
    return (
        f"{_describe_row(table, i)} (no file with stem {' or '.join(keys)} nor one named {named})"
    )


def _entity_claims(
    subjects: list[str],
    sessions: list[str],
    rows: list[int],
    by_stem: dict[str, list[Path]],
    claimed: dict[str, int],
) -> dict[int, list[str]]:
    """Rule 3: the unclaimed stems each left-over row claims by its sub-/ses- entities.

    Rows with a session go first, so a subject-level row only takes the sessions no
    session row claimed. `claimed` is updated in place.
    """
    entities = {stem: bids_entities(stem) for stem in by_stem if stem not in claimed}
    claims: dict[int, list[str]] = {}
    for i in sorted(rows, key=lambda i: not sessions[i]):
        subject, session = _entity_key(subjects[i], sessions[i])
        stems = [
            stem
            for stem, found in entities.items()
            if stem not in claimed
            and found.get("sub") == subject
            and (not session or found.get("ses") == session)
        ]
        for stem in stems:
            claimed[stem] = i
        if stems:
            claims[i] = sorted(stems)
    return claims


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
