"""`brainvae resample-rois`: an ROI label image moved onto a dataset's grid once, as NIfTI.

`receptive` and `projective` resample an ROI file on another grid of the same world space every
run; this writes the resampled labels (nearest neighbour, integer labels kept) in the voxel
order of the dataset's files, so the result can be checked in a viewer and reused as it is.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from brainvae.data.dataset import PreparedDataset


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `resample-rois` sub-command."""
    parser = subparsers.add_parser(
        "resample-rois",
        help="move an ROI label image onto a dataset's grid (nearest neighbour)",
        description=(
            "Resample the label image ROIS (any resolution, voxel order or field of view, in "
            "the same world space as DATASET) onto DATASET's grid by the two affines, nearest "
            "neighbour so labels stay integers, and write it in the voxel order of the "
            "dataset's files (slice datasets: one slice at their most common slice). Labels "
            "too small for the grid are named. receptive and projective do the same on the "
            "fly; this writes it once."
        ),
    )
    parser.add_argument("rois", metavar="ROIS.nii.gz", help="label image (0 = background)")
    parser.add_argument("dataset", metavar="DATASET", help="folder made by `brainvae prepare`")
    parser.add_argument(
        "--out", required=True, metavar="OUT.nii.gz", help="label image to write (required)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing OUT (default: refuse to)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Check OUT, read and resample, write atomically, say what happened."""
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.io.nifti import is_nifti_path
    from brainvae.data.io.nifti_writing import write_nifti
    from brainvae.data.roi_files import load_rois
    from brainvae.errors import DataFileError

    out = Path(args.out)
    if not is_nifti_path(out):
        raise DataFileError(out, "--out must end in .nii or .nii.gz")
    if out.exists() and not args.overwrite:
        raise DataFileError(out, "already exists: choose another --out or pass --overwrite")
    dataset = PreparedDataset.open(args.dataset)
    image = load_rois(args.rois, dataset, tuple(int(n) for n in dataset.scan_shape))
    layout = _dataset_file_layout(dataset, args.rois, image.labels)
    write_nifti(
        out,
        image.labels,
        squeezed_axes=tuple(dataset.squeezed_axes),
        description="brainvae resample-rois",
        original=layout,
    )
    kept = int(len(set(image.labels.ravel().tolist()) - {0}))
    grid = " x ".join(map(str, layout.shape))
    what = image.resampling or "already on the dataset's grid, written in its files' voxel order"
    print(f"{args.rois}: {what}.")
    print(f"Wrote {out}: {kept} label(s) on the dataset's grid ({grid}).")
    return 0


def _dataset_file_layout(dataset: PreparedDataset, rois: str, labels: np.ndarray):
    """FileLayout of a label file on the dataset's grid in its files' voxel order.

    The ROI file's space codes (e.g. MNI) are kept: the labels are in its world space.
    """
    import nibabel as nib
    import numpy as np

    from brainvae.data.io.nifti import FileLayout
    from brainvae.data.roi_resampling import dataset_file_axcodes, dataset_grid

    axcodes = dataset_file_axcodes(dataset)
    grid = dataset_grid(dataset).reordered(axcodes)
    header = nib.load(str(rois)).header
    return FileLayout(
        affine=grid.affine,
        axcodes=tuple(axcodes),
        shape=grid.shape,
        qform_code=int(header["qform_code"]) or 1,
        sform_code=int(header["sform_code"]) or 1,
        dtype=str(np.min_scalar_type(int(labels.max()))),
    )
