"""Grouping preprocessed files by sample shape: the majority shape is kept, the others
are skipped (skip_bad) or refused with an error naming the first odd file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.data.prepare.progress import PrepareProgress, SkippedFile
from brainvae.data.prepare.reading import FileOutcome, read_files, refuse
from brainvae.data.prepare.row_writer import RowWriter, check_free_space, needed_bytes
from brainvae.data.preprocessing import PreprocessConfig, PreprocessedImage
from brainvae.errors import DataFileError, DatasetError

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class ShapeGroup:
    """The files whose samples share one shape, written to their own row file."""

    writer: RowWriter
    first: PreprocessedImage
    first_path: str
    files: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    slice_indices: list[int] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    nonfinite: list[dict[str, Any]] = field(default_factory=list)
    affine_differs: list[str] = field(default_factory=list)

    def add(self, outcome: FileOutcome, image: PreprocessedImage) -> None:
        """Write one file's samples and remember its rows."""
        if not np.allclose(image.affine, self.first.affine, atol=1e-3):
            self.affine_differs.append(outcome.path)
        self.writer.write(image.samples)
        self.files.append(outcome.index)
        self.rows += [outcome.index] * len(image.samples)
        self.slice_indices += list(image.slice_indices)
        self.means += image.sample_means.tolist()
        if image.nonfinite_replaced:
            self.nonfinite.append({"file": outcome.path, "count": image.nonfinite_replaced})


@dataclass
class Collected:
    """What the preprocessing pass gathered, for the metadata and the JSON files."""

    rows: list[int] = field(default_factory=list)
    slice_indices: list[int] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    nonfinite: list[dict[str, Any]] = field(default_factory=list)
    affine_differs: list[str] = field(default_factory=list)
    first: PreprocessedImage | None = None
    first_path: str = ""
    warnings: list[str] = field(default_factory=list)


def _new_group(
    images_path: Path, number: int, capacity: int, outcome: FileOutcome, rows_taken: int
) -> ShapeGroup:
    """A group for a shape not seen before, with its own row file; refused up front when the
    disk has no room for the remaining rows at this shape (plus a margin for the tables)."""
    image = outcome.image
    assert image is not None
    check_free_space(images_path.parent, needed_bytes(capacity - rows_taken, image.scan_shape))
    path = images_path.with_name(f"{images_path.stem}.shape{number}.npy")
    return ShapeGroup(RowWriter(path, capacity, image.scan_shape), image, outcome.path)


def preprocess_pass(
    table: pd.DataFrame,
    images_path: Path,
    config: PreprocessConfig,
    workers: int,
    skip_bad: bool,
    max_bytes: int | None,
    collected: Collected,
) -> Iterator[PrepareProgress]:
    """Preprocess every file into per-shape row files; keep the majority shape's rows."""
    paths = [str(p) for p in table["source"]]
    capacity = len(paths) * max(1, len(config.slice_indices()))
    groups: dict[tuple[int, ...], ShapeGroup] = {}
    skipped: list[tuple[int, SkippedFile]] = []
    try:
        for outcome in read_files(paths, config, max_bytes, workers):
            image = outcome.image
            if image is None:
                if not skip_bad:
                    refuse(outcome)
                skipped.append((outcome.index, SkippedFile(outcome.path, outcome.reason)))
            else:
                if image.scan_shape not in groups:
                    taken = sum(len(group.rows) for group in groups.values())
                    groups[image.scan_shape] = _new_group(
                        images_path, len(groups), capacity, outcome, taken
                    )
                groups[image.scan_shape].add(outcome, image)
            collected.skipped = [s for _, s in skipped]
            yield PrepareProgress(
                "preprocess", outcome.index + 1, len(paths), outcome.path, tuple(collected.skipped)
            )
        if not groups:
            reasons = "; ".join(f"{s.file}: {s.reason}" for _, s in skipped[:5])
            raise DatasetError(f"all {len(paths)} files were skipped as bad ({reasons})")
        majority = _majority(groups)
        skipped += _odd_shapes(groups, majority, paths, skip_bad)
        _keep(majority, images_path, collected)
        collected.skipped = [s for _, s in sorted(skipped, key=lambda item: item[0])]
    finally:
        for group in groups.values():
            group.writer.close()
            group.writer.path.unlink(missing_ok=True)


def _majority(groups: dict[tuple[int, ...], ShapeGroup]) -> ShapeGroup:
    """The group with most files; a tie goes to the shape seen first (the first file's)."""
    return max(groups.values(), key=lambda group: (len(group.files), -group.files[0]))


def _odd_shapes(
    groups: dict[tuple[int, ...], ShapeGroup],
    majority: ShapeGroup,
    paths: list[str],
    skip_bad: bool,
) -> list[tuple[int, SkippedFile]]:
    """Files whose shape is not the majority's: skipped entries, or an error naming one."""
    shape = majority.first.scan_shape
    odd = sorted(i for group in groups.values() if group is not majority for i in group.files)
    if odd and not skip_bad:
        first = paths[odd[0]]
        raise DataFileError(
            first,
            f"shape {_shape_of(groups, odd[0])} after preprocessing differs from the "
            f"majority shape {shape} ({len(majority.files)} of {len(paths)} files, e.g. "
            f"{majority.first_path}); {len(odd)} file(s) differ. Fix or remove them, or pass "
            "skip_bad=True (--skip-bad) to leave them out",
        )
    return [
        (
            i,
            SkippedFile(
                paths[i],
                f"shape {_shape_of(groups, i)} after preprocessing differs from the majority "
                f"shape {shape} ({len(majority.files)} of {len(paths)} files)",
            ),
        )
        for i in odd
    ]


def _shape_of(groups: dict[tuple[int, ...], ShapeGroup], index: int) -> tuple[int, ...]:
    """The sample shape of the file with this index."""
    return next(shape for shape, group in groups.items() if index in group.files)


def _keep(group: ShapeGroup, images_path: Path, collected: Collected) -> None:
    """Finish the chosen group's row file as images.npy and copy its record."""
    group.writer.finish()
    os.replace(group.writer.path, images_path)
    collected.rows, collected.slice_indices = group.rows, group.slice_indices
    collected.means, collected.nonfinite = group.means, group.nonfinite
    collected.affine_differs = group.affine_differs
    collected.first, collected.first_path = group.first, group.first_path
