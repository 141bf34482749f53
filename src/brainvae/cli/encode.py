"""`brainvae encode`: posterior means and log-variances of every sample of a dataset, as CSV."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `encode` sub-command."""
    parser = subparsers.add_parser(
        "encode",
        help="write the latent codes of a dataset to CSV",
        description=(
            "Encode every sample of DATASET with the model in RUN and write one CSV row per "
            "sample: subject_id, session (when the dataset has it), every other column of the "
            "dataset's metadata.csv (split, slice_index, age, diagnosis, ...), then "
            "mu_1..mu_L and logvar_1..logvar_L. Warns on stderr when DATASET was prepared "
            "differently from the model's training data (recipe or intensity range)."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN", help="run folder (or saved model folder)")
    parser.add_argument("dataset", metavar="DATASET", help="folder made by `brainvae prepare`")
    parser.add_argument("--out", required=True, metavar="LATENTS.csv", help="CSV to write")
    parser.add_argument("--batch", type=int, default=256, help="images per forward pass")
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, mps, cuda, cuda:N")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Encode the dataset in batches and write the CSV."""
    import sys
    from pathlib import Path

    from brainvae.atomic import atomic_file
    from brainvae.data.csv_safety import neutralised
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import load_model
    from brainvae.training import resolve_device
    from brainvae.usecases.encoding import encode_dataset, preparation_notes, stale_model_note

    model = load_model(args.run_dir).to(resolve_device(args.device))
    stale = stale_model_note(args.run_dir, model)
    if stale is not None:
        print(f"brainvae encode: Warning: {stale}", file=sys.stderr)
    dataset = PreparedDataset.open(args.dataset)
    for warning, note in preparation_notes(model, dataset):
        print(f"brainvae encode: {'Warning' if warning else 'Note'}: {note}", file=sys.stderr)
    table = encode_dataset(model, dataset, args.batch)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as temporary:  # a full disk: DiskFullError, no temporary left
        neutralised(table).to_csv(temporary, index=False, float_format="%.8g")
    print(
        f"Encoded {len(table)} scans of {dataset.path} with {args.run_dir} "
        f"(L = {model.latent_dim}) into {out}"
    )
    return 0
