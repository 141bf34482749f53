"""Figures of a longitudinal (aging and disease) analysis: the trajectory strip (each group's
simulated brain at each age, and each disease group minus the controls at the same age), the
frames of the trajectory movie, and the latent loadings of tau_a and each tau_d as bars.

Which slice a strip shows: a 2D scan's one slice; for a volume, the axial slice (read from the
affine, as in brainvae.figures.panels) where the simulated images change most (summed absolute
change from the first age in every group, plus every disease group's absolute difference from
the controls). Arrays and small dataclasses in, a matplotlib Figure (or pixels) out; the
matplotlib object API on the Agg canvas only (no pyplot, no Qt), imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

BAR_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
"""tau_a first, then each tau_d (tab10's first colours)."""
GREY_PERCENTILES = (0.5, 99.5)
"""The grey rows share one display range: these percentiles of every simulated frame."""
DIFFERENCE_PERCENTILE = 99.5
"""The difference rows share one symmetric range: this percentile of their absolute values."""
_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "S": "I", "I": "S"}


@dataclass(frozen=True)
class StripView:
    """Which 2D picture of a scan the strip and the movie show: the cut display axis and the
    slice index (None: a 2D scan, shown whole), the view's name (axial, coronal, sagittal),
    where it sits (mm), the picture's size in mm (width, height), the labels of its left and
    right edges, and why this slice (words for the figure and summary.json)."""

    cut_axis: int | None
    index: int | None
    view: str
    position: str
    size_mm: tuple[float, float]
    sides: tuple[str, str]
    reason: str

    def picture(self, frames: np.ndarray) -> np.ndarray:
        """(T, *scan shape) frames -> (T, H, W) pictures of this view."""
        frames = np.asarray(frames)
        if self.cut_axis is None:
            return frames
        return np.take(frames, self.index, axis=self.cut_axis + 1)

    def describe(self) -> str:
        where = f" ({self.position})" if self.position else ""
        return f"{self.view} slice{where}: {self.reason}"


def change_score(frames: Mapping[str, np.ndarray], control: str) -> np.ndarray:
    """Per voxel, how much the simulation moves there: every group's absolute change from the
    first age to the last, plus every disease group's mean absolute difference from the
    controls at the same ages."""
    score = np.zeros(np.shape(frames[control])[1:], dtype=np.float64)
    for group, stack in frames.items():
        stack = np.asarray(stack, dtype=np.float64)
        score += np.abs(stack[-1] - stack[0])
        if group != control:
            score += np.abs(stack - np.asarray(frames[control], dtype=np.float64)).mean(axis=0)
    return score


def strip_view(
    frames: Mapping[str, np.ndarray],
    control: str,
    affine: np.ndarray | None,
    squeezed_axes: Sequence[int] = (),
) -> StripView:
    """The 2D picture the strip shows (see the module's docstring for the choice)."""
    from brainvae.figures.panels import Geometry

    geometry = Geometry.of(affine, squeezed_axes)
    shape = np.shape(frames[control])[1:]
    zooms, codes = geometry.zooms, geometry.axcodes
    shape3 = geometry.display_shape(shape)
    if len(shape) == 2:
        cut = geometry.squeezed_axes[0] if geometry.squeezed_axes else 0
        rows, columns = (axis for axis in range(3) if axis != cut)
        return StripView(
            None, None, geometry.view_name(cut), geometry.position(cut, 0, shape3),
            (shape[1] * zooms[columns], shape[0] * zooms[rows]),
            (_OPPOSITE[codes[columns]], codes[columns]), "the scans' one slice",
        )  # fmt: skip
    axial = [axis for axis in range(3) if geometry.view_name(axis) == "axial"]
    cut = axial[0] if axial else 0
    score = change_score(frames, control).sum(axis=tuple(a for a in range(3) if a != cut))
    index = int(np.argmax(score))
    rows, columns = (axis for axis in range(3) if axis != cut)
    return StripView(
        cut, index, geometry.view_name(cut), geometry.position(cut, index, shape3),
        (shape[columns] * zooms[columns], shape[rows] * zooms[rows]),
        (_OPPOSITE[codes[columns]], codes[columns]),
        f"slice {index} of {shape[cut]}, where the simulated images change most",
    )  # fmt: skip


