"""The folder of a denoising comparison, written at once (an interrupted run leaves the old
folder or the complete new one; brainvae.data.io.output_folder.atomic_output_folder):

- denoising.csv: one row per scan x artefact x model: who the scan is (scan = its position in
  the split, row = its dataset row, subject_id, ...), then cw_ssim, ssim and mse of the
  reconstruction against the clean scan inside the brain mask, artefact_mse and
  artefact_reproduced over the voxels the artefact changed, and how many changed
  (brainvae.evaluation.denoising says how each is computed). Artefact "none": each model's
  reconstruction of the clean scan, the baseline;
- inputs.csv: the corrupted inputs scored the same way (one row per scan x artefact);
- summary.csv: per artefact x model, the mean of each score over the scans;
- montage.png and montage.pdf (brainvae.figures.denoising_figure): rows = artefacts, columns =
  clean scan, corrupted input, each model's reconstruction, the mean scores under it;
- NIfTI of the montage scan, on the dataset's grid with that scan's affine: clean.nii.gz,
  <artefact>_corrupted.nii.gz, <artefact>_changed.nii.gz (1 where the artefact changed the
  scan) and <artefact>_<model>.nii.gz (each reconstruction of the corrupted scan);
- summary.json: the request, the runs (folders and what they are), the dataset, the mask,
  which model reproduces each artefact least, the mean scores, the definitions, the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.atomic import atomic_file
from brainvae.evaluation.artefacts import BRAIN_LEVEL, CHANGE_TOLERANCE
from brainvae.exports.population_folder import unique_names
from brainvae.exports.tables import write_csv, write_json

if TYPE_CHECKING:
    from brainvae.usecases.denoise_run import DenoiseRun

MONTAGE_DPI = 300
DEFINITIONS = {
    "cw_ssim, ssim, mse": "the reconstruction of the corrupted scan against the CLEAN scan, "
    "inside the brain mask",
    "artefact_mse": "mean (reconstruction - clean)^2 over the voxels the artefact changed",
    "artefact_reproduced": "sum (r - r0)(corrupted - clean) / sum (corrupted - clean)^2 over the "
    "changed voxels, r = reconstruction of the corrupted scan, r0 = of the clean scan: the share "
    "of the artefact passed into the output (0 removed, 1 copied)",
    "changed": f"voxels the artefact moved by more than {CHANGE_TOLERANCE:.0%} of the scan's "
    "intensity scale",
    "none": "rows scoring each model's reconstruction of the clean scan (the baseline)",
}


def _plain(value: Any) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return number if np.isfinite(number) else None


def montage_title(run: DenoiseRun) -> str:
    """The figure's title: which scans, which scan is shown, the severity."""
    identity = run.identity.iloc[run.request.montage_scan]
    who = f"subject {identity['subject_id']}" if "subject_id" in identity else ""
    return (
        f"Denoising: {run.comparison.n_scans} {run.request.split} scans, severity "
        f"{run.request.severity:g}; shown: scan {run.request.montage_scan} of the split "
        f"(dataset row {int(identity['row'])}{', ' + who if who else ''})"
    )


def montage_figure(run: DenoiseRun, pictures: dict, changed: dict) -> Any:
    """The montage of the run's montage scan (pictures and changed from comparison.pictures)."""
    from brainvae.figures.denoising_figure import denoising_figure, figure_note

    comparison = run.comparison
    dataset = run.dataset
    return denoising_figure(
        pictures,
        changed,
        comparison.columns,
        comparison.summary(),
        comparison.input_summary(),
        affine=dataset.sample_affine(run.montage_row()),
        squeezed_axes=tuple(int(a) for a in dataset.squeezed_axes),
        descriptions={name: loaded.description() for name, loaded in run.runs.items()},
        title=montage_title(run),
        note=figure_note(comparison.severity, comparison.mask_note, comparison.seed),
        brain=comparison.brain_mask,
    )


