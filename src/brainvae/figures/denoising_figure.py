"""The denoising montage (the mouse-brain study's Fig. 2): rows = artefact types, columns =
the clean scan, the corrupted input and each model's reconstruction of it, with a small table
of the split's mean scores under it.

Which picture of a scan: a 2D scan whole; for a volume, in each row the axial slice (read
from the affine, as in brainvae.figures.panels) where most of that row's artefact shows in the
plane beside unchanged brain (visible_slices: a slice the artefact covers whole, such as a grid
plane, says little); when no axial slice shows any (a missing band of axial slices) the
coronal or sagittal slice that does; the view and slice are named in the row's label. One grey scale for
every panel: the clean scan's minimum to its maximum (brighter artefacts saturate white).
Arrays and tables in, a matplotlib Figure out (object API on the Agg canvas; no pyplot, no Qt).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

WIDTH_IN = 7.1
"""180 mm: a journal's two-column width."""
DPI = 300
LABEL_IN = 0.55
"""Width of the row labels on the left."""
TABLE_ROW_IN = 0.19
NOTE_CHARACTERS = 165
"""The note under the table is wrapped at this many characters a line (5.2 pt on 180 mm)."""
_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "S": "I", "I": "S"}


@dataclass(frozen=True)
class RowView:
    """How one row shows its scan: the cut display axis and slice (None: 2D, whole), the
    label's words and the picture's left and right side labels."""

    cut_axis: int | None
    index: int | None
    words: str
    sides: tuple[str, str]
    size_mm: tuple[float, float]

    def picture(self, image: np.ndarray) -> np.ndarray:
        return image if self.cut_axis is None else np.take(image, self.index, axis=self.cut_axis)


def visible_slices(changed: np.ndarray, brain: np.ndarray | None, cut: int) -> np.ndarray:
    """Per slice across axis `cut`: changed brain voxels x (1 - the share of the slice's brain
    they are). High where much of the artefact shows in the plane beside unchanged brain; 0 for
    a slice the artefact does not touch and for one it covers whole (a grid plane, a slice
    inside the missing band: a uniformly darker or black picture says little)."""
    others = tuple(a for a in range(3) if a != cut)
    inside = np.ones(changed.shape, bool) if brain is None else np.asarray(brain, bool)
    counts = (changed & inside).sum(axis=others).astype(np.float64)
    area = inside.sum(axis=others).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(area > 0, counts / np.maximum(area, 1), 0.0)
    return counts * (1.0 - share)


def row_view(
    changed: np.ndarray,
    affine: np.ndarray | None = None,
    squeezed_axes: Sequence[int] = (),
    brain: np.ndarray | None = None,
) -> RowView:
    """The picture of one row (see the module's docstring for the slice)."""
    from brainvae.figures.panels import Geometry

    geometry = Geometry.of(affine, squeezed_axes)
    changed = np.asarray(changed, bool)
    shape = changed.shape
    zooms, codes = geometry.zooms, geometry.axcodes
    shape3 = geometry.display_shape(shape)
    if len(shape) == 2:
        cut = geometry.squeezed_axes[0] if geometry.squeezed_axes else 0
        rows, columns = (axis for axis in range(3) if axis != cut)
        where = geometry.position(cut, 0, shape3)
        words = f"{geometry.view_name(cut)}" + (f", {where}" if where else "")
        return RowView(
            None, None, words, (_OPPOSITE[codes[columns]], codes[columns]),
            (shape[1] * zooms[columns], shape[0] * zooms[rows]),
        )  # fmt: skip
    axial = [axis for axis in range(3) if geometry.view_name(axis) == "axial"]
    preferred = axial[0] if axial else 0
    scores = {cut: visible_slices(changed, brain, cut) for cut in range(3)}
    cut = preferred
    if not scores[preferred].any():  # axial planes show nothing in-plane: another view might
        best = max(range(3), key=lambda axis: scores[axis].max())
        cut = best if scores[best].any() else preferred
    if scores[cut].any():
        index, why = int(np.argmax(scores[cut])), "most artefact in view"
    else:
        counts = changed.sum(axis=tuple(a for a in range(3) if a != cut))
        index = int(np.argmax(counts)) if counts.any() else shape[cut] // 2
        why = "most changed" if counts.any() else "middle"
    where = geometry.position(cut, index, shape3)
    rows, columns = (axis for axis in range(3) if axis != cut)
    words = f"{geometry.view_name(cut)} slice {index} of {shape[cut]} ({why})"
    if where:
        words += f", {where}"
    return RowView(
        cut, index, words, (_OPPOSITE[codes[columns]], codes[columns]),
        (shape[columns] * zooms[columns], shape[rows] * zooms[rows]),
    )  # fmt: skip