def grey_limits(pictures: Mapping[str, np.ndarray]) -> tuple[float, float]:
    """One display range for every group's pictures."""
    values = np.concatenate([np.ravel(p) for p in pictures.values()])
    low, high = np.percentile(values, GREY_PERCENTILES)
    return (float(low), float(high) if high > low else float(low) + 1.0)


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), facecolor="white")
    FigureCanvasAgg(figure)
    return figure


def _years(value: float) -> str:
    return f"{value:.0f} y" if float(value).is_integer() else f"{value:.1f} y"


def _symmetric_limit(values: Sequence[np.ndarray]) -> float:
    """One symmetric display range for signed pictures (1.0 when they are all zero)."""
    if not values:
        return 1.0
    spread = np.concatenate([np.abs(np.asarray(v)).ravel() for v in values])
    limit = float(np.percentile(spread, DIFFERENCE_PERCENTILE))
    return limit if np.isfinite(limit) and limit > 0 else 1.0


def trajectory_strip_figure(
    pictures: Mapping[str, np.ndarray],
    years: np.ndarray,
    control: str,
    view: StripView,
    note: str = "",
) -> Figure:
    """Rows: each group's simulated brain at each age (grey, one range); the controls' change
    since the first age (what aging alone does); each disease group minus the controls at the
    same age (what the disease adds). Signed rows: blue darker, red brighter, one symmetric
    range per kind. Columns: the ages in years. `pictures` are (T, H, W) per group."""
    groups = list(pictures)
    reference = np.asarray(pictures[control], dtype=np.float64)
    first = _years(years[0])
    rows = [(group, np.asarray(pictures[group]), "grey") for group in groups]
    rows.append((f"{control}\nchange since {first}", reference - reference[:1], "change"))
    rows += [
        (f"{group}\nminus {control}", np.asarray(pictures[group]) - reference, "difference")
        for group in groups
        if group != control
    ]
    keys = {
        "grey": ("gray", grey_limits(pictures), "decoded\nintensity"),
        "change": ("RdBu_r", None, f"change\nsince {first}"),
        "difference": ("RdBu_r", None, f"minus\n{control}"),
    }
    n_rows, n_columns = len(rows), len(years)
    width_mm, height_mm = view.size_mm
    panel = 1.25
    panel_height = panel * height_mm / width_mm
    left, right, top, bottom = 1.35, 1.0, 0.95, 0.15
    figure = _figure(left + n_columns * panel + right, top + n_rows * panel_height + bottom)
    figure_width, figure_height = figure.get_size_inches()
    extent = (0.0, width_mm, height_mm, 0.0)
    for r, (label, values, kind) in enumerate(rows):
        cmap, limits, _ = keys[kind]
        if limits is None:
            limit = _symmetric_limit([v for _, v, k in rows if k == kind])
            limits = (-limit, limit)
        for c in range(n_columns):
            ax = figure.add_axes(
                [
                    (left + c * panel) / figure_width,
                    1 - (top + (r + 1) * panel_height) / figure_height,
                    panel / figure_width,
                    panel_height / figure_height,
                ]
            )
            image = ax.imshow(values[c], cmap=cmap, vmin=limits[0], vmax=limits[1],
                              extent=extent, interpolation="nearest")  # fmt: skip
            ax.set_axis_off()
            if r == 0:
                ax.set_title(_years(years[c]), fontsize=8, pad=3)
            if r == 0 and c == 0:
                for x, side, align in (
                    (0.03, view.sides[0], "left"),
                    (0.97, view.sides[1], "right"),
                ):
                    ax.text(x, 0.97, side, transform=ax.transAxes, ha=align, va="top",
                            fontsize=6, color="#ffd24d")  # fmt: skip
        figure.text(
            (left - 0.08) / figure_width,
            1 - (top + (r + 0.5) * panel_height) / figure_height,
            label, ha="right", va="center", fontsize=8,
        )  # fmt: skip
        if r == n_rows - 1 or rows[r + 1][2] != kind:
            span = sum(1 for _, _, k in rows if k == kind)
            _colour_key(
                figure, image, left + n_columns * panel + 0.12,
                top + (r + 1 - span) * panel_height, span * panel_height, keys[kind][2],
            )  # fmt: skip
    title = f"Simulated brains by age ({view.describe()})"
    figure.text(0.5, 1 - 0.12 / figure_height, title, ha="center", va="top", fontsize=9)
    if note:
        figure.text(0.5, 1 - 0.38 / figure_height, note, ha="center", va="top", fontsize=7.5,
                    color="#a00000")  # fmt: skip
    return figure


