"""The denoising study's three artefacts for any image, with a severity: bright leakage blobs,
a missing (zeroed) section and a grid pattern (issue 19; METHODS.md section 4).

One implementation serves the phantom (brainvae.data.phantom.render.apply_artefacts, which
calls corrupt_scan) and any dataset (corrupt). Severity 1 is the phantom's corruption, draw
for draw; severity s scales its strength: blob brightness and width times s (a blob saturates
at the scale's bright end), band width times s, grid-line depth times s (capped at black
lines); severity 0 leaves the image unchanged.
The random draws (where the blobs sit, which axis and where the band starts, the grid period)
do not depend on the severity, so the same seed at a higher severity puts a stronger artefact
in the same place (each blob and band grows about its place).

Intensities: the phantom's grey values are in [0, 1] and its artefacts are drawn on that
scale (a blob up to 1.0 bright, brain = voxels above 0.3, the missing band set to 0). A scan
with values outside [0, 1] gets the same artefacts on its own scale (intensity_scale): from its
background (0, or its minimum when that is negative, as in z-scored data) to its bright end
(its 99.9th percentile), so a blob of brightness 0.6 reaches 60 % of the way from background
to bright and the band is set to the background.

Each scan of a batch draws from its own generator, seeded by (seed, artefact, the scan's
position), so a scan's corruption does not depend on the batch it came in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from brainvae.errors import BrainVAEError

ARTEFACTS: tuple[str, ...] = ("leakage", "missing", "grid")
"""The artefact types, in the order the phantom applies them to one scan."""

BRAIN_LEVEL = 0.3
"""Voxels above this share of the intensity scale are brain (where blobs sit and the band must cross)
when no brain mask is given: the phantom's rule."""
LEAKAGE_BLOBS = (1, 4)
"""Blobs per scan: integers in [low, high)."""
LEAKAGE_SIGMA = (0.02, 0.05)
"""Blob width (Gaussian sd) as a share of the scan's longest side, at severity 1."""
LEAKAGE_BRIGHTNESS = (0.6, 1.0)
"""Blob peak brightness (share of the intensity scale) at severity 1; a blob replaces darker
voxels (maximum)."""
MISSING_WIDTH = (0.05, 0.12)
"""Band width as a share of the scan along the band's axis, at severity 1."""
GRID_PERIOD = (6, 10)
"""Grid-line spacing in voxels: integers in [low, high), the same along every axis."""
GRID_DEPTH = 0.4
"""Share of the intensity a grid line removes at severity 1 (lines keep 0.6)."""
CHANGE_TOLERANCE = 0.01
"""A voxel counts as changed by an artefact when it moved by more than this share of the scale:
smaller changes are invisible and would fill the region with the blobs' far tails."""


class ArtefactError(BrainVAEError, ValueError):
    """An artefact that cannot be applied as asked: unknown name, bad severity, seed or mask."""


@dataclass(frozen=True)
class Corrupted:
    """Corrupted scans (N, *spatial), where the artefact altered each (bool, same shape), which
    artefact and at what severity."""

    images: np.ndarray
    changed: np.ndarray
    artefact: str
    severity: float


def check_artefacts(artefacts: Sequence[str]) -> tuple[str, ...]:
    """The names, checked: an unknown one is an error naming the known ones."""
    if isinstance(artefacts, str):
        artefacts = (artefacts,)
    unknown = [name for name in artefacts if name not in ARTEFACTS]
    if unknown:
        raise ArtefactError(
            f"unknown artefact(s) {', '.join(map(repr, unknown))}; known: {', '.join(ARTEFACTS)}"
        )
    if not artefacts:
        raise ArtefactError(f"no artefact chosen; known: {', '.join(ARTEFACTS)}")
    return tuple(dict.fromkeys(artefacts))


