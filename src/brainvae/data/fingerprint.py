"""What a model was trained on, and whether other data were prepared the same way.

A model trained on data clipped and scaled to [0, 1] gives meaningless codes (and a black
decode) for raw intensities in the thousands, and nothing else says so. Training records
`dataset_fingerprint(dataset)` under TRAINING_DATA_KEY in the model's training summary
(config.json): the preprocessing recipe plus the 0.5th/99.5th percentiles and the mean of
a sample of the training images. `check_same_preprocessing` compares data with that record
and names each difference; models saved before the record existed fall back to their
`preprocessing` field and to the input range their likelihood or recipe implies.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from brainvae.data.dataset_folder import DatasetFolder

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.preprocessing.config import PreprocessConfig
    from brainvae.models.config import ModelConfig

TRAINING_DATA_KEY = "training_data"
"""Key of the fingerprint inside ModelConfig.training (the training summary)."""
SAMPLE_SCANS = 32  # scans read to estimate a range: cheap even for 3D volumes
VALUES_PER_SCAN = 65536  # voxels kept per scan (evenly strided)
RANGE_RATIO = 2.0  # a 99.5th percentile more than 2x (or under 1/2x) the model's is "far off"
NOT_IMAGE_FIELDS = ("version", "split_fractions", "split_seed", "expected_ndim")
"""Recipe fields that do not change what an image looks like (left out of the comparison;
expected_ndim only checks the files)."""
NO_RECORD = "this model records no preprocessing; cannot check"


def intensity_range(images: np.ndarray, rows: np.ndarray | None = None) -> dict[str, float]:
    """0.5th and 99.5th percentiles and mean of up to SAMPLE_SCANS evenly spaced scans."""
    rows = np.arange(len(images)) if rows is None else np.asarray(rows)
    if len(rows) == 0:
        return {"p0_5": math.nan, "p99_5": math.nan, "mean": math.nan, "scans": 0}
    picked = np.unique(np.linspace(0, len(rows) - 1, min(SAMPLE_SCANS, len(rows))).round())
    parts = []
    for row in rows[picked.astype(int)]:
        values = np.asarray(images[int(row)], dtype=np.float32).ravel()
        values = values[:: max(1, values.size // VALUES_PER_SCAN)]
        parts.append(values[np.isfinite(values)])
    values = np.concatenate(parts)
    if values.size == 0:
        return {"p0_5": math.nan, "p99_5": math.nan, "mean": math.nan, "scans": len(parts)}
    low, high = np.percentile(values, [0.5, 99.5])
    return {
        "p0_5": float(low),
        "p99_5": float(high),
        "mean": float(values.mean(dtype=np.float64)),
        "scans": len(parts),
    }


def dataset_fingerprint(dataset: PreparedDataset) -> dict[str, Any]:
    """The record training stores: the dataset's recipe and its training images' range."""
    rows = dataset.indices("train")
    return {
        "preprocess": dataset.config.to_dict(),
        "intensity": intensity_range(dataset.images, rows if len(rows) else None),
    }


def recorded_training_data(model_config: ModelConfig) -> dict[str, Any] | None:
    """The fingerprint a model's config.json holds, or None (models saved before it existed)."""
    record = (model_config.training or {}).get(TRAINING_DATA_KEY)
    return record if isinstance(record, dict) else None


def recipe_differences(model_recipe: dict[str, Any], data_recipe: dict[str, Any]) -> list[str]:
    """One line per recipe field that changes the images and differs between the two
    (each completed with the defaults first: a recipe saved before a field existed ran
    with that field's default)."""
    model_recipe, data_recipe = _completed(model_recipe), _completed(data_recipe)
    notes = []
    for name in sorted(set(model_recipe) | set(data_recipe)):
        if name in NOT_IMAGE_FIELDS:
            continue
        trained, given = model_recipe.get(name), data_recipe.get(name)
        if trained != given:
            notes.append(
                f"preprocessing {name} is {_shown(given)} here but {_shown(trained)} in the "
                "model's training data"
            )
    return notes


