"""`brainvae denoise`: which model removes the artefacts (the mouse-brain study's Fig. 2).

Corrupts every scan of the --split of DATASET with each artefact (bright leakage blobs, a
missing band, a grid; --severity 1 is the phantom's strength), reconstructs the clean and the
corrupted scans with the model of every RUN, scores each reconstruction against the clean scan
(CW-SSIM, SSIM, MSE inside the brain) and measures how much of the artefact it reproduced.
Writes DIR at once: denoising.csv, inputs.csv, summary.csv, montage.png and .pdf, the montage
scan's images as NIfTI and summary.json (brainvae.exports.denoise_folder). Every default is
DenoiseRequest's, shared with the Python API and the Evaluation dock.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from brainvae.cli._options import add_output_options

SPLITS = ("train", "val", "test")


def _artefact_list(text: str) -> tuple[str, ...]:
    """'leakage,grid' -> ('leakage', 'grid'); unknown names are refused naming the known."""
    from brainvae.evaluation.artefacts import ArtefactError, check_artefacts

    names = tuple(part.strip() for part in str(text).split(",") if part.strip())
    try:
        return check_artefacts(names)
    except ArtefactError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _number(low: float, what: str, kind: type = float):
    """argparse type: a finite number of `kind` at least `low`."""

    def parse(text: str) -> Any:
        import math

        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}: a number, not {text!r}") from None
        if not (math.isfinite(value) and value >= low):
            raise argparse.ArgumentTypeError(f"{what}: a finite number >= {low:g}, not {text}")
        return value

    return parse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `denoise` sub-command."""
    from brainvae.cli._options import request_defaults
    from brainvae.evaluation.artefacts import ARTEFACTS
    from brainvae.evaluation.denoising import MASK_FRACTION
    from brainvae.usecases.denoise_run import DenoiseRequest

    d = request_defaults(DenoiseRequest)
    parser = subparsers.add_parser(
        "denoise",
        help="which model removes leakage, missing sections and grid artefacts (denoising)",
        description=(
            "Corrupt every scan of the --split of DATASET with each artefact (leakage: bright "
            "blobs; missing: a band of slices set to the background; grid: dark lines), "
            "reconstruct the clean and the corrupted scans with the model of every RUN, and "
            "score each reconstruction against the CLEAN scan inside the brain mask (the "
            f"split's mean scan above {MASK_FRACTION:.0%} of its maximum): CW-SSIM, SSIM, MSE; "
            "over the voxels "
            "the artefact changed: the error against the clean scan and the share of the "
            "artefact the model passed into its output (0: removed, 1: copied). Writes "
            "denoising.csv (per scan x artefact x model), inputs.csv, summary.csv (means), "
            "montage.png/.pdf (rows = artefacts; columns = clean scan, corrupted input, each "
            "model's reconstruction; the mean scores under it), the montage scan's images as "
            "NIfTI and summary.json into DIR."
        ),
    )
    parser.add_argument(
        "runs", nargs="+", metavar="RUN", help="run folders (or saved model folders) to compare"
    )
    parser.add_argument("dataset", metavar="DATASET", help="folder made by `brainvae prepare`")
    parser.add_argument(
        "--artefacts",
        type=_artefact_list,
        default=d["artefacts"],
        metavar="A,B",
        help=f"comma-separated, the montage's rows in this order; known: {', '.join(ARTEFACTS)} "
        f"(default {','.join(d['artefacts'])})",
    )
    parser.add_argument(
        "--severity",
        type=_number(0.0, "--severity"),
        default=d["severity"],
        help="strength: 1 = the phantom's artefacts, 0 = none, 2 = blobs twice as bright "
        "(saturating at full brightness) and wide, bands twice as wide, grid lines twice as "
        "deep (default %(default)s)",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default=d["split"],
        help="the scans to corrupt (default %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=_number(0, "--seed", int),
        default=d["seed"],
        help="seeds where the artefacts go, each scan its own draws (default %(default)s)",
    )
    parser.add_argument(
        "--names",
        metavar="A,B",
        help="names of the runs in the tables and the montage, one per RUN in order (default: "
        "each run's folder name)",
    )
    parser.add_argument(
        "--montage-scan",
        type=_number(0, "--montage-scan", int),
        default=d["montage_scan"],
        metavar="K",
        help="the scan of the split (0-based) the montage and the NIfTI files show "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--batch",
        type=_number(1, "--batch", int),
        default=d["batch"],
        help="scans per forward pass (default %(default)s)",
    )
    add_output_options(parser)
    parser.set_defaults(func=run)
    return parser


def request_of(args: argparse.Namespace) -> Any:
    """The DenoiseRequest the options ask for."""
    from brainvae.usecases.denoise_run import DenoiseRequest

    return DenoiseRequest(
        artefacts=tuple(args.artefacts),
        severity=float(args.severity),
        split=args.split,
        seed=int(args.seed),
        batch=int(args.batch),
        montage_scan=int(args.montage_scan),
    )


def run(args: argparse.Namespace) -> int:
    """Check, load, compare with progress on stderr, write, print the figures."""
    from brainvae.cli._console import drive_stages
    from brainvae.data.io.output_folder import check_output
    from brainvae.exports.denoise_folder import write_denoise_folder
    from brainvae.usecases.denoise_run import (
        check_request,
        denoise_run,
        open_dataset_for,
        open_runs,
    )

    out = Path(args.out)
    request = request_of(args)
    check_request(request)
    check_output(out, args.overwrite)
    names = [n.strip() for n in args.names.split(",")] if args.names else None
    runs = open_runs(args.runs, names, args.device)
    dataset = open_dataset_for(runs, args.dataset)
    result = drive_stages(denoise_run(runs, dataset, request), args.quiet, "denoising")
    info = {"dataset": str(dataset.path), "runs_given": [str(r) for r in args.runs]}
    write_denoise_folder(out, result, info, args.overwrite)
    for line in summary_lines(result):
        print(line)
    print(f"Wrote {out}")
    return 0


def summary_lines(result: Any) -> list[str]:
    """What a person reads after the run: per artefact the input's and each model's mean
    CW-SSIM against the clean scan and share of the artefact reproduced, and who removes it."""
    comparison = result.comparison
    summary = comparison.summary()
    inputs = comparison.input_summary().set_index("artefact")
    least = comparison.least_reproduced()
    lines = [
        f"Denoising of {comparison.n_scans} {result.request.split} scans at severity "
        f"{comparison.severity:g} (CW-SSIM against the clean scan inside the brain; "
        "reproduced: share of the artefact in the reconstruction, 0 = removed, 1 = copied):"
    ]
    for artefact in ("none", *comparison.artefacts):
        rows = summary[summary["artefact"] == artefact]
        if artefact == "none":
            label = "clean scans"
        else:
            label = f"{artefact} (input CW-SSIM {inputs.loc[artefact, 'cw_ssim']:.3f})"
        lines.append(f"  {label}:")
        for _, row in rows.iterrows():
            reproduced = row["artefact_reproduced"]
            more = "" if reproduced != reproduced else f", reproduced {reproduced:.2f}"
            lines.append(f"    {row['model']}: CW-SSIM {row['cw_ssim']:.3f}{more}")
        if artefact in least:
            lines.append(f"    reproduces it least: {least[artefact]}")
    return lines
