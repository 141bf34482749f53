"""The projective field's colour view: three bands of c in one RGB image, and its legend.

Colours as in the paper's Fig. 3A caption (scheme "paper"): cyan = small POSITIVE c
(0 <= c <= split), magenta = small NEGATIVE c (-split <= c <= 0), yellow = large |c| (the pooled
large band, both signs). Scheme "rgb": red = small negative, green = small positive, blue =
large, each band in its own channel.

Each band's variance is first divided by a colour limit and clipped to [0, 1]: its strength s.
Limits are the 99.5th percentile of the band over the voxels where it is > 0, either per latent
("per-latent", the default: every latent's own bands fill the scale, so a weak but real latent
is visible) or over all swept latents ("shared": one limit per band, so colours compare across
latents). A per-latent limit never goes below PER_LATENT_FLOOR of the largest shared limit, so
a latent that moves (almost) nothing stays (almost) black instead of showing rounding noise.

Composite ("paper"): hue from the mix of the three strengths, brightness from the strongest.
With w = s / sum(s) and C_b each band's colour, the mix is m = sum_b w_b C_b (a point of the
triangle between cyan, magenta and yellow; its channels are 1 - w of the band lacking that
channel), and the pixel is m / max(m) * max(s). Different strength triples give different
colours: from a pixel, max(s) is its largest channel, m its direction (its channels sum to 2),
w follows from m, and s = w * max(s) / max(w). Pure bands at full strength are exactly cyan,
magenta and yellow; all three equal are grey (white at full strength); cyan + magenta is
blue-violet, never white. Adding the three colours and clipping, as before, sent a quarter of
random triples to white. Only strengths above a limit collide (clipped to 1: "at or above
the limit").

Over anatomy the composite is alpha-blended, never added: the colour's own hue at full
brightness with an opacity equal to its strength (rgba_overlay, over_anatomy), so a strong voxel
shows its hue and a weak one lets the dimmed brain show through. Adding it to a grey brain, as
before, lifted every channel and washed the hues out to grey-white. ROI outlines use a colour
the scheme never paints (OUTLINE_COLOURS).
Arrays in, arrays out: no file I/O, no Qt (STYLE.md).
"""

from __future__ import annotations

import numpy as np

from brainvae.errors import ProjectiveFieldError

COLOUR_SCHEMES: dict[str, np.ndarray] = {
    "paper": np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]),
    "rgb": np.eye(3),
}
"""Per scheme, the RGB colour of each band (rows in COLOUR_BANDS order: small negative,
small positive, pooled large)."""
COLOUR_LIMITS = ("per-latent", "shared")
DEFAULT_COLOUR_LIMITS = "per-latent"
"""One default for the command line, the dock and the library: every active latent visible."""
LIMIT_PERCENTILE = 99.5
PER_LATENT_FLOOR = 1e-3
"""A per-latent limit is at least this fraction of the largest shared limit (of any band)."""

OUTLINE_COLOURS: dict[str, tuple[tuple[float, float, float], str]] = {
    "paper": ((0.0, 1.0, 0.0), "green"),
    "rgb": ((1.0, 0.55, 0.0), "orange"),
}
"""Per scheme, the ROI outlines' colour and name: never a band colour. Pure green cannot come out
of the paper composite (its colours at full brightness have channels summing to >= 2); orange in
"rgb" needs a large band of 0 where the small bands move, which a sweep hardly ever gives."""

_MEANINGS = (
    "small negative c (-split to 0)",
    "small positive c (0 to split)",
    "large |c| (beyond the split, both signs)",
)
_NAMES = {"paper": ("magenta", "cyan", "yellow"), "rgb": ("red", "green", "blue")}


def _percentile_limit(values: np.ndarray) -> float:
    positive = values[values > 0]
    if not positive.size:
        return 1.0
    limit = float(np.percentile(positive, LIMIT_PERCENTILE))
    return limit if limit > 0 else 1.0


def band_limits(colour_bands: np.ndarray, mode: str = DEFAULT_COLOUR_LIMITS) -> np.ndarray:
    """(K, 3) colour limits: per band, the 99.5th percentile of the band's positive voxels,
    per latent (at least PER_LATENT_FLOOR of the largest shared limit) or shared by all
    latents."""
    if mode not in COLOUR_LIMITS:
        raise ProjectiveFieldError(
            f"unknown colour limits {mode!r}; expected one of {', '.join(COLOUR_LIMITS)}"
        )
    colour_bands = np.asarray(colour_bands)
    count = colour_bands.shape[0]
    shared = np.array([_percentile_limit(colour_bands[:, band]) for band in range(3)])
    if mode == "shared":
        return np.repeat(shared[None], count, axis=0)
    own = np.array(
        [[_percentile_limit(colour_bands[k, band]) for band in range(3)] for k in range(count)]
    )
    empty = np.array([[not np.any(colour_bands[k, b] > 0) for b in range(3)] for k in range(count)])
    own = np.maximum(own, PER_LATENT_FLOOR * shared.max())
    return np.where(empty, shared[None], own)


