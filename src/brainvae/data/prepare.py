"""Turn a folder of volumes (+ an optional CSV) into a cached, split, memory-mapped dataset.

`prepare_dataset` is a generator of PrepareProgress updates so the napari worker and
the CLI progress bar drive the same code. Files are preprocessed in worker processes
with a bounded number of tasks in flight, results are written in order into a
float32 .npy with ordinary file writes (resident memory stays flat however many volumes
there are; free space is checked before the first row, and a full disk is an error naming
the file, never a crash), and the dataset is built in a hidden sibling folder that is
renamed into place only when complete: an error, a cancel or a full disk leaves nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.atomic import no_room_names
from brainvae.data.dataset import FORMAT_NAME, FORMAT_VERSION
from brainvae.data.io.images import IMAGE_SUFFIXES, read_image
from brainvae.data.preprocessing import PreprocessConfig, PreprocessedImage, preprocess_volume
from brainvae.data.preprocessing.pipeline import load_mask
from brainvae.data.preprocessing.steps import equalise_brightness
from brainvae.data.split import SPLIT_NAMES
from brainvae.errors import (
    BrainVAEError,
    DataFileError,
    DatasetError,
    DiskFullError,
    MemoryBudgetError,
    free_bytes,
    is_no_room,
)

if TYPE_CHECKING:
    import pandas as pd

    from brainvae.data.dataset import PreparedDataset

CHUNK_BYTES = 8 * 2**20  # rows are written / equalised in chunks of about this size
SPACE_MARGIN_BYTES = 16 * 2**20  # free space asked beyond the images, for tables and reports
ADDED_COLUMNS = ("source", "slice_index", "split")
NO_CSV_RULE = (
    "no CSV: subject from sub-<label> (and session from ses-<label>) in the file stem, "
    "else the first-level folder under the source, else the stem"
)


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


@dataclass
class _Outcome:
    """What a worker sends back for one file: the samples, or the error to raise or skip."""

    index: int
    path: str
    image: PreprocessedImage | None = None
    error_kind: str | None = None  # "data" or "memory"
    reason: str = ""
    message: str = ""


_MASKS: dict[str, np.ndarray] = {}


def _process_file(
    index: int, path: str, config: PreprocessConfig, max_bytes: int | None
) -> _Outcome:
    """Read and preprocess one file (runs in a worker); errors come back as values,
    because our exceptions do not survive pickling between processes."""
    try:
        mask = None
        if config.mask is not None:
            if config.mask not in _MASKS:
                _MASKS[config.mask] = load_mask(config.mask)
            mask = _MASKS[config.mask]
        # A 4D file gives only the chosen volume: the others are never held in memory.
        volume = read_image(path, max_bytes=max_bytes, volume_index=config.volume_index)
        image = preprocess_volume(volume, config, mask)
        return _Outcome(index, path, image)
    except MemoryBudgetError as err:
        return _Outcome(index, path, None, "memory", str(err).removeprefix(f"{path}: "), str(err))
    except DataFileError as err:
        return _Outcome(index, path, None, "data", err.problem, str(err))
    except BrainVAEError as err:
        return _Outcome(index, path, None, "data", str(err), str(err))


def _outcomes(
    paths: list[str], config: PreprocessConfig, max_bytes: int | None, workers: int
) -> Iterator[_Outcome]:
    """Outcomes in file order; with workers > 1 at most 2 x workers files are in flight.

    Workers are spawned (not forked) so a GUI thread can start them safely, and without
    re-running the user's script, so a script needs no `if __name__ == "__main__":` guard.
    """
    if workers == 1:
        for index, path in enumerate(paths):
            yield _process_file(index, path, config, max_bytes)
        return
    from concurrent.futures.process import BrokenProcessPool

    from brainvae.data.worker_pool import worker_pool

    pool = worker_pool(workers)
    try:
        jobs = iter(enumerate(paths))
        pending: deque = deque()
        for index, path in jobs:
            pending.append(pool.submit(_process_file, index, path, config, max_bytes))
            if len(pending) >= 2 * workers:
                break
        while pending:
            try:
                outcome = pending.popleft().result()
            except BrokenProcessPool as err:
                raise DatasetError(
                    "a worker process died while preprocessing (out of memory, or run from "
                    "an interactive stdin session?); try workers=1 (--workers 1)"
                ) from err
            following = next(jobs, None)
            if following is not None:
                pending.append(pool.submit(_process_file, *following, config, max_bytes))
            yield outcome
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _RowWriter:
    """Writes sample rows in order into a .npy file through a file handle.

    Rows are appended with ordinary writes (no memory map over unwritten space), so a full
    disk is an OSError, reported as a DiskFullError naming the file, not a SIGBUS that kills
    the process. The header states `capacity` rows until `finish` shrinks it to the rows
    written.
    """

    def __init__(self, path: Path, capacity: int, sample_shape: tuple[int, ...]):
        self.path = path
        self.sample_shape = sample_shape
        self.rows = 0
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        header = _npy_header((capacity, *sample_shape))
        self._header_length = len(header)
        with no_room_names(path):
            self._file = open(path, "wb")  # noqa: SIM115 - closed by finish() / close()
            self._file.write(header)

    def write(self, samples: np.ndarray) -> None:
        self._buffer.append(samples)
        self._buffered += samples.nbytes
        if self._buffered >= CHUNK_BYTES:
            self.flush()

    def flush(self) -> None:
        with no_room_names(self.path):
            for block in self._buffer:
                self._file.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
                self.rows += len(block)
            self._file.flush()
        self._buffer, self._buffered = [], 0

    def finish(self) -> None:
        """Flush, state the rows written in the header (fewer when files were skipped), close."""
        self.flush()
        header = _npy_header((self.rows, *self.sample_shape), self._header_length)
        with no_room_names(self.path):
            self._file.truncate(self._header_length + self.rows * _row_bytes(self.sample_shape))
            self._file.seek(0)
            self._file.write(header)
            self._file.close()

    def close(self) -> None:
        """Close without finishing (the file is about to be removed)."""
        self._file.close()


def _npy_header(shape: tuple[int, ...], length: int | None = None) -> bytes:
    """A float32 .npy header for `shape`, padded with spaces to `length` bytes when given
    (so a header rewritten with fewer rows keeps the data where it is)."""
    import io
    import struct

    buffer = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    written = buffer.getvalue()
    if length is None or len(written) == length:
        return written
    prefix, text = written[:8], written[10:]
    text = text[:-1] + b" " * (length - len(written)) + b"\n"
    return prefix + struct.pack("<H", len(text)) + text


def _row_bytes(sample_shape: tuple[int, ...]) -> int:
    """Bytes of one float32 sample."""
    return int(np.prod(sample_shape)) * 4


def check_free_space(folder: str | Path, needed: int) -> None:
    """Refuse to start writing `needed` bytes into `folder` when its disk has less free.

    Raises DiskFullError naming the folder, the bytes needed and the bytes free.
    """
    free = free_bytes(folder)
    if free is not None and needed > free:
        raise DiskFullError(folder, needed=needed, free=free)


def _needed_bytes(rows: int, sample_shape: tuple[int, ...]) -> int:
    """Bytes a dataset of `rows` samples takes: the images plus a margin for the tables."""
    images = rows * _row_bytes(sample_shape)
    return images + max(SPACE_MARGIN_BYTES, images // 100)


def _chunks(rows: int, sample_shape: tuple[int, ...]) -> Iterator[tuple[int, int]]:
    per_row = _row_bytes(sample_shape)
    step = max(1, CHUNK_BYTES // max(per_row, 1))
    for start in range(0, rows, step):
        yield start, min(rows, start + step)


def _equalise(path: Path, means: np.ndarray, config: PreprocessConfig) -> Iterator[int]:
    """Second pass: brightness equalisation over the cached array, chunk by chunk.

    Chunks are read through a read-only memory map and written back with ordinary writes,
    so a filesystem that allocates on rewrite (copy-on-write) reports a full disk as an error.
    """
    population_mean = float(np.mean(means))
    array = np.load(path, mmap_mode="r")
    rows, shape, offset = len(array), array.shape[1:], array.offset
    del array
    with no_room_names(path), open(path, "r+b") as file:
        for start, stop in _chunks(rows, shape):
            array = np.load(path, mmap_mode="r")
            chunk = np.array(array[start:stop])
            del array
            equalised = equalise_brightness(
                chunk,
                means[start:stop],
                population_mean,
                config.brightness_k,  # type: ignore[arg-type]
                config.brightness_normalise,
            )
            file.seek(offset + start * _row_bytes(shape))
            file.write(np.ascontiguousarray(equalised, dtype="<f4").tobytes())
            file.flush()
            yield stop


def _default_workers(workers: int | None) -> int:
    if workers is None:
        return min(2, os.cpu_count() or 1)
    if not isinstance(workers, int) or workers < 1:
        raise DatasetError(f"workers must be an integer >= 1, got {workers!r}")
    return workers


def _check_output(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not overwrite:
        raise DatasetError(f"{out} already exists; pass overwrite=True (--overwrite) to replace it")
    if not out.is_dir() or not ((out / "dataset.json").exists() or not any(out.iterdir())):
        raise DatasetError(f"{out} exists and is not a prepared dataset; refusing to replace it")


def _assemble(
    files: list[Path],
    source: Path,
    csv: Path | None,
    allow_unmatched: bool,
    id_column: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table of rows to prepare (metadata columns + source) and the matching record.

    Without a CSV, a BIDS root (participants.tsv at the top) is read the BIDS way
    (brainvae.data.bids); any other folder gives one row per file.
    """
    from brainvae.data.bids import bids_table, is_bids_root
    from brainvae.data.metadata import (
        column_report,
        files_as_subjects,
        match_files,
        read_metadata,
        unmatched_error,
    )

    if csv is None and is_bids_root(source):
        table, record = bids_table(source, files, id_column)
        _check_added_columns(table.drop(columns="source"), source / "participants.tsv")
        return table, {**record, "columns": column_report(table, record["id_column"])}
    if csv is None:
        return files_as_subjects(files, source), {"match_rule": NO_CSV_RULE}
    table = read_metadata(csv, id_column)
    id_name = table.attrs.get("id_column", "subject_id")
    _check_added_columns(table, csv)
    result = match_files(table, files, csv.parent)
    if (result.unmatched_rows or result.unmatched_files) and not allow_unmatched:
        raise unmatched_error(result, csv)
    if len(result.table) == 0:
        raise DatasetError(f"no row of {csv} matched an image file (matched by {result.rule})")
    record = {
        "match_rule": result.rule,
        "unmatched_rows": result.unmatched_rows,
        "unmatched_files": result.unmatched_files,
        "ignored_files": result.ignored_files,
        "columns": column_report(table, id_name),
    }
    return result.table, record


