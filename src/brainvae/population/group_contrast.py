"""Two groups of scans picked on the latent map, compared: each group's mean image, and what
the model thinks separates them (the decoded mean code of group B minus that of group A)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from brainvae.errors import PopulationAnalysisError

CHUNK = 256
"""Scans read at once when averaging a group (memory maps are read in slabs, not whole)."""


@dataclass(frozen=True)
class GroupContrast:
    """Group A (and optionally B): mean images, mean codes, decoded means, their difference."""

    rows_a: np.ndarray
    mean_image_a: np.ndarray
    code_a: np.ndarray
    decoded_a: np.ndarray | None
    rows_b: np.ndarray | None = None
    mean_image_b: np.ndarray | None = None
    code_b: np.ndarray | None = None
    decoded_b: np.ndarray | None = None

    @property
    def decoded_difference(self) -> np.ndarray | None:
        """decode(mean code B) - decode(mean code A): the change the model attributes to
        moving from group A to group B."""
        if self.decoded_a is None or self.decoded_b is None:
            return None
        return self.decoded_b - self.decoded_a

    @property
    def mean_difference(self) -> np.ndarray | None:
        return None if self.mean_image_b is None else self.mean_image_b - self.mean_image_a


def mean_image(images: Any, rows: np.ndarray) -> np.ndarray:
    """Mean of the chosen scans, read CHUNK scans at a time (float64 sum)."""
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    total = np.zeros(np.shape(images)[1:], dtype=np.float64)
    for start in range(0, len(rows), CHUNK):
        total += np.asarray(images[rows[start : start + CHUNK]], dtype=np.float64).sum(axis=0)
    return (total / len(rows)).astype(np.float32)


def group_contrast(
    images: Any,
    codes: np.ndarray,
    rows_a: np.ndarray,
    rows_b: np.ndarray | None = None,
    model: Any = None,
) -> GroupContrast:
    """Compare group A with group B (rows into `images`/`codes`); decode when a model is given."""
    rows_a = _checked(rows_a, len(codes), "A")
    rows_b = None if rows_b is None else _checked(rows_b, len(codes), "B")
    code_a = np.asarray(codes, dtype=np.float64)[rows_a].mean(axis=0)
    code_b = None if rows_b is None else np.asarray(codes, dtype=np.float64)[rows_b].mean(axis=0)
    decoded_a = decoded_b = None
    if model is not None:
        if np.shape(codes)[1] != model.latent_dim:
            raise PopulationAnalysisError(
                f"the codes have {np.shape(codes)[1]} latents but the model has "
                f"{model.latent_dim}: encode the population with this model"
            )
        from brainvae.analysis.latent_space import decode_codes

        wanted = np.stack([code_a] + ([code_b] if code_b is not None else []))
        decoded = decode_codes(model, wanted.astype(np.float32))
        decoded_a = decoded[0]
        decoded_b = decoded[1] if code_b is not None else None
    return GroupContrast(
        rows_a=rows_a,
        mean_image_a=mean_image(images, rows_a),
        code_a=code_a,
        decoded_a=decoded_a,
        rows_b=rows_b,
        mean_image_b=None if rows_b is None else mean_image(images, rows_b),
        code_b=code_b,
        decoded_b=decoded_b,
    )


def _checked(rows: np.ndarray, n: int, name: str) -> np.ndarray:
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if len(rows) == 0:
        raise PopulationAnalysisError(f"group {name} is empty: select some points first")
    if rows.min() < 0 or rows.max() >= n:
        raise PopulationAnalysisError(
            f"group {name} names scans outside the population (0..{n - 1})"
        )
    return rows
