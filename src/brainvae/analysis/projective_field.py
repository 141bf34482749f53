"""Projective fields: which output regions each latent moves (docs/methods.md).

For each chosen latent k and a base code z0 (population mean, a subject's mean code, or zeros)
the sweep decodes z = z0 + c * scale_k * e_k for every c of a grid and keeps the per-voxel
variance (ddof 0) of the decoded images in four bands of c:

- small_negative: -split <= c <= 0
- small_positive:  0 <= c <= split
- large_negative:  c < -split
- large_positive:  c > split

plus the pooled large band (|c| > split, both signs: the union of the two large bands, what
the three-colour view shows in yellow) and the whole grid ("total", c = 0 counted once).
c = 0 belongs to both small bands. The far sides are kept apart because what a decoder does far
out is not symmetric (the paper saw its artefacts mainly far on the negative side).

A band's variance grows with the spread of its c values (a linear decoder gives var(c) x
slope^2), and the pooled large band's c spread is ~28x a small band's for the published preset,
so each band is also reported per unit var(c) (normalised_band_variance): the band's variance
divided by the variance of its c values in the sweep's units. For a decoder linear in c all
four normalised maps are equal; where they differ the decoder bends.

Presets: "prior" (default) sweeps [-3, 3] population sd (scale_k = sd_k; a latent whose
population sd is ~0, below latent_space.MIN_SD, is swept in prior units, scale 1, and the
result says so in unit_fallback), step 0.01, split 1.5; "published" sweeps [-7, 7] in prior
units (scale 1), step 0.005 (2,801 decodes per latent), split 3.5.

Here: the result and its checks, the two entry points (a step generator that yields progress
and the plain function that runs it) and the base code. The c grid and its bands are in
projective_sweep.py, the streaming sums in projective_streaming.py, the maps, the ROI enrichment
and the receptive/projective agreement in projective_maps.py, the colours in
projective_colour.py.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.analysis.projective_streaming import ProjectiveProgress, SweepPlan, stream_variances
from brainvae.analysis.projective_sweep import SweepSettings
from brainvae.analysis.steps import drained
from brainvae.errors import ProjectiveFieldError

if TYPE_CHECKING:
    import pandas as pd

    from brainvae.analysis.latent_space import LatentStatistics
    from brainvae.models.base import LatentModel


@dataclass(frozen=True)
class ProjectiveField:
    """Per-voxel variance maps of a sweep over K latents.

    latents: (K,) 0-based indices; base: (L,) the base code; scale: (K,) one unit of c per
    swept latent (in prior units); band_variance: (K, 4, *spatial) float32 (ddof 0) in
    BAND_NAMES order; large_variance: (K, *spatial) the pooled large band (both signs);
    total_variance: (K, *spatial) over the whole grid; band_counts: (4,) decodes per band;
    unit_fallback: (K,) True where units "sd" were asked but the latent's population sd is ~0,
    so it was swept in prior units (scale 1) instead.
    """

    latents: np.ndarray
    base: np.ndarray
    scale: np.ndarray
    settings: SweepSettings
    band_variance: np.ndarray
    total_variance: np.ndarray
    band_counts: np.ndarray
    base_label: str
    large_variance: np.ndarray
    unit_fallback: np.ndarray

    @property
    def n_latents(self) -> int:
        return int(len(self.latents))

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.total_variance.shape[1:])

    @property
    def latent_names(self) -> tuple[str, ...]:
        """z1.. (1-based, as everywhere else in brainvae)."""
        return tuple(f"z{int(k) + 1}" for k in self.latents)

    @property
    def total_counts(self) -> int:
        """Decodes per latent over the whole grid."""
        return int(self.settings.values().size)

    @property
    def colour_bands(self) -> np.ndarray:
        """(K, 3, *spatial) in COLOUR_BANDS order: the two small bands and the pooled large
        band, what the three-colour view shows."""
        return np.concatenate([self.band_variance[:, :2], self.large_variance[:, None]], axis=1)

    @property
    def normalised_band_variance(self) -> np.ndarray:
        """(K, 4, *spatial) float32: each band's variance per unit var(c) (divided by the
        variance of the band's c values, SweepSettings.band_c_variance), so bands compare."""
        divisor = self.settings.band_c_variance().reshape(1, 4, *([1] * len(self.spatial_shape)))
        return (self.band_variance / divisor).astype(np.float32)

    @property
    def fallback_names(self) -> tuple[str, ...]:
        """Swept latents that were swept in prior units because their population sd is ~0."""
        return tuple(
            name for name, fell in zip(self.latent_names, self.unit_fallback, strict=True) if fell
        )


