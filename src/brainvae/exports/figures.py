"""Figures saved as files: the projective-field figure as PNG, PDF or SVG, written whole or not
at all (brainvae.atomic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from brainvae.atomic import atomic_file
from brainvae.figures.panels import FigureError
from brainvae.figures.projective_figure import DEFAULT_DPI, FIGURE_SUFFIXES, projective_figure


def save_projective_figure(
    path: str | Path,
    result: Any,
    colour: np.ndarray,
    limits: np.ndarray,
    *,
    dpi: int = DEFAULT_DPI,
    **options: Any,
) -> Path:
    """Draw projective_figure(result, colour, limits, **options) and save it as PNG, PDF or
    SVG (by the suffix) at `dpi` (PNG pixels: width_mm / 25.4 x dpi wide)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FIGURE_SUFFIXES:
        raise FigureError(
            f"{path.name}: a figure is saved as {', '.join(FIGURE_SUFFIXES)} (by the file's "
            f"suffix), not {suffix or 'a name without suffix'}"
        )
    if dpi < 72:
        raise FigureError(f"dpi must be at least 72, got {dpi}")
    figure = projective_figure(result, colour, limits, **options)
    with atomic_file(path) as temporary:
        figure.savefig(temporary, dpi=dpi, format=suffix[1:], facecolor="white")
    return path
