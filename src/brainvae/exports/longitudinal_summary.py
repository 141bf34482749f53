"""A longitudinal analysis in words and numbers: each direction's stability with its verdict,
the ROI lines, the lines `brainvae longitudinal` prints, and the summary.json record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from brainvae.exports.longitudinal_rois import roi_table

if TYPE_CHECKING:
    from brainvae.data.population import Population
    from brainvae.figures.longitudinal_figures import StripView
    from brainvae.usecases.longitudinal_run import LongitudinalResult


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
    if result.trained:
        lines.append(
            "The model's own directions (learned in training) against these: cosine "
            + ", ".join(f"{name} {value:.2f}" for name, value in result.trained.items())
        )
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
        "trained_directions_cosine": result.trained,
    }
    summary.update(extra or {})
    return summary