# ---- the sweep ---------------------------------------------------------------------------
def _check_inputs(
    model: Any,
    latents: Sequence[int],
    base: np.ndarray,
    settings: SweepSettings,
    scale: np.ndarray | None,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(latents, base, scale, unit_fallback) checked; every problem raised before the first
    decode."""
    from brainvae.analysis.latent_space import MIN_SD

    if not isinstance(settings, SweepSettings):
        raise ProjectiveFieldError(f"settings must be SweepSettings, got {type(settings).__name__}")
    settings.validate()
    latent_dim = int(model.latent_dim)
    try:
        rows = np.asarray(latents, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ProjectiveFieldError(f"latents must be integers, got {latents!r}") from None
    if rows.size == 0:
        raise ProjectiveFieldError("choose at least one latent to sweep")
    if not np.all(np.isfinite(rows)) or not np.array_equal(rows, np.round(rows)):
        raise ProjectiveFieldError(f"latents must be integers, got {list(latents)!r}")
    rows = rows.astype(np.int64)
    bad = [int(k) for k in rows if not 0 <= k < latent_dim]
    if bad:
        raise ProjectiveFieldError(
            f"latent index {bad[0]} (z{bad[0] + 1}) is out of bounds: the model has "
            f"L = {latent_dim} latents, indices 0..{latent_dim - 1} (z1..z{latent_dim})"
        )
    base = np.asarray(base, dtype=np.float64)
    if base.shape != (latent_dim,):
        raise ProjectiveFieldError(
            f"the base code has shape {base.shape} but the model has L = {latent_dim} latents: "
            f"give ({latent_dim},)"
        )
    if not np.all(np.isfinite(base)):
        raise ProjectiveFieldError("the base code holds NaN or Inf values")
    if batch_size < 1:
        raise ProjectiveFieldError(f"batch_size must be >= 1, got {batch_size}")
    fallback = np.zeros(len(rows), dtype=bool)
    if settings.units == "prior":
        units = np.ones(len(rows))  # prior units: c is absolute, any scale given is unused
    else:
        if scale is None:
            raise ProjectiveFieldError(
                "units 'sd' sweep c in population sds: give scale (each swept latent's "
                "population sd, e.g. from population_latents) or use units 'prior'"
            )
        units = np.asarray(scale, dtype=np.float64).reshape(-1)
        if units.shape == (latent_dim,) and len(rows) != latent_dim:
            units = units[rows]  # a per-model-latent scale: pick the swept ones
        if units.shape != (len(rows),):
            raise ProjectiveFieldError(
                f"scale must hold one value per swept latent ({len(rows)}), got {units.shape}"
            )
        if not np.all(np.isfinite(units)):
            raise ProjectiveFieldError("scale holds NaN or Inf values")
        fallback = np.abs(units) < MIN_SD
        units = np.where(fallback, 1.0, np.abs(units))
    return rows, base, units, fallback


def projective_field_steps(
    model: LatentModel,
    latents: Sequence[int],
    base: np.ndarray,
    settings: SweepSettings,
    scale: np.ndarray | None = None,
    batch_size: int = 32,
    base_label: str = "mean",
    autocast_dtype: Any = None,
) -> Generator[ProjectiveProgress, None, ProjectiveField]:
    """Check everything now, then return a generator that yields a ProjectiveProgress after
    every decoded batch and returns the ProjectiveField (StopIteration.value).

    latents: 0-based indices; base: (L,) code; scale: (K,) one unit of c per swept latent
    (needed for units "sd": the population sd, values below latent_space.MIN_SD taken as 1
    and marked in unit_fallback; an (L,) array is also accepted and indexed; ignored for units
    "prior").
    autocast_dtype (e.g. torch.bfloat16) runs the decoder under torch.autocast; sums stay
    float64.
    """
    rows, base, units, fallback = _check_inputs(model, latents, base, settings, scale, batch_size)
    plan = SweepPlan(rows, base, units, fallback, settings, batch_size, autocast_dtype)
    return _steps(model, plan, str(base_label))


def _steps(
    model: Any, plan: SweepPlan, base_label: str
) -> Generator[ProjectiveProgress, None, ProjectiveField]:
    """Stream the sweep's variances, then shape them into the ProjectiveField."""
    sums = yield from stream_variances(model, plan)
    count, shape = len(plan.latents), sums.image_shape
    return ProjectiveField(
        latents=plan.latents,
        base=plan.base,
        scale=plan.scale,
        settings=plan.settings,
        band_variance=sums.band.reshape(count, len(sums.band_counts), *shape),
        total_variance=sums.total.reshape(count, *shape),
        band_counts=sums.band_counts,
        base_label=base_label,
        large_variance=sums.large.reshape(count, *shape),
        unit_fallback=np.asarray(plan.unit_fallback, dtype=bool),
    )


projective_field = drained(
    projective_field_steps,
    "projective_field",
    "The projective field of the chosen latents: projective_field_steps' arguments, run to the "
    "end; returns the ProjectiveField.",
)


def base_code(
    statistics: LatentStatistics, metadata: pd.DataFrame | None, base: str
) -> tuple[np.ndarray, str]:
    """(code, label): "mean" the population mean, "zero" the prior's centre, otherwise a subject
    id whose rows' codes (metadata column subject_id, rows as in statistics.codes) are averaged."""
    base = str(base).strip()
    if base == "mean":
        return np.asarray(statistics.mean, dtype=np.float64).copy(), "mean"
    if base == "zero":
        return np.zeros(statistics.latent_dim), "zero"
    if metadata is None or "subject_id" not in metadata.columns:
        raise ProjectiveFieldError(
            f"base {base!r} is neither 'mean' nor 'zero', and without a subject_id column "
            "there is no subject to take it from"
        )
    subjects = metadata["subject_id"].astype(str).to_numpy()
    if len(subjects) != statistics.n_images:
        raise ProjectiveFieldError(
            f"the metadata has {len(subjects)} rows but {statistics.n_images} images were encoded"
        )
    chosen = subjects == base
    if not chosen.any():
        known = sorted(set(subjects))
        shown = ", ".join(known[:5]) + (f" and {len(known) - 5} more" if len(known) > 5 else "")
        raise ProjectiveFieldError(
            f"subject {base!r} is not in the dataset (known: {shown}); or use base 'mean' or 'zero'"
        )
    return statistics.codes[chosen].astype(np.float64).mean(axis=0), base
