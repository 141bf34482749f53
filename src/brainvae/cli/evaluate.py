"""`brainvae evaluate`: how well a run reconstructs a split's scans and how real its samples are.

Reconstructs every scan of the split (decode of the posterior mean), scores each against its
scan inside the brain mask (MSE, SSIM, CW-SSIM), draws prior samples and compares them with
the scans as a set (PCA-based Frechet distance), and writes DIR at once: reconstruction.csv,
summary.json and examples.png (brainvae.exports.evaluation_folder). Works for every family.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from brainvae.cli._options import add_output_options

SPLITS = ("train", "val", "test")


def _positive(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `evaluate` sub-command."""
    from brainvae.usecases.evaluate_run import DEFAULT_BATCH, DEFAULT_SEED, DEFAULT_SPLIT

    parser = subparsers.add_parser(
        "evaluate",
        help="reconstruction and generation quality of a run (CW-SSIM, SSIM, MSE, PCA-FD)",
        description=(
            "Reconstruct every scan of the --split of DATASET with the model in RUN and score "
            "each reconstruction against its scan inside the brain mask (the split's mean scan "
            "above 10 % of its maximum): MSE, SSIM and CW-SSIM (insensitive to small shifts). "
            "Draw --samples codes from the prior (an age-conditioned VAE: at the split's own "
            "ages), decode them and compare them with the split's scans as a set: the "
            "PCA-based Frechet distance (0 for identical sets). Writes reconstruction.csv, "
            "summary.json and examples.png into DIR."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN", help="run folder (or saved model folder)")
    parser.add_argument("dataset", metavar="DATASET", help="folder made by `brainvae prepare`")
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default=DEFAULT_SPLIT,
        help="the scans to reconstruct and compare the samples with (default %(default)s)",
    )
    parser.add_argument(
        "--samples",
        type=_positive,
        metavar="N",
        help="prior samples to draw (default: as many as the split has scans)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="seeds the samples (default %(default)s)"
    )
    parser.add_argument(
        "--batch",
        type=_positive,
        default=DEFAULT_BATCH,
        help="images per forward pass (default %(default)s)",
    )
    add_output_options(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Check, load, evaluate with progress on stderr, write, print the figures."""
    from brainvae.cli._console import drive_stages
    from brainvae.data.io.output_folder import check_output
    from brainvae.exports.evaluation_folder import write_evaluation
    from brainvae.usecases.evaluate_run import evaluate_run, open_run_and_dataset

    out = Path(args.out)
    check_output(out, args.overwrite)
    model, dataset = open_run_and_dataset(args.run_dir, args.dataset, args.device)
    steps = evaluate_run(model, dataset, args.split, args.samples, args.seed, args.batch)
    evaluation = drive_stages(steps, args.quiet, "evaluation")
    info = {"run": str(args.run_dir), "dataset": str(dataset.path), "seed": args.seed}
    write_evaluation(out, evaluation, info, args.overwrite)
    for line in summary_lines(evaluation):
        print(line)
    print(f"Wrote {out}")
    return 0


def summary_lines(evaluation) -> list[str]:
    """What a person reads after the run: the scores and the distance, in words."""
    summary = evaluation.summary()
    scores = summary["reconstruction"]
    lines = [
        f"Reconstructions of the {summary['n_scans']} {summary['split']} scans, inside the brain "
        f"mask ({summary['brain_mask_voxels']} voxels):"
    ]
    for name, label in (("cw_ssim", "CW-SSIM"), ("ssim", "SSIM"), ("mse", "MSE")):
        mean, sd = scores.get(f"{name}_mean"), scores.get(f"{name}_sd")
        if mean is not None:
            spread = f" (sd {sd:.3g})" if sd is not None else ""
            lines.append(f"  {label} {mean:.4g}{spread}")
    samples = summary["samples"]
    distance = samples["pca_frechet_distance"]
    lines.append(
        f"PCA-FD of {samples['n']} prior samples against the {summary['split']} scans: "
        f"{'n/a' if distance is None else format(distance, '.4g')} "
        f"({samples['pca_components']} components)"
    )
    lines.append(
        f"Active latents on these scans: {summary['active_latents']} of {summary['latent_dim']}"
    )
    return lines
