"""A table showing the metadata row of the scan under the population slider."""

from __future__ import annotations

from collections.abc import Mapping

from magicgui.widgets import Table


class SubjectInfo(Table):
    """One scan's metadata: row headers are the fields, one column of values."""

    def __init__(self) -> None:
        super().__init__(value={"data": [], "index": [], "columns": ["value"]})
        self.read_only = True
        self.min_height = 180

    def show_row(self, row: Mapping[str, object] | None) -> None:
        """Replace the table with this row's fields (None clears it)."""
        row = dict(row or {})
        self.value = {
            "data": [[_format(v)] for v in row.values()],
            "index": [str(k) for k in row],
            "columns": ["value"],
        }

    def shown(self) -> dict[str, str]:
        """What the table shows now, field -> text."""
        value = self.value
        return {str(k): str(v[0]) for k, v in zip(value["index"], value["data"], strict=True)}


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
