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

Streaming: nothing but running sums is kept. Every decode is shifted by the base decode before
summing (so the sums of squares do not cancel), each batch is reduced in torch (one
(bands, batch) x (batch, voxels) product per moment, in float64: a one-sided far band's mean
sits far from the base decode, so E[x^2] - E[x]^2 cancels a digit that float32 products would
lose) into float64 running sums, and only the sums cross to numpy.
The maps, the ROI enrichment and the receptive/projective agreement live in projective_maps.py,
the colours in projective_colour.py; both are re-exported here.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.errors import BrainVAEError

if TYPE_CHECKING:
    import pandas as pd

    from brainvae.analysis.latent_space import LatentStatistics
    from brainvae.models.base import LatentModel

BAND_NAMES = ("small_negative", "small_positive", "large_negative", "large_positive")
"""The four bands of c, in the order of ProjectiveField.band_variance."""
COLOUR_BANDS = ("small_negative", "small_positive", "large")
"""The three bands of the colour view: "large" is the pooled large band (both signs)."""
UNITS = ("sd", "prior")
"""sd: c in multiples of each latent's population sd; prior: c in absolute (prior) units."""
BASES = ("mean", "zero")
"""Named base codes; any other base is read as a subject id."""
_GRID_TOLERANCE = 1e-9
"""Relative to the step: how far a grid value may sit past a bound or the split and count."""


class ProjectiveFieldError(BrainVAEError, ValueError):
    """A sweep that cannot run as asked: names the setting and what is wrong."""


@dataclass(frozen=True)
class SweepSettings:
    """The c grid of a sweep: [low, high] in steps of `step`, bands split at |c| = split.

    The grid is every integer multiple of step inside [low, high] (so 0 is always on it and
    [-7, 7] in steps of 0.005 gives exactly 2,801 values).
    """

    low: float = -3.0
    high: float = 3.0
    step: float = 0.01
    split: float = 1.5
    units: str = "sd"

    @classmethod
    def preset(cls, name: str) -> SweepSettings:
        """A named preset ("prior" or "published")."""
        if name not in PRESETS:
            raise ProjectiveFieldError(
                f"unknown sweep preset {name!r}; expected one of {', '.join(PRESETS)}"
            )
        return PRESETS[name]

    def validate(self) -> None:
        """Raise a ProjectiveFieldError naming the first setting that cannot make a sweep."""
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name != "units" and not (
                isinstance(value, int | float) and math.isfinite(value)
            ):
                raise ProjectiveFieldError(
                    f"sweep {item.name} must be a finite number, got {value!r}"
                )
        if not self.low < 0.0 < self.high:
            raise ProjectiveFieldError(
                f"the sweep range [{self.low:g}, {self.high:g}] must contain both signs "
                "(low < 0 < high): the bands compare negative and positive weights"
            )
        if not 0.0 < self.step <= self.high - self.low:
            raise ProjectiveFieldError(
                f"the sweep step must be > 0 and at most the range's width "
                f"{self.high - self.low:g}, got {self.step:g}"
            )
        if not 0.0 < self.split < min(-self.low, self.high):
            raise ProjectiveFieldError(
                f"the band split must be > 0 and below min(-low, high) = "
                f"{min(-self.low, self.high):g} so every band can hold values, got {self.split:g}"
            )
        if self.units not in UNITS:
            raise ProjectiveFieldError(
                f"unknown sweep units {self.units!r}; expected one of {', '.join(UNITS)}"
            )
        counts = self.band_masks().sum(axis=1)
        if counts.min() < 2:
            empty = [name for name, n in zip(BAND_NAMES, counts, strict=True) if n < 2]
            raise ProjectiveFieldError(
                f"with step {self.step:g} the band(s) {', '.join(empty)} hold fewer than two "
                f"values of the grid over [{self.low:g}, {self.high:g}] (the small bands share "
                "c = 0), so no variance: use a smaller step or move the split"
            )

    def _checked_grid(self) -> np.ndarray:
        tolerance = _GRID_TOLERANCE
        first = math.ceil(self.low / self.step - tolerance)
        last = math.floor(self.high / self.step + tolerance)
        if last - first + 1 > 10_000_000:
            raise ProjectiveFieldError(
                f"step {self.step:g} over [{self.low:g}, {self.high:g}] makes more than "
                "10 million decodes per latent: use a larger step"
            )
        return np.arange(first, last + 1, dtype=np.int64) * self.step

    def values(self) -> np.ndarray:
        """The c grid (float64, ascending, 0 included), after validate()."""
        self.validate()
        return self._checked_grid()

    def band_masks(self) -> np.ndarray:
        """(4, n_values) bool in BAND_NAMES order: which grid values each band holds (the
        pooled large band is the union of the last two)."""
        values = self._checked_grid()
        small = np.abs(values) <= self.split + _GRID_TOLERANCE * self.step
        return np.stack(
            [
                small & (values <= 0),
                small & (values >= 0),
                ~small & (values < 0),
                ~small & (values > 0),
            ]
        )

    def band_c_variance(self) -> np.ndarray:
        """(4,) variance (ddof 0) of the c values each band holds, in the sweep's units: what
        a band's decode variance is divided by to be read per unit var(c)."""
        values = self._checked_grid()
        return np.array([values[mask].var() for mask in self.band_masks()])

    def band_ranges(self) -> dict[str, tuple[float, float]]:
        """Per band (BAND_NAMES order): the smallest and largest c of the grid it holds."""
        values = self._checked_grid()
        return {
            name: (float(values[mask].min()), float(values[mask].max()))
            for name, mask in zip(BAND_NAMES, self.band_masks(), strict=True)
        }