def _check_added_columns(table: pd.DataFrame, path: Path) -> None:
    """Refuse metadata columns named like the ones the dataset adds."""
    clash = [c for c in ADDED_COLUMNS if c in table.columns]
    if clash:
        raise DataFileError(
            path, f"column(s) {', '.join(clash)} clash with columns the dataset adds; rename them"
        )


@dataclass
class _Group:
    """The files whose samples share one shape, written to their own row file."""

    writer: _RowWriter
    first: PreprocessedImage
    first_path: str
    files: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    slice_indices: list[int] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    nonfinite: list[dict[str, Any]] = field(default_factory=list)
    affine_differs: list[str] = field(default_factory=list)

    def add(self, outcome: _Outcome, image: PreprocessedImage) -> None:
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
class _Collected:
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
    images_path: Path, number: int, capacity: int, outcome: _Outcome, rows_taken: int
) -> _Group:
    """A group for a shape not seen before, with its own row file; refused up front when the
    disk has no room for the remaining rows at this shape (plus a margin for the tables)."""
    image = outcome.image
    assert image is not None
    check_free_space(images_path.parent, _needed_bytes(capacity - rows_taken, image.sample_shape))
    path = images_path.with_name(f"{images_path.stem}.shape{number}.npy")
    return _Group(_RowWriter(path, capacity, image.sample_shape), image, outcome.path)


