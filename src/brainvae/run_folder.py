"""A run folder: what training writes, by name, in one place.

A run folder holds a saved model (config.json + weights.safetensors, which is all a model
folder written by `model.save` holds), the run record (run.json: how training was asked
for), the loss history (history.csv) and checkpoints/. The names live here, below every
package, so the data, models and training packages, the use cases and the CLI read the same
files without importing one another (and without importing torch).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol


class SavesItself(Protocol):
    """What RunFolder.save_model needs of a model: LatentModel.save."""

    def save(self, folder: str | Path, training: dict[str, Any] | None = None) -> Path: ...


@dataclass(frozen=True)
class RunFolder:
    """The folder of one training run; the class constants name what it holds."""

    path: Path

    RUN_RECORD: ClassVar[str] = "run.json"
    MODEL_CONFIG: ClassVar[str] = "config.json"
    WEIGHTS: ClassVar[str] = "weights.safetensors"
    HISTORY: ClassVar[str] = "history.csv"
    CHECKPOINTS: ClassVar[str] = "checkpoints"
    MODEL_FILES: ClassVar[tuple[str, ...]] = (WEIGHTS, MODEL_CONFIG)
    """The files of a saved model, in the order they are moved into place."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))  # a str is welcome too

    @property
    def run_record(self) -> Path:
        return self.path / self.RUN_RECORD

    @property
    def model_config(self) -> Path:
        return self.path / self.MODEL_CONFIG

    @property
    def weights(self) -> Path:
        return self.path / self.WEIGHTS

    @property
    def history(self) -> Path:
        return self.path / self.HISTORY

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    def holds_model(self) -> bool:
        """Whether a saved model's config is here (a finished run, or a model folder)."""
        return self.model_config.is_file()

    def holds_run_record(self) -> bool:
        """Whether training recorded a run here (run.json)."""
        return self.run_record.is_file()

    def save_model(self, model: SavesItself, summary: dict[str, Any]) -> None:
        """model.save into a staging folder, then move its files into the run folder.

        model.save replaces its whole target folder, which would drop checkpoints/ and
        history.csv; staging keeps the run folder's other files.
        """
        from brainvae.atomic import new_partial_folder

        staging = new_partial_folder(self.path / "model")  # tidies a killed save's leftovers
        try:
            model.save(staging, training=summary)
            for name in self.MODEL_FILES:
                os.replace(staging / name, self.path / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
