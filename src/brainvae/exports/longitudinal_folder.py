"""The folder of a longitudinal (aging and disease) analysis, written at once (brainvae.atomic
through atomic_output_folder, so an interrupted run leaves the old folder or the complete new
one):

- loadings.csv: latent x direction (tau_a, tau_d (<group>) ...), each latent's component;
- pairs.csv: one row per pair of visits: subject, group, the earlier and later scan's row of
  the subjects table (and session, file, age where the table has them), the years between
  them, and the share of the pair's change along tau_a and along its own group's tau_d;
- trajectories.csv: group, age, phi (the aging position), the simulated codes z1..zL;
- trajectory_rois.csv (when the population has an atlas on the scans' grid): per group, age
  and atlas ROI the mean decoded intensity, its change since the first age and its difference
  from the controls at the same age;
- summary.json: the request, the library's description in words, every direction's
  stability with its verdict (stable from brainvae.longitudinal.directions.STABLE), the notes,
  which slice the pictures show, the files, and what the caller adds (run, population, ...);
- trajectory_<group>.nii.gz and change_<group>.nii.gz: the decoded trajectory and its change
  from the first age, one frame per age along the 4th axis, with the population's affine so
  they overlay its scans. A 2D population's frames keep the slice axis the 2D slice dropped
  (length 1), so each file is (X, 1, Z, T)-like on the scans' own grid, not a stack of ages
  along the slice axis (which would put different ages at different places in space);
- strip.png (brainvae.figures.longitudinal_figures: rows = groups, then each disease group
  minus the controls; columns = ages), trajectory.gif (the groups side by side, one frame per
  age, the age in each frame's title) and loadings.png (bars of each latent's loading).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from brainvae.atomic import atomic_file
from brainvae.data.io.output_folder import atomic_output_folder
from brainvae.exports.longitudinal_rois import control_first, roi_table
from brainvae.exports.longitudinal_summary import (
    longitudinal_summary,
    roi_lines,
    stabilities,
    stability_note,
)
from brainvae.exports.population_folder import save_figure, unique_names
from brainvae.exports.tables import write_csv, write_json

if TYPE_CHECKING:
    from brainvae.data.population import Population
    from brainvae.usecases.longitudinal_run import LongitudinalResult

MOVIE_FRAMES_PER_SECOND = 2.0
"""Ages per second in trajectory.gif; the last age is held for LAST_FRAME_HOLD frames' time."""
LAST_FRAME_HOLD = 3
SCAN_COLUMNS = ("session", "filename")
"""Columns of the subjects table copied into pairs.csv (earlier_ and later_) when present."""


def pairs_table(result: LongitudinalResult, table: pd.DataFrame | None) -> pd.DataFrame:
    """One row per pair of visits (see the module's docstring)."""
    analysis = result.analysis
    pairs, directions = analysis.pairs, analysis.directions
    found = pd.DataFrame(
        {
            "subject": pairs.subject,
            "group": pairs.group,
            "earlier_row": pairs.earlier,
            "later_row": pairs.later,
        }
    )
    if table is not None:
        source = table.reset_index(drop=True)
        columns = [*SCAN_COLUMNS, analysis.request.age]
        if analysis.request.order and analysis.request.order not in columns:
            columns.append(analysis.request.order)
        for column in columns:
            if column in source.columns:
                found[f"earlier_{column}"] = source[column].to_numpy()[pairs.earlier]
                found[f"later_{column}"] = source[column].to_numpy()[pairs.later]
    found["years"] = pairs.years
    found["share_a"] = directions.share_a
    share_d = np.full(pairs.n_pairs, np.nan)
    for group, share in directions.share_d.items():
        mine = pairs.group == group
        share_d[mine] = share[mine]
    found["share_d"] = share_d
    return found


def trajectories_table(result: LongitudinalResult) -> pd.DataFrame:
    """group, age, phi (aging position) and the simulated codes, one row per group and age."""
    analysis = result.analysis
    parts = []
    for group, path in analysis.trajectories.items():
        part = pd.DataFrame(
            {"group": group, "age": path.years, "phi": analysis.scale.phi(path.years)}
        )
        codes = pd.DataFrame(path.codes, columns=list(analysis.latent_names))
        parts.append(pd.concat([part, codes], axis=1))
    return pd.concat(parts, ignore_index=True)


