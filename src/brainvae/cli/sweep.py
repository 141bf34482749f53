"""`brainvae sweep`: train every beta x latent-size combination and print the comparison table."""

from __future__ import annotations

import argparse

from brainvae.cli._options import NOT_YET, add_run_folder_options, add_training_options
from brainvae.number_lists import number_list


def _numbers(kind: type):
    """argparse type for a comma-separated list of numbers."""

    def parse(text: str) -> list:
        try:
            values = number_list(text, kind)
        except ValueError:
            values = []
        if not values:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind.__name__}s, got {text!r}"
            )
        return values

    return parse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `sweep` sub-command."""
    parser = subparsers.add_parser(
        "sweep",
        help="train each beta x latent-size combination and compare",
        description=(
            "Train a beta-VAE for every combination of --betas and --latents, each into "
            "SWEEPDIR/beta-<b>_latent-<L>/, and write SWEEPDIR/sweep.csv with the final "
            "validation loss, reconstruction error, active latents, epochs and seconds. " + NOT_YET
        ),
    )
    parser.add_argument("dataset", metavar="DATASET", help="folder made by `brainvae prepare`")
    parser.add_argument("--betas", type=_numbers(float), required=True, help="e.g. 1,3,10")
    parser.add_argument("--latents", type=_numbers(int), required=True, help="e.g. 4,8")
    parser.add_argument("--model", choices=("beta-vae",), default="beta-vae", help="model family")
    add_training_options(parser)
    add_run_folder_options(parser, "SWEEPDIR", "folder for the runs", "the runs in SWEEPDIR")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the sweep under a progress bar per run; print sweep.csv at the end."""
    import threading

    import pandas as pd

    from brainvae.cli._console import CtrlCSetsEvent, show_batch
    from brainvae.cli._options import cli_words, model_config, train_config
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import ModelError
    from brainvae.training import BatchReport
    from brainvae.training.distributed import leave, ranks_from_environment
    from brainvae.training.sweep import SWEEP_FILE, run_sweep

    talk = ranks_from_environment().writes  # under torchrun, rank 0 alone shows and prints

    dataset = PreparedDataset.open(args.dataset)
    base = model_config(args, dataset, family="beta_vae", latent=args.latents[0], beta=1.0)
    cancel = threading.Event()
    generator = run_sweep(
        base,
        dataset,
        train_config(args),
        args.out,
        args.betas,
        args.latents,
        resume=args.resume,
        overwrite=args.overwrite,
        cancel=cancel,
    )
    bar = None
    try:
        with CtrlCSetsEvent(cancel):
            while True:
                try:
                    item = next(generator)
                except StopIteration as stop:
                    rows = stop.value
                    break
                if args.quiet or not talk or not isinstance(item.report, BatchReport):
                    continue
                label = f"[{item.index}/{item.total}] {item.point.run_dir.name}"
                if bar is not None and getattr(bar, "label", None) != label:
                    bar.close()
                    bar = None
                bar = show_batch(bar, item.report, label)
                bar.label = label
    except ModelError as error:
        raise ModelError(cli_words(str(error))) from error
    finally:
        if bar is not None:
            bar.close()
        leave()
    if not talk:
        return 130 if rows and rows[-1]["reason"] == "cancelled" else 0
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"Wrote {args.out}/{SWEEP_FILE} and {len(rows)} run folder(s)")
    if rows and rows[-1]["reason"] == "cancelled":
        print("Interrupted: run the same command again with --resume added to continue.")
        return 130
    return 0
