"""Receptive fields in the background: the analysis' progress reports, then the result and
its disentanglement scores. Runs in a napari worker; never touches a layer or widget."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ReceptiveRun:
    """A finished run: the ReceptiveField, its DisentanglementScores over the active latents
    (None with one ROI) and the model it probed (so another dock compares like with like)."""

    result: Any
    scores: Any
    model: Any = None


def receptive_run(
    model: Any,
    images: np.ndarray,
    rois: np.ndarray,
    roi_names: Mapping[int, str],
    weights: Sequence[float],
    kind: str,
    one_sided: bool,
    indices: Sequence[int] | None,
) -> Generator[Any, None, ReceptiveRun]:
    """Yield ReceptiveFieldProgress reports; return the ReceptiveRun."""
    from brainvae.analysis.disentanglement import disentanglement_scores
    from brainvae.analysis.receptive_field import receptive_field_steps

    result = yield from receptive_field_steps(
        model,
        images,
        rois,
        roi_names,
        weights=weights,
        kind=kind,
        one_sided=one_sided,
        indices=indices,
    )
    scores = disentanglement_scores(result.impact, result.active) if result.n_rois >= 2 else None
    return ReceptiveRun(result, scores, model)
