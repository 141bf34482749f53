"""Reading and writing image files (NIfTI, .npy, .tif) with clear errors."""

from brainvae.data.io.images import read_image
from brainvae.data.io.nifti import (
    DISPLAY_AXCODES,
    Volume,
    is_nifti_path,
    read_nifti,
)
from brainvae.data.io.nifti_writing import write_nifti

__all__ = [
    "DISPLAY_AXCODES",
    "Volume",
    "is_nifti_path",
    "read_image",
    "read_nifti",
    "write_nifti",
]
