"""The preprocessing recipe as one declarative, JSON-saveable dataclass.

Steps run in a fixed order (see brainvae.data.preprocessing.pipeline):
volume selection (4D) -> non-finite check -> brain mask -> 2D slice extraction ->
crop -> block averaging -> percentile clipping -> [0, 1] scaling, and, over the
whole population once every image is cached, brightness equalisation.
All axes are display axes (inferior, posterior, right) of the image at that step:
the mask and the slice index live in the input grid; crop and block factors apply
to the sample (2D after slice extraction, otherwise the input's 2D or 3D grid).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from brainvae.errors import DataFileError, DatasetError

CONFIG_VERSION = 1
SLICE_AXES = {"axial": 0, "coronal": 1, "sagittal": 2}
NONFINITE_POLICIES = ("error", "zero")
BLOCK_REMAINDERS = ("trim", "error")
CLIP_REGIONS = ("image", "brain")
DEFAULT_PRESET = "default"
"""The recipe `brainvae prepare` and the Population data dock's folder source both start from."""


def _bad(problem: str) -> DatasetError:
    return DatasetError(f"preprocessing config: {problem}")


def _int_tuple(value: Any, name: str) -> tuple[int, ...]:
    try:
        items = tuple(value)
    except TypeError:
        raise _bad(f"{name} must be a list of integers, got {value!r}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise _bad(f"{name} must hold integers, got {value!r}")
    return items


@dataclass(frozen=True)
class PreprocessConfig:
    """How raw volumes become the samples of a dataset (validated on creation).

    expected_ndim: spatial dimensions every input must have (2 or 3; None = as the files come).
    volume_index: which volume of a 4D file to use (4D files are refused without it).
    nonfinite: "error" refuses files with NaN/Inf voxels; "zero" replaces them with 0.
    mask: path of a brain mask NIfTI in the input grid; voxels where it is 0 become 0.
    slice_axis / slice_index / slice_range: extract 2D slices (axis "axial", "coronal",
        "sagittal" or 0/1/2; one index, or a half-open (start, stop) range), one sample each.
    crop: explicit per-axis (start, stop) box; crop_shape: a centred box of that shape.
    block: integer block-averaging factor (one for all axes, or one per axis);
        block_remainder "trim" drops the last voxels that do not fill a block, "error" refuses.
    clip_percentile: clip each image above this percentile of its own values (None: off).
    clip_region: which values that percentile is taken over: "image" (every voxel) or "brain"
        (the brain mask's voxels when `mask` is set, else the non-zero voxels), so a large
        zero background does not pull the percentile down and clip far more brain than asked.
    scale: map each image to [0, 1] with (x - min) / (max - min).
    brightness_k: equalise every image's mean to the population mean and saturate at
        k x mean (None: off); brightness_normalise then divides by k x mean to land in [0, 1].
    split_fractions / split_seed: train/val/test split by subject stored with the dataset.
    """

    version: int = CONFIG_VERSION
    expected_ndim: int | None = None
    volume_index: int | None = None
    nonfinite: str = "error"
    mask: str | None = None
    slice_axis: str | int | None = None
    slice_index: int | None = None
    slice_range: tuple[int, int] | None = None
    crop: tuple[tuple[int, int], ...] | None = None
    crop_shape: tuple[int, ...] | None = None
    block: int | tuple[int, ...] = 1
    block_remainder: str = "trim"
    clip_percentile: float | None = 99.5
    clip_region: str = "image"
    scale: bool = True
    brightness_k: float | None = None
    brightness_normalise: bool = True
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 0

    def __post_init__(self) -> None:
        for name, value in self._validated().items():
            object.__setattr__(self, name, value)

    def _validated(self) -> dict[str, Any]:
        """Normalised field values (lists -> tuples); raises DatasetError on a bad value."""
        out: dict[str, Any] = {}
        if not isinstance(self.version, int) or self.version < 1:
            raise _bad(f"version must be a positive integer, got {self.version!r}")
        if self.version > CONFIG_VERSION:
            raise _bad(
                f"version {self.version} is newer than this brainvae understands ({CONFIG_VERSION})"
            )
        if self.expected_ndim not in (None, 2, 3):
            raise _bad(f"expected_ndim must be 2, 3 or null, got {self.expected_ndim!r}")
        if self.volume_index is not None and (
            not isinstance(self.volume_index, int) or self.volume_index < 0
        ):
            raise _bad(f"volume_index must be an integer >= 0, got {self.volume_index!r}")
        if self.nonfinite not in NONFINITE_POLICIES:
            raise _bad(f"nonfinite must be one of {NONFINITE_POLICIES}, got {self.nonfinite!r}")
        if self.mask is not None:
            out["mask"] = str(self.mask)
        out.update(self._validated_slicing())
        out.update(self._validated_geometry())
        if self.clip_percentile is not None:
            if not isinstance(self.clip_percentile, (int, float)) or not (
                0 < self.clip_percentile <= 100
            ):
                raise _bad(f"clip_percentile must be in (0, 100], got {self.clip_percentile!r}")
            out["clip_percentile"] = float(self.clip_percentile)
        if self.clip_region not in CLIP_REGIONS:
            raise _bad(f"clip_region must be one of {CLIP_REGIONS}, got {self.clip_region!r}")
        if self.brightness_k is not None:
            if not isinstance(self.brightness_k, (int, float)) or self.brightness_k <= 0:
                raise _bad(f"brightness_k must be a number > 0, got {self.brightness_k!r}")
            out["brightness_k"] = float(self.brightness_k)
        for name in ("scale", "brightness_normalise"):
            if not isinstance(getattr(self, name), bool):
                raise _bad(f"{name} must be true or false, got {getattr(self, name)!r}")
        out["split_fractions"] = _validated_fractions(self.split_fractions)
        if not isinstance(self.split_seed, int) or isinstance(self.split_seed, bool):
            raise _bad(f"split_seed must be an integer, got {self.split_seed!r}")
        return out

    def _validated_slicing(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        slicing = self.slice_index is not None or self.slice_range is not None
        if self.slice_axis is None:
            if slicing:
                raise _bad("slice_index/slice_range need a slice_axis")
            return out
        out["slice_axis"] = self.slice_axis_number()
        if self.slice_index is not None and self.slice_range is not None:
            raise _bad("give slice_index or slice_range, not both")
        if not slicing:
            raise _bad("slice_axis needs a slice_index or a slice_range")
        if self.slice_index is not None and (
            not isinstance(self.slice_index, int) or self.slice_index < 0
        ):
            raise _bad(f"slice_index must be an integer >= 0, got {self.slice_index!r}")
        if self.slice_range is not None:
            start_stop = _int_tuple(self.slice_range, "slice_range")
            if len(start_stop) != 2 or not 0 <= start_stop[0] < start_stop[1]:
                raise _bad(
                    f"slice_range must be (start, stop) with 0 <= start < stop, got {self.slice_range!r}"
                )
            out["slice_range"] = start_stop
        if self.expected_ndim == 2:
            raise _bad("slice extraction needs 3D inputs but expected_ndim is 2")
        return out

    def _validated_geometry(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.crop is not None and self.crop_shape is not None:
            raise _bad("give crop (a box) or crop_shape (a centred shape), not both")
        if self.crop is not None:
            box = tuple(_int_tuple(pair, "crop") for pair in self.crop)
            if len(box) not in (2, 3) or any(len(p) != 2 or not 0 <= p[0] < p[1] for p in box):
                raise _bad(
                    f"crop must be 2 or 3 (start, stop) pairs with 0 <= start < stop, got {self.crop!r}"
                )
            out["crop"] = box
        if self.crop_shape is not None:
            shape = _int_tuple(self.crop_shape, "crop_shape")
            if len(shape) not in (2, 3) or any(s < 1 for s in shape):
                raise _bad(f"crop_shape must be 2 or 3 sizes >= 1, got {self.crop_shape!r}")
            out["crop_shape"] = shape
        block = (self.block,) if isinstance(self.block, int) else _int_tuple(self.block, "block")
        if isinstance(self.block, bool) or len(block) not in (1, 2, 3) or any(b < 1 for b in block):
            raise _bad(f"block must be an integer >= 1 or 2-3 of them, got {self.block!r}")
        out["block"] = block[0] if isinstance(self.block, int) else block
        if self.block_remainder not in BLOCK_REMAINDERS:
            raise _bad(
                f"block_remainder must be one of {BLOCK_REMAINDERS}, got {self.block_remainder!r}"
            )
        return out

    def slice_axis_number(self) -> int | None:
        """The slice axis as a display-axis number (axial 0, coronal 1, sagittal 2)."""
        axis = self.slice_axis
        if axis is None:
            return None
        if isinstance(axis, str):
            key = axis.strip().lower()
            if key in SLICE_AXES:
                return SLICE_AXES[key]
            if key.isdigit():
                axis = int(key)
            else:
                raise _bad(f"slice_axis must be axial, coronal, sagittal or 0/1/2, got {axis!r}")
        if isinstance(axis, bool) or axis not in (0, 1, 2):
            raise _bad(f"slice_axis must be axial, coronal, sagittal or 0/1/2, got {axis!r}")
        return int(axis)

    def slice_indices(self) -> tuple[int, ...]:
        """Input-grid slice indices extracted from each volume (empty: no extraction)."""
        if self.slice_axis is None:
            return ()
        if self.slice_index is not None:
            return (self.slice_index,)
        start, stop = self.slice_range  # type: ignore[misc]
        return tuple(range(start, stop))

    def with_changes(self, **changes: Any) -> PreprocessConfig:
        """A validated copy with some fields changed (the CLI overrides a loaded config)."""
        return replace(self, **changes)

    # --- JSON ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessConfig:
        """Inverse of to_dict; unknown keys and bad values raise a DatasetError naming them."""
        if not isinstance(data, dict):
            raise _bad(f"expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise _bad(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        values = dict(data)
        if values.get("crop") is not None:
            values["crop"] = tuple(tuple(p) if isinstance(p, list) else p for p in values["crop"])
        return cls(**values)

    def save(self, path: str | Path) -> Path:
        """Write the config as indented JSON."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> PreprocessConfig:
        """Read a config written by save() (or by hand); errors name the file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataFileError(path, "config file does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataFileError(path, f"not a readable JSON config ({err})") from err
        try:
            return cls.from_dict(data)
        except DatasetError as err:
            raise DataFileError(path, str(err)) from None

    # --- presets --------------------------------------------------------------------
    @classmethod
    def default(cls, **changes: Any) -> PreprocessConfig:
        """Clip each image at its 99.5th percentile and scale it to [0, 1].

        The one default of the CLI and the dock: a model trained on data prepared one way
        gives meaningless codes for data prepared the other (raw intensities in the
        thousands against [0, 1]), so both must start from the same recipe.
        """
        return cls(**changes)

    @classmethod
    def identity(cls, **changes: Any) -> PreprocessConfig:
        """Use the values as they are (already prepared data such as the phantom)."""
        return cls(clip_percentile=None, scale=False, **changes)

    @classmethod
    def flair_3d(cls, **changes: Any) -> PreprocessConfig:
        """Vogelsanger & Federau FLAIR recipe: trim to 160x192x160, block 4, clip 99.5, scale.

        The 99.5th percentile is taken within the brain (clip_region "brain": the mask's voxels
        when a mask is given, else the non-zero voxels): over the whole skull-stripped volume
        the zero background pulled it down so far that ~2.5 % of brain voxels were clipped
        instead of 0.5 %. Subjects are split 90/10 train/validation with no test split
        (split_fractions 0.9, 0.1, 0.0), as in the published work.
        """
        values: dict[str, Any] = dict(
            expected_ndim=3,
            crop_shape=(160, 192, 160),
            block=4,
            clip_percentile=99.5,
            clip_region="brain",
            scale=True,
            split_fractions=(0.9, 0.1, 0.0),
        )
        values.update(changes)
        return cls(**values)

    @classmethod
    def mouse_2d(cls, **changes: Any) -> PreprocessConfig:
        """Liu et al. mouse recipe: brightness equalised to the population mean, saturated at 3.8x.

        The published data were one coronal section centre-cropped to 320 x 448; pass
        slice_axis="coronal", slice_index=..., crop_shape=(320, 448) for raw 3D brains.
        """
        values: dict[str, Any] = dict(clip_percentile=None, scale=False, brightness_k=3.8)
        values.update(changes)
        return cls(**values)


def _validated_fractions(value: Any) -> tuple[float, float, float]:
    try:
        fractions = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise _bad(f"split_fractions must be three numbers, got {value!r}") from None
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise _bad(f"split_fractions must be three numbers >= 0 summing to 1, got {value!r}")
    if fractions[0] <= 0:
        raise _bad(f"split_fractions needs a train fraction > 0, got {value!r}")
    return fractions  # type: ignore[return-value]


def describe_intensity(config: PreprocessConfig) -> str:
    """The intensity steps of a recipe in words (help texts and warnings name them)."""
    steps = []
    if config.clip_percentile is not None:
        steps.append(f"clip at the {config.clip_percentile:g}th percentile ({config.clip_region})")
    if config.scale:
        steps.append("scale to [0, 1]")
    if config.brightness_k is not None:
        steps.append(
            f"equalise brightness (k = {config.brightness_k:g}"
            + (", divided to [0, 1])" if config.brightness_normalise else ")")
        )
    return ", ".join(steps) if steps else "no clipping, no scaling"


PREPROCESS_RECIPES = {
    DEFAULT_PRESET: PreprocessConfig.default,
    "identity": PreprocessConfig.identity,
    "flair3d": PreprocessConfig.flair_3d,
    "mouse2d": PreprocessConfig.mouse_2d,
}
