"""What the projective fields dock writes for a reader: the legend (what each colour means,
which colour limits are shown, the outline colour), the line on the canvas, the status after a
sweep and the four bands at the cursor. Plain functions of the run; the dock places the text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CANVAS_TITLE = "Projective field"
"""The canvas line starts with this, so the dock only ever clears its own text."""


def legend_html(scheme: str, limits: str, outline: tuple[tuple[float, float, float], str]) -> str:
    """The legend as rich text: a swatch per colour, how opacity reads, the colour limits and
    the outline colour (rgb, name)."""
    from brainvae.analysis.projective_colour import colour_legend

    lines = []
    for rgb, text in colour_legend(scheme, limits):
        if rgb is None:
            lines.append(text)
            continue
        lines.append(f'<span style="color:{_hex(rgb)}">&#9632;&#9632;</span> {text}')
    rgb, name = outline
    lines.append("opacity over the dimmed mean brain = the strongest band")
    lines.append(f'<span style="color:{_hex(rgb)}">&#9633;&#9633;</span> {name}: ROI outlines')
    return "<br>".join(lines)


def canvas_text(
    run: Any, index: int, in_3d: bool, outline: str | None, floor_3d: float, outline_name: str
) -> str:
    """The line on the canvas: which latent, what each colour and the opacity mean (in 3D:
    the brightest voxel per ray from floor_3d of its limit), and which ROI the outline shows
    (`outline`: an ROI name, "every ROI", or None without ROIs)."""
    from brainvae.analysis.projective_colour import band_names

    name = run.result.latent_names[index]
    negative, positive, large = band_names(run.scheme)
    state = "" if run.active[index] else " (INACTIVE: means little)"
    limits = "per latent" if run.limits_mode == "per-latent" else "shared"
    opacity = f"opacity = strength (colour limits {limits})"
    if in_3d:
        opacity = f"3D: brightest voxel per ray, from {floor_3d:.0%} of its limit\ngrey: brain"
    # short lines: the canvas of a laptop screen is about 500 pixels wide
    text = (
        f"{CANVAS_TITLE} {name}{state}\n"
        f"{positive} = small + c, {negative} = small \u2212 c\n"
        f"{large} = large |c|, grey/white = all alike\n{opacity}"
    )
    if outline is not None:
        text += f"\n{outline_name} outline: {outline}"
    return text


def show_canvas_text(viewer: Any, text: str | None) -> None:
    """Put the text on the canvas (top left, small, white), or clear ours (None)."""
    overlay = _text_overlay(viewer)
    if overlay is None:
        return
    if text is None:
        if overlay.text.startswith(CANVAS_TITLE):
            overlay.text, overlay.visible = "", False
        return
    overlay.text = text
    overlay.position = "top_left"
    overlay.font_size = 9
    overlay.color = (1.0, 1.0, 1.0, 1.0)
    overlay.visible = True


def cursor_text(values: tuple[str, np.ndarray] | None) -> str:
    """The ROI and the four bands per unit var(c) at the cursor ("" off the map)."""
    if values is None:
        return ""
    region, bands = values
    prefix = f"{region}: " if region else ""
    return (
        f"{prefix}variance per unit var(c): small - {bands[0]:.3g}, small + {bands[1]:.3g}, "
        f"large - {bands[2]:.3g}, large + {bands[3]:.3g}"
    )


def result_text(run: Any) -> str:
    """The status after a sweep: what was swept, which latents are inactive (and why that
    matters), which fell back to prior units, each active latent's top ROI, the far sides."""
    result = run.result
    names = result.latent_names
    active = run.active
    colour_limits = "per latent" if run.limits_mode == "per-latent" else "shared by all latents"
    text = (
        f"{result.n_latents} latent(s) swept around the {result.base_label} code, "
        f"{result.total_counts} decodes each; colour limits {colour_limits}. "
    )
    if run.activity is not None:
        text += f"{run.activity.describe()}. "
    inactive = [name for name, a in zip(names, active, strict=True) if not a]
    if inactive:
        text += f"Inactive ({', '.join(inactive)}): their fields mean little, no ROI reported. "
    if result.fallback_names:
        text += f"Swept in prior units (population sd ~0): {', '.join(result.fallback_names)}. "
    if run.matrix is not None:
        top = "; ".join(
            f"{name}: {run.roi_names[int(np.nanargmax(run.matrix[:, k]))]}"
            for k, name in enumerate(names)
            if active[k] and np.isfinite(run.matrix[:, k]).any()
        )
        text += f"Most enriched ROI: {top or 'none'}. "
    ratios = [
        f"{name} {entry['large_negative_over_positive']:.2g}"
        for name, entry in run.asymmetry.items()
        if entry["large_negative_over_positive"] is not None
    ]
    if ratios:
        text += f"Far sides, large - / large + per unit var(c): {', '.join(ratios)}."
    return text.strip()


def _hex(rgb: Any) -> str:
    return "#" + "".join(f"{round(255 * v):02x}" for v in rgb)


def _text_overlay(viewer: Any) -> Any:
    """The canvas's text overlay (viewer.canvas.overlays.text from napari 0.9, before that
    viewer.text_overlay); None when this napari has neither."""
    overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)
    text = getattr(overlays, "text", None)
    return text if text is not None else getattr(viewer, "text_overlay", None)