def _refuse(outcome: _Outcome) -> None:
    """Raise the error a bad file stands for (no skip_bad)."""
    if outcome.error_kind == "memory":
        raise MemoryBudgetError(outcome.message)
    raise DataFileError(outcome.path, outcome.reason)


def _preprocess_pass(
    table: pd.DataFrame,
    images_path: Path,
    config: PreprocessConfig,
    workers: int,
    skip_bad: bool,
    max_bytes: int | None,
    collected: _Collected,
) -> Iterator[PrepareProgress]:
    """Preprocess every file into per-shape row files; keep the majority shape's rows."""
    paths = [str(p) for p in table["source"]]
    capacity = len(paths) * max(1, len(config.slice_indices()))
    groups: dict[tuple[int, ...], _Group] = {}
    skipped: list[tuple[int, SkippedFile]] = []
    try:
        for outcome in _outcomes(paths, config, max_bytes, workers):
            image = outcome.image
            if image is None:
                if not skip_bad:
                    _refuse(outcome)
                skipped.append((outcome.index, SkippedFile(outcome.path, outcome.reason)))
            else:
                if image.sample_shape not in groups:
                    taken = sum(len(group.rows) for group in groups.values())
                    groups[image.sample_shape] = _new_group(
                        images_path, len(groups), capacity, outcome, taken
                    )
                groups[image.sample_shape].add(outcome, image)
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


