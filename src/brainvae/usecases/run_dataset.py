"""The dataset a run was trained on, found from the run's records (or given instead).

brainvae.data.run_dataset records the dataset's absolute path and its path relative to the
run folder, and opens the first that opens; this chooses between a dataset given by the user
and the recorded one, and says which was used when the records had to fall back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from brainvae.errors import DatasetError

if TYPE_CHECKING:
    from brainvae.data.run_dataset import RunDataset


class NoRecordedDataset(DatasetError):
    """The run records no training dataset (a bare model folder, or a model saved by hand)."""


def run_dataset(run_dir: str | Path, model: Any, dataset: str | Path | None = None) -> RunDataset:
    """`dataset` opened when given, else the one the run recorded (its note says which record
    found it after a fallback). Raises NoRecordedDataset when none is given or recorded, and
    DatasetError naming every path tried when the recorded one cannot be opened."""
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.run_dataset import (
        DatasetLocation,
        RunDataset,
        dataset_locations,
        open_run_dataset,
    )

    if dataset is not None:
        opened = PreparedDataset.open(dataset)
        return RunDataset(opened, DatasetLocation(Path(dataset), "given"), None)
    training = getattr(model.config, "training", None) or {}
    if not dataset_locations(run_dir, training):
        raise NoRecordedDataset(f"{run_dir}: records no training dataset")
    return open_run_dataset(run_dir, training)
