"""Reading and preprocessing the source files, in worker processes, in file order.

Each file is read and preprocessed in a worker (spawned, at most 2 x workers in flight);
errors come back as values so the caller decides whether to skip or raise.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from brainvae.data.io.images import read_image
from brainvae.data.preprocessing import PreprocessConfig, PreprocessedImage, preprocess_volume
from brainvae.data.preprocessing.pipeline import load_mask
from brainvae.errors import BrainVAEError, DataFileError, DatasetError, MemoryBudgetError


@dataclass
class FileOutcome:
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
) -> FileOutcome:
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
        return FileOutcome(index, path, image)
    except MemoryBudgetError as err:
        return FileOutcome(
            index, path, None, "memory", str(err).removeprefix(f"{path}: "), str(err)
        )
    except DataFileError as err:
        return FileOutcome(index, path, None, "data", err.problem, str(err))
    except BrainVAEError as err:
        return FileOutcome(index, path, None, "data", str(err), str(err))


def read_files(
    paths: list[str], config: PreprocessConfig, max_bytes: int | None, workers: int
) -> Iterator[FileOutcome]:
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


def refuse(outcome: FileOutcome) -> None:
    """Raise the error a bad file stands for (no skip_bad)."""
    if outcome.error_kind == "memory":
        raise MemoryBudgetError(outcome.message)
    raise DataFileError(outcome.path, outcome.reason)
