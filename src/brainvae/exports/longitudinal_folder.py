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

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from brainvae.atomic import atomic_file
from brainvae.data.io.output_folder import atomic_output_folder
from brainvae.exports.population_folder import save_figure, unique_names
from brainvae.exports.tables import write_csv, write_json

if TYPE_CHECKING:
    from brainvae.data.population import Population
    from brainvae.figures.longitudinal_figures import StripView
    from brainvae.usecases.longitudinal_run import LongitudinalResult

MOVIE_FRAMES_PER_SECOND = 2.0
"""Ages per second in trajectory.gif; the last age is held for LAST_FRAME_HOLD frames' time."""
LAST_FRAME_HOLD = 3
SCAN_COLUMNS = ("session", "filename")
"""Columns of the subjects table copied into pairs.csv (earlier_ and later_) when present."""


def stability_verdict(value: float, stable: float | None = None) -> str:
    """A direction's split-half stability in words."""
    from brainvae.longitudinal.directions import STABLE

    stable = STABLE if stable is None else stable
    if value is None or not np.isfinite(value):
        return "stability not measured (no halvings asked for, or fewer than 2 subjects with pairs)"
    if value >= stable:
        return f"stable (stability {value:.2f} >= {stable:.2f})"
    return (
        f"NOT stable (stability {value:.2f} < {stable:.2f}: two halves of the subjects give "
        "different directions, so read its trajectories as illustrations, not findings)"
    )


def stabilities(result: LongitudinalResult) -> dict[str, float]:
    """Each direction's stability by its loadings.csv column name."""
    directions = result.analysis.directions
    found = {"tau_a": float(directions.stability_a)}
    for group in directions.tau_d:
        found[f"tau_d ({group})"] = float(directions.stability_d.get(group, float("nan")))
    return found


def _control_first(result: LongitudinalResult) -> dict[str, np.ndarray]:
    """The frames by group, the controls first."""
    control = result.analysis.request.control
    frames = {control: result.frames[control]}
    frames.update({g: f for g, f in result.frames.items() if g != control})
    return frames


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


def atlas_on_grid(population: Population, shape: tuple[int, ...]) -> np.ndarray | None:
    """The population's atlas when it is on the decoded images' grid, else None."""
    atlas = population.atlas
    if atlas is None or tuple(np.shape(atlas)) != tuple(shape):
        return None
    return np.asarray(atlas)


def roi_table(result: LongitudinalResult, population: Population) -> pd.DataFrame | None:
    """Per group, age and atlas ROI: voxels, mean decoded intensity, its change since the
    first age, and minus the controls at the same age (empty for the controls); None without
    an atlas on the scans' grid."""
    frames = _control_first(result)
    control = result.analysis.request.control
    atlas = atlas_on_grid(population, np.shape(frames[control])[1:])
    if atlas is None:
        return None
    labels = np.asarray(atlas).astype(np.int64).ravel()
    present = [int(v) for v in np.unique(labels) if v > 0]
    if not present:
        return None
    counts = np.bincount(labels.clip(min=0), minlength=max(present) + 1)
    means = {}
    for group, stack in frames.items():
        flat = np.asarray(stack, dtype=np.float64).reshape(len(stack), -1)
        sums = np.stack([np.bincount(labels.clip(min=0), weights=f, minlength=len(counts))
                         for f in flat])  # fmt: skip
        means[group] = sums[:, present] / counts[present]
    years = result.years
    rows = []
    for group, values in means.items():
        for t, age in enumerate(years):
            for k, label in enumerate(present):
                rows.append(
                    {
                        "group": group,
                        "age": float(age),
                        "roi": population.atlas_names.get(label, f"label {label}"),
                        "label": label,
                        "n_voxels": int(counts[label]),
                        "mean_intensity": values[t, k],
                        "change_since_first_age": values[t, k] - values[0, k],
                        "minus_control": (
                            np.nan if group == control else values[t, k] - means[control][t, k]
                        ),
                    }
                )
    return pd.DataFrame(rows)


