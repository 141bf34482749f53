"""`brainvae decode`: one latent vector to a NIfTI image that overlays the original data."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from brainvae.number_lists import number_list

if TYPE_CHECKING:
    import numpy as np


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `decode` sub-command."""
    parser = subparsers.add_parser(
        "decode",
        help="decode one latent vector to a NIfTI image",
        description=(
            "Decode one latent vector with the model in RUN and write the image as NIfTI. "
            "With --dataset the image gets that dataset's affine, so it overlays the data; "
            "without, an identity affine (1 mm voxels at the origin)."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN", help="run folder (or saved model folder)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--z", metavar='"z1,z2,..."', help="L comma-separated numbers")
    source.add_argument(
        "--z-file", metavar="LATENTS.csv", help="CSV from `brainvae encode` (its mu_ columns)"
    )
    parser.add_argument("--row", type=int, default=0, metavar="K", help="row of --z-file (0)")
    parser.add_argument("--dataset", metavar="DATASET", help="take the affine from this dataset")
    parser.add_argument("--out", required=True, metavar="IMAGE.nii.gz", help="NIfTI to write")
    parser.set_defaults(func=run)
    return parser


def parse_z(text: str, latent_dim: int) -> np.ndarray:
    """Comma-separated numbers, exactly latent_dim of them."""
    import numpy as np

    from brainvae.models import ModelError

    try:
        values = number_list(text)
    except ValueError:
        raise ModelError(f"--z must be comma-separated numbers, got {text!r}") from None
    return _checked(np.asarray(values, dtype=np.float32), latent_dim, "--z")


def z_from_file(path: str, row: int, latent_dim: int) -> tuple[np.ndarray, int | None]:
    """The mu_1..mu_L of one row of a latents CSV, and its slice_index when it has one."""
    import numpy as np
    import pandas as pd

    from brainvae.models import ModelError

    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise ModelError(f"{path}: cannot read the latents CSV ({error})") from error
    columns = [c for c in table.columns if c.startswith("mu_")]
    if not columns:
        raise ModelError(f"{path}: no mu_1..mu_L columns (write it with `brainvae encode`)")
    if not 0 <= row < len(table):
        raise ModelError(
            f"{path}: --row {row} is outside its {len(table)} rows (0..{len(table) - 1})"
        )
    values = table.loc[row, columns].to_numpy(dtype=np.float32)
    slice_index = table.loc[row, "slice_index"] if "slice_index" in table.columns else None
    slice_index = None if slice_index is None or pd.isna(slice_index) else int(slice_index)
    return _checked(values, latent_dim, f"{path} (mu_ columns)"), slice_index


def _checked(values: np.ndarray, latent_dim: int, what: str) -> np.ndarray:
    import numpy as np

    from brainvae.models import ModelError

    if len(values) != latent_dim:
        raise ModelError(
            f"{what} has {len(values)} value(s) but the model's latent size is L = {latent_dim}"
        )
    if not np.isfinite(values).all():
        raise ModelError(f"{what} holds NaN or Inf values")
    return values


def run(args: argparse.Namespace) -> int:
    """Decode, then write with the dataset's affine (or an identity one, said so)."""
    import numpy as np
    import torch

    from brainvae.data.io.nifti_writing import write_nifti
    from brainvae.models import load_model

    model = load_model(args.run_dir)
    slice_index = None
    if args.z is not None:
        z = parse_z(args.z, model.latent_dim)
    else:
        z, slice_index = z_from_file(args.z_file, args.row, model.latent_dim)
    with torch.no_grad():
        image = model.decode(torch.from_numpy(z)[None])[0].cpu().numpy()
    if model.config.channels == 1:
        image = image[0]
    if args.dataset:
        from brainvae.data.dataset import PreparedDataset
        from brainvae.usecases.encoding import check_fits

        dataset = PreparedDataset.open(args.dataset)
        check_fits(model, dataset)
        affine, squeezed = dataset.affine, dataset.squeezed_axes
        where = f"the affine of {dataset.path}"
        if slice_index is not None and dataset.slice_axis is not None:
            shift = np.eye(4)  # put the slice where the encoded row's slice was
            shift[dataset.slice_axis, 3] = float(slice_index)
            affine = affine @ shift
            where += f", moved to slice {slice_index}"
    else:
        affine, squeezed = np.eye(4), ()
        where = "an identity affine (no --dataset given: it will not overlay your data)"
    path = write_nifti(
        args.out,
        image.astype(np.float32),
        affine,
        squeezed_axes=tuple(squeezed),
        description="brainvae decode",
    )
    print(
        f"Decoded z = [{', '.join(f'{v:.4g}' for v in z)}] to {path}, shape "
        f"{' x '.join(map(str, image.shape))}, with {where}"
    )
    return 0
