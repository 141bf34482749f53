"""prepare_dataset: scan, match, preprocess, equalise and write, as a generator of progress."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.data.dataset_folder import DatasetFolder
from brainvae.data.io.images import IMAGE_SUFFIXES
from brainvae.data.prepare.folder import (
    check_output,
    commit,
    dataset_disk_full,
    sample_metadata,
    warnings,
    write_files,
)
from brainvae.data.prepare.matching import assemble_table, matching_warnings
from brainvae.data.prepare.progress import PrepareProgress
from brainvae.data.prepare.row_writer import equalise_rows
from brainvae.data.prepare.shapes import Collected, preprocess_pass
from brainvae.data.preprocessing import PreprocessConfig
from brainvae.data.preprocessing.pipeline import load_mask
from brainvae.errors import DatasetError, is_no_room

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset


def default_workers(workers: int | None) -> int:
    if workers is None:
        return min(2, os.cpu_count() or 1)
    if not isinstance(workers, int) or workers < 1:
        raise DatasetError(f"workers must be an integer >= 1, got {workers!r}")
    return workers


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
    workers = default_workers(workers)
    from brainvae.atomic import recover

    recover(out)  # an old dataset a killed swap moved aside is back before the check
    check_output(out, overwrite)
    timing: dict[str, float] = {}
    started = time.perf_counter()
    yield PrepareProgress("scan", 0, 0, str(source))
    from brainvae.data.file_matching import find_image_files

    files = find_image_files(source)
    if not files:
        raise DatasetError(f"no supported image files ({', '.join(IMAGE_SUFFIXES)}) in {source}")
    table, match_record = assemble_table(files, source, csv, allow_unmatched, id_column)
    if config.mask is not None:
        load_mask(config.mask)  # a bad mask is everyone's problem: fail before starting
    timing["scan_s"] = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    from brainvae.atomic import new_partial_folder

    tmp = new_partial_folder(out)  # removes those killed runs left behind
    try:
        collected = Collected()
        tick = time.perf_counter()
        yield from preprocess_pass(
            table, tmp / DatasetFolder.IMAGES, config, workers, skip_bad, max_bytes, collected
        )
        timing["preprocess_s"] = time.perf_counter() - tick
        skipped = tuple(collected.skipped)
        population_mean = None
        if config.brightness_k is not None:
            tick = time.perf_counter()
            means = np.asarray(collected.means)
            population_mean = float(np.mean(means))
            for done in equalise_rows(tmp / DatasetFolder.IMAGES, means, config):
                yield PrepareProgress("equalise", done, len(means), None, skipped)
            timing["equalise_s"] = time.perf_counter() - tick
        yield PrepareProgress("write", 0, 1, str(out), skipped)
        metadata = sample_metadata(table, collected, config)
        collected.warnings = warnings(collected, metadata, config.split_fractions)
        collected.warnings += matching_warnings(match_record)
        timing["total_s"] = time.perf_counter() - started
        write_files(
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
        commit(tmp, out, overwrite)
    except OSError as error:
        if is_no_room(error):
            raise dataset_disk_full(out, tmp, error) from error
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    yield PrepareProgress(
        "done", 1, 1, str(out), skipped, dataset=out, warnings=tuple(collected.warnings)
    )


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