def _colour_key(figure: Figure, image: Any, x: float, y: float, height: float, label: str) -> None:
    """A slim colour bar at (x, y) inches from the top left, `height` inches tall."""
    if image is None:
        return
    width, total = figure.get_size_inches()
    inset = min(0.1, height / 6)
    ax = figure.add_axes(
        [x / width, 1 - (y + height - inset) / total, 0.1 / width, (height - 2 * inset) / total]
    )
    bar = figure.colorbar(image, cax=ax)
    bar.ax.tick_params(labelsize=6)
    bar.set_label(label, fontsize=6.5)


def movie_frames(
    pictures: Mapping[str, np.ndarray],
    years: np.ndarray,
    view: StripView,
    note: str = "",
    dpi: int = 100,
) -> np.ndarray:
    """(T, H, W) uint8 greyscale frames: the groups side by side at one age, the age in the
    title of each frame, one display range for every frame."""
    from PIL import Image

    groups = list(pictures)
    grey = grey_limits(pictures)
    width_mm, height_mm = view.size_mm
    panel = 2.0
    panel_height = panel * height_mm / width_mm
    frames = []
    for t, age in enumerate(years):
        figure = _figure(len(groups) * panel + 0.2, panel_height + 0.75 + (0.2 if note else 0))
        figure_width, figure_height = figure.get_size_inches()
        for k, group in enumerate(groups):
            ax = figure.add_axes(
                [
                    (0.1 + k * panel) / figure_width,
                    0.1 / figure_height,
                    panel / figure_width,
                    panel_height / figure_height,
                ]
            )
            ax.imshow(pictures[group][t], cmap="gray", vmin=grey[0], vmax=grey[1],
                      extent=(0.0, width_mm, height_mm, 0.0), interpolation="nearest")  # fmt: skip
            ax.set_axis_off()
            ax.set_title(group, fontsize=9, pad=2)
        figure.text(0.5, 1 - 0.08 / figure_height, f"Simulated at age {_years(age)}",
                    ha="center", va="top", fontsize=11, fontweight="bold")  # fmt: skip
        if note:
            figure.text(0.5, 1 - 0.33 / figure_height, note, ha="center", va="top", fontsize=6.5)
        figure.canvas.draw()
        rgba = np.asarray(figure.canvas.buffer_rgba())
        frames.append(np.asarray(Image.fromarray(rgba).convert("L"), dtype=np.uint8))
    return np.stack(frames)


def loadings_figure(
    loadings: pd.DataFrame, stabilities: Mapping[str, float], stable: float
) -> Figure:
    """Each latent's component of tau_a and of each tau_d as grouped bars; the legend gives
    each direction's split-half stability and whether it reaches `stable`."""
    values = loadings.to_numpy(dtype=np.float64)
    latents, directions = values.shape
    figure = _figure(max(5.0, 1.6 + 0.55 * latents * max(directions, 2) / 2), 3.8)
    ax = figure.add_axes([0.11, 0.16, 0.6, 0.7])
    width = 0.8 / directions
    x = np.arange(latents)
    for k, name in enumerate(loadings.columns):
        value = stabilities.get(str(name), float("nan"))
        if not np.isfinite(value):
            verdict = "stability not measured"
        elif value >= stable:
            verdict = f"stability {value:.2f}: stable"
        else:
            verdict = f"stability {value:.2f}: NOT stable"
        ax.bar(x - 0.4 + (k + 0.5) * width, values[:, k], width,
               color=BAR_COLOURS[k % len(BAR_COLOURS)], label=f"{name}\n({verdict})")  # fmt: skip
    ax.axhline(0.0, color="#444444", linewidth=0.6)
    ax.set_xticks(x, [str(i) for i in loadings.index])
    ax.set_xlabel("latent", fontsize=9)
    ax.set_ylabel("loading (component of the unit direction)", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.set_ylim(-1.05, 1.05)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False,
              labelspacing=1.0)  # fmt: skip
    ax.set_title(
        f"Aging (tau_a) and disease (tau_d) directions\nstable: split-half stability >= "
        f"{stable:.2f}",
        fontsize=9,
    )
    return figure