def check_severity(severity: float) -> float:
    """Severity as a float: finite and at least 0."""
    try:
        value = float(severity)
    except (TypeError, ValueError):
        raise ArtefactError(f"severity must be a number, got {severity!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ArtefactError(f"severity must be finite and at least 0, got {severity!r}")
    return value


BRIGHT_PERCENTILE = 99.9
"""A scan outside [0, 1] is corrupted on the scale from its background to this percentile."""

Scale = tuple[float, float]
"""(background, bright): the intensities the artefacts' 0 and 1 stand for in one scan."""


def intensity_scale(image: np.ndarray) -> Scale:
    """(0, 1) for a scan in [0, 1] (the phantom's scale); else (background, bright): its
    minimum when negative (else 0) and its BRIGHT_PERCENTILE (background + 1 if not above)."""
    low, high = float(np.min(image)), float(np.max(image))
    if low >= 0.0 and high <= 1.0:
        return (0.0, 1.0)
    background = min(0.0, low)
    bright = float(np.percentile(image, BRIGHT_PERCENTILE))
    if not np.isfinite(bright) or bright <= background:
        bright = background + 1.0
    return (background, bright)


def _level(scale: Scale, share: float) -> float:
    """The intensity `share` of the way from background to bright."""
    return scale[0] + share * (scale[1] - scale[0])


def _brain(image: np.ndarray, brain: np.ndarray | None, scale: Scale) -> np.ndarray:
    return image > _level(scale, BRAIN_LEVEL) if brain is None else brain


def add_leakage(
    image: np.ndarray,
    rng: np.random.Generator,
    severity: float = 1.0,
    brain: np.ndarray | None = None,
    scale: Scale = (0.0, 1.0),
) -> np.ndarray:
    """Bright Gaussian blobs centred on random brain voxels, replacing darker voxels."""
    shape = np.asarray(image.shape)
    index = np.indices(image.shape, dtype=np.float32) if severity > 0 else None
    points = np.argwhere(_brain(image, brain, scale))
    for _ in range(int(rng.integers(*LEAKAGE_BLOBS))):
        centre = points[int(rng.integers(len(points)))] if len(points) else shape / 2
        sigma = float(rng.uniform(*LEAKAGE_SIGMA)) * shape.max() * severity
        brightness = float(rng.uniform(*LEAKAGE_BRIGHTNESS)) * severity * (scale[1] - scale[0])
        if severity <= 0:
            continue
        distance2 = sum((index[a] - centre[a]) ** 2 for a in range(image.ndim))
        blob = scale[0] + brightness * np.exp(-distance2 / (2 * sigma**2))
        blob = np.minimum(blob, scale[1])  # saturates at the bright end (severity > 1)
        image = np.maximum(image, blob.astype(np.float32))
    return image


def add_missing(
    image: np.ndarray,
    rng: np.random.Generator,
    severity: float = 1.0,
    brain: np.ndarray | None = None,
    scale: Scale = (0.0, 1.0),
) -> np.ndarray:
    """A band of slices along a random axis set to the background; it starts inside the
    brain's extent so that it crosses the brain."""
    shape = np.asarray(image.shape)
    axis = int(rng.integers(image.ndim))
    share = rng.uniform(*MISSING_WIDTH)
    reach = max(1, int(shape[axis] * share))  # the width at severity 1 places the band
    width = max(1, int(shape[axis] * share * severity)) if severity > 0 else 0
    others = tuple(a for a in range(image.ndim) if a != axis)
    inside = np.flatnonzero(np.asarray(_brain(image, brain, scale)).any(axis=others))
    low, high = (int(inside[0]), int(inside[-1]) + 1) if inside.size else (0, int(shape[axis]))
    start = int(rng.integers(low, max(low + 1, high - reach)))
    if width:
        band = [slice(None)] * image.ndim
        band[axis] = slice(start, start + width)
        image = image.copy()
        image[tuple(band)] = scale[0]
    return image


def add_grid(
    image: np.ndarray,
    rng: np.random.Generator,
    severity: float = 1.0,
    brain: np.ndarray | None = None,
    scale: Scale = (0.0, 1.0),
) -> np.ndarray:
    """Dark lines every `period` voxels along every axis (a multiplicative grid)."""
    period = int(rng.integers(*GRID_PERIOD))
    if severity <= 0:
        return image
    return image * grid_lines(image.shape, period, severity)


def grid_lines(shape: tuple[int, ...], period: int, severity: float = 1.0) -> np.ndarray:
    """The grid's multiplier: 1 - GRID_DEPTH * severity (at least 0) on the lines, else 1."""
    keep_on_line = max(0.0, 1.0 - GRID_DEPTH * severity)
    lines = np.ones(shape, np.float32)
    for axis in range(len(shape)):
        on_line = (np.arange(shape[axis]) % period) == 0
        view = [None] * len(shape)
        view[axis] = slice(None)
        lines = lines * np.where(on_line[tuple(view)], keep_on_line, 1.0)
    return lines


_ADDERS = {"leakage": add_leakage, "missing": add_missing, "grid": add_grid}


def corrupt_scan(
    image: np.ndarray,
    artefacts: Sequence[str],
    rng: np.random.Generator,
    severity: float = 1.0,
    brain: np.ndarray | None = None,
    scale: Scale = (0.0, 1.0),
) -> np.ndarray:
    """One scan with the artefacts applied in ARTEFACTS order from one generator (the phantom's
    corruption at severity 1); the input is not modified. Grid lines return float64 (as the
    phantom always did): corrupt casts back to the input's type."""
    chosen = check_artefacts(artefacts)
    severity = check_severity(severity)
    image = np.array(image, copy=True)
    for name in ARTEFACTS:
        if name in chosen:
            image = _ADDERS[name](image, rng, severity, brain, scale)
    return image


def scan_generator(seed: int, artefact: str, position: int) -> np.random.Generator:
    """The generator of one scan's artefact: seeded by (seed, artefact, position)."""
    return np.random.default_rng((int(seed), ARTEFACTS.index(artefact), int(position)))


def _scan_masks(brain_mask: np.ndarray | None, images: np.ndarray) -> np.ndarray | None:
    if brain_mask is None:
        return None
    mask = np.asarray(brain_mask, dtype=bool)
    spatial = images.shape[1:]
    if mask.shape == spatial:
        return np.broadcast_to(mask, images.shape)
    if mask.shape == images.shape:
        return mask
    raise ArtefactError(
        f"the brain mask has shape {mask.shape}; the scans need {spatial} (one for all) "
        f"or {images.shape} (one per scan)"
    )


def corrupt_scans(
    images: np.ndarray,
    artefact: str,
    severity: float = 1.0,
    seed: int = 0,
    brain_mask: np.ndarray | None = None,
    positions: Sequence[int] | None = None,
) -> Corrupted:
    """corrupt() for scans at given positions of a larger set (default 0..N-1): the position
    seeds each scan's draws, so a batch of a split corrupts as the whole split would."""
    (artefact,) = check_artefacts((artefact,))
    severity = check_severity(severity)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ArtefactError(f"seed must be a whole number >= 0, got {seed!r}")
    images = np.asarray(images)
    if images.ndim < 3:
        raise ArtefactError(f"images must be (N, *spatial) with 2 or 3 spatial axes, got "
                            f"shape {images.shape}")  # fmt: skip
    dtype = images.dtype if np.issubdtype(images.dtype, np.floating) else np.dtype(np.float32)
    clean = images.astype(dtype, copy=False)
    positions = np.arange(len(images)) if positions is None else np.asarray(positions, int)
    if len(positions) != len(images):
        raise ArtefactError(f"{len(positions)} positions for {len(images)} scans")
    masks = _scan_masks(brain_mask, clean)
    scales = np.array([intensity_scale(scan) for scan in clean])
    out = np.empty_like(clean)
    if artefact == "grid":  # one multiplier per period: vectorised over the scans sharing it
        periods = np.array([int(scan_generator(seed, artefact, p).integers(*GRID_PERIOD))
                            for p in positions])  # fmt: skip
        for period in np.unique(periods):
            group = periods == period
            lines = grid_lines(clean.shape[1:], int(period), severity) if severity > 0 else 1.0
            out[group] = (clean[group] * lines).astype(dtype)
    else:
        for i, position in enumerate(positions):
            rng = scan_generator(seed, artefact, position)
            brain = None if masks is None else masks[i]
            out[i] = _ADDERS[artefact](clean[i], rng, severity, brain, tuple(scales[i]))
    tolerance = (CHANGE_TOLERANCE * (scales[:, 1] - scales[:, 0])).reshape(
        -1, *([1] * (clean.ndim - 1))
    )
    changed = np.abs(out.astype(np.float64) - clean) > tolerance
    return Corrupted(images=out, changed=changed, artefact=artefact, severity=severity)


def corrupt(
    images: np.ndarray,
    artefact: str,
    severity: float = 1.0,
    seed: int = 0,
    brain_mask: np.ndarray | None = None,
) -> Corrupted:
    """Scans (N, *spatial), 2D or 3D, with one artefact at a severity (0: unchanged, 1: the
    phantom's strength); brain_mask (spatial or per scan) says where blobs sit and the band
    must cross (default: voxels above BRAIN_LEVEL of the intensity scale). Unknown artefact: an error
    naming the known ones."""
    return corrupt_scans(images, artefact, severity, seed, brain_mask)