def _fit(text: str, inches: float, points: float) -> str:
    """`text` wrapped to lines that fit 85 % of `inches` at a font of `points` (about 0.6 em
    a character), so labels of narrow panels do not run into their neighbours."""
    import textwrap

    characters = max(6, int(0.85 * inches * 72 / (points * 0.6)))
    return textwrap.fill(text, characters) if len(text) > characters else text


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), facecolor="white")
    FigureCanvasAgg(figure)
    return figure


def score_table(summary: pd.DataFrame, inputs: pd.DataFrame | None, models: Sequence[str]):
    """(row labels, column labels, cells): per artefact the input's CW-SSIM and, per model, its
    CW-SSIM against the clean scan and the share of the artefact it reproduced."""
    artefacts = [a for a in dict.fromkeys(summary["artefact"]) if a != "none"]
    columns = ["input CW-SSIM"] + [f"{m}\nCW-SSIM | reproduced" for m in models]
    cells = []
    for artefact in artefacts:
        row = ["-"]
        if inputs is not None:
            found = inputs[inputs["artefact"] == artefact]
            row = [f"{found['cw_ssim'].iloc[0]:.3f}" if len(found) else "-"]
        for model in models:
            found = summary[(summary["artefact"] == artefact) & (summary["model"] == model)]
            if len(found):
                values = found.iloc[0]
                row.append(f"{values['cw_ssim']:.3f} | {values['artefact_reproduced']:.2f}")
            else:
                row.append("-")
        cells.append(row)
    clean = summary[summary["artefact"] == "none"]
    if len(clean):
        row = ["1"]
        for model in models:
            found = clean[clean["model"] == model]
            row.append(f"{found['cw_ssim'].iloc[0]:.3f} | -" if len(found) else "-")
        cells.append(row)
        artefacts.append("none (clean)")
    return artefacts, columns, cells


