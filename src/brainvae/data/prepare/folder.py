"""The dataset folder prepare writes: metadata.csv, dataset.json, report.json and
preprocess.json, built in a hidden sibling folder and swapped into place atomically."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brainvae.data.dataset import FORMAT_NAME, FORMAT_VERSION
from brainvae.data.dataset_folder import DatasetFolder
from brainvae.data.prepare.shapes import Collected
from brainvae.data.preprocessing import PreprocessConfig
from brainvae.data.split import SPLIT_NAMES
from brainvae.errors import DatasetError, DiskFullError

if TYPE_CHECKING:
    import pandas as pd


def check_output(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not overwrite:
        raise DatasetError(f"{out} already exists; pass overwrite=True (--overwrite) to replace it")
    if not out.is_dir() or not (
        (out / DatasetFolder.DESCRIPTION).exists() or not any(out.iterdir())
    ):
        raise DatasetError(f"{out} exists and is not a prepared dataset; refusing to replace it")


def sample_metadata(
    table: pd.DataFrame, collected: Collected, config: PreprocessConfig
) -> pd.DataFrame:
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
    collected: Collected,
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


def write_files(
    tmp: Path,
    metadata: pd.DataFrame,
    collected: Collected,
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
    neutralised(metadata).to_csv(tmp / DatasetFolder.METADATA, index=False)
    config.save(tmp / DatasetFolder.PREPROCESS)
    split_counts = {
        name: int((metadata["split"] == name).sum()) for name in ("train", "val", "test")
    }
    description = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "brainvae_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n_samples": len(metadata),
        "sample_shape": list(first.scan_shape),
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
    for name, content in ((DatasetFolder.DESCRIPTION, description), (DatasetFolder.REPORT, report)):
        (tmp / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


def commit(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the finished build into place (replacing an old dataset only when allowed)."""
    from brainvae.atomic import replace

    if out.exists():
        check_output(out, overwrite)
    replace(tmp, out)


def dataset_disk_full(out: Path, tmp: Path, error: OSError) -> DiskFullError:
    """The DiskFullError for a failed write in the build folder, naming where the file would
    have been in `out` (the build folder is removed); a per-shape row file is images.npy."""
    from brainvae.atomic import disk_full_in

    full = disk_full_in(error, tmp, out)
    if full.path.name.startswith("images.shape"):
        full = DiskFullError(
            full.path.with_name(DatasetFolder.IMAGES),
            needed=full.needed,
            free=full.free,
            code=full.code,
        )
    return full
