"""Prepare (or reuse) a cached population dataset in the background, yielding progress."""

from __future__ import annotations

import threading
from collections.abc import Generator
from contextlib import closing
from pathlib import Path
from typing import Any


def prepare_population(
    source: Path,
    out: Path,
    config: Any,
    csv: Path | None = None,
    *,
    cancel: threading.Event | None = None,
    skip_bad: bool = False,
    allow_unmatched: bool = False,
    reuse: bool = True,
    id_column: str | None = None,
) -> Generator[Any, None, Path | None]:
    """Run brainvae.data.prepare.prepare_dataset; returns the dataset folder, or None if cancelled.

    id_column names the metadata table's subject id column (None: the usual names).
    With `reuse`, a folder already holding a dataset prepared from the same inputs
    (its key is in the folder name, see DataWidget) is opened without work.
    Setting `cancel` stops after the current report; the engine's own clean-up then
    removes its temporary folder, so nothing half-written is left.
    """
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.prepare import prepare_dataset

    out = Path(out)
    if reuse and out.is_dir():
        try:
            PreparedDataset.open(out)
            return out
        except Exception:  # noqa: BLE001 - a stale or foreign folder: rebuild it
            pass
    reports = prepare_dataset(
        source,
        out,
        config,
        csv=csv,
        skip_bad=skip_bad,
        allow_unmatched=allow_unmatched,
        overwrite=True,
        id_column=id_column,
    )
    with closing(reports):
        for report in reports:
            if cancel is not None and cancel.is_set():
                return None
            yield report
    return out
