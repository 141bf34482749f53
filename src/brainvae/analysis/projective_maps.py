"""What a projective field's variance maps become besides colours: an ROI enrichment
matrix, its agreement with the receptive field, and the far sides' asymmetry.

Agreement compares like with like: the projective enrichment is per voxel (share of variance
over share of voxels), so the receptive impact is divided by each ROI's voxel count before the
two ROI profiles are rank-correlated; raw impact grows with ROI size (a big cortex moves any
latent more than small ventricles) and would anti-correlate a model whose encoder and decoder
share one pattern. Inactive latents are not findings: they are reported as inactive, never as
disagreeing.
Arrays in, arrays or a small dataclass out: no file I/O, no Qt (STYLE.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from brainvae.errors import ProjectiveFieldError

if TYPE_CHECKING:
    import pandas as pd

ACTIVE_ROW = "active"
"""The last row of projective.csv: 1 for an active latent, 0 for an inactive one."""


def mean_image(images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The population's mean image (float64), read batch by batch so a memory map stays
    mostly unread: the default brain mask and the dimmed brain under the colour maps."""
    images = np.asarray(images) if not hasattr(images, "shape") else images
    total = np.zeros(images.shape[1:], dtype=np.float64)
    for start in range(0, len(images), batch_size):
        total += np.asarray(images[start : start + batch_size], dtype=np.float64).sum(axis=0)
    return total / max(len(images), 1)


