"""A population folder in the phantom layout, read whole: scans stacked, table, atlas, template.

Layout: subjects.csv (one row per scan, a `filename` column relative to the folder),
the scans, and optionally atlas.nii.gz + atlas_labels.csv and template.nii.gz in the
scans' grid. Small populations only (the shipped samples); large ones go through
`brainvae prepare`, which caches them on disk.
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


def read_atlas_names(path: Path) -> dict[int, str]:
    """label -> name from a two-column CSV (label,name)."""
    import csv

    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"label", "name"} <= set(rows[0]):
        raise DataFileError(path, "expected columns 'label' and 'name'")
    return {int(row["label"]): row["name"] for row in rows}


def read_population_folder(folder: str | Path, *, max_scans: int | None = None) -> PopulationFolder:
    """Read every scan listed in subjects.csv; a missing or odd-shaped scan is an error naming it."""
    import csv

    folder = Path(folder)
    table_path = folder / TABLE_NAME
    if not table_path.is_file():
        raise DatasetError(f"{folder}: no {TABLE_NAME} (not a population folder)")
    with open(table_path, newline="") as handle:
        table = list(csv.DictReader(handle))
    if not table:
        raise DataFileError(table_path, "has no rows")
    if "filename" not in table[0]:
        raise DataFileError(table_path, "missing required column 'filename'")
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
