"""Where a run's training dataset is: recorded absolutely and relative to the run folder.

A path as typed ("ds") only means something from the folder training ran in. Recording the
absolute path finds the dataset from any working folder; recording it relative to the run
folder finds it again after the run and its dataset are copied elsewhere side by side (to
another machine, or a colleague's folder). Runs written by older brainvae, which stored one
path as typed, are still read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brainvae.errors import DatasetError
from brainvae.run_folder import RunFolder

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset


ABSOLUTE = "absolute path"
RELATIVE = "path relative to the run folder"
AS_TYPED = "path as recorded by an older brainvae (relative to where training ran)"


def dataset_record(dataset_path: str | Path, run_dir: str | Path) -> dict[str, str | None]:
    """The dataset's absolute path and its path relative to run_dir, for run.json/config.json.

    relative_path is None where none exists (another drive on Windows).
    """
    absolute = os.path.abspath(dataset_path)
    try:
        relative: str | None = Path(os.path.relpath(absolute, os.path.abspath(run_dir))).as_posix()
    except ValueError:
        relative = None
    return {"absolute_path": absolute, "relative_path": relative}


@dataclass(frozen=True)
class DatasetLocation:
    """One place a run's records say its dataset may be, and which record says so."""

    path: Path
    how: str


@dataclass(frozen=True)
class RunDataset:
    """The dataset a run recorded, opened; `note` says which record found it after a fallback."""

    dataset: PreparedDataset
    location: DatasetLocation
    note: str | None


def dataset_locations(
    run_dir: str | Path, training: dict[str, Any] | None = None
) -> list[DatasetLocation]:
    """Every place the run's records name, in the order to try them, without duplicates.

    Absolute paths first, then paths relative to the run folder, then old single paths.
    `training` is the model's training summary; None reads it from the run's config.json.
    """
    run_dir = Path(run_dir)
    if training is None:
        training = _read_json(RunFolder(run_dir).model_config).get("training") or {}
    records = [training.get("dataset"), _read_json(RunFolder(run_dir).run_record).get("dataset")]
    found: dict[str, DatasetLocation] = {}

    def add(path: Any, how: str, base: Path | None = None) -> None:
        if isinstance(path, str) and path:
            location = DatasetLocation(Path(path) if base is None else base / path, how)
            found.setdefault(os.path.normpath(location.path), location)

    for record in records:
        if isinstance(record, dict):
            add(record.get("absolute_path"), ABSOLUTE)
    for record in records:
        if isinstance(record, dict):
            add(record.get("relative_path"), RELATIVE, run_dir)
    for record in records:
        add(record.get("path") if isinstance(record, dict) else record, AS_TYPED)
    return list(found.values())


def open_run_dataset(run_dir: str | Path, training: dict[str, Any] | None = None) -> RunDataset:
    """Open the first recorded dataset that opens; the error lists every path tried and why."""
    from brainvae.data.dataset import PreparedDataset

    locations = dataset_locations(run_dir, training)
    if not locations:
        raise DatasetError(f"{run_dir}: records no training dataset")
    failures = []
    for location in locations:
        try:
            dataset = PreparedDataset.open(location.path)
        except DatasetError as error:
            failures.append(f"{location.path} ({location.how}): {_reason(error, location)}")
            continue
        note = None
        if failures:
            note = (
                f"the dataset recorded in {run_dir} was not found at "
                f"{'; '.join(failures)}; using {location.path} ({location.how})"
            )
        return RunDataset(dataset, location, note)
    raise DatasetError(
        f"the dataset recorded in {run_dir} cannot be opened; tried {'; '.join(failures)}"
    )


def _reason(error: DatasetError, location: DatasetLocation) -> str:
    """The error without its leading path, which the list of tries already names."""
    return str(error).removeprefix(f"{location.path}: ")


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file, or {} when it is missing or unreadable (a record is optional)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
