"""Train/validation/test split by subject, so no subject's scans or slices leak across splits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brainvae.errors import DatasetError

SPLIT_NAMES: tuple[str, str, str] = ("train", "val", "test")


def split_counts(n_subjects: int, fractions: Sequence[float]) -> list[int]:
    """Subjects per split: largest-remainder rounding, then at least one in every split
    with a non-zero fraction when there are enough subjects (taken from the largest)."""
    fractions = np.asarray(fractions, dtype=np.float64)
    exact = fractions * n_subjects
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n_subjects - counts.sum()]] += 1
    wanted = np.flatnonzero(fractions > 0)
    if n_subjects >= len(wanted):
        for i in wanted:
            if counts[i] == 0:
                counts[np.argmax(counts)] -= 1
                counts[i] = 1
    return [int(c) for c in counts]


def split_by_subject(
    subject_ids: Sequence[str] | np.ndarray,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> np.ndarray:
    """'train'/'val'/'test' for each row, the same for all rows of a subject.

    Subjects are sorted before the seeded shuffle, so the result depends only on the
    set of subjects and the seed, never on the row order.
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise DatasetError(
            f"split fractions must be three numbers >= 0 summing to 1, got {fractions}"
        )
    ids = np.asarray([str(s) for s in subject_ids], dtype=object)
    if len(ids) == 0:
        return np.asarray([], dtype=str)
    subjects, inverse = np.unique(ids, return_inverse=True)  # object: no fixed-width copy
    order = np.random.default_rng(seed).permutation(len(subjects))
    counts = split_counts(len(subjects), fractions)
    labels = np.repeat(np.asarray(SPLIT_NAMES), counts)
    subject_split = np.empty(len(subjects), dtype=labels.dtype)
    subject_split[order] = labels
    return subject_split[inverse.reshape(-1)]
