"""napari writers: save an image or labels layer as NIfTI, inverse of the reader.

A layer opened by the reader is written with its stored display affine, so
read -> write -> read is exact; any other layer gets an affine built from its
scale and translate with the reader's convention.
"""

from __future__ import annotations

import os
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
        args = nifti_write_args(array.ndim, meta)
    except ValueError as err:
        raise DataFileError(path, str(err)) from err
    return array, args


def _description(meta: dict[str, Any]) -> str:
    return f"napari-brainvae: {meta.get('name', 'layer')}"


def write_image(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Save one image layer as .nii/.nii.gz (float64 stored as float32); returns [path]."""
    from brainvae.data.io.nifti import write_nifti

    array, args = _prepare(path, data, meta)
    written = write_nifti(path, array, **args, description=_description(meta))
    return [os.fspath(written)]


def write_labels(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Save one labels layer as .nii/.nii.gz with an integer voxel type; returns [path]."""
    import numpy as np

    from brainvae.data.io.nifti import write_nifti

    array, args = _prepare(path, data, meta)
    if array.dtype.kind not in "iub":
        array = np.rint(array).astype(np.int32)
    written = write_nifti(path, array, **args, description=_description(meta))
    return [os.fspath(written)]
