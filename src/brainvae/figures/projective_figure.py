"""A publication figure of projective fields: each latent's colour map over the dimmed population
mean, oriented and labelled, with a colour key. One function draws the dock's "Export figure"
and the command line's montage.png (saved by brainvae.exports.figures); the panels are cut and
oriented in panels.py.

Orientation: brainvae reads every image into one display orientation (brainvae.data.io.nifti:
array axes run Inferior, Posterior, Right, so axis 0 walks axial slices from the top down, rows
put anterior at the top and columns put the subject's right on the right, the neurological
convention). Which end of each axis is L/R, A/P or S/I, which view a cut is and where it sits in
mm are read from the affine (nibabel's aff2axcodes) when one is given, so a grid in another
orientation is still labelled right; without an affine the display orientation is assumed and
slices are given by index only.

Layout: 180 mm (a journal's double column) wide by default, saved at >= 300 dpi. 2D data: one
panel per latent (up to four a row). 3D data: three orthogonal slices per latent (axial, coronal,
sagittal; two latents a row when there are several) through chosen slices or, by default, each
latent's slices of largest total variance. All panels share one mm scale, so anatomy keeps its
proportions. The colours are alpha-blended over the dimmed mean (projective_colour.over_anatomy):
hue = which bands, opacity = the strongest band. Inactive latents are titled and framed in grey.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.figures.panels import (
    FigureError,
    Geometry,
    chosen_slices,
    dimmed,
    latent_panels,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_WIDTH_MM = 180.0
"""A journal's double column (7.09 in)."""
DEFAULT_DPI = 300
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
INACTIVE_GREY = "#8c8c8c"
PANEL_LABEL = "panel"
"""Every slice's axes are labelled "panel <latent> <view>" (the key's strips "key <band>")."""
_UNITS = {"sd": "population sd", "prior": "prior units"}

# layout, in inches
_MARGIN = 0.1
_PANEL_GAP = 0.04
_GROUP_GAP = 0.2
_TITLE = 0.17
_LIMITS_LINE = 0.12
_SUBTITLE = 0.13
_ROW_GAP = 0.06
_MAX_PANEL_HEIGHT = 3.0
_KEY_STRIP = (0.85, 0.09)
_KEY_ROW = 0.36
_NOTE_LINE = 0.115
_NOTES = 4


def _band_texts(result: Any, scheme: str) -> list[tuple[int, str, str]]:
    """(band position in COLOUR_BANDS, colour name and band, its c range) in key order."""
    from brainvae.analysis.projective_colour import band_names

    settings = result.settings
    units = _UNITS.get(settings.units, settings.units)
    names = band_names(scheme)
    split = f"{settings.split:g}"
    return [
        (1, f"{names[1]}: small positive c", f"0 to {split} {units}"),
        (0, f"{names[0]}: small negative c", f"\u2212{split} to 0 {units}"),
        (2, f"{names[2]}: large |c|", f"|c| > {split} (both signs, to {settings.high:g})"),
    ]


