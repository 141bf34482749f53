"""Open a prepared dataset folder: memory-mapped images plus metadata, config and geometry.

Opening checks the files before using them, so a damaged copy is an error naming the file
(errors.DatasetFileError) rather than a numpy or pandas traceback: images.npy's header is read
and compared with the file's size (a truncated copy) and must hold numbers in the shape
dataset.json records; metadata.csv must be a readable table with the columns the rest of
brainvae uses (REQUIRED_COLUMNS), one row per image, every split one of train/val/test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.data.dataset_folder import DatasetFolder
from brainvae.data.split import SPLIT_NAMES
from brainvae.errors import BrainVAEError, DataFileError, DatasetError, DatasetFileError
from brainvae.json_files import read_json_file

if TYPE_CHECKING:
    import pandas as pd

    from brainvae.data.preprocessing import PreprocessConfig

FORMAT_NAME = "brainvae-dataset"
FORMAT_VERSION = 1
REQUIRED_COLUMNS = ("subject_id", "split")
"""metadata.csv columns brainvae reads (splits for training, subjects for grouping and export)."""
NUMERIC_KINDS = "biuf"  # numpy dtype kinds a model can read: bool, signed, unsigned, float


MAX_DATASET_JSON = 256 * 2**20
"""dataset.json and report.json (which lists skipped files) stay far below this."""


def _again(problem: str) -> str:
    return f"{problem}; copy or prepare the dataset again"


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) from a .npy file's header, refused when the header is not
    an array of numbers or the file is shorter or longer than the header says (a truncated or
    half-copied file), before anything is memory-mapped."""
    fmt = np.lib.format
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    try:
        with open(path, "rb") as handle:
            version = fmt.read_magic(handle)
            if version not in readers:
                raise DatasetFileError(path, _again(f".npy format version {version} not read"))
            shape, _fortran, dtype = readers[version](handle)
            offset = handle.tell()
    except DatasetFileError:
        raise
    except (OSError, ValueError, SyntaxError) as err:
        raise DatasetFileError(path, _again(f"not a readable .npy array ({err})")) from err
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None:
        raise DatasetFileError(path, _again(f"holds {dtype} values, not numbers"))
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        state = "truncated" if size < expected else "too long"
        problem = f"{state}: {size} bytes where its header ({shape} {dtype}) needs {expected}"
        raise DatasetFileError(path, _again(problem))
    return tuple(int(n) for n in shape), dtype, offset


def _open_images(path: Path, description: dict[str, Any]) -> np.ndarray:
    """images.npy memory-mapped, after its header is checked against the file and the
    sample shape dataset.json records."""
    shape, _dtype, _offset = npy_header(path)
    if len(shape) < 2:
        raise DatasetFileError(path, _again(f"holds an array of shape {shape}, not a stack"))
    recorded = description.get("sample_shape")
    if isinstance(recorded, list) and tuple(recorded) != shape[1:]:
        raise DatasetFileError(
            path,
            _again(f"holds samples of shape {shape[1:]}, dataset.json says {tuple(recorded)}"),
        )
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise DatasetFileError(path, _again(f"cannot be memory-mapped ({err})")) from err


def _lines(mask: np.ndarray) -> list[str]:
    """CSV line numbers (the header is line 1) of the rows where mask is true."""
    return [str(i + 2) for i in np.flatnonzero(mask)]


def _open_metadata(path: Path, n_images: int) -> pd.DataFrame:
    """metadata.csv with ids as text (a subject named NA stays NA), refused without the
    required columns, with another number of rows than images, or with an unknown split."""
    from brainvae.data.csv_safety import restored
    from brainvae.data.metadata import TableFormat, listing, read_table
    from brainvae.errors import DataFileError

    try:
        written_as = TableFormat(",", "utf-8")  # as prepare writes it: nothing to guess
        metadata = read_table(path, ("subject_id", "session", "filename"), written_as)
    except DataFileError as err:
        raise DatasetFileError(path, _again(err.problem)) from err
    metadata = restored(metadata)
    missing = [c for c in REQUIRED_COLUMNS if c not in metadata.columns]
    if missing:
        raise DatasetFileError(
            path,
            _again(
                f"missing column(s) {', '.join(missing)} (found: {', '.join(metadata.columns)})"
            ),
        )
    if len(metadata) != n_images:
        raise DatasetFileError(
            path, _again(f"has {len(metadata)} rows but images.npy holds {n_images} images")
        )
    empty = _lines(metadata["subject_id"].isna().to_numpy())
    if empty:
        raise DatasetFileError(path, _again(f"empty subject_id on line(s) {listing(empty)}"))
    odd = _lines(~metadata["split"].isin(SPLIT_NAMES).to_numpy())
    if odd:
        raise DatasetFileError(
            path,
            _again(f"split not one of {', '.join(SPLIT_NAMES)} on line(s) {listing(odd)}"),
        )
    return metadata


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
    scan_shape: tuple[int, ...]
    axis_names: tuple[str, ...]
    squeezed_axes: tuple[int, ...]
    slice_axis: int | None
    description: dict[str, Any]
    report: dict[str, Any]

    @classmethod
    def open(cls, path: str | Path) -> PreparedDataset:
        """Open a dataset folder; errors name the folder and what is missing or too new, or
        the file that is damaged (DatasetFileError)."""
        from brainvae.data.preprocessing import PreprocessConfig

        path = Path(path)
        if not path.is_dir():
            raise DatasetError(f"{path}: no such dataset folder")
        missing = [name for name in DatasetFolder.REQUIRED if not (path / name).is_file()]
        if missing:
            raise DatasetError(
                f"{path}: not a prepared dataset (missing {', '.join(missing)}); "
                "create one with `brainvae prepare`"
            )
        try:  # size and nesting depth limited, not text or not JSON: the file is named
            description = read_json_file(path / DatasetFolder.DESCRIPTION, MAX_DATASET_JSON)
            report = read_json_file(path / DatasetFolder.REPORT, MAX_DATASET_JSON)
        except DataFileError as err:
            raise DatasetFileError(err.path, _again(err.problem)) from err
        except OSError as err:
            raise DatasetError(f"{path}: unreadable dataset description ({err})") from err
        if not isinstance(description, dict) or description.get("format") != FORMAT_NAME:
            raise DatasetError(f"{path}: dataset.json is not a {FORMAT_NAME} description")
        version = description.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise DatasetError(
                f"{path}: dataset format version {version} is newer than this brainvae "
                f"reads ({FORMAT_VERSION}); upgrade brainvae or prepare the dataset again"
            )
        images = _open_images(path / DatasetFolder.IMAGES, description)
        metadata = _open_metadata(path / DatasetFolder.METADATA, len(images))
        try:
            return cls(
                path=path,
                images=images,
                metadata=metadata,
                config=PreprocessConfig.from_dict(description["preprocess"]),
                affine=np.asarray(description["affine"], dtype=np.float64).reshape(4, 4),
                voxel_size=tuple(description["voxel_size"]),
                scan_shape=tuple(images.shape[1:]),
                axis_names=tuple(description["axis_names"]),
                squeezed_axes=tuple(description["squeezed_axes"]),
                slice_axis=description.get("slice_axis"),
                description=description,
                report=report,
            )
        except DataFileError:
            raise
        except BrainVAEError as err:  # the preprocessing record inside dataset.json
            raise DatasetFileError(path / DatasetFolder.DESCRIPTION, _again(str(err))) from err
        except (KeyError, TypeError, ValueError) as err:
            problem = f"missing or malformed entry {err}"
            raise DatasetFileError(path / DatasetFolder.DESCRIPTION, _again(problem)) from err

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