def _majority(groups: dict[tuple[int, ...], _Group]) -> _Group:
    """The group with most files; a tie goes to the shape seen first (the first file's)."""
    return max(groups.values(), key=lambda group: (len(group.files), -group.files[0]))


def _odd_shapes(
    groups: dict[tuple[int, ...], _Group], majority: _Group, paths: list[str], skip_bad: bool
) -> list[tuple[int, SkippedFile]]:
    """Files whose shape is not the majority's: skipped entries, or an error naming one."""
    shape = majority.first.sample_shape
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


def _shape_of(groups: dict[tuple[int, ...], _Group], index: int) -> tuple[int, ...]:
    """The sample shape of the file with this index."""
    return next(shape for shape, group in groups.items() if index in group.files)


def _keep(group: _Group, images_path: Path, collected: _Collected) -> None:
    """Finish the chosen group's row file as images.npy and copy its record."""
    group.writer.finish()
    os.replace(group.writer.path, images_path)
    collected.rows, collected.slice_indices = group.rows, group.slice_indices
    collected.means, collected.nonfinite = group.means, group.nonfinite
    collected.affine_differs = group.affine_differs
    collected.first, collected.first_path = group.first, group.first_path


def prepare_dataset(
    source: str | Path,
    out: str | Path,
    config: PreprocessConfig | None = None,
    csv: str | Path | None = None,
    *,
    workers: int | None = None,
    skip_bad: bool = False,
    allow_unmatched: bool = False,
    overwrite: bool = False,
    max_bytes: int | None = None,
    id_column: str | None = None,
) -> Iterator[PrepareProgress]:
    """Prepare a dataset folder `out` from the image files under `source`, yielding progress.

    config None is the shared default recipe (PreprocessConfig.default()). csv may be
    comma- or tab-separated; id_column names its subject id column (default: the first
    of subject_id, participant_id, subject). Without skip_bad the first bad file raises
    (DataFileError / MemoryBudgetError naming it) and no dataset is left; with it, bad
    files are skipped and listed.
    """
    from brainvae.data.io.nifti_integrity import checked_budget

    config = PreprocessConfig.default() if config is None else config
    source, out = Path(source), Path(out)
    csv = Path(csv) if csv is not None else None
    max_bytes = checked_budget(max_bytes)  # before any work, not at the first file
    workers = _default_workers(workers)
    from brainvae.atomic import recover

    recover(out)  # an old dataset a killed swap moved aside is back before the check
    _check_output(out, overwrite)
    timing: dict[str, float] = {}
    started = time.perf_counter()
    yield PrepareProgress("scan", 0, 0, str(source))
    from brainvae.data.metadata import find_image_files

    files = find_image_files(source)
    if not files:
        raise DatasetError(f"no supported image files ({', '.join(IMAGE_SUFFIXES)}) in {source}")
    table, match_record = _assemble(files, source, csv, allow_unmatched, id_column)
    if config.mask is not None:
        load_mask(config.mask)  # a bad mask is everyone's problem: fail before starting
    timing["scan_s"] = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    from brainvae.atomic import new_partial_folder

    tmp = new_partial_folder(out)  # removes those killed runs left behind
    try:
        collected = _Collected()
        tick = time.perf_counter()
        yield from _preprocess_pass(
            table, tmp / "images.npy", config, workers, skip_bad, max_bytes, collected
        )
        timing["preprocess_s"] = time.perf_counter() - tick
        skipped = tuple(collected.skipped)
        population_mean = None
        if config.brightness_k is not None:
            tick = time.perf_counter()
            means = np.asarray(collected.means)
            population_mean = float(np.mean(means))
            for done in _equalise(tmp / "images.npy", means, config):
                yield PrepareProgress("equalise", done, len(means), None, skipped)
            timing["equalise_s"] = time.perf_counter() - tick
        yield PrepareProgress("write", 0, 1, str(out), skipped)
        metadata = _metadata(table, collected, config)
        collected.warnings = warnings(collected, metadata, config.split_fractions)
        collected.warnings += _matching_warnings(match_record)
        timing["total_s"] = time.perf_counter() - started
        _write_files(
            tmp,
            metadata,
            collected,
            config,
            source,
            csv,
            match_record,
            len(files),
            len(table),
            population_mean,
            workers,
            timing,
        )
        _commit(tmp, out, overwrite)
    except OSError as error:
        if is_no_room(error):
            raise _disk_full_in(out, tmp, error) from error
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    yield PrepareProgress(
        "done", 1, 1, str(out), skipped, dataset=out, warnings=tuple(collected.warnings)
    )