def write_montage_nifti(folder: Path, run: DenoiseRun, pictures: dict, changed: dict) -> list:
    """The montage scan's clean, corrupted, changed and reconstructed images as NIfTI."""
    from brainvae.data.io.nifti_writing import write_nifti

    dataset = run.dataset
    affine = dataset.sample_affine(run.montage_row())
    squeezed = tuple(int(a) for a in dataset.squeezed_axes)
    columns = run.comparison.columns

    def write(name: str, values: np.ndarray, what: str) -> str:
        write_nifti(folder / name, np.asarray(values), affine, squeezed_axes=squeezed,
                    description=f"brainvae denoise {what}"[:79])  # fmt: skip
        return name

    first = next(iter(pictures.values()))
    written = [write("clean.nii.gz", first[0].astype(np.float32), "clean scan")]
    for artefact, stack in pictures.items():
        written.append(write(f"{artefact}_corrupted.nii.gz", stack[1], f"{artefact} input"))
        written.append(write(f"{artefact}_changed.nii.gz", changed[artefact].astype(np.uint8),
                             f"{artefact} changed voxels"))  # fmt: skip
        names = unique_names(list(columns[2:]), f"{artefact}_", ".nii.gz")
        for column, (model, name) in enumerate(zip(columns[2:], names, strict=True), start=2):
            written.append(write(name, stack[column], f"{artefact} {model}"))
    return written


def montage_views(run: DenoiseRun, changed: dict) -> dict[str, str]:
    """{artefact: which picture of the montage scan its row shows} (a volume: which slice)."""
    from brainvae.figures.denoising_figure import row_view

    dataset = run.dataset
    affine = dataset.sample_affine(run.montage_row())
    squeezed = tuple(int(a) for a in dataset.squeezed_axes)
    brain = run.comparison.brain_mask
    return {a: row_view(c, affine, squeezed, brain).words for a, c in changed.items()}


def denoise_summary(run: DenoiseRun, info: dict) -> dict[str, Any]:
    """summary.json's content (see the module's docstring)."""
    comparison = run.comparison
    request = run.request
    summary = comparison.summary()
    means = {}
    for artefact, rows in summary.groupby("artefact", sort=False):
        means[artefact] = {
            str(row["model"]): {k: _plain(row[k]) for k in summary.columns[2:]}
            for _, row in rows.iterrows()
        }
    inputs = {
        str(row["artefact"]): {k: _plain(v) for k, v in row.items() if k != "artefact"}
        for _, row in comparison.input_summary().iterrows()
    }
    identity = run.identity.iloc[request.montage_scan]
    return {
        **info,
        "split": request.split,
        "n_scans": comparison.n_scans,
        "artefacts": list(request.artefacts),
        "severity": request.severity,
        "seed": request.seed,
        "runs": {
            name: {"path": str(loaded.path), "is": loaded.description()}
            for name, loaded in run.runs.items()
        },
        "brain_mask": comparison.mask_note,
        "brain_mask_voxels": int(np.count_nonzero(comparison.brain_mask)),
        "artefacts_placed": f"on each scan's own brain (voxels above {BRAIN_LEVEL:g} of its "
        "intensity scale)"
        if comparison.placement_mask is None
        else "inside the given brain mask",
        "montage_scan": {
            "position_in_split": request.montage_scan,
            "dataset_row": int(identity["row"]),
            **({"subject_id": str(identity["subject_id"])} if "subject_id" in identity else {}),
        },
        "reproduces_least": comparison.least_reproduced(),
        "mean_scores": means,
        "corrupted_inputs": inputs,
        "definitions": DEFINITIONS,
    }


def save_figure_as(path: Path, figure: Any, dpi: int = MONTAGE_DPI) -> Path:
    """A figure as PNG or PDF (by the suffix), written whole or not at all."""
    with atomic_file(path) as temporary:
        figure.savefig(temporary, dpi=dpi, format=path.suffix[1:], facecolor="white")
    return path


def write_denoise_folder(
    out: str | Path, run: DenoiseRun, info: dict, overwrite: bool = False
) -> Path:
    """Write the tables, montage, NIfTI and summary.json into `out` at once; `info` (the
    command line's paths, ...) joins summary.json."""
    from brainvae.data.io.output_folder import atomic_output_folder

    comparison = run.comparison
    pictures, changed = comparison.pictures(run.request.montage_scan)
    figure = montage_figure(run, pictures, changed)
    with atomic_output_folder(out, overwrite) as folder:
        write_csv(folder / "denoising.csv", run.table(), index=False)
        write_csv(folder / "inputs.csv", run.inputs(), index=False)
        write_csv(folder / "summary.csv", comparison.summary(), index=False)
        save_figure_as(folder / "montage.png", figure)
        save_figure_as(folder / "montage.pdf", figure)
        images = write_montage_nifti(folder, run, pictures, changed)
        summary = denoise_summary(run, info)
        summary["montage_views"] = montage_views(run, changed)
        summary["tables"] = ["denoising.csv", "inputs.csv", "summary.csv"]
        summary["figures"] = ["montage.png", "montage.pdf"]
        summary["images"] = images
        write_json(folder / "summary.json", summary)
    return Path(out)
