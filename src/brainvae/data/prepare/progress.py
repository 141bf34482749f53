"""What prepare_dataset yields: progress updates and the files it left out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of the dataset (skip_bad=True) and why."""

    file: str
    reason: str


@dataclass(frozen=True)
class PrepareProgress:
    """One update of the preparation: stage ("scan", "preprocess", "equalise", "write",
    "done"), items done of total in that stage, the file at hand, files skipped so far;
    the last update ("done") carries the dataset's path and `warnings`: one-line notes
    a person should read (files on a different voxel grid, NaN/Inf replaced, empty splits),
    the same list as report.json's "warnings"."""

    stage: str
    done: int
    total: int
    current: str | None = None
    skipped: tuple[SkippedFile, ...] = ()
    dataset: Path | None = None
    warnings: tuple[str, ...] = ()
