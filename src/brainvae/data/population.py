"""One population value, wherever the scans came from.

A population is read either from a folder of scans with its subjects.csv (the shipped
samples, a phantom: `PopulationFolder`) or from a prepared dataset (`PreparedDataset`,
memory-mapped). Code that only needs the scans, their table and their grid takes a
`Population` and never asks which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.population_folder import PopulationFolder


@dataclass(frozen=True, eq=False)
class Population:
    """Scans (N, *shape) with one table row each and the grid they share.

    `affine` maps unsqueezed voxel indices of one scan's grid to world millimetres;
    `squeezed_axes` are the axes a 2D slice dropped. `dataset` is the prepared dataset
    folder the scans are memory-mapped from, None for a folder of scans (train on it by
    preparing it first, see `brainvae.data.dataset_cache`); `folder` is the folder of scans
    with its subjects.csv, None for a dataset prepared elsewhere.
    """

    images: np.ndarray
    table: pd.DataFrame | None
    affine: np.ndarray
    squeezed_axes: tuple[int, ...] = ()
    dataset: Path | None = None
    folder: Path | None = None
    atlas: np.ndarray | None = None
    atlas_names: dict[int, str] = field(default_factory=dict)

    @property
    def n_scans(self) -> int:
        return len(self.images)

    @property
    def scan_shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.images.shape[1:])

    @property
    def source(self) -> Path | None:
        """Where it was read from: the prepared dataset, else the folder of scans."""
        return self.dataset if self.dataset is not None else self.folder

    @classmethod
    def from_dataset(cls, dataset: PreparedDataset) -> Population:
        """A prepared dataset's memory-mapped scans and metadata (nothing is read)."""
        return cls(
            images=dataset.images,
            table=dataset.metadata,
            affine=dataset.maps_affine(),
            squeezed_axes=tuple(int(a) for a in dataset.squeezed_axes),
            dataset=Path(dataset.path),
        )

    @classmethod
    def from_folder(cls, population: PopulationFolder) -> Population:
        """A folder's scans (already read) with its subjects.csv, atlas and grid."""
        import pandas as pd

        return cls(
            images=population.images,
            table=pd.DataFrame(population.table),
            affine=np.asarray(population.grid.affine, dtype=float),
            squeezed_axes=tuple(int(a) for a in population.grid.squeezed_axes),
            folder=None if population.folder is None else Path(population.folder),
            atlas=population.atlas,
            atlas_names=dict(population.atlas_names),
        )
