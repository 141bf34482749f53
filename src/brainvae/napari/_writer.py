"""napari writers: save an image or labels layer as NIfTI, inverse of the reader.

A layer opened by the reader, still on its grid (scale, translate and shape
unchanged), is written back like its source file: the file's own voxel order,
affine and qform/sform codes, and its voxel type where the values fit it
(read -> write -> read is exact). Any other layer is written in display
orientation with an affine built from its scale and translate.

A labels layer drawn over a scan is saved on that scan's grid (same shape and
affine, so FSL and other tools accept it with the scan) when it carries the scan
layer's metadata: ``viewer.add_labels(data, scale=img.scale,
translate=img.translate, metadata=img.metadata)``. Labels are stored as the
smallest of uint8, int16 and int32 that holds them.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

_NIFTI_ENDINGS = (".nii", ".nii.gz")


def _prepare(path: str, data: Any, meta: dict[str, Any]):
    """Check the file name and layer, and work out the array and write_nifti arguments."""
    import numpy as np

    from brainvae.errors import DataFileError
    from brainvae.napari.layer_metadata import nifti_write_args

    if not os.fspath(path).lower().endswith(_NIFTI_ENDINGS):
        raise DataFileError(path, "NIfTI file names must end in .nii or .nii.gz")
    if meta.get("rgb"):
        raise DataFileError(path, "RGB images cannot be saved as NIfTI by this plugin")
    if meta.get("multiscale"):
        data = data[0]  # full resolution level
    array = np.asarray(data)
    try:
        args = nifti_write_args(array.ndim, meta, array.shape)
    except ValueError as err:
        raise DataFileError(path, str(err)) from err
    return array, args


def _label_dtype(array: Any, path: str) -> str:
    """The smallest of uint8, int16 and int32 that holds every label."""
    import numpy as np

    from brainvae.errors import DataFileError

    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    for dtype in (np.uint8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype).name
    raise DataFileError(path, "label values do not fit in int32")


def _description(meta: dict[str, Any]) -> str:
    return f"napari-brainvae: {meta.get('name', 'layer')}"


def write_image(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Save one image layer as .nii/.nii.gz (float64 stored as float32); returns [path]."""
    from brainvae.data.io.nifti_writing import write_nifti

    array, args = _prepare(path, data, meta)
    written = write_nifti(path, array, **args, description=_description(meta))
    return [os.fspath(written)]


def write_labels(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Save one labels layer as .nii/.nii.gz with an integer voxel type; returns [path]."""
    import numpy as np

    from brainvae.data.io.nifti_writing import write_nifti

    array, args = _prepare(path, data, meta)
    if array.dtype.kind not in "iub":
        array = np.rint(array).astype(np.int32)
    if args["original"] is not None:
        args["original"] = replace(
            args["original"], dtype=_label_dtype(array, path), slope=1.0, inter=0.0
        )
    written = write_nifti(path, array, **args, description=_description(meta))
    return [os.fspath(written)]
