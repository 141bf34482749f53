"""ROI masks from a label image or a boolean stack: what the receptive field perturbs and the
projective field's enrichment counts in. Arrays in, masks and names out; no file I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from brainvae.errors import ReceptiveFieldError


def roi_name(label: int) -> str:
    """The name of an ROI that was given none: roi_<label>."""
    return f"roi_{int(label)}"


def roi_masks(
    rois: np.ndarray, roi_names: Sequence[str] | Mapping[int, str] | None, spatial_shape: tuple
) -> tuple[np.ndarray, tuple[str, ...]]:
    """(R, *spatial) boolean masks and R names from a labels array or a boolean stack.

    rois: integer labels of the spatial shape (0 = background; each other label one ROI, in
    ascending order) or a boolean (R, *spatial) stack. roi_names: R names in that order, a
    {label: name} mapping (which also chooses the ROIs), or None (roi_name: "roi_<label>").
    Raises a ReceptiveFieldError naming the problem for a wrong shape, an ROI without voxels or
    names that do not match.
    """
    rois = np.asarray(rois)
    spatial_shape = tuple(int(s) for s in spatial_shape)
    shape_text = " x ".join(map(str, spatial_shape))
    if rois.dtype == bool and rois.ndim == len(spatial_shape) + 1:
        if tuple(rois.shape[1:]) != spatial_shape:
            raise ReceptiveFieldError(
                f"ROI masks are {' x '.join(map(str, rois.shape[1:]))} but the images are "
                f"{shape_text}: draw the ROIs on the images' grid"
            )
        masks = rois
        labels = list(range(1, len(rois) + 1))
        if isinstance(roi_names, Mapping):
            raise ReceptiveFieldError(
                "a boolean ROI stack takes a sequence of names, not a mapping"
            )
    else:
        if tuple(rois.shape) != spatial_shape:
            raise ReceptiveFieldError(
                f"the ROI label image is {' x '.join(map(str, rois.shape)) or 'a scalar'} but "
                f"the images are {shape_text}: draw the ROIs on the images' grid"
            )
        if not (np.issubdtype(rois.dtype, np.integer) or rois.dtype == bool):
            rounded = np.rint(rois)
            if not np.array_equal(rounded, rois):
                raise ReceptiveFieldError(
                    "the ROI label image holds non-integer values: it must be labels"
                )
            rois = rounded.astype(np.int64)
        if isinstance(roi_names, Mapping):
            labels = sorted(int(label) for label in roi_names)
        else:
            labels = [int(v) for v in np.unique(rois) if v != 0]
        masks = np.stack([rois == label for label in labels]) if labels else np.zeros((0,))
    if len(labels) == 0:
        raise ReceptiveFieldError("no ROI given: the label image has no non-zero label")
    names = _names(roi_names, labels)
    sizes = masks.reshape(len(labels), -1).sum(axis=1)
    empty = [
        f"{name} (label {label})"
        for name, label, n in zip(names, labels, sizes, strict=True)
        if n == 0
    ]
    if empty:
        raise ReceptiveFieldError(f"empty ROI(s) without a single voxel: {', '.join(empty)}")
    return masks.astype(bool), names


def _names(
    roi_names: Sequence[str] | Mapping[int, str] | None, labels: list[int]
) -> tuple[str, ...]:
    """One unique name per label: given in order, looked up by label, or roi_name(label)."""
    if roi_names is None:
        names = tuple(roi_name(label) for label in labels)
    elif isinstance(roi_names, Mapping):
        names = tuple(str(roi_names[label]) for label in labels)
    else:
        names = tuple(str(name) for name in roi_names)
        if len(names) != len(labels):
            raise ReceptiveFieldError(
                f"{len(names)} ROI names for {len(labels)} ROIs (labels {labels}): "
                "give one name per ROI"
            )
    if len(set(names)) != len(names):
        raise ReceptiveFieldError(f"ROI names must be unique, got {list(names)}")
    return names
