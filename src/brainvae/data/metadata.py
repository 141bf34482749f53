"""Per-subject metadata: find image files, read the CSV, and match its rows to files.

The table may be comma-, tab- (.tsv, e.g. BIDS participants.tsv), semicolon- or pipe-separated
(tab for .tsv, else sniffed from the first lines) and UTF-8 (with or without a byte-order mark)
or, failing that, latin-1; the choice is kept in table.attrs["table_format"] and shown in the
prepare summary. Ids are read as text as written: a subject named NA or None is a subject,
only an empty cell (or BIDS's n/a) is missing. Its id column is the one named by the user
(--id-column), else the first of ID_CANDIDATES present (subject_id, participant_id,
subject); it is renamed subject_id in the dataset. A `session_id` column (BIDS) is read as
`session`. Columns brainvae does not know are kept and listed (column_report) so a typo
such as "diagnosos" shows up in the prepare summary.

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

Two rows naming the same file (`./images/x` and `images/x`) are refused, as are ids longer
than MAX_ID_LENGTH characters: both before any scan is read.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from brainvae.data.io.images import image_stem, is_image_path
from brainvae.errors import DataFileError, DatasetError

if TYPE_CHECKING:
    import pandas as pd

ID_CANDIDATES: tuple[str, ...] = ("subject_id", "participant_id", "subject")
"""Id column names looked for, in this order, when the user names none."""
SESSION_CANDIDATES: tuple[str, ...] = ("session", "session_id")
ID_COLUMNS: tuple[str, ...] = ("subject_id", "session", "filename")
KNOWN_COLUMNS: tuple[str, ...] = (
    "age", "sex", "gender", "diagnosis", "group", "site", "scanner", "handedness",
)  # fmt: skip
"""Optional columns brainvae's docs and sample data use; others are kept and listed."""
MISSING_VALUES = ("n/a",)  # BIDS writes missing values as n/a
PANDAS_MISSING: tuple[str, ...] = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
"""The strings pandas.read_csv reads as missing by default (its documented na_values list):
still missing in measurement columns, but text in id columns (a subject may be named NA)."""
MAX_ID_LENGTH = 256
"""Longest subject or session id accepted: longer is a pasted note or a broken export, and
every id is copied per scan into fixed-width arrays (memory grows with scans x longest id)."""
MAX_FILENAME_LENGTH = 4096  # PATH_MAX on Linux: no file can be named by a longer path
SEPARATORS: dict[str, str] = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
ENCODINGS: tuple[str, ...] = ("utf-8", "utf-8-sig", "latin-1")
"""Tried in this order; latin-1 decodes any bytes, so it is the last resort."""
SNIFF_BYTES = 64 * 1024  # the separator is sniffed from the first lines within this many bytes
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


@dataclass(frozen=True)
class TableFormat:
    """How a metadata table was read: its separator and text encoding."""

    separator: str
    encoding: str

    def to_dict(self) -> dict[str, str]:
        """For report.json: {"separator": "semicolon", "encoding": "latin-1"}."""
        return {
            "separator": SEPARATORS.get(self.separator, self.separator),
            "encoding": self.encoding,
        }