def roi_lines(rois: pd.DataFrame, control: str) -> list[str]:
    """In words: the ROI whose control trajectory changes most from the first age to the
    last (with every age's value), and for each disease group the ROI it differs most from the
    controls in (with the range over the ages)."""
    lines = []
    first, last = rois["age"].min(), rois["age"].max()
    mine = rois[rois["group"] == control]
    names = dict(zip(rois["label"], rois["roi"], strict=True))
    ends = mine[mine["age"] == last].set_index("label")["change_since_first_age"]
    if len(ends):
        label = ends.abs().idxmax()
        roi = names[label]
        values = mine[mine["label"] == label].sort_values("age")["mean_intensity"].to_numpy()
        steps = np.diff(values)
        trend = (
            "falls at every step" if np.all(steps < 0)
            else "rises at every step" if np.all(steps > 0) else "not monotonic"
        )  # fmt: skip
        lines.append(
            f"{control} trajectory, largest change in ROI {roi}: mean decoded intensity "
            f"{values[0]:.3f} at {first:g} y -> {values[-1]:.3f} at {last:g} y ({trend}: "
            f"{', '.join(f'{v:.3f}' for v in values)})"
        )
    for group in [g for g in rois["group"].unique() if g != control]:
        theirs = rois[rois["group"] == group]
        gap = theirs.groupby("label")["minus_control"].mean()
        label = gap.abs().idxmax()
        roi = names[label]
        part = theirs[theirs["label"] == label].sort_values("age")
        them = part["mean_intensity"].to_numpy()
        us = them - part["minus_control"].to_numpy()
        if np.all(them > us) or np.all(them < us):
            side = f"{'brighter' if np.all(them > us) else 'darker'} at every age"
        else:
            side = "brighter at some ages, darker at others"
        lines.append(
            f"{group} vs {control}, largest difference in ROI {roi}: mean decoded intensity "
            f"{them.min():.3f}-{them.max():.3f} vs {us.min():.3f}-{us.max():.3f} ({side})"
        )
    return lines


def stability_line(result: LongitudinalResult) -> str:
    """Every direction's stability and verdict on one line, with what an unstable one means."""
    from brainvae.longitudinal.directions import STABLE

    values = stabilities(result).items()
    words = [
        f"{name} {value:.2f} {'stable' if value >= STABLE else 'NOT stable'}"
        if np.isfinite(value)
        else f"{name} not measured"
        for name, value in values
    ]
    line = f"Split-half stability (stable from {STABLE:.2f}): {'; '.join(words)}"
    if any(np.isfinite(v) and v < STABLE for _, v in values):
        line += (
            ". An unstable direction changes with which subjects it is learned from: read its "
            "trajectories as illustrations, not findings"
        )
    return line


def stability_note(result: LongitudinalResult) -> str:
    """One line for the pictures: whether every direction is stable, else which are not."""
    from brainvae.longitudinal.directions import STABLE

    values = stabilities(result).items()
    unstable = [f"{name} {v:.2f}" for name, v in values if np.isfinite(v) and v < STABLE]
    unmeasured = [name for name, v in values if not np.isfinite(v)]
    parts = []
    if unstable:
        parts.append(
            f"Directions NOT stable (split-half stability < {STABLE:.2f}: "
            f"{', '.join(unstable)}): illustrations, not findings"
        )
    if unmeasured:
        parts.append(f"stability not measured: {', '.join(unmeasured)}")
    return "; ".join(parts)


def summary_lines(result: LongitudinalResult, population: Population | None = None) -> list[str]:
    """What a person reads after a run, in plain words: the library's description, each
    direction's verdict, the ages simulated, and (with a population that has an atlas) the
    ROI that changes most with age and the one each disease group differs most in."""
    analysis = result.analysis
    lines = list(analysis.describe())
    lines.append(stability_line(result))
    years = result.years
    lines.append(
        f"Trajectories of {', '.join(analysis.trajectories)} from {years[0]:g} to "
        f"{years[-1]:g} years in {len(years)} frames"
    )
    if population is not None:
        rois = roi_table(result, population)
        if rois is not None:
            lines.extend(roi_lines(rois, analysis.request.control))
    return lines


def longitudinal_summary(
    result: LongitudinalResult, view: StripView, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What summary.json holds (see the module's docstring)."""
    from brainvae.longitudinal.directions import STABLE

    analysis = result.analysis
    directions = analysis.directions

    def number(value: Any) -> float | None:
        value = float(value)
        return value if np.isfinite(value) else None

    summary: dict[str, Any] = {
        "request": analysis.request.to_json(),
        "description": list(analysis.describe()),
        "stable_threshold": STABLE,
        "directions": {
            name: {
                "stability": number(value),
                "stable": bool(np.isfinite(value) and value >= STABLE),
                "verdict": stability_verdict(value),
            }
            for name, value in stabilities(result).items()
        },
        "objective_a": number(directions.objective_a),
        "objective_d": {g: number(v) for g, v in directions.objective_d.items()},
        "angle_to_tau_a_degrees": {
            g: number(directions.angle_degrees(g)) for g in directions.tau_d
        },
        "n_pairs": {g: int(n) for g, n in directions.n_pairs.items()},
        "n_single_visit": int(analysis.pairs.n_single_visit),
        "n_missing_age": int(analysis.pairs.n_missing_age),
        "age_scale": {
            "intercept": number(analysis.scale.intercept),
            "slope_per_year": number(analysis.scale.slope),
            "r": number(analysis.scale.r),
        },
        "years": [float(y) for y in result.years],
        "groups": list(analysis.trajectories),
        "latents": list(analysis.latent_names),
        "pictures": {
            "view": view.view,
            "slice": view.index,
            "position": view.position,
            "why": view.reason,
        },  # fmt: skip
        "notes": list(analysis.notes),
    }
    summary.update(extra or {})
    return summary


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

    groups = list(_control_first(result))
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
    frames = _control_first(result)
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