def _disk_full_in(out: Path, tmp: Path, error: OSError) -> DiskFullError:
    """The DiskFullError for a failed write in the build folder, naming where the file would
    have been in `out` (the build folder is removed); a per-shape row file is images.npy."""
    from brainvae.atomic import disk_full_in

    full = disk_full_in(error, tmp, out)
    if full.path.name.startswith("images.shape"):
        full = DiskFullError(
            full.path.with_name("images.npy"), needed=full.needed, free=full.free, code=full.code
        )
    return full


def _metadata(table: pd.DataFrame, collected: _Collected, config: PreprocessConfig) -> pd.DataFrame:
    """One row per sample: the CSV columns, source, slice_index (when slicing) and split."""
    from brainvae.data.split import split_by_subject

    metadata = table.iloc[collected.rows].reset_index(drop=True)
    if config.slice_axis is not None:
        metadata["slice_index"] = collected.slice_indices
    metadata["split"] = split_by_subject(
        metadata["subject_id"].astype(str), config.split_fractions, config.split_seed
    )
    return metadata


def shown_files(files: list[str], shown: int = 3) -> str:
    """The first few file names and a count of the rest."""
    head = ", ".join(files[:shown])
    return head + (f" ... and {len(files) - shown} more" if len(files) > shown else "")