def encoding_of(path: Path) -> str:
    """utf-8-sig for a file starting with a UTF-8 byte-order mark, utf-8 when every byte
    decodes as UTF-8 (checked in blocks, not read whole), else latin-1."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        if handle.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
            return "utf-8-sig"
        handle.seek(0)
        try:
            while block := handle.read(2**20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return ENCODINGS[-1]
    return ENCODINGS[0]


def separator_of(path: Path, encoding: str = "utf-8") -> str:
    """Tab for .tsv; otherwise what csv.Sniffer finds among comma, semicolon, tab and pipe in
    the first lines (a tab-separated file saved as .csv, a spreadsheet's semicolons); failing
    that, the commonest of them in the header line, comma on a tie."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    try:
        with open(path, encoding=encoding, errors="replace", newline="") as handle:
            sample = handle.read(SNIFF_BYTES)
    except OSError:
        return ","
    if "\n" in sample.rstrip("\r\n"):
        sample = sample[: sample.rindex("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(SEPARATORS)).delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
    counts = {separator: header.count(separator) for separator in SEPARATORS}
    best = max(counts, key=lambda separator: counts[separator])
    return best if counts[best] > counts[","] else ","


def table_format(path: Path) -> TableFormat:
    """The separator and encoding read_table uses for this file."""
    encoding = encoding_of(path)
    return TableFormat(separator_of(path, encoding), encoding)


def find_id_column(columns: list[str], id_column: str | None = None) -> str | None:
    """The subject id column: the one asked for, else the first of ID_CANDIDATES present."""
    if id_column is not None:
        return id_column if id_column in columns else None
    return next((name for name in ID_CANDIDATES if name in columns), None)


def read_table(
    path: str | Path, text_columns: tuple[str, ...] = (), read_as: TableFormat | None = None
) -> pd.DataFrame:
    """A CSV/TSV as pandas reads it, `text_columns` kept as text as written ("01" stays
    "01", "NA" stays "NA"; only empty cells and n/a are missing there). The separator and
    encoding are `read_as`, or found by table_format; they are kept in
    table.attrs["table_format"]."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "metadata table does not exist")
    readable = (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError)
    try:
        found = read_as if read_as is not None else table_format(path)
        options = {
            "sep": found.separator,
            "encoding": found.encoding,
            "skipinitialspace": True,
            "keep_default_na": False,
        }
        header = pd.read_csv(path, nrows=0, **options).columns
        text = [c for c in header if str(c).strip() in text_columns]
        missing = {c: [*MISSING_VALUES, ""] if c in text else [*PANDAS_MISSING] for c in header}
        table = pd.read_csv(path, dtype={c: str for c in text}, na_values=missing, **options)
    except readable as err:
        raise DataFileError(path, f"not a readable table ({type(err).__name__}: {err})") from err
    table.columns = [str(c).strip() for c in table.columns]
    table.attrs["table_format"] = found
    return table


def read_metadata(csv_path: str | Path, id_column: str | None = None) -> pd.DataFrame:
    """The table with its id column renamed subject_id and id columns as text.

    `id_column` names the subject id column; None looks for ID_CANDIDATES in order.
    table.attrs["id_column"] keeps the name the file used.
    """
    csv_path = Path(csv_path)
    text = (*ID_CANDIDATES, *SESSION_CANDIDATES, "filename", *([id_column] if id_column else []))
    table = read_table(csv_path, text)
    read_as = table.attrs["table_format"]
    found = find_id_column(list(table.columns), id_column)
    if found is None:
        wanted = (
            f"the id column {id_column!r} named with --id-column"
            if id_column
            else "required column(s) subject_id (or "
            + " or ".join(ID_CANDIDATES[1:])
            + "; name another id column with --id-column)"
        )
        raise DataFileError(csv_path, f"missing {wanted} (found: {', '.join(table.columns)})")
    table = _renamed(table, found, "subject_id", csv_path)
    if "session" not in table.columns and "session_id" in table.columns:
        table = _renamed(table, "session_id", "session", csv_path)
    for column in ID_COLUMNS:
        if column in table.columns:
            table[column] = table[column].fillna("").astype(str).str.strip()
    empty = _lines(table.index[table["subject_id"] == ""])
    if empty:
        raise DataFileError(csv_path, f"empty {found} on line(s) {listing(empty)}")
    _check_lengths(table, csv_path, found)
    _check_duplicates(table, csv_path)
    table = table.reset_index(drop=True)
    table.attrs["id_column"] = found
    table.attrs["table_format"] = read_as
    return table


def _renamed(table: pd.DataFrame, old: str, new: str, path: Path) -> pd.DataFrame:
    """Rename a column; refuse when the new name is already another column."""
    if old == new:
        return table
    if new in table.columns:
        raise DataFileError(
            path, f"has both {old!r} (used as {new}) and a column {new!r}; rename one of them"
        )
    return table.rename(columns={old: new})


def column_report(table: pd.DataFrame, id_column: str = "subject_id") -> dict:
    """The table's columns sorted into id, known and other (with a close known name, if any),
    and how the file was read (table.attrs["table_format"]: separator and encoding)."""
    own = [c for c in table.columns if c not in ("subject_id", "session", "filename", "source")]
    known = [c for c in own if c.lower() in KNOWN_COLUMNS]
    other = [c for c in own if c.lower() not in KNOWN_COLUMNS]
    suggestions = {}
    for name in other:
        close = difflib.get_close_matches(name.lower(), KNOWN_COLUMNS, n=1, cutoff=0.75)
        if close:
            suggestions[name] = close[0]
    report = {
        "id_column": id_column,
        "known": known,
        "other": other,
        "did_you_mean": suggestions,
    }
    read_as = table.attrs.get("table_format")
    if isinstance(read_as, TableFormat):
        report["table_format"] = read_as.to_dict()
    return report


def _lines(index) -> list[str]:
    """CSV line numbers (header is line 1) of table rows."""
    return [str(int(i) + 2) for i in index]


def _check_lengths(table: pd.DataFrame, csv_path: Path, id_name: str) -> None:
    """Refuse ids (and file names) too long to be ones, naming the first rows, before the
    ids are copied per scan."""
    limits = {"subject_id": (id_name, MAX_ID_LENGTH), "session": ("session", MAX_ID_LENGTH)}
    limits["filename"] = ("filename", MAX_FILENAME_LENGTH)
    for column, (name, limit) in limits.items():
        if column not in table.columns:
            continue
        lengths = table[column].str.len()
        long = lengths[lengths > limit]
        if len(long):
            rows = [
                f"line {line} ({length} characters)"
                for line, length in zip(_lines(long.index), long, strict=True)
            ]
            raise DataFileError(
                csv_path,
                f"{name} longer than {limit} characters on {listing(rows, 5)}; "
                "is a note or a whole record in the id column?",
            )


def resolved_file(name: str, folder: Path) -> str:
    """The absolute, normalised path a table's filename cell names (relative to `folder`),
    symbolic links followed, so ./images/x, images/x and images/../images/x are one file."""
    path = os.path.normpath(os.path.join(os.path.abspath(folder), name))
    return os.path.realpath(path)


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
        files = named["filename"].map(lambda name: resolved_file(name, csv_path.parent))
        dup = named[files.duplicated(keep=False)]
        if len(dup):
            groups = [
                f"{target} ("
                + ", ".join(
                    f"line {line}: {name}"
                    for line, name in zip(_lines(rows.index), rows["filename"], strict=True)
                )
                + ")"
                for target, rows in dup.groupby(files[dup.index], sort=False)
            ]
            raise DataFileError(csv_path, f"several rows name the same file: {listing(groups, 5)}")


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
