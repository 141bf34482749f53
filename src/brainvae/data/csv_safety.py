"""Cells a spreadsheet would run as formulas, made inert before brainvae writes a CSV.

A metadata value such as `=HYPERLINK(...)` or `=cmd|' /C calc'!A0`, copied from a user's
table into metadata.csv or an export, runs when the CSV is opened in a spreadsheet. Following
the OWASP CSV-injection advice, a text cell starting with =, +, -, @, tab or carriage return
gets a leading apostrophe, so the spreadsheet shows it as text. Numbers stay numbers: only
text that does not parse as a number is changed ("-1.5", "-1,5" and "+3" are left alone).

The change is undone exactly by `restored` when brainvae reads its own CSVs back (a
dataset's metadata.csv, a receptive run's impact.csv): a text that already starts with an
apostrophe before such a character gets one more, so "'=x" and "=x" stay apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

FORMULA_STARTS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP)."""


def _is_number(text: str) -> bool:
    """A number as Python or a comma-decimal spreadsheet writes it ("-1.5", "-1,5")."""
    for spelling in (text, text.replace(",", ".", 1) if text.count(",") == 1 else text):
        try:
            float(spelling)
        except ValueError:
            continue
        return True
    return False


def _needs_apostrophe(text: str) -> bool:
    """Text a spreadsheet would execute, or an apostrophe already in front of such text."""
    if text.startswith(FORMULA_STARTS):
        return not _is_number(text)
    return text.startswith("'") and _needs_apostrophe(text[1:])


def neutralise_cell(value: Any) -> Any:
    """The value, with a leading apostrophe when it is text a spreadsheet would execute."""
    if isinstance(value, str) and _needs_apostrophe(value):
        return "'" + value
    return value


def restore_cell(value: Any) -> Any:
    """The value as it was before neutralise_cell (inverse on everything it writes)."""
    if isinstance(value, str) and value.startswith("'") and _needs_apostrophe(value[1:]):
        return value[1:]
    return value


def _is_text(values: pd.Index | pd.Series) -> bool:
    import pandas as pd

    return pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)


def neutralised(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of `table` safe to write as CSV: text cells, column names and a text index
    neutralised; numeric columns untouched (so float_format still applies)."""
    return _map_text(table.copy(), neutralise_cell)


def restored(table: pd.DataFrame) -> pd.DataFrame:
    """`table` as read from a CSV brainvae wrote, its text cells, column names and text
    index as they were before `neutralised` (changed in place and returned)."""
    return _map_text(table, restore_cell)


def _map_text(table: pd.DataFrame, function: Any) -> pd.DataFrame:
    """Apply `function` to every text cell, the column names and a text index, in place."""
    for position in range(table.shape[1]):
        column = table.iloc[:, position]
        if _is_text(column):
            table.isetitem(position, column.map(function))
    table.columns = table.columns.map(function)
    if _is_text(table.index):
        table.index = table.index.map(function)
    return table


def neutralised_row(row: list[Any]) -> list[Any]:
    """One csv.writer row with its cells neutralised."""
    return [neutralise_cell(value) for value in row]
