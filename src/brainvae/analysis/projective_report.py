"""What a projective-field run reports: summary.json's content, which swept latents are active
and the far sides' asymmetry.

Shared by `brainvae projective` and the Projective fields dock so both write the same folder
(brainvae.exports.projective_folder writes it; FILE_UNITS says what each file holds and in which
units): NIfTI maps on the dataset's grid, montage.png (the publication figure
of brainvae.figures.projective_figure: every swept latent over the dimmed population mean, 3D
data as axial, coronal and sagittal slices through each latent's largest variance, sides and
slice positions marked, inactive latents titled and framed in grey, the colour key below; 180 mm
wide at 300 dpi), projective.csv (ROI x latent enrichment with a last "active" row, when ROIs
were given) and summary.json. Inactive latents are marked everywhere:
their fields mean little (the decoder cannot use a latent whose code never varies), so their
most enriched ROI is not reported as a finding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

FILE_UNITS = {
    "zK_small_negative.nii.gz, zK_small_positive.nii.gz, zK_large_negative.nii.gz, "
    "zK_large_positive.nii.gz": "per-voxel variance of the decodes in that band of c "
    "(image intensity squared); grows with the band's spread of c",
    "zK_large.nii.gz": "the same for the pooled large band (|c| > split, both signs): what "
    "yellow shows (intensity squared; its c spread is far wider than a small band's)",
    "zK_bands_per_var_c.nii.gz": "4 volumes (small_negative, small_positive, large_negative, "
    "large_positive): each band's variance divided by the variance of its c values (intensity "
    "squared per squared unit of c): comparable between bands, equal for a linear decoder",
    "zK_colour.nii.gz": "RGB colour composite in [0, 1] on a last axis of 3 (see colour)",
}
ACTIVITY_NOTE = (
    "an inactive latent's code hardly varies over the population, so the decoder cannot use "
    "it to tell scans apart: its projective field (what the decoder does when the code is "
    "pushed where no scan puts it) means little, and its most enriched ROI is not a finding"
)


def swept_active(result: Any, activity: Any) -> np.ndarray:
    """(K,) whether each swept latent is active (all True without an activity)."""
    if activity is None:
        return np.ones(result.n_latents, dtype=bool)
    return np.asarray(activity.active, dtype=bool)[np.asarray(result.latents)]


def asymmetry_summary(
    result: Any, brain: np.ndarray | None, masks: np.ndarray | None, roi_names: Sequence[str]
) -> dict[str, Any]:
    """Per latent: the far sides compared per unit var(c) inside the brain (large negative
    over large positive) and, with ROIs, the ROI where the far-negative surplus is most
    enriched. Empty without a brain mask."""
    from brainvae.analysis.projective_maps import band_asymmetry, projective_matrix
    from brainvae.analysis.projective_sweep import BAND_NAMES

    if brain is None:
        return {}
    normalised = result.normalised_band_variance
    ratio, excess = band_asymmetry(normalised, brain)
    where = projective_matrix(excess, masks, brain) if masks is not None else None
    info = {}
    for k, name in enumerate(result.latent_names):
        entry: dict[str, Any] = {
            "large_negative_over_positive": None if np.isnan(ratio[k]) else float(ratio[k]),
            "brain_mean_per_var_c": {
                band: float(normalised[k, b][brain].mean()) for b, band in enumerate(BAND_NAMES)
            },
        }
        if where is not None and np.isfinite(where[:, k]).any() and where[:, k].max() > 0:
            entry["negative_surplus_most_enriched_roi"] = roi_names[int(np.nanargmax(where[:, k]))]
        info[name] = entry
    return info


def projective_summary(
    result: Any,
    limits: np.ndarray,
    scheme: str,
    matrix: np.ndarray | None = None,
    roi_names: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
    *,
    limits_mode: str = "per-latent",
    activity: Any = None,
    asymmetry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What summary.json holds: the sweep and its bands, activity, the colour rule and each
    active latent's top ROI."""
    from brainvae.analysis.projective_colour import colour_legend
    from brainvae.analysis.projective_sweep import BAND_NAMES, COLOUR_BANDS

    settings = result.settings
    active = swept_active(result, activity)
    names = result.latent_names
    ranges = settings.band_ranges()
    c_variance = settings.band_c_variance()
    info: dict[str, Any] = {
        "latents": list(names),
        "base": result.base_label,
        "base_code": [float(v) for v in result.base],
        "range": [float(settings.low), float(settings.high)],
        "step": float(settings.step),
        "split": float(settings.split),
        "units": settings.units,
        "scale": {name: float(s) for name, s in zip(names, result.scale, strict=True)},
        "swept_in_prior_units": list(result.fallback_names),
        "swept_in_prior_units_why": (
            "units 'sd' sweep c in each latent's population sd; these latents' population sd "
            "is ~0 (below 1e-3), so they were swept in prior units (scale 1) instead"
        ),
        "decodes_per_latent": int(settings.values().size),
        "band_counts": {
            band: int(n) for band, n in zip(BAND_NAMES, result.band_counts, strict=True)
        },
        "bands": {
            band: {
                "c_from": ranges[band][0],
                "c_to": ranges[band][1],
                "c_variance": float(c_variance[b]),
            }
            for b, band in enumerate(BAND_NAMES)
        },  # fmt: skip
        "files": dict(FILE_UNITS),
        "activity": None if activity is None else activity.to_json(),
        "inactive_swept": [n for n, a in zip(names, active, strict=True) if not a],
        "colour": {
            "scheme": scheme,
            "bands": list(COLOUR_BANDS),
            "limits_mode": limits_mode,
            "legend": [text for _, text in colour_legend(scheme, limits_mode)],
            "limits": {
                name: {band: float(v) for band, v in zip(COLOUR_BANDS, row, strict=True)}
                for name, row in zip(names, np.asarray(limits), strict=True)
            },
        },
    }
    if not active.all():
        info["inactive_note"] = ACTIVITY_NOTE
    if asymmetry:
        info["far_side_asymmetry"] = asymmetry
    if matrix is not None:
        info["most_enriched_roi"] = {
            name: (
                roi_names[int(np.nanargmax(matrix[:, k]))]
                if active[k] and np.isfinite(matrix[:, k]).any()
                else None
            )
            for k, name in enumerate(names)
        }
        if not active.all():
            info["most_enriched_roi_note"] = "null for inactive latents: " + ACTIVITY_NOTE
    info.update(extra or {})
    return info
