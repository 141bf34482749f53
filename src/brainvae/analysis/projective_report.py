"""What a projective-field run writes: NIfTI maps on the dataset's grid, a montage, the tables.

Shared by `brainvae projective` and the Projective fields dock so both write the same folder:
per swept latent zK_small_negative / zK_small_positive / zK_large.nii.gz (per-voxel variance of
each band) and zK_colour.nii.gz (the colour composite, RGB on a last axis of 3), montage.png
(the composites side by side, each named; volumes show their middle axial slice),
projective.csv (ROI x latent enrichment, when ROIs were given) and summary.json.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainvae.data.io.output_folder import atomic_output_folder

MONTAGE_LABEL_HEIGHT = 14
"""Pixels above each montage tile for its latent's name."""


def projective_summary(
    result: Any,
    limits: np.ndarray,
    scheme: str,
    matrix: np.ndarray | None = None,
    roi_names: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What summary.json holds: the sweep, the colour rule and each latent's top ROI."""
    from brainvae.analysis.projective_field import BAND_NAMES

    settings = result.settings
    info: dict[str, Any] = {
        "latents": list(result.latent_names),
        "base": result.base_label,
        "base_code": [float(v) for v in result.base],
        "range": [float(settings.low), float(settings.high)],
        "step": float(settings.step),
        "split": float(settings.split),
        "units": settings.units,
        "scale": {
            name: float(s) for name, s in zip(result.latent_names, result.scale, strict=True)
        },
        "decodes_per_latent": int(settings.values().size),
        "band_counts": {
            band: int(n) for band, n in zip(BAND_NAMES, result.band_counts, strict=True)
        },
        "colour_scheme": scheme,
        "band_limits": {band: float(v) for band, v in zip(BAND_NAMES, limits, strict=True)},
    }
    if matrix is not None:
        info["most_enriched_roi"] = {
            name: (
                roi_names[int(np.nanargmax(matrix[:, k]))]
                if np.isfinite(matrix[:, k]).any()
                else None
            )
            for k, name in enumerate(result.latent_names)
        }
    info.update(extra or {})
    return info


def montage_picture(colour: np.ndarray, names: Sequence[str], gap: int = 2) -> np.ndarray:
    """(K, *spatial, 3) composites in [0, 1] -> one 8-bit RGB picture, tiles side by side with
    their names above; volumes show their middle slice on the first (axial) axis."""
    from PIL import Image, ImageDraw

    tiles = np.asarray(colour)
    if tiles.ndim == 5:
        tiles = tiles[:, tiles.shape[1] // 2]
    count, height, width = tiles.shape[:3]
    canvas = Image.new(
        "RGB", (count * width + (count - 1) * gap, height + MONTAGE_LABEL_HEIGHT), color=0
    )
    draw = ImageDraw.Draw(canvas)
    for k in range(count):
        pixels = np.round(np.clip(tiles[k], 0.0, 1.0) * 255).astype(np.uint8)
        left = k * (width + gap)
        canvas.paste(Image.fromarray(pixels, mode="RGB"), (left, MONTAGE_LABEL_HEIGHT))
        draw.text((left + 2, 1), str(names[k]), fill=(255, 255, 255))
    return np.asarray(canvas)


def write_projective_maps(
    folder: Path,
    result: Any,
    colour: np.ndarray,
    affine: np.ndarray,
    squeezed_axes: Sequence[int] = (),
) -> list[Path]:
    """The three band maps and the colour composite of every swept latent, as NIfTI."""
    from brainvae.analysis.projective_field import BAND_NAMES
    from brainvae.data.io.nifti import write_nifti

    squeezed = tuple(int(a) for a in squeezed_axes)
    written = []
    for k, name in enumerate(result.latent_names):
        for band, values in zip(BAND_NAMES, result.band_variance[k], strict=True):
            written.append(
                write_nifti(
                    folder / f"{name}_{band}.nii.gz",
                    np.asarray(values, dtype=np.float32),
                    affine,
                    squeezed_axes=squeezed,
                    description=f"brainvae projective field: {name} {band} variance",
                )
            )
        channels = np.moveaxis(np.asarray(colour[k], dtype=np.float32), -1, 0)
        written.append(
            write_nifti(
                folder / f"{name}_colour.nii.gz",
                channels,
                affine,
                squeezed_axes=squeezed,
                is_4d=True,
                description=f"brainvae projective field: {name} colour (RGB)",
            )
        )
    return written


def write_projective_results(
    out: str | Path,
    result: Any,
    colour: np.ndarray,
    limits: np.ndarray,
    scheme: str,
    affine: np.ndarray,
    squeezed_axes: Sequence[int] = (),
    *,
    matrix: np.ndarray | None = None,
    roi_names: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
    overwrite: bool = False,
    also: Callable[[Path], None] | None = None,
) -> Path:
    """Write maps, montage, table and summary into `out` at once (a temporary folder renamed
    into place); `also(folder)` may add files (the dock's plots) before the rename."""
    from PIL import Image

    from brainvae.analysis.projective_maps import projective_table

    info = projective_summary(result, limits, scheme, matrix, roi_names, extra)
    with atomic_output_folder(out, overwrite) as folder:
        write_projective_maps(folder, result, colour, affine, squeezed_axes)
        picture = montage_picture(colour, result.latent_names)
        Image.fromarray(picture, mode="RGB").save(folder / "montage.png", format="PNG")
        if matrix is not None:
            projective_table(matrix, roi_names, result.latent_names).to_csv(
                folder / "projective.csv", float_format="%.8g"
            )
        (folder / "summary.json").write_text(json.dumps(info, indent=2) + "\n", "utf-8")
        if also is not None:
            also(folder)
    return Path(out)
