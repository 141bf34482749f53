"""Train a model in the background: the engine's progress reports, plus reconstruction previews.

The generator runs in a napari worker thread; it never touches a layer or a widget. The
dock turns what it yields into plot points, progress and a preview image in the dock.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PREVIEW_IMAGES = 4


@dataclass(frozen=True)
class Preview:
    """A few validation images beside their reconstructions after an epoch."""

    epoch: int
    images: np.ndarray  # (k, *spatial): inputs
    reconstructions: np.ndarray  # (k, *spatial)
    split: str = "validation"  # the images' split ("training" when there is no validation one)

    def mosaic(self, gap: int = 2) -> np.ndarray:
        """(*spatial[:-2], 2 H + gap, k W + (k - 1) gap): the inputs along the top row, each
        one's reconstruction below it, black gaps. One image on the population's own grid (a
        stack axis would share, and fight over, the population's scan slider)."""
        from brainvae.analysis.traversal_pictures import tile

        return tile(np.stack([self.images, self.reconstructions]), gap=gap, fill=0.0)


@dataclass(frozen=True)
class ModelChoice:
    """What the dock's form asks for: the family, its size and its loss."""

    family: str  # "beta_vae", "soft_intro_vae" or "pca"
    architecture: str
    latent_dim: int
    beta: float
    likelihood: str
    gaussian_sigma: float | None = None  # the Gaussian likelihood's sigma (None: plain SSE)
    steps: int | None = None  # the run's length, for the KL warm-up (the recipe's share)
    epochs: int | None = None
    condition: str | None = None  # the age-conditioned VAE's metadata column (e.g. age)
    group: str | None = None  # the longitudinal VAE's group column (None: the default)
    control: str | None = None  # ... and its controls' value (None: the default)


def train_run(
    choice: ModelChoice,
    dataset_path: Path,
    config: Any,
    run_dir: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    cancel: threading.Event | None = None,
    preview_every: int = 1,
) -> Generator[Any, None, Any]:
    """Build the model, fit and save it (brainvae.usecases.fit_and_save: the engine's reports
    pass through) and yield previews.

    Returns the engine's TrainResult (its reason is "cancelled" after a Stop). Closing the
    generator (napari quits running workers when the viewer closes) stops training the same
    way, so a checkpoint and the model are written. A PCA choice is fitted in one go instead
    and returns its run folder.
    """
    from brainvae.data.dataset import PreparedDataset
    from brainvae.training import EpochReport
    from brainvae.training.recipe import DEFAULT_RECIPE
    from brainvae.training.verdict import dataset_verdict
    from brainvae.usecases.fit_and_save import PcaFit, fit_and_save, model_config_for, new_model

    dataset = PreparedDataset.open(dataset_path)
    model_config = model_config_for(
        DEFAULT_RECIPE,
        dataset,
        family=choice.family,
        latent_dim=choice.latent_dim,
        architecture=choice.architecture,
        likelihood=choice.likelihood,
        gaussian_sigma=choice.gaussian_sigma if choice.likelihood == "gaussian" else None,
        beta=choice.beta,
        **({"condition": choice.condition} if choice.family == "age_vae" else {}),
        **(
            {"group_column": choice.group, "control_label": choice.control}
            if choice.family == "longitudinal_vae"
            else {}
        ),
    )
    model = new_model(model_config, config.seed)
    preview_rows, preview_split = _preview_rows(dataset)
    cancel = cancel if cancel is not None else threading.Event()
    generator = fit_and_save(
        model, dataset, config, run_dir, resume=resume, overwrite=overwrite, cancel=cancel
    )
    with closing(generator):
        try:
            while True:
                try:
                    report = next(generator)
                except StopIteration as stop:
                    result = stop.value
                    break
                yield report
                if isinstance(report, EpochReport) and report.epoch % preview_every == 0:
                    yield preview(model, dataset, preview_rows, report.epoch, preview_split)
        except GeneratorExit:  # napari quits workers when the viewer closes: stop cleanly
            cancel.set()
            for _ in generator:  # the engine stops within a batch and writes its checkpoint
                pass
            raise
    if isinstance(result, PcaFit):  # no epochs: show its reconstructions once
        yield preview(model, dataset, preview_rows, 0, preview_split)
        return result.run_dir
    if result.reason != "cancelled":
        yield dataset_verdict(model, dataset, result.step)
    return result


def preview(
    model: Any, dataset: Any, rows: np.ndarray, epoch: int, split: str = "validation"
) -> Preview:
    """Reconstruct the preview rows in eval mode, then put the model back in training mode."""
    images = np.asarray(dataset.images[rows], dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        reconstructions = np.asarray(model.reconstruct(images), dtype=np.float32)
    finally:
        model.train(was_training)
    return Preview(epoch, images, reconstructions, split)


def _preview_rows(dataset: Any) -> tuple[np.ndarray, str]:
    """The first few validation images (training ones when there is no validation split),
    and which split they come from."""
    rows, split = dataset.indices("val"), "validation"
    if len(rows) == 0:
        rows, split = dataset.indices("train"), "training"
    return np.asarray(rows[:PREVIEW_IMAGES]), split