PRESETS: dict[str, SweepSettings] = {
    "prior": SweepSettings(low=-3.0, high=3.0, step=0.01, split=1.5, units="sd"),
    "published": SweepSettings(low=-7.0, high=7.0, step=0.005, split=3.5, units="prior"),
}


@dataclass(frozen=True)
class ProjectiveProgress:
    """Reported after every decoded batch; decodes count sweep decodes, not the base decode."""

    latent: int
    latents_done: int
    n_latents: int
    decodes_done: int
    total_decodes: int


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
def _image_shape(model: Any) -> tuple[int, ...]:
    config = model.config
    channels = int(getattr(config, "channels", 1))
    spatial = tuple(int(s) for s in config.input_shape)
    return spatial if channels == 1 else (channels, *spatial)


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


def _decode(model: Any, codes: np.ndarray, device: Any, autocast_dtype: Any) -> Any:
    """(n, P) float32 torch tensor of the decoded images (any model; numpy or torch out);
    only the decoder runs under autocast, never the sums."""
    import torch

    autocast = (
        torch.autocast(device_type=torch.device(device).type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    with autocast:
        images = model.decode(torch.from_numpy(codes.astype(np.float32)).to(device))
    images = torch.as_tensor(images)
    return images.reshape(len(codes), -1).to(dtype=torch.float32, device=device)


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
    return _steps(
        model, rows, base, units, fallback, settings, batch_size, base_label, autocast_dtype
    )


def _steps(
    model: Any,
    rows: np.ndarray,
    base: np.ndarray,
    units: np.ndarray,
    fallback: np.ndarray,
    settings: SweepSettings,
    batch_size: int,
    base_label: str,
    autocast_dtype: Any,
) -> Generator[ProjectiveProgress, None, ProjectiveField]:
    import torch

    values = settings.values()
    masks = settings.band_masks()
    band_counts = masks.sum(axis=1)
    shape = _image_shape(model)
    n_voxels = int(np.prod(shape))
    device = getattr(model, "device", torch.device("cpu"))
    if hasattr(model, "eval"):
        model.eval()
    n_values, total = len(values), len(rows) * len(values)
    n_bands = len(masks)
    band_variance = np.empty((len(rows), n_bands, n_voxels), dtype=np.float32)
    large_variance = np.empty((len(rows), n_voxels), dtype=np.float32)
    total_variance = np.empty((len(rows), n_voxels), dtype=np.float32)
    # Rows: the 4 bands, the pooled large band, then the whole grid (c = 0 counted once).
    rows_of_weights = np.vstack(
        [masks, masks[2:].any(axis=0, keepdims=True), np.ones((1, n_values), bool)]
    )
    weights_all = torch.from_numpy(rows_of_weights).to(device=device, dtype=torch.float64)
    counts = weights_all.sum(dim=1, keepdim=True)
    done = 0
    with torch.inference_mode():
        reference = _decode(model, base[None], device, autocast_dtype)  # (1, P): the shift
        for position, latent in enumerate(rows):
            first = torch.zeros((n_bands + 2, n_voxels), dtype=torch.float64, device=device)
            second = torch.zeros_like(first)
            for start in range(0, n_values, batch_size):
                chunk = values[start : start + batch_size]
                codes = np.repeat(base[None], len(chunk), axis=0)
                codes[:, latent] += chunk * units[position]
                # Shifted in float32 (the decodes' own precision), summed in float64: the
                # weights select each band's rows in one product.
                shifted = _decode(model, codes, device, autocast_dtype).sub_(reference).double()
                weights = weights_all[:, start : start + len(chunk)]
                first += weights @ shifted
                second += weights @ shifted.square_()
                done += len(chunk)
                yield ProjectiveProgress(int(latent), position, len(rows), done, total)
            mean = first / counts
            variance = (second / counts - mean * mean).clamp_min_(0.0).cpu().numpy()
            band_variance[position] = variance[:n_bands]
            large_variance[position] = variance[n_bands]
            total_variance[position] = variance[n_bands + 1]
    return ProjectiveField(
        latents=rows,
        base=base,
        scale=units,
        settings=settings,
        band_variance=band_variance.reshape(len(rows), n_bands, *shape),
        total_variance=total_variance.reshape(len(rows), *shape),
        band_counts=band_counts.astype(np.int64),
        base_label=str(base_label),
        large_variance=large_variance.reshape(len(rows), *shape),
        unit_fallback=np.asarray(fallback, dtype=bool),
    )


def projective_field(
    model: LatentModel,
    latents: Sequence[int],
    base: np.ndarray,
    settings: SweepSettings,
    scale: np.ndarray | None = None,
    batch_size: int = 32,
    base_label: str = "mean",
    autocast_dtype: Any = None,
) -> ProjectiveField:
    """The projective field of the chosen latents (see projective_field_steps)."""
    steps = projective_field_steps(
        model, latents, base, settings, scale, batch_size, base_label, autocast_dtype
    )
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


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


from brainvae.analysis.projective_colour import (  # noqa: E402  (re-exported: one import place)
    COLOUR_LIMITS,
    COLOUR_SCHEMES,
    DEFAULT_COLOUR_LIMITS,
    colour_composite,
    colour_legend,
)
from brainvae.analysis.projective_maps import (  # noqa: E402
    FieldAgreement,
    band_asymmetry,
    brain_mask_from_images,
    field_agreement,
    mean_image,
    projective_matrix,
    projective_table,
)

__all__ = [
    "BAND_NAMES",
    "COLOUR_BANDS",
    "COLOUR_LIMITS",
    "COLOUR_SCHEMES",
    "DEFAULT_COLOUR_LIMITS",
    "PRESETS",
    "FieldAgreement",
    "ProjectiveField",
    "ProjectiveFieldError",
    "ProjectiveProgress",
    "SweepSettings",
    "band_asymmetry",
    "base_code",
    "brain_mask_from_images",
    "colour_composite",
    "colour_legend",
    "field_agreement",
    "projective_field",
    "projective_field_steps",
    "projective_matrix",
    "mean_image",
    "projective_table",
]
