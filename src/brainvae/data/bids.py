"""A BIDS dataset as a population: anatomical scans with participants.tsv and sessions.tsv.

Pointing `brainvae prepare` at a BIDS root (a folder holding participants.tsv) keeps the
scans under sub-*/[ses-*/]anat/, takes each scan's subject and session from the sub-/ses-
entities of its file name (the rule brainvae.data.metadata uses without a CSV; no pybids),
merges participants.tsv's columns by subject and each sub-*/sub-*_sessions.tsv's by
(subject, session); a column in both (age at the session, say) takes the session's value
where it has one. Every scan is kept: one without a participants.tsv row gets empty columns
and is listed, as are participants without scans.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from brainvae.data.file_matching import files_as_subjects
from brainvae.data.metadata import listing, read_metadata, read_table
from brainvae.errors import DataFileError

if TYPE_CHECKING:
    import pandas as pd

PARTICIPANTS = "participants.tsv"
BIDS_RULE = (
    "BIDS: scans under sub-*/[ses-*/]anat/, subject and session from sub-/ses- in the file "
    "name; participants.tsv merged by subject, sub-*/sub-*_sessions.tsv by subject and session"
)


def is_bids_root(folder: str | Path) -> bool:
    """A folder with participants.tsv at its top (how BIDS marks a dataset's root)."""
    return (Path(folder) / PARTICIPANTS).is_file()


def is_anatomical(path: Path, root: Path) -> bool:
    """A scan under sub-<label>/[ses-<label>/]anat/ (functional or diffusion series are 4D)."""
    try:
        parts = path.resolve().relative_to(root.resolve()).parts
    except ValueError:
        return False
    return len(parts) >= 3 and parts[0].startswith("sub-") and parts[-2] == "anat"


def _subject_label(subject: str) -> str:
    return subject if subject.startswith("sub-") else f"sub-{subject}"


def _session_label(session: str) -> str:
    return session if not session or session.startswith("ses-") else f"ses-{session}"


def read_sessions(root: Path) -> pd.DataFrame | None:
    """Every sub-*/sub-*_sessions.tsv stacked, with subject_id and session; None if none."""
    import pandas as pd

    tables = []
    for path in sorted(root.glob("sub-*/sub-*_sessions.tsv")):
        table = read_table(path, ("session_id",))
        if "session_id" not in table.columns:
            raise DataFileError(
                path, f"missing column session_id (found: {', '.join(table.columns)})"
            )
        table = table.rename(columns={"session_id": "session"})
        table["session"] = [_session_label(str(s).strip()) for s in table["session"].fillna("")]
        table.insert(0, "subject_id", path.parent.name)
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else None


def bids_table(
    root: str | Path, files: list[Path], id_column: str | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per anatomical scan: subject, session, participants' and sessions' columns, source.

    Returns the table and the matching record (rule, participants without scans, scans
    without a participants row, files left out as not anatomical).
    """
    root = Path(root)
    scans = [f for f in files if is_anatomical(f, root)]
    ignored = [str(f) for f in files if not is_anatomical(f, root)]
    if not scans:
        raise DataFileError(
            root, "is a BIDS root (participants.tsv) but holds no scans under sub-*/[ses-*/]anat/"
        )
    table = files_as_subjects(scans, root)
    participants = read_metadata(root / PARTICIPANTS, id_column)
    id_name = participants.attrs.get("id_column", "subject_id")
    participants["subject_id"] = [_subject_label(s) for s in participants["subject_id"]]
    participants = participants.drop(
        columns=[c for c in ("session", "source") if c in participants]
    )
    merged = table.merge(participants, on="subject_id", how="left", validate="many_to_one")
    sessions = read_sessions(root)
    if sessions is not None and "session" in merged.columns:
        merged = merged.merge(
            sessions, on=["subject_id", "session"], how="left", suffixes=("", " (session)")
        )
        for column in [c for c in merged.columns if c.endswith(" (session)")]:
            name = column.removesuffix(" (session)")
            merged[name] = merged[column].combine_first(merged[name])
            merged = merged.drop(columns=column)
    columns = ["subject_id", *(["session"] if "session" in merged else [])]
    merged = merged[[*columns, *(c for c in merged if c not in (*columns, "source")), "source"]]
    with_scans = set(table["subject_id"])
    listed = set(participants["subject_id"])
    record = {
        "match_rule": BIDS_RULE,
        "id_column": id_name,
        "participants_without_scans": [
            s for s in participants["subject_id"] if s not in with_scans
        ],
        "subjects_without_metadata": sorted(with_scans - listed),
        "not_anatomical_files": ignored,
        "sessions_tables": len(list(root.glob("sub-*/sub-*_sessions.tsv"))),
    }
    merged = merged.reset_index(drop=True)
    merged.attrs["table_format"] = participants.attrs.get("table_format")
    return merged, record


def describe_missing(record: dict[str, Any]) -> str | None:
    """A warning line for scans whose subject participants.tsv does not list."""
    missing = record.get("subjects_without_metadata") or []
    if not missing:
        return None
    return (
        f"{len(missing)} subject(s) with scans have no {PARTICIPANTS} row (their columns are "
        f"empty): {listing(missing)}"
    )
