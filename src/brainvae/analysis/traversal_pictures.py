"""A decoded traversal as pictures: mosaics of the grid, animation frames, 8-bit pixels with a
margin of labels. Arrays in, arrays out (Pillow draws the labels, imported when used);
brainvae.exports.pictures writes them as PNG and GIF."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brainvae.analysis.latent_space import TraversalGrid


def tile(images: np.ndarray, gap: int = 2, fill: float | None = None) -> np.ndarray:
    """(R, C, ..., H, W) -> (..., R*H + gaps, C*W + gaps): a mosaic on the last two axes.

    Leading spatial axes (the inferior axis of volumes) are kept, so a 3D grid is a volume whose
    every axial slice is the grid of that slice. Gaps take `fill` (default: the darkest value).
    """
    images = np.asarray(images)
    rows, cols = images.shape[:2]
    fill = float(images.min()) if fill is None else fill
    pad = [(0, 0)] * (images.ndim - 2) + [(0, gap), (0, gap)]
    padded = np.pad(images, pad, constant_values=fill)
    *lead, height, width = padded.shape[2:]
    # (R, C, *lead, H, W) -> (*lead, R, H, C, W): rows of tiles, then flatten each pair.
    order = (*range(2, 2 + len(lead)), 0, len(lead) + 2, 1, len(lead) + 3)
    mosaic = padded.transpose(order).reshape(*lead, rows * height, cols * width)
    return mosaic[..., : mosaic.shape[-2] - gap, : mosaic.shape[-1] - gap]


def traversal_mosaic(
    grid: TraversalGrid, slice_index: int | None = None, gap: int = 2
) -> np.ndarray:
    """The grid as one picture: rows = latents, columns = values.

    2D models give a 2D mosaic; 3D models a 3D one (tiles on the last two axes), or the 2D
    mosaic of axial slice `slice_index` when it is given.
    """
    images = grid.images
    if images.ndim == 5 and slice_index is not None:
        images = images[:, :, _check_slice(slice_index, images.shape[2])]
    return tile(images, gap)


def traversal_animation_frames(
    grid: TraversalGrid, slice_index: int | None = None, gap: int = 2
) -> np.ndarray:
    """(frames, H, W) 2D frames: frame j shows every latent at its j-th value, side by side.

    The values run up then back down (ping-pong) so a looping GIF has no jump; 3D grids show
    axial slice `slice_index` (default: the middle one).
    """
    images = grid.images
    if images.ndim == 5:
        index = images.shape[2] // 2 if slice_index is None else slice_index
        images = images[:, :, _check_slice(index, images.shape[2])]
    n_values = images.shape[1]
    order = [*range(n_values), *range(n_values - 2, 0, -1)]
    by_value = images[:, order]  # (latents, frames, H, W)
    return tile(by_value[None], gap)  # one row of latent tiles per frame: (frames, H, W')


def _check_slice(index: int, length: int) -> int:
    if not 0 <= index < length:
        raise ValueError(f"slice {index} is outside 0..{length - 1}")
    return int(index)


def to_uint8(image: np.ndarray, limits: Sequence[float] | None = None) -> np.ndarray:
    """Scale to 0..255 with display limits (default: the image's 0.5 and 99.5 percentiles)."""
    image = np.asarray(image, dtype=np.float64)
    if limits is None:
        low, high = np.percentile(image, [0.5, 99.5])
    else:
        low, high = (float(v) for v in limits)
    if high <= low:
        high = low + 1.0
    return np.round(np.clip((image - low) / (high - low), 0.0, 1.0) * 255).astype(np.uint8)


LABEL_MARGIN = (96, 22)
"""Pixels left of the grid (row labels) and above it (the column note) in a labelled PNG."""


def labelled_traversal_picture(
    grid: TraversalGrid,
    slice_index: int | None = None,
    limits: Sequence[float] | None = None,
    gap: int = 2,
) -> tuple[np.ndarray, tuple[int, int]]:
    """The traversal mosaic as 8-bit pixels with a margin of labels: each row names its latent
    (z1 for index 0) and the values it spans, the top line how columns run.

    Returns the picture and (top, left): where the mosaic's first pixel sits in it, so the
    unlabelled mosaic is picture[top:, left:].
    """
    from PIL import Image, ImageDraw

    if grid.images.ndim == 5 and slice_index is None:
        slice_index = grid.images.shape[2] // 2
    mosaic = to_uint8(traversal_mosaic(grid, slice_index=slice_index, gap=gap), limits)
    left, top = LABEL_MARGIN
    canvas = Image.new("L", (mosaic.shape[1] + left, mosaic.shape[0] + top), color=0)
    canvas.paste(Image.fromarray(mosaic, mode="L"), (left, top))
    draw = ImageDraw.Draw(canvas)
    n_values = grid.values.shape[1]
    note = f"columns: {n_values} values, low (left) to high (right)"
    if slice_index is not None:
        note += f"; axial slice {slice_index}"
    draw.text((4, 4), note, fill=255)
    height = grid.image_shape[-2]
    for row, latent in enumerate(grid.latents):
        y = top + row * (height + gap) + height // 2 - 10
        values = grid.values[row]
        draw.text((4, y), f"z{int(latent) + 1}", fill=255)
        draw.text((4, y + 12), f"{values[0]:+.2f}..{values[-1]:+.2f}", fill=200)
    return np.asarray(canvas), (top, left)