def warnings(
    collected: _Collected,
    metadata: pd.DataFrame,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> list[str]:
    """One-line notes on what was stacked or changed silently, and on empty splits (only
    those asked for: a split with fraction 0, like flair3d's test split, is meant to be empty)."""
    notes = []
    differs = collected.affine_differs
    if differs:
        notes.append(
            f"{len(differs)} file(s) have a different voxel size or position (affine) from "
            f"the reference {collected.first_path} but were stacked on its grid: "
            + shown_files(differs)
        )
    if collected.nonfinite:
        named = [f"{item['file']} ({item['count']} voxels)" for item in collected.nonfinite]
        notes.append(
            f"NaN/Inf voxels were replaced with 0 in {len(named)} file(s): " + shown_files(named)
        )
    wanted = [name for name, share in zip(SPLIT_NAMES, fractions, strict=True) if share > 0]
    empty = [name for name in wanted if not (metadata["split"] == name).any()]
    if empty:
        subjects = int(metadata["subject_id"].nunique())
        notes.append(
            f"only {subjects} subject(s), so the {', '.join(empty)} split(s) are empty "
            "(a split needs at least one subject of its own)"
        )
    return notes


def _matching_warnings(record: dict[str, Any]) -> list[str]:
    """Notes from reading the metadata: BIDS scans without a participants.tsv row, and a
    table that was not UTF-8 (read as latin-1: accented names may need checking)."""
    from brainvae.data.bids import describe_missing
    from brainvae.data.metadata import ENCODINGS

    notes = []
    missing = describe_missing(record)
    if missing:
        notes.append(missing)
    read_as = record.get("columns", {}).get("table_format", {})
    if read_as.get("encoding") == ENCODINGS[-1]:
        notes.append(
            f"the metadata table is not UTF-8; it was read as {ENCODINGS[-1]} (Western "
            "European): check accented names in metadata.csv, or save the table as UTF-8"
        )
    return notes


def _write_files(
    tmp: Path,
    metadata: pd.DataFrame,
    collected: _Collected,
    config: PreprocessConfig,
    source: Path,
    csv: Path | None,
    match_record: dict[str, Any],
    files_found: int,
    rows_matched: int,
    population_mean: float | None,
    workers: int,
    timing: dict[str, float],
) -> None:
    """metadata.csv, dataset.json, report.json and preprocess.json into the build folder."""
    from brainvae import __version__
    from brainvae.data.csv_safety import neutralised

    first = collected.first
    assert first is not None
    neutralised(metadata).to_csv(tmp / "metadata.csv", index=False)
    config.save(tmp / "preprocess.json")
    split_counts = {
        name: int((metadata["split"] == name).sum()) for name in ("train", "val", "test")
    }
    description = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "brainvae_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n_samples": len(metadata),
        "sample_shape": list(first.sample_shape),
        "dtype": "float32",
        "voxel_size": list(first.voxel_size),
        "affine": first.affine.tolist(),
        "axis_names": list(first.axis_names),
        "squeezed_axes": list(first.squeezed_axes),
        "slice_axis": config.slice_axis_number(),
        "preprocess": config.to_dict(),
        "split": {
            "fractions": list(config.split_fractions),
            "seed": config.split_seed,
            "counts": split_counts,
        },
        "brightness": None
        if population_mean is None
        else {"population_mean": population_mean, "k": config.brightness_k},
        "source": str(source.resolve()),
        "csv": None if csv is None else str(csv.resolve()),
    }
    report = {
        "skipped": [asdict(s) for s in collected.skipped],
        **{"unmatched_rows": [], "unmatched_files": [], **match_record},
        "nonfinite_replaced": collected.nonfinite,
        "affine_differs": collected.affine_differs,
        "affine_reference": collected.first_path,
        "warnings": collected.warnings,
        "counts": {
            "files_found": files_found,
            "files_matched": rows_matched,
            "files_used": rows_matched - len(collected.skipped),
            "files_skipped": len(collected.skipped),
            "samples": len(metadata),
            "subjects": int(metadata["subject_id"].nunique()),
            **split_counts,
        },
        "timing": {k: round(v, 3) for k, v in timing.items()},
        "workers": workers,
    }
    for name, content in (("dataset.json", description), ("report.json", report)):
        (tmp / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


def _commit(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the finished build into place (replacing an old dataset only when allowed)."""
    from brainvae.atomic import replace

    if out.exists():
        _check_output(out, overwrite)
    replace(tmp, out)


def prepare(
    source: str | Path,
    out: str | Path,
    config: PreprocessConfig | None = None,
    csv: str | Path | None = None,
    **options: Any,
) -> PreparedDataset:
    """Run prepare_dataset to the end and open the result (same options)."""
    from brainvae.data.dataset import PreparedDataset

    for _ in prepare_dataset(source, out, config, csv, **options):
        pass
    return PreparedDataset.open(out)