def _short(value: float) -> str:
    """2.5e-3, not 0.0025: limits span decades."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}".replace("-", "\u2212")


def projective_figure(
    result: Any,
    colour: np.ndarray,
    limits: np.ndarray,
    *,
    scheme: str = "paper",
    limits_mode: str = "per-latent",
    mean_image: np.ndarray | None = None,
    affine: np.ndarray | None = None,
    squeezed_axes: Sequence[int] = (),
    active: Sequence[bool] | np.ndarray | None = None,
    slices: Any = None,
    latents: Sequence[int] | None = None,
    width_mm: float = DEFAULT_WIDTH_MM,
) -> Figure:
    """The figure of a ProjectiveField `result` with its (K, *spatial, 3) colour composite and
    (K, 3) limits: `latents` (positions among the swept, default all), `slices` (None: each
    latent's slices of largest variance; one index per axis for all latents, or (K, 3)),
    over the dimmed `mean_image` on the grid of `affine` (squeezed_axes for 2D slice data)."""
    from matplotlib import patheffects
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    colour = np.asarray(colour, dtype=np.float32)
    count = int(result.n_latents)
    spatial = tuple(result.spatial_shape)
    if colour.shape != (count, *spatial, 3):
        raise FigureError(f"colour {colour.shape} must be ({count}, {spatial}, 3): RGB per latent")
    if len(spatial) not in (2, 3):
        raise FigureError(f"maps must be 2D or 3D, got {len(spatial)} spatial axes")
    limits = np.asarray(limits, dtype=np.float64).reshape(-1, 3)
    if len(limits) == 1:
        limits = np.repeat(limits, count, axis=0)
    shown = list(range(count)) if latents is None else [int(k) for k in latents]
    if not shown or any(not 0 <= k < count for k in shown):
        raise FigureError(f"latents must be positions 0..{count - 1} among the swept, got {shown}")
    flags = np.ones(count, bool) if active is None else np.asarray(active, dtype=bool)
    geometry = Geometry.of(affine, squeezed_axes)
    picks = chosen_slices(slices, np.asarray(result.total_variance), count)
    grey = dimmed(mean_image, spatial)
    names = result.latent_names
    groups = [latent_panels(colour[k], grey, geometry, picks[k]) for k in shown]

    # ---- layout (inches): groups of panels in rows, all panels on one mm scale -------------
    width = float(width_mm) / 25.4
    per_group = len(groups[0])
    if per_group == 1:
        per_row = min(len(groups), 4 if len(groups) <= 16 else 6)
    else:
        per_row = 1 if len(groups) == 1 else (2 if len(groups) <= 12 else 3)
    group_mm = sum(panel.size_mm[0] for panel in groups[0])
    free = width - 2 * _MARGIN - (per_row - 1) * _GROUP_GAP - per_row * (per_group - 1) * _PANEL_GAP
    tallest_mm = max(panel.size_mm[1] for panel in groups[0])
    scale = min(free / (per_row * group_mm), _MAX_PANEL_HEIGHT / tallest_mm)  # inches per mm
    group_width = group_mm * scale + (per_group - 1) * _PANEL_GAP
    row_width = per_row * group_width + (per_row - 1) * _GROUP_GAP
    left = (width - row_width) / 2
    limits_line = _LIMITS_LINE if limits_mode == "per-latent" else 0.0
    row_height = _TITLE + limits_line + _SUBTITLE + tallest_mm * scale + _ROW_GAP
    rows = -(-len(groups) // per_row)
    notes = _NOTES
    key_height = 0.08 + _KEY_ROW + notes * _NOTE_LINE + 0.05
    height = 0.06 + rows * row_height + key_height

    figure = Figure(figsize=(width, height), facecolor="white")
    FigureCanvasAgg(figure)

    def box(x: float, y: float, w: float, h: float) -> list[float]:
        """Figure fractions of a box given in inches from the top left."""
        return [x / width, 1.0 - (y + h) / height, w / width, h / height]

    def text(x: float, y: float, words: str, **style: Any) -> None:
        figure.text(x / width, 1.0 - y / height, words, **style)

    for place, (k, panels) in enumerate(zip(shown, groups, strict=True)):
        row, column = divmod(place, per_row)
        x = left + column * (group_width + _GROUP_GAP)
        y = 0.06 + row * row_height
        inactive = not flags[k]
        title = f"{names[k]}  (inactive: its field means little)" if inactive else names[k]
        text(
            x + group_width / 2, y + _TITLE * 0.8, title, ha="center", va="baseline",
            fontsize=7.5, fontweight="bold", color=INACTIVE_GREY if inactive else "black",
        )  # fmt: skip
        if limits_line:
            small_negative, small_positive, large = (_short(v) for v in limits[k])
            text(
                x + group_width / 2, y + _TITLE + limits_line * 0.75,
                f"limits + {small_positive}   \u2212 {small_negative}   large {large}",
                ha="center", va="baseline", fontsize=5.2, color="#444444",
            )  # fmt: skip
        top = y + _TITLE + limits_line
        for panel in panels:
            panel_width, panel_height = (size * scale for size in panel.size_mm)
            text(
                x + panel_width / 2, top + _SUBTITLE * 0.75, panel.subtitle,
                ha="center", va="baseline", fontsize=5.5, color="#222222",
            )  # fmt: skip
            axes = figure.add_axes(box(x, top + _SUBTITLE, panel_width, panel_height))
            axes.set_label(f"{PANEL_LABEL} {names[k]} {panel.view}")
            axes.imshow(
                panel.picture, interpolation="nearest", aspect="auto",
                extent=(0.0, panel.size_mm[0], panel.size_mm[1], 0.0),
            )  # fmt: skip
            axes.set_xticks([])
            axes.set_yticks([])
            for spine in axes.spines.values():
                spine.set_visible(inactive)
                spine.set_color(INACTIVE_GREY)
                spine.set_linewidth(1.2)
            outline = [patheffects.withStroke(linewidth=1.2, foreground="black")]
            for side, (where, align) in zip(
                panel.sides, ((0.03, "left"), (0.97, "right")), strict=True
            ):
                axes.text(
                    where, 0.5, side, transform=axes.transAxes, ha=align, va="center",
                    fontsize=6, fontweight="bold", color="white", path_effects=outline,
                )  # fmt: skip
            if panel.index is not None:
                axes.text(
                    0.97, 0.03, f"slice {panel.index}", transform=axes.transAxes, ha="right",
                    va="bottom", fontsize=4.8, color="#d0d0d0", path_effects=outline,
                )  # fmt: skip
            x += panel_width + _PANEL_GAP
    _draw_key(figure, result, limits, scheme, limits_mode, slices is None, box, text, height)
    return figure


def _draw_key(
    figure: Any,
    result: Any,
    limits: np.ndarray,
    scheme: str,
    limits_mode: str,
    largest: bool,
    box: Any,
    text: Any,
    height: float,
) -> None:
    """The colour key at the bottom: per band a ramp from nothing to full colour with its c
    range and limit, then how mixes, opacity, limits, slices and sides read."""
    from brainvae.analysis.projective_colour import COLOUR_SCHEMES

    colours = COLOUR_SCHEMES[scheme]
    settings = result.settings
    units = _UNITS.get(settings.units, settings.units)
    notes = _NOTES
    top = height - (_KEY_ROW + notes * _NOTE_LINE + 0.05)
    column_width = (figure.get_figwidth() - 2 * _MARGIN) / 3
    ramp = np.linspace(0.0, 1.0, 64, dtype=np.float32)[None, :, None]
    for place, (band, name, span) in enumerate(_band_texts(result, scheme)):
        x = _MARGIN + place * column_width
        strip = figure.add_axes(box(x, top, *_KEY_STRIP))
        strip.set_label(f"key {name.split(':')[0]}")
        strip.imshow(ramp * colours[band][None, None, :], aspect="auto", interpolation="nearest")
        strip.set_xticks([])
        strip.set_yticks([])
        limit = "limit" if limits_mode == "per-latent" else _short(float(limits[0, band]))
        text(x, top + _KEY_STRIP[1] + 0.1, "0", fontsize=5.5, ha="left", va="baseline")
        text(
            x + _KEY_STRIP[0], top + _KEY_STRIP[1] + 0.1, f"\u2265 {limit}",
            fontsize=5.5, ha="right", va="baseline",
        )  # fmt: skip
        text(x + _KEY_STRIP[0] + 0.06, top + 0.07, name, fontsize=6.5, va="baseline")
        text(x + _KEY_STRIP[0] + 0.06, top + 0.19, span, fontsize=5.5, va="baseline")
    if limits_mode == "per-latent":
        limit_note = (
            "Colour limits per latent: each band's 99.5th percentile, under each title as small +, "
            "small \u2212, large"
        )
    else:
        limit_note = "Colour limits shared by all latents: each band's 99.5th percentile"
    where = (
        "slices through each latent's largest variance"
        if largest
        else "slices as chosen, the same for every latent"
    )
    lines = [
        "Hue = which bands of c move the voxel (mixes: grey/white = all three alike); opacity "
        "over the dimmed population mean = the strongest band relative to its colour limit.",
        f"{limit_note} (variance of the decoded images, intensity\u00b2).",
        f"Sweep: c from {settings.low:g} to {settings.high:g} {units} around the "
        f"{result.base_label} code; small and large split at |c| = {settings.split:g}.",
        f"Neurological convention: the subject's right on the right (sides as marked); {where}; "
        "slice numbers count from 0.",
    ]
    for line, words in enumerate(lines):
        text(
            _MARGIN, top + _KEY_ROW + (line + 0.8) * _NOTE_LINE, words,
            fontsize=5.8, ha="left", va="baseline", color="#222222",
        )  # fmt: skip