def denoising_figure(
    pictures: Mapping[str, np.ndarray],
    changed: Mapping[str, np.ndarray],
    columns: Sequence[str],
    summary: pd.DataFrame,
    inputs: pd.DataFrame | None = None,
    *,
    affine: np.ndarray | None = None,
    squeezed_axes: Sequence[int] = (),
    descriptions: Mapping[str, str] | None = None,
    title: str = "",
    note: str = "",
    brain: np.ndarray | None = None,
) -> Figure:
    """The montage: pictures {artefact: (C, *spatial)} with `columns` (clean, corrupted, then
    the models), changed {artefact: (*spatial) bool} (which slice a volume shows), summary
    (DenoisingComparison.summary()) and inputs (input_summary()) for the table under it;
    descriptions {model: words} under each model's column title; brain (spatial bool) is where
    a volume's slices are judged (visible_slices)."""
    from brainvae.figures.panels import FigureError

    artefacts = list(pictures)
    if not artefacts:
        raise FigureError("the montage needs at least one artefact row")
    models = list(columns[2:])
    descriptions = dict(descriptions or {})
    views = {a: row_view(changed[a], affine, squeezed_axes, brain) for a in artefacts}
    n_columns = len(columns)
    panel_w = (WIDTH_IN - LABEL_IN - 0.1) / n_columns
    heights = [panel_w * views[a].size_mm[1] / views[a].size_mm[0] for a in artefacts]
    # with many models the column titles and descriptions wrap to their panel's width
    labels = {
        name: _fit(
            {"clean": "clean scan", "corrupted": "corrupted input"}.get(name, name), panel_w, 7.5
        )
        for name in columns
    }
    described = {name: _fit(words, panel_w, 5.5) for name, words in descriptions.items()}
    label_lines = max(text.count("\n") + 1 for text in labels.values())
    description_lines = max([text.count("\n") + 1 for text in described.values()] or [0])
    head_in = 0.12 + 0.12 * label_lines + 0.09 * description_lines
    title_in = 0.3 if title else 0.05
    row_labels, column_labels, cells = score_table(summary, inputs, models)
    table_in = TABLE_ROW_IN * (len(cells) + 2.2) + 0.25
    note_in = 0.42 if note else 0.1
    height = title_in + head_in + sum(heights) + table_in + note_in
    figure = _figure(WIDTH_IN, height)
    clean = np.asarray(pictures[artefacts[0]][0], dtype=np.float64)
    low, high = float(clean.min()), float(clean.max())
    high = high if high > low else low + 1.0
    if title:
        figure.text(0.5, 1 - 0.16 / height, title, ha="center", va="center", fontsize=8.5)
    top = 1 - (title_in + head_in) / height
    for c, name in enumerate(columns):
        x = (LABEL_IN + (c + 0.5) * panel_w) / WIDTH_IN
        above = 0.05 + 0.09 * description_lines + 0.04
        figure.text(x, top + above / height, labels[name], ha="center", va="bottom",
                    fontsize=7.5, weight="bold")  # fmt: skip
        if name in described:
            figure.text(x, top + 0.05 / height, described[name], ha="center", va="bottom",
                        fontsize=5.5, color="#444444")  # fmt: skip
    y = top
    for r, artefact in enumerate(artefacts):
        view = views[artefact]
        panel_h = heights[r]
        y -= panel_h / height
        figure.text(0.08 / WIDTH_IN, y + panel_h / 2 / height, artefact, rotation=90,
                    ha="left", va="center", fontsize=8, weight="bold")  # fmt: skip
        figure.text(0.3 / WIDTH_IN, y + panel_h / 2 / height, _fit(view.words, panel_h, 5),
                    rotation=90,
                    ha="left", va="center", fontsize=5, color="#444444")  # fmt: skip
        for c in range(n_columns):
            box = [(LABEL_IN + c * panel_w) / WIDTH_IN, y, panel_w / WIDTH_IN, panel_h / height]
            axes = figure.add_axes(box)
            image = view.picture(np.asarray(pictures[artefact][c], dtype=np.float64))
            axes.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest",
                        aspect="auto")  # fmt: skip
            axes.set_xticks([])
            axes.set_yticks([])
            for spine in axes.spines.values():
                spine.set_linewidth(0.3)
            if r == 0 and c == 0:
                for (x, side), where in zip(((0.04, "left"), (0.96, "right")), view.sides,
                                            strict=True):  # fmt: skip
                    axes.text(x, 0.96, where, transform=axes.transAxes, ha=side, va="top",
                              color="yellow", fontsize=6)  # fmt: skip
    table_top = y - 0.12 / height
    left = LABEL_IN + 0.45  # the table's row labels sit left of its box
    table_box = [left / WIDTH_IN, table_top - (table_in - 0.12) / height,
                 (WIDTH_IN - left - 0.1) / WIDTH_IN, (table_in - 0.25) / height]  # fmt: skip
    axes = figure.add_axes(table_box)
    axes.axis("off")
    table = axes.table(cellText=cells, rowLabels=row_labels, colLabels=column_labels,
                       loc="upper center", cellLoc="center")  # fmt: skip
    table.auto_set_font_size(False)
    table.set_fontsize(5.5)
    for (row, _col), cell in table.get_celld().items():
        cell.set_linewidth(0.3)
        cell.set_height(1.0 / (len(cells) + 2.2) * (2.0 if row == 0 else 1.0))
    if note:
        import textwrap

        figure.text(0.1 / WIDTH_IN, 0.06 / height, textwrap.fill(note, NOTE_CHARACTERS),
                    ha="left", va="bottom", fontsize=5.2, color="#333333")  # fmt: skip
    return figure


def figure_note(severity: float, mask_note: str, seed: int) -> str:
    """The words under the table: what the numbers are."""
    return (
        f"Mean over the scans. CW-SSIM against the clean scan inside the brain ({mask_note}); "
        "reproduced = share of the artefact (corrupted - clean) that passes into the "
        "reconstruction, measured from the model's reconstruction of the clean scan over the "
        f"changed voxels (0: removed, 1: copied). Severity {severity:g}, seed {seed}."
    )
