"""The c grid of a projective-field sweep and its four bands (docs/methods.md).

The sweep decodes z = z0 + c * scale_k * e_k for every c of a grid; its variance is kept in
four bands of c:

- small_negative: -split <= c <= 0
- small_positive:  0 <= c <= split
- large_negative:  c < -split
- large_positive:  c > split

plus the pooled large band (|c| > split, both signs) and the whole grid. c = 0 belongs to both
small bands. Presets: "prior" (default) sweeps [-3, 3] population sd, step 0.01, split 1.5;
"published" sweeps [-7, 7] in prior units, step 0.005 (2,801 decodes per latent), split 3.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from brainvae.errors import ProjectiveFieldError

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
        if name not in SWEEP_PRESETS:
            raise ProjectiveFieldError(
                f"unknown sweep preset {name!r}; expected one of {', '.join(SWEEP_PRESETS)}"
            )
        return SWEEP_PRESETS[name]

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


SWEEP_PRESETS: dict[str, SweepSettings] = {
    "prior": SweepSettings(low=-3.0, high=3.0, step=0.01, split=1.5, units="sd"),
    "published": SweepSettings(low=-7.0, high=7.0, step=0.005, split=3.5, units="prior"),
}
