"""`brainvae sweep-report`: gather a sweep's cells, draw each metric against L and beta, and say
where each levels off (brainvae.evaluation.sweep_report states the rule).

Writes DIR at once: report.csv (one row per cell found), inflections.csv (one row per metric,
axis and series), metrics_vs_latent.png/.pdf and metrics_vs_beta.png/.pdf
(brainvae.figures.sweep_figures), summary.json (the grid, the missing cells, the rule).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _percent(text: str) -> float:
    """argparse type: a percentage in (0, 100), as a fraction."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"expected a percentage between 0 and 100, got {text!r}")
    return value / 100


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `sweep-report` sub-command."""
    from brainvae.evaluation.sweep_report import PLATEAU_FRACTION

    parser = subparsers.add_parser(
        "sweep-report",
        help="a sweep's metrics against L and beta, with where each levels off",
        description=(
            "Gather every cell of SWEEP (made by `brainvae sweep`, possibly cell by cell on a "
            "cluster: the cells without results are named), draw each metric against the "
            "latent size L for each beta and against beta for each L, and mark where it levels "
            "off. The rule: along L (or beta) in increasing order, the inflection is the "
            "smallest value from which every later step improves the metric by less than "
            "--plateau % of its total range over the sweep (max - min over every cell); when "
            "the last step still improves by more, the series has not levelled off within the "
            "grid. Writes "
            "report.csv, inflections.csv, metrics_vs_latent.png/.pdf, metrics_vs_beta.png/.pdf "
            "and summary.json into DIR and prints the inflection points."
        ),
    )
    parser.add_argument("sweep_dir", metavar="SWEEP", help="folder written by `brainvae sweep`")
    parser.add_argument(
        "--plateau",
        type=_percent,
        default=PLATEAU_FRACTION,
        metavar="PERCENT",
        help=f"a step improving by less than this %% of the metric's range over the sweep is "
        f"flat (default "
        f"{100 * PLATEAU_FRACTION:g})",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DIR")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Gather, write, print the inflection points and the missing cells."""
    from brainvae.data.io.output_folder import check_output
    from brainvae.evaluation.sweep_report import (
        gather_sweep,
        inflection_lines,
        write_sweep_report,
    )

    out = Path(args.out)
    check_output(out, args.overwrite)
    sweep = gather_sweep(args.sweep_dir)
    write_sweep_report(out, sweep, args.plateau, args.overwrite)
    found = len(sweep.table)
    print(
        f"Sweep {args.sweep_dir}: {found} of {found + len(sweep.missing)} cells have results "
        f"(betas {', '.join(f'{b:g}' for b in sweep.betas)}; L "
        f"{', '.join(map(str, sweep.latents))})"
    )
    if sweep.missing:
        print(f"Missing: {', '.join(sweep.missing)}")
    print(
        f"Inflection (every later step improves by < {100 * args.plateau:g} % of the metric's range "
        "over the sweep):"
    )
    for line in inflection_lines(sweep, args.plateau):
        print(f"  {line}")
    print(f"Wrote {out}")
    return 0
