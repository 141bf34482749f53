"""A small longitudinal blob population on disk: subjects with 2-3 visits whose 'ventricle'
blob grows with age and, for patients, whose 'lesion' blob brightens from visit to visit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SHAPE = (24, 20)


def write_visit_population(
    root: Path,
    n_subjects: int = 24,
    seed: int = 0,
    same_time_subject: bool = False,
) -> Path:
    """The prepared dataset folder of n_subjects (half 'healthy', half 'ms'), each with 2-3
    visits 1-3 years apart (ages 50-80 at baseline); same_time_subject gives the first
    subject two visits at one age."""
    from brainvae.data.prepare import prepare
    from brainvae.data.preprocessing import PreprocessConfig

    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    rows = []
    for s in range(n_subjects):
        group = "healthy" if s % 2 == 0 else "ms"
        age = float(rng.uniform(50, 80))
        load = float(rng.uniform(0.2, 0.6)) if group == "ms" else 0.0
        for visit in range(1, int(rng.integers(2, 4)) + 1):
            if visit > 1:
                age += 0 if (same_time_subject and s == 0) else float(rng.uniform(1, 3))
                load = load * 1.4 if group == "ms" else 0.0
            radius = 2.0 + 4.0 * (age - 50) / 35
            ventricle = np.exp(-((yy - 9) ** 2 + (xx - 10) ** 2) / (2 * radius**2))
            lesion = load * np.exp(-((yy - 18) ** 2 + (xx - 14) ** 2) / (2 * 2.0**2))
            noise = rng.uniform(0, 0.04, SHAPE)
            image = np.clip(0.1 + 0.7 * ventricle + lesion + noise, 0, 1).astype(np.float32)
            name = f"sub-{s:02d}_ses-{visit}.npy"
            np.save(images / name, image)
            rows.append({"subject_id": f"sub-{s:02d}", "session": visit,
                         "filename": f"images/{name}", "age": round(age, 2),
                         "diagnosis": group})  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "subjects.csv", index=False)
    config = PreprocessConfig.identity(split_fractions=(0.6, 0.2, 0.2))
    prepare(images, root / "ds", config, csv=root / "subjects.csv", workers=1)
    return root / "ds"
