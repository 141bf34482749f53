"""Apply a PreprocessConfig to one volume: the per-file half of dataset preparation.

Everything except brightness equalisation (which needs the population mean and so
runs later over the cached array) happens here, and the output grid's affine is
carried along. Problems raise DataFileError naming the file and what to change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainvae.data.io.nifti import AXIS_NAMES, DISPLAY_AXCODES, Volume
from brainvae.data.preprocessing import steps
from brainvae.data.preprocessing.config import PreprocessConfig
from brainvae.errors import DataFileError


@dataclass
class PreprocessedImage:
    """The samples made from one file and the grid they live on.

    samples: float32 (n, *scan_shape); n > 1 only for a slice range.
    slice_indices: input-grid index of each sample along the slice axis (empty: no slicing).
    affine: output grid -> world mm over unsqueezed display indices; with slicing, the
        slice axis keeps its input index, so a sample's affine translates by its slice index.
    """

    samples: np.ndarray
    slice_indices: tuple[int, ...]
    affine: np.ndarray
    voxel_size: tuple[float, ...]
    axis_names: tuple[str, ...]
    squeezed_axes: tuple[int, ...]
    nonfinite_replaced: int = 0

    @property
    def scan_shape(self) -> tuple[int, ...]:
        return tuple(self.samples.shape[1:])

    @property
    def sample_means(self) -> np.ndarray:
        """Mean value of each sample (for the population brightness pass)."""
        return self.samples.reshape(len(self.samples), -1).mean(axis=1, dtype=np.float64)


def _select_volume(volume: Volume, config: PreprocessConfig) -> np.ndarray:
    path = volume.source
    data = volume.data
    if volume.is_4d:
        count = data.shape[0]
        if config.volume_index is None:
            raise DataFileError(
                path,
                f"is 4D with {count} volumes {data.shape[1:]}, expected one "
                f"{config.expected_ndim or 3}D image; set volume_index=K (--volume-index K, "
                f"0..{count - 1}) to use one volume",
            )
        if config.volume_index >= count:
            raise DataFileError(
                path, f"has {count} volumes; volume_index {config.volume_index} is out of range"
            )
        data = data[config.volume_index]
    expected = config.expected_ndim
    if expected is not None and data.ndim != expected:
        hint = (
            "for 2D data set expected_ndim=2 (--expected-ndim 2)"
            if data.ndim == 2
            else "to use 2D slices of it set slice_axis and slice_index (--slice-axis, --slice-index)"
        )
        raise DataFileError(
            path,
            f"is a {data.ndim}D image of shape {data.shape} but {expected}D images are expected; {hint}",
        )
    return data


def preprocess_volume(
    volume: Volume, config: PreprocessConfig, mask: np.ndarray | None = None
) -> PreprocessedImage:
    """Run the per-file steps of `config` on a volume (mask given as an array in its grid)."""
    path = volume.source
    data = _select_volume(volume, config)
    replaced = steps.count_nonfinite(data)
    if replaced and config.nonfinite == "error":
        raise DataFileError(
            path,
            f"has {replaced} non-finite voxel(s) (NaN/Inf); fix the file or set "
            "nonfinite='zero' (--nonfinite zero) to replace them with 0",
        )
    data = steps.replace_nonfinite(data) if replaced else data
    data = data.astype(np.float32, copy=False)
    if mask is not None:
        if mask.shape != data.shape:
            raise DataFileError(
                path,
                f"shape {data.shape} differs from the brain mask {config.mask} shape {mask.shape}",
            )
        data = steps.apply_mask(data, mask)
    spatial_axes = [a for a in range(3) if a not in volume.squeezed_axes]
    squeezed = tuple(volume.squeezed_axes)
    slice_axis = config.slice_axis_number()
    slice_indices = config.slice_indices()
    try:
        if slice_axis is not None:
            if data.ndim != 3:
                raise ValueError(f"slice extraction needs a 3D image, got shape {data.shape}")
            samples = steps.extract_slices(data, slice_axis, slice_indices)
            spatial_axes.remove(slice_axis)
            squeezed = (slice_axis,)
        else:
            samples = data[None]
    except ValueError as err:
        raise DataFileError(path, f"{err}; {slicing_hint(config)}") from None
    try:
        samples, starts, factors = _crop_and_block(samples, config)
    except ValueError as err:
        raise DataFileError(path, f"{err}; {geometry_hint(config)}") from None
    regions = _mask_regions(mask, config, slice_axis, slice_indices)
    try:
        samples = np.stack(
            [
                _intensity(image, config, None if regions is None else regions[i])
                for i, image in enumerate(samples)
            ]
        )
    except ValueError as err:
        raise DataFileError(path, str(err)) from None
    affine = steps.grid_affine(volume.affine, spatial_axes, starts, factors)
    return PreprocessedImage(
        samples=np.ascontiguousarray(samples, dtype=np.float32),
        slice_indices=tuple(slice_indices),
        affine=affine,
        voxel_size=steps.voxel_sizes(affine, spatial_axes),
        axis_names=tuple(AXIS_NAMES[DISPLAY_AXCODES[a]] for a in spatial_axes),
        squeezed_axes=squeezed,
        nonfinite_replaced=replaced,
    )


ORIENTATION_NOTE = (
    "shapes are in display orientation (axes inferior, posterior, right), "
    "which may differ from the order on disk"
)
FLAIR_NOTE = (
    "the flair3d preset expects 1 mm MNI-registered volumes of 182 x 218 x 182 "
    "(use --preset identity or your own --config for other grids)"
)


def slicing_hint(config: PreprocessConfig) -> str:
    """Why a slice error is about the config, not the file."""
    where = (
        f"slice_index={config.slice_index}"
        if config.slice_index is not None
        else f"slice_range={config.slice_range}"
    )
    axis = config.slice_axis_number()
    named = "" if axis is None else f" = {AXIS_NAMES[DISPLAY_AXCODES[axis]]} axis"
    return (
        f"the slice comes from the preprocessing config (slice_axis={axis}{named}, "
        f"{where}), not from the file; {ORIENTATION_NOTE}"
    )


def geometry_hint(config: PreprocessConfig) -> str:
    """Why a crop/block error is about the config, not the file (and what flair3d expects)."""
    box = f"crop={config.crop}" if config.crop is not None else f"crop_shape={config.crop_shape}"
    hint = (
        f"the size comes from the preprocessing config ({box}, block={config.block}), "
        f"not from the file; {ORIENTATION_NOTE}"
    )
    if tuple(config.crop_shape or ()) == (160, 192, 160):
        hint += f"; {FLAIR_NOTE}"
    return hint


def _crop_and_block(samples: np.ndarray, config: PreprocessConfig):
    """Crop then block-average a stack of samples; returns (stack, crop starts, factors)."""
    shape = samples.shape[1:]
    if config.crop is not None:
        box = tuple(config.crop)
    elif config.crop_shape is not None:
        box = steps.centred_box(shape, config.crop_shape)
    else:
        box = tuple((0, s) for s in shape)
    if len(box) != len(shape):
        raise ValueError(f"crop box has {len(box)} axes but the sample {shape} has {len(shape)}")
    samples = steps.crop(samples, ((0, len(samples)), *box))
    factors = steps.block_factors(config.block, len(shape))
    samples = steps.block_average(samples, (1, *factors), remainder=config.block_remainder)
    return samples, [start for start, _ in box], factors


def _mask_regions(
    mask: np.ndarray | None,
    config: PreprocessConfig,
    slice_axis: int | None,
    slice_indices: tuple[int, ...],
) -> np.ndarray | None:
    """The brain mask on each sample's grid (a block with any brain voxel counts as brain),
    for clipping within the brain; None when the clip does not use a mask."""
    if mask is None or config.clip_region != "brain" or config.clip_percentile is None:
        return None
    stack = mask.astype(np.float32)
    stack = (
        steps.extract_slices(stack, slice_axis, slice_indices)
        if slice_axis is not None
        else stack[None]
    )
    blocks, _, _ = _crop_and_block(stack, config)
    return blocks > 0


def _intensity(
    image: np.ndarray, config: PreprocessConfig, brain: np.ndarray | None = None
) -> np.ndarray:
    """Per-image intensity steps: percentile clipping (over the brain for clip_region
    "brain": the mask's voxels, else the non-zero ones), then [0, 1] scaling."""
    if config.clip_percentile is not None:
        region = None
        if config.clip_region == "brain":
            region = brain if brain is not None else image != 0
        image = steps.clip_percentile(image, config.clip_percentile, region)
    if config.scale:
        image = steps.scale_unit_range(image)
    return image


def load_mask(path: str) -> np.ndarray:
    """A brain mask file as a boolean array in display orientation."""
    from brainvae.data.io.images import read_image

    return read_image(path).data != 0
