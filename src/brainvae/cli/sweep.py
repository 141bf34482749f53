"""`brainvae sweep`: train and evaluate every beta x latent-size cell; print the comparison table.

Each cell is its own run folder SWEEPDIR/beta-<b>_latent-<L>/ with its metrics.json; the cells
can be run one per cluster task (--cell K, or --cell env under a SLURM job array) and
`brainvae sweep-report` gathers whatever cells exist.
"""

from __future__ import annotations

import argparse
import os
import sys

from brainvae.cli._options import NOT_YET, add_training_options
from brainvae.number_lists import number_list

CELL_VARIABLE = "SLURM_ARRAY_TASK_ID"
"""--cell env reads the cell number from this environment variable (a SLURM job array's)."""


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


def _cell(text: str) -> int | str:
    """argparse type for --cell: a whole number from 1, or env."""
    if text.strip().lower() == "env":
        return "env"
    if text.strip().isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a cell number from 1 or env, got {text!r}")


def _positive(text: str) -> int:
    """argparse type: a whole number >= 1."""
    if text.strip().isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `sweep` sub-command."""
    from brainvae.cli._options import request_defaults
    from brainvae.usecases.evaluate_run import CellMetricsRequest

    d = request_defaults(CellMetricsRequest)
    parser = subparsers.add_parser(
        "sweep",
        help="train and evaluate each beta x latent-size combination and compare",
        description=(
            "Train a beta-VAE for every combination of --betas and --latents, each into "
            "SWEEPDIR/beta-<b>_latent-<L>/, then evaluate it on the --split: reconstruction "
            "CW-SSIM, SSIM and MSE inside the brain mask, the PCA-based Frechet distance of "
            "prior samples, the active latents and the Gaussian total correlation of the codes; "
            "with --factors also MIG, DCI and SAP, with --rois the receptive-field separation. "
            "Each cell writes its metrics.json; SWEEPDIR/sweep.csv gathers every cell present. "
            "The grid's order: betas outer, latent sizes inner, so cell K (from 1) is beta "
            "number (K-1) // (number of latent sizes) + 1 with latent size number "
            "(K-1) % (number of latent sizes) + 1; --betas 1,3,10 --latents 4,8,16 makes cell "
            "1 beta 1 L 4, cell 2 beta 1 L 8, cell 4 beta 3 L 4. Running again keeps the "
            "finished cells, evaluates trained ones that lack their metrics and resumes the "
            "interrupted ones. Then `brainvae sweep-report SWEEPDIR --out DIR` draws the "
            "metrics and their inflection points. " + NOT_YET
        ),
    )
    parser.add_argument("dataset", metavar="DATASET", help="folder made by `brainvae prepare`")
    parser.add_argument("--betas", type=_numbers(float), required=True, help="e.g. 1,3,10")
    parser.add_argument("--latents", type=_numbers(int), required=True, help="e.g. 4,8")
    parser.add_argument(
        "--model",
        choices=("beta-vae",),
        default="beta-vae",
        help="model family (default %(default)s)",
    )
    parser.add_argument(
        "--cell",
        type=_cell,
        metavar="K|env",
        help="run this one cell of the grid only (numbered as above); env reads K from "
        f"${CELL_VARIABLE}, for a SLURM job array --array=1-<cells> (default: every cell)",
    )
    add_training_options(parser)
    parser.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default=d["split"],
        help="the scans each cell is evaluated on (default %(default)s)",
    )
    parser.add_argument(
        "--samples",
        type=_positive,
        metavar="N",
        help="prior samples per cell for the PCA-FD (default: as many as the split has scans)",
    )
    parser.add_argument(
        "--eval-batch",
        type=_positive,
        default=d["batch"],
        metavar="N",
        help="images per forward pass while evaluating (default %(default)s)",
    )
    parser.add_argument(
        "--factors",
        metavar="FILE",
        help="the scans' true generating factors (a phantom population's subjects.csv): adds "
        "MIG, DCI and SAP (default: none)",
    )
    parser.add_argument(
        "--rois",
        metavar="ROIS.nii.gz",
        help="label image on the dataset's grid: adds the receptive-field separation and "
        "published s (remove, weights -1..1; default: none)",
    )
    parser.add_argument(
        "--roi-names", metavar="NAMES.csv", help="with --rois: CSV label,name (default roi_N)"
    )
    parser.add_argument(
        "--no-metrics",
        action="store_true",
        help="train only, no evaluation (default: evaluate each cell)",
    )
    parser.add_argument("--out", required=True, metavar="SWEEPDIR", help="folder for the runs")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--overwrite", action="store_true", help="retrain the cells asked for from scratch"
    )
    mode.add_argument(
        "--resume",
        action="store_true",
        help="accepted for older scripts: resuming is what a sweep does anyway",
    )
    parser.set_defaults(func=run)
    return parser


def chosen_cells(cell: int | str | None) -> list[int] | None:
    """The cells to run: --cell K, --cell env ($SLURM_ARRAY_TASK_ID), or all (None)."""
    from brainvae.models import ModelError

    if cell is None:
        return None
    if cell == "env":
        text = os.environ.get(CELL_VARIABLE, "").strip()
        if not text.isdigit() or int(text) < 1:
            raise ModelError(
                f"--cell env reads the cell number from ${CELL_VARIABLE}, which is "
                f"{text or 'not set'!r}; submit with sbatch --array=1-<cells>, or give --cell K"
            )
        return [int(text)]
    return [int(cell)]


def metrics_request(args: argparse.Namespace):
    """The CellMetricsRequest the options ask for."""
    from brainvae.usecases.evaluate_run import CellMetricsRequest

    return CellMetricsRequest(
        split=args.split,
        n_samples=args.samples,
        seed=args.seed,
        batch=args.eval_batch,
        factors_path=args.factors,
        rois_path=args.rois,
        roi_names_path=args.roi_names,
    )


def evaluator(args: argparse.Namespace, dataset):
    """(evaluate, measurements) for run_sweep, the inputs read and checked once; (None, {})
    with --no-metrics."""
    from brainvae.cli._console import read_rois_noting
    from brainvae.usecases.evaluate_run import cell_inputs, cell_metrics, check_cell_metrics

    if args.no_metrics:
        return None, {}
    request = metrics_request(args)
    check_cell_metrics(dataset, request)
    rois = None
    if args.rois:
        spatial = tuple(int(s) for s in dataset.scan_shape)
        rois = read_rois_noting(args.rois, dataset, spatial, "sweep", args.quiet)
    inputs = cell_inputs(request, dataset, rois)
    if inputs.notes and not args.quiet:
        for note in inputs.notes:
            print(f"brainvae sweep: {note}", file=sys.stderr)
    return (lambda model: cell_metrics(model, dataset, request, inputs)), request.record()


SHOWN_COLUMNS = ("cell", "run", "reason", "epochs", "final_val_loss")
"""The columns printed first; then every measurement with a value."""


def run(args: argparse.Namespace) -> int:
    """Run the cells under a progress bar per training epoch and a line per evaluation; print
    sweep.csv at the end."""
    import threading

    import pandas as pd

    from brainvae.cli._console import CtrlCSetsEvent, show_batch
    from brainvae.cli._options import cli_words, model_config, train_config
    from brainvae.data.dataset import PreparedDataset
    from brainvae.evaluation.sweep_report import METRICS
    from brainvae.models import ModelError
    from brainvae.training import BatchReport
    from brainvae.training.distributed import leave, ranks_from_environment
    from brainvae.training.progress import EpochReport, Finished
    from brainvae.training.sweep import SWEEP_FILE, run_sweep

    talk = ranks_from_environment().writes  # under torchrun, rank 0 alone shows and prints

    cells = chosen_cells(args.cell)
    dataset = PreparedDataset.open(args.dataset)
    base = model_config(args, dataset, family="beta_vae", latent=args.latents[0], beta=1.0)
    evaluate, measurements = evaluator(args, dataset)
    cancel = threading.Event()
    generator = run_sweep(
        base,
        dataset,
        train_config(args),
        args.out,
        args.betas,
        args.latents,
        overwrite=args.overwrite,
        cancel=cancel,
        cells=cells,
        evaluate=evaluate,
        measurements=measurements,
    )
    bar = None
    shown = None
    try:
        with CtrlCSetsEvent(cancel):
            while True:
                try:
                    item = next(generator)
                except StopIteration as stop:
                    rows = stop.value
                    break
                if args.quiet or not talk or isinstance(item.report, EpochReport | Finished):
                    continue
                label = f"[{item.index}/{item.total}] {item.point.run_dir.name}"
                if not isinstance(item.report, BatchReport):  # the evaluation's progress
                    if bar is not None:
                        bar.close()
                        bar = None
                    report = item.report
                    percent = 100 * report.done // max(report.total, 1)
                    line = f"{label} {report.stage}: {percent:3d} %"
                    if line != shown:
                        print(f"\r{line:<72}", end="", file=sys.stderr, flush=True)
                        shown = line
                    continue
                if shown is not None:
                    print(file=sys.stderr)
                    shown = None
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
        if shown is not None:
            print(file=sys.stderr)
        leave()
    cancelled = any(row.get("reason") == "cancelled" for row in rows)
    if not talk:
        return 130 if cancelled else 0
    table = pd.DataFrame(rows)
    measured = [m for m in METRICS if m in table and table[m].notna().any()]
    columns = [c for c in dict.fromkeys((*SHOWN_COLUMNS, *measured)) if c in table]
    if columns:
        print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"Wrote {args.out}/{SWEEP_FILE} ({len(rows)} cell(s) present)")
    if cancelled:
        print("Interrupted: run the same command again to continue.")
        return 130
    return 0