def brain_mask_from_images(mean_image: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Voxels of the mean image above `fraction` of its maximum: the default brain mask."""
    mean_image = np.asarray(mean_image, dtype=np.float64)
    if not 0.0 <= fraction < 1.0:
        raise ProjectiveFieldError(f"the brain-mask fraction must be in [0, 1), got {fraction}")
    peak = float(np.max(mean_image)) if mean_image.size else 0.0
    if not np.isfinite(peak) or peak <= 0:
        raise ProjectiveFieldError("the mean image has no positive voxel: give a brain mask")
    return mean_image > fraction * peak


def projective_matrix(
    total_variance: np.ndarray, masks: np.ndarray, brain_mask: np.ndarray
) -> np.ndarray:
    """(R, K) enrichment P[r, k] = (share of latent k's in-brain variance inside ROI r) /
    (share of the brain's voxels inside ROI r); 1 means no preference, > 1 concentrated there.

    Only voxels of the brain mask count. A latent whose variance is zero in the brain gets a
    column of 0 (it moves nothing); an ROI without brain voxels gets a row of NaN.
    """
    total_variance = np.asarray(total_variance, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    brain = np.asarray(brain_mask, dtype=bool)
    spatial = total_variance.shape[1:]
    if masks.ndim != len(spatial) + 1 or masks.shape[1:] != spatial or brain.shape != spatial:
        raise ProjectiveFieldError(
            f"ROI masks {masks.shape} and brain mask {brain.shape} must be on the maps' grid "
            f"{spatial}"
        )
    if not brain.any():
        raise ProjectiveFieldError("the brain mask is empty")
    inside = masks & brain[None]
    variance = total_variance.reshape(len(total_variance), -1) * brain.reshape(1, -1)
    mass = inside.reshape(len(masks), -1).astype(np.float64) @ variance.T  # (R, K)
    latent_mass = variance.sum(axis=1)  # (K,)
    voxel_share = inside.reshape(len(masks), -1).sum(axis=1) / brain.sum()  # (R,)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(latent_mass > 0, mass / np.where(latent_mass > 0, latent_mass, 1), 0.0)
        matrix = share / voxel_share[:, None]
    matrix[voxel_share == 0] = np.nan
    return matrix


@dataclass(frozen=True)
class FieldAgreement:
    """Per latent: Spearman rho over ROIs between the projective enrichment and the receptive
    impact per ROI voxel; inactive: latents whose fields mean little (not compared as findings);
    disagree = active and (rho < threshold or undefined, a constant profile)."""

    rho: np.ndarray
    disagree: np.ndarray
    threshold: float
    impact_per_voxel: np.ndarray
    inactive: np.ndarray


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import rankdata

    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3:
        return float("nan")
    ra, rb = rankdata(a[keep]), rankdata(b[keep])
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def field_agreement(
    projective: np.ndarray,
    impact: np.ndarray,
    roi_sizes: np.ndarray | Sequence[int],
    threshold: float = 0.5,
    active: np.ndarray | Sequence[bool] | None = None,
) -> FieldAgreement:
    """Spearman rank correlation, per latent, of the enrichment P[:, k] and the receptive
    impact per ROI voxel I[:, k] / roi_sizes (both (R, K), same ROIs and latents; roi_sizes:
    (R,) voxels per ROI, the masks the impact was measured on); needs R >= 3 ROIs. active (K,):
    inactive latents get their rho but are never flagged as disagreeing."""
    projective, impact = np.asarray(projective, float), np.asarray(impact, float)
    if projective.shape != impact.shape or projective.ndim != 2:
        raise ProjectiveFieldError(
            f"projective {projective.shape} and receptive {impact.shape} matrices must both be "
            "(ROIs, latents) over the same ROIs and latents"
        )
    if projective.shape[0] < 3:
        raise ProjectiveFieldError(
            f"{projective.shape[0]} ROI(s): a rank correlation over ROIs needs at least 3"
        )
    sizes = np.asarray(roi_sizes, dtype=np.float64).reshape(-1)
    if sizes.shape != (projective.shape[0],) or not np.all(sizes > 0):
        raise ProjectiveFieldError(
            f"roi_sizes must hold {projective.shape[0]} positive voxel counts (one per ROI), "
            f"got {sizes.tolist()}"
        )
    inactive = np.zeros(impact.shape[1], dtype=bool)
    if active is not None:
        inactive = ~np.asarray(active, dtype=bool).reshape(-1)
        if inactive.shape != (impact.shape[1],):
            raise ProjectiveFieldError(f"active must hold one flag per latent ({impact.shape[1]})")
    per_voxel = impact / sizes[:, None]
    rho = np.array([_spearman(projective[:, k], per_voxel[:, k]) for k in range(impact.shape[1])])
    disagree = ~(rho >= threshold) & ~inactive
    return FieldAgreement(
        rho=rho,
        disagree=disagree,
        threshold=float(threshold),
        impact_per_voxel=per_voxel,
        inactive=inactive,
    )


def band_asymmetry(
    normalised_bands: np.ndarray, brain_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per latent, how much more the decodes change far on the negative side than far on the
    positive side: (ratio (K,), excess_map (K, *spatial)). ratio = in-brain sum of the
    large-negative band per unit var(c) over that of the large-positive band (1: symmetric; inf
    when only the negative side moves, NaN when neither does); excess_map = max(large_negative -
    large_positive, 0) per unit var(c), where the far-negative surplus sits."""
    bands = np.asarray(normalised_bands, dtype=np.float64)
    brain = np.asarray(brain_mask, dtype=bool)
    if bands.ndim < 3 or bands.shape[1] != 4 or bands.shape[2:] != brain.shape:
        raise ProjectiveFieldError(
            f"normalised bands {bands.shape} must be (K, 4, *spatial) on the brain mask's grid "
            f"{brain.shape}"
        )
    negative, positive = bands[:, 2], bands[:, 3]
    inside = brain[None]
    far_negative = np.where(inside, negative, 0).reshape(len(bands), -1).sum(axis=1)
    far_positive = np.where(inside, positive, 0).reshape(len(bands), -1).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(
            far_positive > 0, far_negative / np.where(far_positive > 0, far_positive, 1), np.nan
        )
    ratio = np.where((far_positive == 0) & (far_negative > 0), np.inf, ratio)
    return ratio, np.clip(negative - positive, 0.0, None)


def projective_table(
    matrix: np.ndarray,
    roi_names: Sequence[str],
    latent_names: Sequence[str],
    active: np.ndarray | Sequence[bool] | None = None,
) -> pd.DataFrame:
    """The enrichment matrix as a table: ROI rows (index "roi"), latent columns; with active
    (K,), a last row ACTIVE_ROW (1 active, 0 inactive: its enrichment means little)."""
    import pandas as pd

    table = pd.DataFrame(np.asarray(matrix), index=list(roi_names), columns=list(latent_names))
    if active is not None:
        flags = np.asarray(active, dtype=bool).reshape(1, -1).astype(np.float64)
        table = pd.concat([table, pd.DataFrame(flags, index=[ACTIVE_ROW], columns=table.columns)])
    table.index.name = "roi"
    return table


def split_projective_table(table: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | None]:
    """(enrichment ROI x latent, active (K,) bool or None) from a read-back projective.csv."""
    if ACTIVE_ROW not in table.index:
        return table, None
    active = table.loc[ACTIVE_ROW].to_numpy(dtype=np.float64) > 0.5
    return table.drop(index=ACTIVE_ROW), active
