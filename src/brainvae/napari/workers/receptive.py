"""Receptive fields in the background: brainvae.usecases.receptive_run's progress reports,
then the result and its disentanglement scores. Runs in a napari worker; never touches a layer
or widget."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any

import numpy as np

from brainvae.usecases.receptive_run import ReceptiveRun


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
    from brainvae.usecases import receptive_run as use_case

    return (
        yield from use_case.receptive_run(
            model, images, rois, roi_names, weights, kind, one_sided, indices
        )
    )
