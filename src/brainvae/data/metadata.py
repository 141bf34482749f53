"""Per-subject metadata tables: read the CSV/TSV, find its id column, check its ids.

The table may be comma-, tab- (.tsv, e.g. BIDS participants.tsv), semicolon- or pipe-separated
(tab for .tsv, else sniffed from the first lines) and UTF-8 (with or without a byte-order mark)
or, failing that, latin-1; the choice is kept in table.attrs["table_format"] and shown in the
prepare summary. Ids are read as text as written: a subject named NA or None is a subject,
only an empty cell (or BIDS's n/a) is missing. Its id column is the one named by the user
(--id-column), else the first of ID_CANDIDATES present (subject_id, participant_id,
subject); it is renamed subject_id in the dataset. A `session_id` column (BIDS) is read as
`session`. Columns brainvae does not know are kept and listed (column_report) so a typo
such as "diagnosos" shows up in the prepare summary. Matching rows to image files is
brainvae.data.file_matching.

Two rows naming the same file (`./images/x` and `images/x`) are refused, as are ids longer
than MAX_ID_LENGTH characters: both before any scan is read.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from brainvae.errors import DataFileError

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
