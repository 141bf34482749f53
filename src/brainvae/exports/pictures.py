"""Pictures as files: 8-bit greyscale PNGs and looping GIFs of traversals (Pillow, imported
when used), each written whole or not at all (brainvae.atomic)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from brainvae.analysis.latent_space import TraversalGrid
from brainvae.analysis.traversal_pictures import labelled_traversal_picture, to_uint8
from brainvae.atomic import atomic_file


def save_png(image: np.ndarray, path: str | Path, limits: Sequence[float] | None = None) -> Path:
    """Write a 2D image as an 8-bit greyscale PNG; returns the path."""
    from PIL import Image

    if np.ndim(image) != 2:
        raise ValueError(f"a PNG needs a 2D image, got shape {np.shape(image)}")
    path = Path(path)
    with atomic_file(path) as temporary:
        Image.fromarray(to_uint8(image, limits), mode="L").save(temporary, format="PNG")
    return path


def save_labelled_traversal_png(
    grid: TraversalGrid,
    path: str | Path,
    slice_index: int | None = None,
    limits: Sequence[float] | None = None,
) -> Path:
    """Write labelled_traversal_picture as a greyscale PNG; returns the path."""
    from PIL import Image

    picture, _ = labelled_traversal_picture(grid, slice_index, limits)
    path = Path(path)
    with atomic_file(path) as temporary:
        Image.fromarray(picture, mode="L").save(temporary, format="PNG")
    return path


def save_gif(
    frames: np.ndarray,
    path: str | Path,
    frames_per_second: float = 8.0,
    limits: Sequence[float] | None = None,
) -> Path:
    """Write (frames, H, W) as a looping greyscale GIF with one shared display range."""
    from PIL import Image

    frames = np.asarray(frames)
    if frames.ndim != 3 or len(frames) < 1:
        raise ValueError(f"a GIF needs (frames, H, W), got shape {frames.shape}")
    if limits is None:
        limits = np.percentile(frames, [0.5, 99.5])
    pictures = [Image.fromarray(to_uint8(frame, limits), mode="L") for frame in frames]
    path = Path(path)
    with atomic_file(path) as temporary:
        pictures[0].save(
            temporary,
            format="GIF",
            save_all=True,
            append_images=pictures[1:],
            duration=int(round(1000 / frames_per_second)),
            loop=0,
        )
    return path
