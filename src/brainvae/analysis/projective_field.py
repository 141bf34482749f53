"""Projective fields: which output regions each latent moves (METHODS.md section 3).

For each chosen latent k and a base code z0 (population mean, a subject's mean code, or zeros)
the sweep decodes z = z0 + c * scale_k * e_k for every c of a grid and keeps the per-voxel
variance (ddof 0) of the decoded images in three bands of c:

- small_negative: -split <= c <= 0
- small_positive:  0 <= c <= split
- large:          |c| > split (both signs together)

c = 0 belongs to both small bands (each small band is then a closed half of the prior's core),
and the "total" variance runs over the whole grid, counting c = 0 once. Presets: "prior"
(default) sweeps [-3, 3] population sd (scale_k = sd_k, a dead latent's sd taken as 1), step
0.01, split 1.5; "published" sweeps [-7, 7] in prior units (scale 1), step 0.005 (2,801
decodes per latent), split 3.5.

Streaming: nothing but running sums is kept. Every decode is shifted by the base decode before
summing (so the sums of squares do not cancel), each batch is reduced in torch (one
(bands, batch) x (batch, voxels) product per moment, in float32 within the batch) into float64
running sums, and only the sums cross to numpy.
The maps, the ROI enrichment and the receptive/projective agreement live in projective_maps.py
and are re-exported here.
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

BAND_NAMES = ("small_negative", "small_positive", "large")
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
                f"with step {self.step:g} the band(s) {', '.join(empty)} hold no value of the "
                f"grid over [{self.low:g}, {self.high:g}] but 0, so no variance: use a smaller "
                "step"
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
        """(3, n_values) bool in BAND_NAMES order: which grid values each band holds."""
        values = self._checked_grid()
        small = np.abs(values) <= self.split + _GRID_TOLERANCE * self.step
        return np.stack([small & (values <= 0), small & (values >= 0), ~small])


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
    swept latent; band_variance: (K, 3, *spatial) float32 (ddof 0) in BAND_NAMES order;
    total_variance: (K, *spatial) over the whole grid; band_counts: (3,) decodes per band.
    """

    latents: np.ndarray
    base: np.ndarray
    scale: np.ndarray
    settings: SweepSettings
    band_variance: np.ndarray
    total_variance: np.ndarray
    band_counts: np.ndarray
    base_label: str

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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(latents, base, scale) checked; every problem raised before the first decode."""
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
        units = np.where(np.abs(units) < MIN_SD, 1.0, np.abs(units))
    return rows, base, units


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
    (needed for units "sd": the population sd, values below latent_space.MIN_SD taken as 1;
    an (L,) array is also accepted and indexed; ignored for units "prior").
    autocast_dtype (e.g. torch.bfloat16) runs the decoder under torch.autocast; sums stay
    float64.
    """
    rows, base, units = _check_inputs(model, latents, base, settings, scale, batch_size)
    return _steps(model, rows, base, units, settings, batch_size, base_label, autocast_dtype)


def _steps(
    model: Any,
    rows: np.ndarray,
    base: np.ndarray,
    units: np.ndarray,
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
    band_variance = np.empty((len(rows), 3, n_voxels), dtype=np.float32)
    total_variance = np.empty((len(rows), n_voxels), dtype=np.float32)
    # Rows: the 3 bands, then the whole grid (c = 0 counted once there).
    weights_all = torch.from_numpy(np.vstack([masks, np.ones((1, n_values), bool)])).to(
        device=device, dtype=torch.float32
    )
    counts = weights_all.sum(dim=1, keepdim=True).double()
    done = 0
    with torch.inference_mode():
        reference = _decode(model, base[None], device, autocast_dtype)  # (1, P): the shift
        for position, latent in enumerate(rows):
            first = torch.zeros((4, n_voxels), dtype=torch.float64, device=device)
            second = torch.zeros_like(first)
            for start in range(0, n_values, batch_size):
                chunk = values[start : start + batch_size]
                codes = np.repeat(base[None], len(chunk), axis=0)
                codes[:, latent] += chunk * units[position]
                # Per batch in float32 (a few dozen small shifted values), across batches in
                # float64: the weights select each band's rows in one product.
                shifted = _decode(model, codes, device, autocast_dtype).sub_(reference)
                weights = weights_all[:, start : start + len(chunk)]
                first += (weights @ shifted).double()
                second += (weights @ shifted.square_()).double()
                done += len(chunk)
                yield ProjectiveProgress(int(latent), position, len(rows), done, total)
            mean = first / counts
            variance = (second / counts - mean * mean).clamp_min_(0.0).cpu().numpy()
            band_variance[position] = variance[:3]
            total_variance[position] = variance[3]
    return ProjectiveField(
        latents=rows,
        base=base,
        scale=units,
        settings=settings,
        band_variance=band_variance.reshape(len(rows), 3, *shape),
        total_variance=total_variance.reshape(len(rows), *shape),
        band_counts=band_counts.astype(np.int64),
        base_label=str(base_label),
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


from brainvae.analysis.projective_maps import (  # noqa: E402  (re-exported: one import place)
    FieldAgreement,
    brain_mask_from_images,
    colour_composite,
    field_agreement,
    mean_image,
    projective_matrix,
    projective_table,
)

__all__ = [
    "BAND_NAMES",
    "PRESETS",
    "FieldAgreement",
    "ProjectiveField",
    "ProjectiveFieldError",
    "ProjectiveProgress",
    "SweepSettings",
    "base_code",
    "brain_mask_from_images",
    "colour_composite",
    "field_agreement",
    "projective_field",
    "projective_field_steps",
    "projective_matrix",
    "mean_image",
    "projective_table",
]
