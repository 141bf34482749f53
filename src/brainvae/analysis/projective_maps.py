"""What a projective field's variance maps become: a colour composite, an ROI enrichment
matrix, and its agreement with the receptive field.

Colour rule: each band's variance is divided by ONE limit per band, shared by every latent (by
default the 99.5th percentile of that band over all latents and the voxels where it is > 0;
1 when the band is zero everywhere) and clipped to [0, 1], so colours compare across latents.
Scheme "paper": cyan (0, 1, 1) = small negative, magenta (1, 0, 1) = small positive, yellow
(1, 1, 0) = large, summed and clipped to 1 (all three equal -> white). Scheme "rgb": R = small
negative, G = small positive, B = large.
Arrays in, arrays or a small dataclass out: no file I/O, no Qt (STYLE.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

COLOUR_SCHEMES: dict[str, np.ndarray] = {
    "paper": np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]),
    "rgb": np.eye(3),
}
"""Per scheme, the RGB colour of each band (rows in BAND_NAMES order)."""
LIMIT_PERCENTILE = 99.5


def _error(message: str) -> Exception:
    from brainvae.analysis.projective_field import ProjectiveFieldError

    return ProjectiveFieldError(message)


def band_limits(band_variance: np.ndarray) -> np.ndarray:
    """(3,) per band: the 99.5th percentile over all latents and voxels where the band is > 0
    (1 where the band is zero everywhere)."""
    band_variance = np.asarray(band_variance)
    limits = np.ones(3)
    for band in range(3):
        values = band_variance[:, band]
        positive = values[values > 0]
        if positive.size:
            limit = float(np.percentile(positive, LIMIT_PERCENTILE))
            limits[band] = limit if limit > 0 else 1.0
    return limits


def colour_composite(
    band_variance: np.ndarray, scheme: str = "paper", limits: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """((K, *spatial, 3) float32 RGB in [0, 1], (3,) limits used): see the module docstring."""
    if scheme not in COLOUR_SCHEMES:
        raise _error(
            f"unknown colour scheme {scheme!r}; expected one of {', '.join(COLOUR_SCHEMES)}"
        )
    band_variance = np.asarray(band_variance, dtype=np.float64)
    if band_variance.ndim < 3 or band_variance.shape[1] != 3:
        raise _error(f"band variance must be (K, 3, *spatial), got shape {band_variance.shape}")
    if limits is None:
        limits = band_limits(band_variance)
    limits = np.asarray(limits, dtype=np.float64)
    if limits.shape != (3,) or not np.all(np.isfinite(limits)) or np.any(limits <= 0):
        raise _error(f"colour limits must be 3 finite positive numbers, got {limits.tolist()}")
    spatial_dims = band_variance.ndim - 2
    scaled = band_variance / limits.reshape(1, 3, *([1] * spatial_dims))
    scaled = np.clip(scaled, 0.0, 1.0)
    colour = np.tensordot(np.moveaxis(scaled, 1, -1), COLOUR_SCHEMES[scheme], axes=([-1], [0]))
    return np.clip(colour, 0.0, 1.0).astype(np.float32), limits


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
        raise _error(f"the brain-mask fraction must be in [0, 1), got {fraction}")
    peak = float(np.max(mean_image)) if mean_image.size else 0.0
    if not np.isfinite(peak) or peak <= 0:
        raise _error("the mean image has no positive voxel: give a brain mask")
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
        raise _error(
            f"ROI masks {masks.shape} and brain mask {brain.shape} must be on the maps' grid "
            f"{spatial}"
        )
    if not brain.any():
        raise _error("the brain mask is empty")
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
    """Per latent: Spearman rho over ROIs between projective and receptive profiles, and
    disagree = rho < threshold or undefined (a constant profile)."""

    rho: np.ndarray
    disagree: np.ndarray
    threshold: float


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
    projective: np.ndarray, impact: np.ndarray, threshold: float = 0.5
) -> FieldAgreement:
    """Spearman rank correlation, per latent, of projective P[:, k] and receptive I[:, k]
    (both (R, K), same ROIs and latents); needs R >= 3 ROIs."""
    projective, impact = np.asarray(projective, float), np.asarray(impact, float)
    if projective.shape != impact.shape or projective.ndim != 2:
        raise _error(
            f"projective {projective.shape} and receptive {impact.shape} matrices must both be "
            "(ROIs, latents) over the same ROIs and latents"
        )
    if projective.shape[0] < 3:
        raise _error(f"{projective.shape[0]} ROI(s): a rank correlation over ROIs needs at least 3")
    rho = np.array([_spearman(projective[:, k], impact[:, k]) for k in range(impact.shape[1])])
    disagree = ~(rho >= threshold)
    return FieldAgreement(rho=rho, disagree=disagree, threshold=float(threshold))


def projective_table(
    matrix: np.ndarray, roi_names: Sequence[str], latent_names: Sequence[str]
) -> pd.DataFrame:
    """The enrichment matrix as a table: ROI rows (index "roi"), latent columns."""
    import pandas as pd

    table = pd.DataFrame(np.asarray(matrix), index=list(roi_names), columns=list(latent_names))
    table.index.name = "roi"
    return table
