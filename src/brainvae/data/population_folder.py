"""A population folder in the phantom layout, read whole: scans stacked, table, atlas, template.

Layout: subjects.csv (one row per scan, a `filename` column relative to the folder),
the scans, and optionally atlas.nii.gz + atlas_labels.csv and template.nii.gz in the
scans' grid. Small populations only (the shipped samples); large ones go through
`brainvae prepare`, which caches them on disk. The tables are read as brainvae reads any
metadata table (separator sniffed, UTF-8 else latin-1, cells kept as text), and two rows
naming one scan (`./images/x` and `images/x`) are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainvae.data.io.nifti import Volume, read_nifti
from brainvae.errors import DataFileError, DatasetError

TABLE_NAME = "subjects.csv"


@dataclass
class PopulationFolder:
    """Stacked scans (N, *shape) with their table and the shared grid's atlas and template."""

    images: np.ndarray
    table: list[dict]
    grid: Volume
    atlas: np.ndarray | None = None
    atlas_names: dict[int, str] = field(default_factory=dict)
    template: np.ndarray | None = None
    folder: Path | None = None


def read_rows(path: Path) -> list[dict]:
    """A small table's rows as text dicts, separator and encoding as metadata.table_format
    finds them; header names stripped of spaces."""
    import csv

    from brainvae.data.metadata import table_format

    read_as = table_format(path)
    try:
        with open(path, newline="", encoding=read_as.encoding) as handle:
            rows = list(csv.DictReader(handle, delimiter=read_as.separator))
    except (OSError, csv.Error, UnicodeDecodeError) as err:
        raise DataFileError(path, f"not a readable table ({type(err).__name__}: {err})") from err
    return [{str(k).strip(): v for k, v in row.items() if k is not None} for row in rows]


def read_atlas_names(path: Path) -> dict[int, str]:
    """label -> name from a two-column CSV (label,name)."""
    rows = read_rows(path)
    if not rows or not {"label", "name"} <= set(rows[0]):
        raise DataFileError(path, "expected columns 'label' and 'name'")
    try:
        return {int(row["label"]): row["name"] for row in rows}
    except (TypeError, ValueError) as err:
        raise DataFileError(path, f"a label is not a whole number ({err})") from err


def _refuse_repeated_scans(table: list[dict], folder: Path, table_path: Path) -> None:
    """Two rows naming the same scan, however spelt, would stack it twice: name both lines."""
    from brainvae.data.metadata import resolved_file

    first_line: dict[str, int] = {}
    for line, row in enumerate(table, start=2):
        target = resolved_file(row["filename"] or "", folder)
        if target in first_line:
            raise DataFileError(
                table_path,
                f"lines {first_line[target]} and {line} name the same scan {target}; "
                "keep one row per scan",
            )
        first_line[target] = line


def read_population_folder(folder: str | Path, *, max_scans: int | None = None) -> PopulationFolder:
    """Read every scan listed in subjects.csv; a missing or odd-shaped scan is an error naming it."""
    folder = Path(folder)
    table_path = folder / TABLE_NAME
    if not table_path.is_file():
        raise DatasetError(f"{folder}: no {TABLE_NAME} (not a population folder)")
    table = read_rows(table_path)
    if not table:
        raise DataFileError(table_path, "has no rows")
    if "filename" not in table[0]:
        raise DataFileError(table_path, "missing required column 'filename'")
    _refuse_repeated_scans(table, folder, table_path)
    if max_scans is not None:
        table = table[:max_scans]
    first = read_nifti(folder / table[0]["filename"])
    images = np.empty((len(table), *first.data.shape), dtype=np.float32)
    images[0] = first.data
    for i, row in enumerate(table[1:], start=1):
        volume = read_nifti(folder / row["filename"])
        if volume.data.shape != first.data.shape:
            raise DataFileError(
                volume.source,
                f"shape {volume.data.shape} differs from {first.data.shape} of {first.source}",
            )
        images[i] = volume.data
    atlas = names = template = None
    if (folder / "atlas.nii.gz").is_file():
        atlas = read_nifti(folder / "atlas.nii.gz").data.astype(np.int32)
        names_path = folder / "atlas_labels.csv"
        names = read_atlas_names(names_path) if names_path.is_file() else {}
    if (folder / "template.nii.gz").is_file():
        template = read_nifti(folder / "template.nii.gz").data.astype(np.float32)
    return PopulationFolder(
        images=images,
        table=table,
        grid=first,
        atlas=atlas,
        atlas_names=names or {},
        template=template,
        folder=folder,
    )
