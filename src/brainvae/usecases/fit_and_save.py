"""Fit a model of any family on a prepared dataset and save it as a run folder.

The neural families (beta-VAE, VAE, Soft-IntroVAE) are trained by the engine
(brainvae.training.train), which writes config.json, weights.safetensors, run.json,
history.csv and checkpoints/. PCA is fitted in one go on the training split and saved with
its reconstruction loss and, for a Bernoulli likelihood, the data's entropy floor. The
command line and the Training dock both call fit_and_save, so their run folders agree.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import LatentModel, ModelConfig
    from brainvae.training import TrainConfig


@dataclass(frozen=True)
class PcaFit:
    """A fitted and saved PCA: its run folder, how many training images it saw, its
    reconstruction loss per image on `split` and the entropy floor (None unless Bernoulli)."""

    run_dir: Path
    n_train: int
    split: str
    loss: float
    entropy_floor: float | None
    explained_variance_ratio: tuple[float, ...]


ONE_BETA_FAMILIES = ("pca", "soft_intro_vae")
"""Families whose config records beta = 1 whatever is asked: beta weighs the beta-VAE's KL
term alone (a Soft-IntroVAE has its own beta_kl and beta_neg, PCA no KL term to weigh)."""


def model_config_for(
    recipe: Any,
    dataset: PreparedDataset,
    *,
    family: str,
    latent_dim: int,
    beta: float | None = None,
    **options: Any,
) -> ModelConfig:
    """The ModelConfig of a family for this dataset's scans: the recipe's settings, each
    option given (architecture, likelihood, gaussian_sigma, ...) overriding its own.
    beta None takes the recipe's. The age_vae family needs condition= (a metadata column);
    its mean and sd over the training rows are stored with it. The longitudinal_vae family
    takes subject_column, time_column, group_column and control_label (None: the longitudinal
    analysis's defaults) and learns a disease direction for each other group of the training
    rows (visit_pairing)."""
    from brainvae.training.recipe import model_config_from_recipe

    if family == "age_vae":
        mean, sd = condition_statistics(dataset, options.get("condition"))
        options = {**options, "condition_mean": mean, "condition_sd": sd}
    if family == "longitudinal_vae":
        options = {**options, **visit_pairing(dataset, options)}
    else:
        for name in PAIRING_OPTIONS:
            if options.pop(name, None) is not None:
                from brainvae.models import ModelError

                raise ModelError(f"{name} is for the longitudinal VAE only")
    return model_config_from_recipe(
        recipe,
        tuple(dataset.scan_shape),
        latent_dim=latent_dim,
        family=family,
        beta=1.0 if family in ONE_BETA_FAMILIES else beta,
        **options,
    )


def condition_statistics(dataset: PreparedDataset, column: str | None) -> tuple[float, float]:
    """Mean and standard deviation of a metadata column over the training rows (which
    standardise an age-conditioned VAE's condition); refuses a missing column, naming those
    there are, and training rows without a numeric value, counting them."""
    import numpy as np
    import pandas as pd

    from brainvae.models import ModelError

    if not column:
        raise ModelError(
            "an age-conditioned VAE needs a condition: the metadata column it regresses "
            "(condition='age')"
        )
    metadata = dataset.metadata
    if column not in metadata.columns:
        raise ModelError(
            f"{dataset.path}: no column {column!r} in the dataset's metadata to condition on "
            f"(columns: {', '.join(map(str, metadata.columns))})"
        )
    rows = dataset.indices("train")
    values = pd.to_numeric(metadata[column], errors="coerce").to_numpy(np.float64)[rows]
    missing = int((~np.isfinite(values)).sum())
    if missing:
        raise ModelError(
            f"{dataset.path}: {missing} of the {len(rows)} training scans have no numeric "
            f"{column!r} value; fill them in or leave those scans out"
        )
    if len(values) < 2 or not values.std() > 0:
        raise ModelError(
            f"{dataset.path}: {column!r} must vary over the training scans to condition on it"
        )
    return float(values.mean()), float(values.std())


PAIRING_OPTIONS = ("subject_column", "time_column", "group_column", "control_label")
"""The longitudinal VAE's options naming the columns that pair visits and the control group."""


def visit_pairing(dataset: PreparedDataset, options: dict[str, Any]) -> dict[str, Any]:
    """The longitudinal VAE's pairing options, completed and checked on the training rows:
    the columns exist (else those there are, named), the control label is a value of the group
    column (else its values, named), and some control subject has two training visits (else
    no aging direction can be learned); disease_labels: every other group, sorted."""
    from brainvae.longitudinal.request import LongitudinalRequest
    from brainvae.models import ModelError

    asked = LongitudinalRequest()
    pairing = {
        "subject_column": options.get("subject_column") or asked.subject,
        "time_column": options.get("time_column") or asked.age,
        "group_column": options.get("group_column") or asked.group,
        "control_label": options.get("control_label") or asked.control,
    }
    metadata = dataset.metadata
    for name in ("subject_column", "time_column", "group_column"):
        if pairing[name] not in metadata.columns:
            raise ModelError(
                f"{dataset.path}: no column {pairing[name]!r} ({name}) in the dataset's "
                f"metadata to pair visits by (columns: {', '.join(map(str, metadata.columns))})"
            )
    rows = dataset.indices("train")
    groups = metadata[pairing["group_column"]].iloc[rows].dropna().astype(str)
    labels = sorted(set(groups))
    control = pairing["control_label"]
    if control not in labels:
        raise ModelError(
            f"{dataset.path}: no training scan has {pairing['group_column']} = {control!r}; "
            f"its values are: {', '.join(labels) or '(none)'}"
        )
    subjects = metadata[pairing["subject_column"]].iloc[rows].astype(str)
    visits = subjects[metadata[pairing["group_column"]].iloc[rows].astype(str) == control]
    if not (visits.value_counts().to_numpy() >= 2).any():
        raise ModelError(
            f"{dataset.path}: no {control!r} subject has two visits in the training split, so "
            "no aging direction can be learned; the longitudinal VAE needs repeated scans"
        )
    return {**pairing, "disease_labels": tuple(label for label in labels if label != control)}


def new_model(config: ModelConfig, seed: int) -> LatentModel:
    """The model of this config, its initial weights seeded (the same seed, the same weights)."""
    import torch

    from brainvae.models import build_model

    torch.manual_seed(seed)
    return build_model(config)


def fit_and_save(
    model: LatentModel,
    dataset: PreparedDataset,
    training: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    cancel: threading.Event | None = None,
) -> Generator[Any, None, Any]:
    """Fit `model` on the dataset's train split into run_dir, yielding the engine's reports.

    Returns the engine's TrainResult (reason "cancelled" after `cancel` was set), or a PcaFit
    for a PCA model (fitted in one go, so it yields nothing). Errors name the options as
    Python keywords (resume=True, overwrite=True).
    """
    if model.config.family == "pca":
        return fit_pca_and_save(
            model, dataset, run_dir, seed=training.seed, resume=resume, overwrite=overwrite
        )
    from brainvae.training import train

    return (
        yield from train(
            model, dataset, training, run_dir, resume=resume, overwrite=overwrite, cancel=cancel
        )
    )


def fit_pca_and_save(
    model: LatentModel,
    dataset: PreparedDataset,
    run_dir: str | Path,
    *,
    seed: int = 0,
    resume: bool = False,
    overwrite: bool = False,
) -> PcaFit:
    """Fit the PCA baseline on the train split and save it with its loss and entropy floor.

    The loss is taken on the validation split, or on the training split when there is none.
    """
    import numpy as np

    from brainvae.data.fingerprint import TRAINING_DATA_KEY, dataset_fingerprint
    from brainvae.data.run_dataset import dataset_record
    from brainvae.models import ModelError
    from brainvae.training import bernoulli_entropy_floor

    run_dir = Path(run_dir)
    if resume:
        raise ModelError("PCA is fitted in one go: there is nothing to resume (drop resume=True)")
    train_rows = dataset.indices("train")
    if len(train_rows) == 0:
        raise ModelError(f"{dataset.path}: the dataset has no training split to fit on")
    prepare_pca_folder(run_dir, overwrite)
    model.fit(np.asarray(dataset.images[train_rows], dtype=np.float32), random_state=seed)
    val_rows = dataset.indices("val")
    rows, split = (val_rows, "val") if len(val_rows) else (train_rows, "train")
    loss = float(model.loss(np.asarray(dataset.images[rows], dtype=np.float32)).total)
    floor = (
        bernoulli_entropy_floor(dataset.images, rows)
        if model.config.likelihood == "bernoulli"
        else None
    )
    model.config.preprocessing = dataset.config.to_dict()
    model.save(
        run_dir,
        training={
            **model.config.training,
            "dataset": dataset_record(dataset.path, run_dir),
            TRAINING_DATA_KEY: dataset_fingerprint(dataset),
            f"final_{split}_loss": loss,
            "entropy_floor": floor,
        },
    )
    ratio = tuple(float(r) for r in model.config.training["explained_variance_ratio"])
    return PcaFit(run_dir, len(train_rows), split, loss, floor, ratio)


def prepare_pca_folder(run_dir: Path, overwrite: bool) -> None:
    """Refuse a folder holding something unless overwrite and it is a brainvae run (which is
    then removed, as the engine does for the neural families)."""
    from brainvae.models import ModelError

    if run_dir.exists() and not run_dir.is_dir():
        raise ModelError(f"{run_dir}: exists and is not a folder; a run is a folder")
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return
    from brainvae.run_folder import RunFolder

    is_run = RunFolder(run_dir).holds_model() or RunFolder(run_dir).holds_run_record()
    if not overwrite:
        what = "a training run" if is_run else "other files"
        raise ModelError(
            f"{run_dir}: already holds {what}; pass overwrite=True to replace it or choose an "
            "empty folder"
        )
    if not is_run:
        raise ModelError(
            f"{run_dir}: is not a brainvae run folder; not deleting its contents even with "
            "overwrite=True"
        )
    import shutil

    shutil.rmtree(run_dir)
