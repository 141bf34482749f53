"""Mean decoded intensity per atlas ROI along each group's simulated trajectory: what a
reader checks first (does the control's ventricle ROI darken with age; is a disease group
brighter in the lesion zone than the controls at the same age)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from brainvae.data.population import Population
    from brainvae.usecases.longitudinal_run import LongitudinalResult


def control_first(result: LongitudinalResult) -> dict[str, np.ndarray]:
    """The frames by group, the controls first."""
    control = result.analysis.request.control
    frames = {control: result.frames[control]}
    frames.update({g: f for g, f in result.frames.items() if g != control})
    return frames


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
    frames = control_first(result)
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