def _mix(strength: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """(..., 3) strengths in [0, 1] -> (..., 3) RGB: hue from the mix, brightness the max."""
    total = strength.sum(axis=-1, keepdims=True)
    weights = np.divide(strength, total, out=np.zeros_like(strength), where=total > 0)
    mix = weights @ colours
    peak = mix.max(axis=-1, keepdims=True)
    unit = np.divide(mix, peak, out=np.zeros_like(mix), where=peak > 0)
    return unit * strength.max(axis=-1, keepdims=True)


def colour_composite(
    colour_bands: np.ndarray,
    scheme: str = "paper",
    limits: np.ndarray | None = None,
    mode: str = DEFAULT_COLOUR_LIMITS,
) -> tuple[np.ndarray, np.ndarray]:
    """((K, *spatial, 3) float32 RGB in [0, 1], (K, 3) limits used) from (K, 3, *spatial)
    colour bands (ProjectiveField.colour_bands); limits: (3,) or (K, 3) given, else by mode."""
    if scheme not in COLOUR_SCHEMES:
        raise ProjectiveFieldError(
            f"unknown colour scheme {scheme!r}; expected one of {', '.join(COLOUR_SCHEMES)}"
        )
    colour_bands = np.asarray(colour_bands, dtype=np.float64)
    if colour_bands.ndim < 3 or colour_bands.shape[1] != 3:
        raise ProjectiveFieldError(
            f"colour bands must be (K, 3, *spatial): small negative, small positive and the "
            f"pooled large band (ProjectiveField.colour_bands), got shape {colour_bands.shape}"
        )
    count = colour_bands.shape[0]
    if limits is None:
        limits = band_limits(colour_bands, mode)
    limits = np.asarray(limits, dtype=np.float64)
    if limits.shape == (3,):
        limits = np.repeat(limits[None], count, axis=0)
    if limits.shape != (count, 3) or not np.all(np.isfinite(limits)) or np.any(limits <= 0):
        raise ProjectiveFieldError(
            f"colour limits must be 3 (or {count} x 3) finite positive numbers, got "
            f"{limits.tolist()}"
        )
    spatial_dims = colour_bands.ndim - 2
    strength = np.clip(colour_bands / limits.reshape(count, 3, *([1] * spatial_dims)), 0.0, 1.0)
    strength = np.moveaxis(strength, 1, -1)
    if scheme == "rgb":
        colour = strength @ COLOUR_SCHEMES["rgb"]
    else:
        colour = _mix(strength, COLOUR_SCHEMES[scheme])
    return np.clip(colour, 0.0, 1.0).astype(np.float32), limits


def rgba_overlay(colour: np.ndarray) -> np.ndarray:
    """(..., 3) composite -> (..., 4) float32: the hue at full brightness, alpha = the strongest
    band's strength (the composite's largest channel). Alpha-blended over black it gives back
    the composite exactly; over a dimmed brain the brain shows where the map is weak."""
    colour = np.asarray(colour, dtype=np.float32)
    alpha = colour.max(axis=-1, keepdims=True)
    hue = np.divide(colour, alpha, out=np.zeros_like(colour), where=alpha > 0)
    return np.concatenate([hue, alpha], axis=-1)


def over_anatomy(colour: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """(..., 3) RGB in [0, 1]: the composite alpha-blended (rgba_overlay) over a grey image in
    [0, 1] of the same spatial shape (the dimmed population mean)."""
    colour = np.asarray(colour, dtype=np.float32)
    alpha = colour.max(axis=-1, keepdims=True)
    grey = np.clip(np.asarray(grey, dtype=np.float32), 0.0, 1.0)[..., None]
    return np.clip(colour + (1.0 - alpha) * grey, 0.0, 1.0)


def outline_colour(scheme: str) -> tuple[tuple[float, float, float], str]:
    """(RGB, name) of the ROI outlines for a scheme: a colour that is no band's."""
    if scheme not in OUTLINE_COLOURS:
        raise ProjectiveFieldError(
            f"unknown colour scheme {scheme!r}; expected one of {', '.join(COLOUR_SCHEMES)}"
        )
    return OUTLINE_COLOURS[scheme]


def band_names(scheme: str) -> tuple[str, str, str]:
    """The colour names of the bands (COLOUR_BANDS order: small negative, small positive,
    large) in a scheme."""
    if scheme not in _NAMES:
        raise ProjectiveFieldError(
            f"unknown colour scheme {scheme!r}; expected one of {', '.join(COLOUR_SCHEMES)}"
        )
    return _NAMES[scheme]


def colour_legend(scheme: str, mode: str = DEFAULT_COLOUR_LIMITS) -> list[tuple[tuple, str]]:
    """[(RGB in [0, 1], text)]: each band's colour and meaning (positive side first), then
    how mixes and the limits read (colour None)."""
    if scheme not in COLOUR_SCHEMES:
        raise ProjectiveFieldError(
            f"unknown colour scheme {scheme!r}; expected one of {', '.join(COLOUR_SCHEMES)}"
        )
    colours, names = COLOUR_SCHEMES[scheme], _NAMES[scheme]
    entries = [
        (tuple(float(v) for v in colours[band]), f"{names[band]}: {_MEANINGS[band]}")
        for band in (1, 0, 2)
    ]
    if scheme == "paper":
        mixing = "mixes: hue = which bands, brightness = the strongest; grey/white = all alike"
    else:
        mixing = "each band its own channel, at its own strength"
    limits = (
        "limits per latent (each latent fills the scale)"
        if mode == "per-latent"
        else "limits shared by all latents (colours compare)"
    )
    return [*entries, (None, mixing), (None, limits)]
