"""The table of rows to prepare: image files matched to the metadata CSV, a BIDS
participants.tsv, or one subject per file; and the notes that matching leaves."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from brainvae.errors import DataFileError, DatasetError

if TYPE_CHECKING:
    import pandas as pd

ADDED_COLUMNS = ("source", "slice_index", "split")
NO_CSV_RULE = (
    "no CSV: subject from sub-<label> (and session from ses-<label>) in the file stem, "
    "else the first-level folder under the source, else the stem"
)


def assemble_table(
    files: list[Path],
    source: Path,
    csv: Path | None,
    allow_unmatched: bool,
    id_column: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table of rows to prepare (metadata columns + source) and the matching record.

    Without a CSV, a BIDS root (participants.tsv at the top) is read the BIDS way
    (brainvae.data.bids); any other folder gives one row per file.
    """
    from brainvae.data.bids import bids_table, is_bids_root
    from brainvae.data.file_matching import files_as_subjects, match_files, unmatched_error
    from brainvae.data.metadata import column_report, read_metadata

    if csv is None and is_bids_root(source):
        table, record = bids_table(source, files, id_column)
        _check_added_columns(table.drop(columns="source"), source / "participants.tsv")
        return table, {**record, "columns": column_report(table, record["id_column"])}
    if csv is None:
        return files_as_subjects(files, source), {"match_rule": NO_CSV_RULE}
    table = read_metadata(csv, id_column)
    id_name = table.attrs.get("id_column", "subject_id")
    _check_added_columns(table, csv)
    result = match_files(table, files, csv.parent)
    if (result.unmatched_rows or result.unmatched_files) and not allow_unmatched:
        raise unmatched_error(result, csv)
    if len(result.table) == 0:
        raise DatasetError(f"no row of {csv} matched an image file (matched by {result.rule})")
    record = {
        "match_rule": result.rule,
        "unmatched_rows": result.unmatched_rows,
        "unmatched_files": result.unmatched_files,
        "ignored_files": result.ignored_files,
        "columns": column_report(table, id_name),
    }
    return result.table, record


def _check_added_columns(table: pd.DataFrame, path: Path) -> None:
    """Refuse metadata columns named like the ones the dataset adds."""
    clash = [c for c in ADDED_COLUMNS if c in table.columns]
    if clash:
        raise DataFileError(
            path, f"column(s) {', '.join(clash)} clash with columns the dataset adds; rename them"
        )


def matching_warnings(record: dict[str, Any]) -> list[str]:
    """Notes from reading the metadata: BIDS scans without a participants.tsv row, and a
    table that was not UTF-8 (read as latin-1: accented names may need checking)."""
    from brainvae.data.bids import describe_missing
    from brainvae.data.metadata import ENCODINGS

    notes = []
    missing = describe_missing(record)
    if missing:
        notes.append(missing)
    read_as = record.get("columns", {}).get("table_format", {})
    if read_as.get("encoding") == ENCODINGS[-1]:
        notes.append(
            f"the metadata table is not UTF-8; it was read as {ENCODINGS[-1]} (Western "
            "European): check accented names in metadata.csv, or save the table as UTF-8"
        )
    return notes
