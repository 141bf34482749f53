"""Which prepared dataset the Training dock trains on: a population layer's own, a folder,
or, for a population read from a folder of scans (File > Open Sample), the dataset the dock
prepares from it once into the dataset cache, as the Population data dock would. A mixin of
TrainingWidget."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from brainvae.napari.layer_roles import population_of
from brainvae.napari.widgets.paths import optional_path
from brainvae.napari.widgets.training_form import FOLDER_CHOICE


class NotPrepared(Exception):
    """The chosen population is a folder of scans with no prepared dataset yet."""

    def __init__(self, population: Any) -> None:
        super().__init__("not prepared")
        self.population = population


class TrainingData:
    """Opening (or first preparing) the dataset to train on (mixed into TrainingWidget)."""

    def dataset_path(self) -> Path:
        """The prepared dataset to train on; errors say what to choose."""
        return self.open_dataset().path

    def open_dataset(self):
        """The chosen PreparedDataset; a folder that is not one is refused here, named. A
        population read from a folder of scans that was not prepared yet raises
        NotPrepared (training prepares it first)."""
        from brainvae.data.dataset import PreparedDataset

        if self.dataset.value == FOLDER_CHOICE:
            folder = optional_path(self.dataset_folder.value)
            if folder is None:
                raise ValueError("choose a prepared dataset folder, or load a population first")
            return PreparedDataset.open(folder)
        name = self.dataset.value
        population = population_of(self._viewer.layers[name]) if name else None
        if population is None:
            raise ValueError(f"{name}: this layer's population cannot be read; load it again")
        folder = self._dataset_of(population)
        if folder is None:
            raise NotPrepared(population)
        return PreparedDataset.open(folder)

    def _dataset_of(self, population: Any) -> Path | None:
        """The prepared dataset of a population: its own, or the one training prepared."""
        if population.dataset is not None:
            return Path(population.dataset)
        return self._prepared.get(population.folder)

    def _prepare_then_launch(self, population: Any, resume: bool) -> None:
        """Prepare a folder population as it is (its scans are on their working grid) into the
        dataset cache, the way the Population data dock does, then start training."""
        from napari.qt.threading import create_worker

        from brainvae.data.dataset_cache import folder_request
        from brainvae.napari.workers.prepare import prepare_population

        if population.folder is None:
            self.fail(ValueError("this population has no folder to prepare; load it again"))
            return
        request = folder_request(population.folder, population.images.ndim - 1)

        def prepared(folder: Path | None) -> None:
            self._worker = None
            if self._closed:
                return
            if folder is None:
                self.status.value = "Cancelled; no dataset was written."
                self._set_running(False)
                return
            self._prepared[population.folder] = Path(folder)
            self._set_running(False)
            self._launch(resume)

        self.status.value = f"Preparing {population.folder.name} for training (once, cached)..."
        self._cancel = threading.Event()
        self._set_running(True)
        self._worker = create_worker(
            prepare_population,
            request.source,
            request.cache_folder(),
            request.config,
            request.csv,
            cancel=self._cancel,
            _connect={"returned": prepared, "errored": self._fail_preparing},
        )

    def _fail_preparing(self, err: BaseException) -> None:
        self._worker = None
        self._set_running(False)
        self.fail(err)