def save_movie(frames: np.ndarray, path: Path) -> Path:
    """(T, H, W) uint8 frames as a looping greyscale GIF, the last frame held longer."""
    from PIL import Image

    pictures = [Image.fromarray(np.asarray(f, dtype=np.uint8), mode="L") for f in frames]
    step = int(round(1000 / MOVIE_FRAMES_PER_SECOND))
    durations = [step] * (len(pictures) - 1) + [step * LAST_FRAME_HOLD]
    with atomic_file(path) as temporary:
        pictures[0].save(
            temporary, format="GIF", save_all=True, append_images=pictures[1:],
            duration=durations, loop=0, optimize=False,
        )  # fmt: skip
    return path


def write_trajectory_nifti(
    folder: Path, result: LongitudinalResult, population: Population
) -> list[str]:
    """trajectory_<group>.nii.gz and change_<group>.nii.gz of every group (see the module's
    docstring for the layout); returns their names."""
    from brainvae.data.io.nifti_writing import write_nifti

    groups = list(control_first(result))
    squeezed = tuple(int(a) for a in population.squeezed_axes)
    written = []
    names = zip(
        groups,
        unique_names(groups, "trajectory_", ".nii.gz"),
        unique_names(groups, "change_", ".nii.gz"),
        strict=True,
    )
    first, last = result.years[0], result.years[-1]
    for group, trajectory_name, change_name in names:
        for name, values, what in (
            (trajectory_name, result.frames[group], "trajectory"),
            (change_name, result.change(group), "change from first age"),
        ):
            write_nifti(
                folder / name, np.asarray(values, dtype=np.float32), population.affine,
                squeezed_axes=squeezed, is_4d=True,
                description=f"brainvae {group} {what} {first:g}-{last:g} y"[:79],
            )  # fmt: skip
            written.append(name)
    return written


def write_longitudinal_results(
    out: str | Path,
    result: LongitudinalResult,
    population: Population,
    info: dict,
    overwrite: bool,
) -> Path:
    """Write the tables, NIfTI series, figures, movie and summary.json into `out` at once (a
    temporary folder renamed into place); `info` (run, population, ...) joins summary.json."""
    from brainvae.figures import longitudinal_figures as draw
    from brainvae.longitudinal.directions import STABLE

    analysis = result.analysis
    control = analysis.request.control
    frames = control_first(result)
    note = stability_note(result)
    with atomic_output_folder(out, overwrite) as folder:
        tables = []
        write_csv(folder / "loadings.csv", analysis.loadings())
        write_csv(folder / "pairs.csv", pairs_table(result, population.table), index=False)
        write_csv(folder / "trajectories.csv", trajectories_table(result), index=False)
        tables += ["loadings.csv", "pairs.csv", "trajectories.csv"]
        rois = roi_table(result, population)
        if rois is not None:
            write_csv(folder / "trajectory_rois.csv", rois, index=False)
            tables.append("trajectory_rois.csv")
        images = write_trajectory_nifti(folder, result, population)
        view = draw.strip_view(frames, control, population.affine, population.squeezed_axes)
        pictures = {group: view.picture(stack) for group, stack in frames.items()}
        strip = draw.trajectory_strip_figure(pictures, result.years, control, view, note)
        save_figure(folder / "strip.png", strip)
        bars = draw.loadings_figure(analysis.loadings(), stabilities(result), STABLE)
        save_figure(folder / "loadings.png", bars)
        save_movie(draw.movie_frames(pictures, result.years, view, note), folder / "trajectory.gif")
        summary = longitudinal_summary(result, view, info)
        summary["tables"] = tables
        summary["images"] = images
        summary["figures"] = ["strip.png", "loadings.png", "trajectory.gif"]
        if rois is None:
            summary["notes"].append(
                "no trajectory_rois.csv: the population has no atlas on the scans' grid"
            )
        else:
            summary["rois"] = roi_lines(rois, control)
        write_json(folder / "summary.json", summary)
    return Path(out)
