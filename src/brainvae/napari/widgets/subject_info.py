"""A two-column table showing the metadata row of the scan under the population slider."""

from __future__ import annotations

from collections.abc import Mapping

from magicgui.widgets import Table


class SubjectInfo(Table):
    """Shows one scan's metadata (column -> value); empty until a population is loaded."""

    def __init__(self) -> None:
        super().__init__(value={"field": [], "value": []})
        self.read_only = True
        self.min_height = 160

    def show_row(self, row: Mapping[str, object] | None) -> None:
        """Replace the table with this row's fields (None clears it)."""
        row = dict(row or {})
        self.value = {
            "data": [[str(k), _format(v)] for k, v in row.items()],
            "columns": ["field", "value"],
        }


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
