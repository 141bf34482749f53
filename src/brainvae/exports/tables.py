"""Tables and summaries as files: CSV (cells a spreadsheet would run as formulas neutralised,
8 significant digits) and JSON (indented, UTF-8), each written whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brainvae.atomic import atomic_file

if TYPE_CHECKING:
    import pandas as pd

FLOAT_FORMAT = "%.8g"
"""Every float of a result table: 8 significant digits (float32 results carry about 7)."""


def write_csv(path: str | Path, table: pd.DataFrame, index: bool = True) -> Path:
    """Write `table` as CSV at `path` (brainvae.data.csv_safety.neutralised first)."""
    from brainvae.data.csv_safety import neutralised

    path = Path(path)
    with atomic_file(path) as temporary:
        neutralised(table).to_csv(
            temporary, index=index, float_format=FLOAT_FORMAT, compression=None
        )
    return path


def write_json(path: str | Path, info: Any) -> Path:
    """Write `info` as indented UTF-8 JSON with a final newline at `path`."""
    path = Path(path)
    with atomic_file(path) as temporary:
        temporary.write_text(json.dumps(info, indent=2) + "\n", "utf-8")
    return path
