"""Projective fields in the background: brainvae.usecases.projective_run (encode the
population, sweep the chosen latents, then the colour maps, the ROI enrichment and the far
sides' asymmetry) on the dock's population and painted ROIs. Runs in a napari worker and
yields the sweep's progress; never touches a layer or widget."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any

import numpy as np

from brainvae.usecases.projective_run import ProjectiveRun


def projective_run(
    model: Any,
    images: np.ndarray,
    table: Any,
    latents: Sequence[int],
    base: str,
    settings: Any,
    scheme: str,
    rois: np.ndarray | None,
    roi_names: Mapping[int, str] | None,
    batch_size: int = 32,
    limits_mode: str = "per-latent",
    statistics: Any = None,
) -> Generator[Any, None, ProjectiveRun]:
    """Yield ProjectiveProgress reports; return the ProjectiveRun. rois: a label image on the
    population's grid, with a {label: name} for each ROI to use (None: no ROIs). statistics:
    the population's latent statistics under this model when already encoded (the latent
    explorer's), else the population is encoded first."""
    from brainvae.usecases import projective_run as use_case

    selection = None
    if rois is not None and roi_names:
        spatial = tuple(int(s) for s in model.config.input_shape)
        selection = use_case.roi_selection(rois, roi_names, spatial)
    request = use_case.ProjectiveRequest(
        tuple(latents),
        base,
        settings,
        scheme,
        limits_mode,
        selection,
        batch_size=batch_size,
        statistics=statistics,
    )
    return (yield from use_case.projective_run(model, images, table, request))
