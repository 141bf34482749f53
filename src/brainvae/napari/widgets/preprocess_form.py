"""Every field of a PreprocessConfig as an editable form (the Population data dock's recipe).

The form shows what will run: a preset or a config file fills it (`set_config`), the user
edits any field, and `config()` reads it back, validated by PreprocessConfig itself. No
field is hidden, so clipping and [0, 1] scaling (which decide the intensity range a model
is trained on) are always in view.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    LineEdit,
    SpinBox,
)

from brainvae.data.preprocessing.config import (
    BLOCK_REMAINDERS,
    CLIP_REGIONS,
    NONFINITE_POLICIES,
    PreprocessConfig,
)
from brainvae.napari.widgets.paths import optional_path
from brainvae.number_lists import number_list

SLICE_AXES = ("none", "axial", "coronal", "sagittal")
AXIS_NAMES = {0: "axial", 1: "coronal", 2: "sagittal"}


class PreprocessForm(Container):
    """One widget per PreprocessConfig field (slice_index and slice_range share one)."""

    def __init__(self) -> None:
        super().__init__(labels=True)
        self.expected_ndim = ComboBox(
            label="scans must be",
            choices=(("2D or 3D (as they come)", None), ("3D volumes", 3), ("2D images", 2)),
            value=None,
            tooltip="Files of the other kind are refused with a clear error",
        )
        self.volume_index = LineEdit(
            label="4D volume index", value="", tooltip="Volume of 4D files to use; empty refuses 4D"
        )
        self.nonfinite = ComboBox(
            label="NaN/Inf voxels",
            choices=NONFINITE_POLICIES,
            tooltip="error: refuse such files; zero: replace them with 0",
        )
        self.mask = FileEdit(
            label="brain mask", mode="r", filter="*.nii *.nii.gz", tooltip="Optional, input grid"
        )
        self.slice_axis = ComboBox(label="2D slices", choices=SLICE_AXES, value="none")
        self.slice_range = LineEdit(
            label="slice index/range", value="", tooltip="e.g. 20 or 10:30 (display orientation)"
        )
        self.crop = LineEdit(
            label="crop box", value="", tooltip="start:stop per axis, e.g. 10:170, 0:192, 5:165"
        )
        self.crop_shape = LineEdit(
            label="centred crop shape", value="", tooltip="e.g. 160, 192, 160 (empty: none)"
        )
        self.block = LineEdit(
            label="block average", value="1", tooltip="Downsampling factor: one, or one per axis"
        )
        self.block_remainder = ComboBox(
            label="block remainder",
            choices=BLOCK_REMAINDERS,
            tooltip="trim: drop voxels that do not fill a block; error: refuse",
        )
        self.clip = FloatSpinBox(
            label="clip percentile",
            min=0.0,
            max=100.0,
            step=0.5,
            value=99.5,
            tooltip="Clip each image above this percentile of its values; 0 disables clipping",
        )
        self.clip_region = ComboBox(
            label="clip percentile over",
            choices=CLIP_REGIONS,
            tooltip="image: every voxel; brain: the mask's (or the non-zero) voxels",
        )
        self.scale = CheckBox(label="scale to [0, 1]", value=True)
        self.brightness_k = FloatSpinBox(
            label="brightness k",
            min=0.0,
            max=1000.0,
            step=0.1,
            value=0.0,
            tooltip="Equalise each mean to the population's, saturate at k x mean; 0 disables",
        )
        self.brightness_normalise = CheckBox(label="divide by k x mean", value=True)
        self.split_fractions = LineEdit(label="train, val, test", value="0.8, 0.1, 0.1")
        self.split_seed = SpinBox(label="split seed", min=0, max=2**31 - 1, value=0)
        self.extend(
            [
                self.expected_ndim, self.volume_index, self.nonfinite, self.mask,
                self.slice_axis, self.slice_range, self.crop, self.crop_shape, self.block,
                self.block_remainder, self.clip, self.clip_region, self.scale,
                self.brightness_k, self.brightness_normalise, self.split_fractions,
                self.split_seed,
            ]
        )  # fmt: skip

    def widget_for(self, field_name: str):
        """The widget that edits one PreprocessConfig field."""
        shared = {"slice_index": "slice_range", "clip_percentile": "clip"}
        return getattr(self, shared.get(field_name, field_name))

    def set_config(self, config: PreprocessConfig) -> None:
        """Show `config` in the form, every field."""
        self.expected_ndim.value = config.expected_ndim
        self.volume_index.value = "" if config.volume_index is None else str(config.volume_index)
        self.nonfinite.value = config.nonfinite
        if config.mask:
            self.mask.value = config.mask
        else:  # FileEdit.value = "" would give the current folder
            self.mask.line_edit.value = ""
        axis = config.slice_axis_number()
        self.slice_axis.value = "none" if axis is None else AXIS_NAMES[axis]
        if config.slice_index is not None:
            self.slice_range.value = str(config.slice_index)
        elif config.slice_range is not None:
            self.slice_range.value = f"{config.slice_range[0]}:{config.slice_range[1]}"
        else:
            self.slice_range.value = ""
        self.crop.value = ", ".join(f"{a}:{b}" for a, b in config.crop or ())
        self.crop_shape.value = _numbers_text(config.crop_shape or ())
        self.block.value = _numbers_text(config.block)
        self.block_remainder.value = config.block_remainder
        self.clip.value = config.clip_percentile or 0.0
        self.clip_region.value = config.clip_region
        self.scale.value = config.scale
        self.brightness_k.value = config.brightness_k or 0.0
        self.brightness_normalise.value = config.brightness_normalise
        self.split_fractions.value = _numbers_text(config.split_fractions)
        self.split_seed.value = config.split_seed

    def config(self) -> PreprocessConfig:
        """The PreprocessConfig the form describes; a bad entry raises an error naming it."""
        values: dict[str, Any] = {
            "expected_ndim": self.expected_ndim.value,
            "volume_index": _optional_int(self.volume_index.value, "4D volume index"),
            "nonfinite": self.nonfinite.value,
            "mask": _optional_text(optional_path(self.mask.value)),
            "block_remainder": self.block_remainder.value,
            "clip_percentile": self.clip.value or None,
            "clip_region": self.clip_region.value,
            "scale": bool(self.scale.value),
            "brightness_k": self.brightness_k.value or None,
            "brightness_normalise": bool(self.brightness_normalise.value),
            "split_fractions": _numbers(self.split_fractions.value, "train, val, test", float),
            "split_seed": int(self.split_seed.value),
        }
        block = _numbers(self.block.value, "block average", int)
        values["block"] = block[0] if len(block) == 1 else block
        if self.crop.value.strip():
            values["crop"] = tuple(
                _slices(part, "crop box") for part in self.crop.value.split(",") if part.strip()
            )
        if self.crop_shape.value.strip():
            values["crop_shape"] = _numbers(self.crop_shape.value, "centred crop shape", int)
        if self.slice_axis.value != "none":
            values["slice_axis"] = self.slice_axis.value
            slices = parse_slices(self.slice_range.value)
            values["slice_index" if isinstance(slices, int) else "slice_range"] = slices
        return PreprocessConfig(**values)


def parse_slices(text: str) -> int | tuple[int, int]:
    """'20' -> 20 (one slice), '10:30' -> (10, 30) (half-open range)."""
    text = text.strip()
    try:
        parts = [int(p) for p in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2):
        raise ValueError(f"give a slice index (e.g. 20) or a range (e.g. 10:30), not {text!r}")
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


def _slices(text: str, label: str) -> tuple[int, int]:
    """'10:170' -> (10, 170)."""
    parsed = parse_slices(text)
    if isinstance(parsed, int):
        raise ValueError(f"{label}: give start:stop for each axis, not {text.strip()!r}")
    return parsed


def _numbers(text: str, label: str, kind: type) -> tuple:
    """'0.8, 0.1, 0.1' -> (0.8, 0.1, 0.1); a bad entry names its field."""
    try:
        return tuple(number_list(text, kind))
    except ValueError:
        raise ValueError(f"{label}: expected comma-separated numbers, got {text!r}") from None


def _optional_int(text: str, label: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{label}: expected an integer or nothing, got {text!r}") from None


def _optional_text(path) -> str | None:
    return None if path is None else str(path)


def _numbers_text(values: Any) -> str:
    """(4, 4, 2) -> '4, 4, 2'; 4 -> '4'."""
    items = values if isinstance(values, (tuple, list)) else (values,)
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in items)
