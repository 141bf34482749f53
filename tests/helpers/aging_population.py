"""A small cross-sectional aging population on disk: blob scans whose blob grows with age."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SHAPE = (24, 20)


def write_aging_population(root: Path, n: int = 20, missing_ages: int = 0) -> Path:
    """n blob scans whose blob grows with age (40 to 85, all different), with a subjects
    table (subject_id, session, filename, age); the first missing_ages ages left empty."""
    from brainvae.data.prepare import prepare
    from brainvae.data.preprocessing import PreprocessConfig

    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    ages = np.round(np.linspace(40, 85, n) + rng.uniform(-0.4, 0.4, n), 2)
    rows = []
    for i, age in enumerate(ages):
        radius = 2.5 + 4.0 * (age - 40) / 45
        blob = np.exp(-((yy - 12) ** 2 + (xx - 10) ** 2) / (2 * radius**2))
        image = (0.05 + 0.85 * blob + rng.uniform(0, 0.05, SHAPE)).astype(np.float32)
        name = f"sub-{i:02d}_ses-1.npy"
        np.save(images / name, image)
        shown = "" if i < missing_ages else f"{age}"
        rows.append({"subject_id": f"sub-{i:02d}", "session": 1, "filename": f"images/{name}",
                     "age": shown})  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "subjects.csv", index=False)
    config = PreprocessConfig.identity(split_fractions=(0.6, 0.2, 0.2))
    prepare(images, root / "ds", config, csv=root / "subjects.csv", workers=1)
    return root / "ds"