def expected_input_range(
    model_config: ModelConfig, recipe: dict[str, Any] | None
) -> tuple[float, float] | None:
    """The value range a model without a recorded intensity range expects, when one is implied:
    [0, 1] for a recipe that scaled or normalised, or for a Bernoulli likelihood."""
    if recipe is not None and (
        recipe.get("scale")
        or (recipe.get("brightness_k") is not None and recipe.get("brightness_normalise", True))
    ):
        return (0.0, 1.0)
    if model_config.likelihood == "bernoulli":
        return (0.0, 1.0)
    return None


Recipe = Union["PreprocessConfig", dict[str, Any], str, Path, None]
"""How data were prepared: a config, its dict, or a prepared dataset's folder (its
dataset.json is read); None when unknown (a population opened from files)."""


def recipe_dict(config: Recipe) -> dict[str, Any] | None:
    """The recipe as a plain dict, whichever way it was given."""
    if config is None or isinstance(config, dict):
        return config
    if isinstance(config, (str, Path)):
        try:
            text = (Path(config) / DatasetFolder.DESCRIPTION).read_text(encoding="utf-8")
            return json.loads(text).get("preprocess")
        except (OSError, ValueError, AttributeError):
            return None
    return config.to_dict()


def check_images(model_config: ModelConfig, images: np.ndarray, config: Recipe = None) -> list[str]:
    """Each way `images` (prepared with `config`, when known) differ from the model's training
    data; empty when nothing differs. The latent explorer calls this on its population."""
    record = recorded_training_data(model_config)
    recipe = record.get("preprocess") if record else None
    if recipe is None:
        recipe = model_config.preprocessing
    notes = [] if recipe is not None else [NO_RECORD]
    data_recipe = recipe_dict(config)
    if recipe is not None and data_recipe is not None:
        notes += recipe_differences(recipe, data_recipe)
    here = intensity_range(images)
    trained = record.get("intensity") if record else None
    if isinstance(trained, dict) and _finite(trained.get("p99_5")):
        notes += _range_differences(trained, here)
    else:
        expected = expected_input_range(model_config, recipe)
        high = here["p99_5"]
        if expected is not None and _finite(high) and high > RANGE_RATIO * expected[1]:
            notes.append(
                f"intensities: the 99.5th percentile is {high:.4g} here, far outside the "
                f"[{expected[0]:g}, {expected[1]:g}] this model expects"
            )
    return notes


def check_same_preprocessing(model_config: ModelConfig, dataset: PreparedDataset) -> list[str]:
    """Each way a prepared dataset differs from the model's training data (recipe, range)."""
    return check_images(model_config, dataset.images, dataset.config)


def preprocessing_warning(
    model_config: ModelConfig, images: np.ndarray, config: Recipe = None
) -> str | None:
    """check_images as one status line for a dock, or None when nothing differs."""
    notes = check_images(model_config, images, config)
    if not notes:
        return None
    if notes == [NO_RECORD]:
        return f"Note: {NO_RECORD}."
    return "Warning: data differ from the model's training data: " + "; ".join(notes) + "."


def _range_differences(trained: dict[str, Any], here: dict[str, float]) -> list[str]:
    model_high, high = float(trained["p99_5"]), here["p99_5"]
    if not _finite(high):
        return []
    if abs(model_high) < 1e-12:
        far = abs(high) > 1e-6
        ratio_text = ""
    else:
        ratio = high / model_high
        far = not (1 / RANGE_RATIO <= ratio <= RANGE_RATIO)
        ratio_text = f", {ratio:.3g}x"
    if not far:
        return []
    return [
        f"intensities: the 99.5th percentile is {high:.4g} here but {model_high:.4g} in the "
        f"model's training data{ratio_text} (0.5th percentile {here['p0_5']:.4g} vs "
        f"{float(trained.get('p0_5', math.nan)):.4g})"
    ]


def _completed(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe with every field, as PreprocessConfig reads it (unchanged if it cannot)."""
    from brainvae.data.preprocessing.config import PreprocessConfig
    from brainvae.errors import BrainVAEError

    try:
        return PreprocessConfig.from_dict(recipe).to_dict()
    except (BrainVAEError, TypeError, ValueError):
        return recipe


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _shown(value: Any) -> str:
    """A recipe value as JSON writes it (None -> null reads oddly in a sentence: "none")."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
