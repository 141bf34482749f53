"""A tiny population of blob images (2 sessions per subject) prepared as a dataset, for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHAPE = (24, 20)


def write_blob_dataset(
    root: Path, subjects: int, seed: int, split_fractions: tuple[float, float, float] | None = None
) -> Path:
    """Blobs in [0, 1] of random centre and radius, saved as .npy and prepared; returns ds/."""
    from brainvae.data.prepare import prepare
    from brainvae.data.preprocessing import PreprocessConfig

    source = root / "src"
    source.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for subject in range(subjects):
        for session in (1, 2):
            cy, cx, radius = rng.uniform(7, 17), rng.uniform(6, 14), rng.uniform(3, 7)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
            image = (0.05 + 0.85 * blob).astype(np.float32)
            np.save(source / f"sub-{subject:02d}_ses-{session}.npy", image)
    options = {} if split_fractions is None else {"split_fractions": split_fractions}
    prepare(source, root / "ds", PreprocessConfig.identity(**options), workers=1)
    return root / "ds"
