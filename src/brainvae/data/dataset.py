"""Open a prepared dataset folder: memory-mapped images plus metadata, config and geometry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

    from brainvae.data.preprocessing import PreprocessConfig

FORMAT_NAME = "brainvae-dataset"
FORMAT_VERSION = 1
DATASET_FILES = ("images.npy", "metadata.csv", "dataset.json", "report.json")


@dataclass
class PreparedDataset:
    """A dataset written by prepare_dataset; images are read-only and memory-mapped.

    affine maps unsqueezed display indices of the output grid to world mm; for
    slice datasets use sample_affine(i), which moves to that sample's slice.
    """

    path: Path
    images: np.ndarray
    metadata: pd.DataFrame
    config: PreprocessConfig
    affine: np.ndarray
    voxel_size: tuple[float, ...]
    sample_shape: tuple[int, ...]
    axis_names: tuple[str, ...]
    squeezed_axes: tuple[int, ...]
    slice_axis: int | None
    description: dict[str, Any]
    report: dict[str, Any]

    @classmethod
    def open(cls, path: str | Path) -> PreparedDataset:
        """Open a dataset folder; errors name the folder and what is missing or too new."""
        import pandas as pd

        from brainvae.data.preprocessing import PreprocessConfig

        path = Path(path)
        if not path.is_dir():
            raise DatasetError(f"{path}: no such dataset folder")
        missing = [name for name in DATASET_FILES if not (path / name).is_file()]
        if missing:
            raise DatasetError(
                f"{path}: not a prepared dataset (missing {', '.join(missing)}); "
                "create one with `brainvae prepare`"
            )
        try:
            description = json.loads((path / "dataset.json").read_text(encoding="utf-8"))
            report = json.loads((path / "report.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise DatasetError(f"{path}: unreadable dataset description ({err})") from err
        if description.get("format") != FORMAT_NAME:
            raise DatasetError(f"{path}: dataset.json is not a {FORMAT_NAME} description")
        version = description.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise DatasetError(
                f"{path}: dataset format version {version} is newer than this brainvae "
                f"reads ({FORMAT_VERSION}); upgrade brainvae or prepare the dataset again"
            )
        images = np.load(path / "images.npy", mmap_mode="r")
        metadata = pd.read_csv(
            path / "metadata.csv", dtype={"subject_id": str, "session": str, "filename": str}
        )
        if len(metadata) != len(images):
            raise DatasetError(
                f"{path}: metadata.csv has {len(metadata)} rows but images.npy holds {len(images)}"
            )
        return cls(
            path=path,
            images=images,
            metadata=metadata,
            config=PreprocessConfig.from_dict(description["preprocess"]),
            affine=np.asarray(description["affine"], dtype=np.float64),
            voxel_size=tuple(description["voxel_size"]),
            sample_shape=tuple(images.shape[1:]),
            axis_names=tuple(description["axis_names"]),
            squeezed_axes=tuple(description["squeezed_axes"]),
            slice_axis=description.get("slice_axis"),
            description=description,
            report=report,
        )

    def __len__(self) -> int:
        return len(self.images)

    def indices(self, split: str) -> np.ndarray:
        """Row numbers of one split ("train", "val" or "test")."""
        if split not in ("train", "val", "test"):
            raise DatasetError(f"unknown split {split!r}; expected train, val or test")
        return np.flatnonzero(self.metadata["split"].to_numpy() == split)

    def subjects(self) -> list[str]:
        """The distinct subject ids, sorted."""
        return sorted(self.metadata["subject_id"].astype(str).unique())

    def sample_affine(self, index: int) -> np.ndarray:
        """Affine of one sample: the dataset affine, moved to the sample's slice if sliced."""
        if self.slice_axis is None or "slice_index" not in self.metadata.columns:
            return self.affine.copy()
        shift = np.eye(4)
        shift[self.slice_axis, 3] = float(self.metadata["slice_index"].iloc[index])
        return self.affine @ shift

    def maps_affine(self) -> np.ndarray:
        """Affine for one map on the samples' grid (an analysis' output): slice datasets place
        it at their most common slice, so a one-slice map sits where most images were cut."""
        affine = np.asarray(self.affine, dtype=np.float64).copy()
        table = self.metadata
        if self.slice_axis is not None and "slice_index" in table.columns:
            slices = table["slice_index"].dropna()
            if len(slices):
                shift = np.eye(4)
                shift[self.slice_axis, 3] = float(slices.mode().iloc[0])
                affine = affine @ shift
        return affine
