"""`brainvae longitudinal`: aging and disease in a trained latent space (Ouyang et al., IEEE TMI
2022, post hoc).

Encodes every scan of POPULATION (a prepared dataset, or a population folder with its
subjects.csv such as sample_data/population_2d) with the model in RUN, pairs each subject's
visits, learns the aging direction tau_a from the --control group's pairs and a disease
direction tau_d for every other group of --group (closed form, split-half stability), and
decodes each group's simulated brain over an age range. Writes DIR at once (an interrupted run
leaves nothing half-written): loadings, pairs, trajectories and per-ROI tables as CSV, each
group's trajectory and change as NIfTI series, strip.png, trajectory.gif, loadings.png and
summary.json (brainvae.exports.longitudinal_folder). Every default is LongitudinalRequest's,
shared with the Python API and the Aging and disease dock.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from brainvae.cli._options import add_output_options


def _years(text: str) -> tuple[float, float]:
    """'50,80' as (50.0, 80.0): the first and last age of the trajectories, first < last."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        first, last = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"write the first and last age in years, such as 50,80; not {text!r}"
        ) from None
    if not last > first:
        raise argparse.ArgumentTypeError(f"the last age must be above the first; got {text!r}")
    return (first, last)


def _at_least(low: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}: a whole number, not {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{what}: at least {low}, not {value}")
        return value

    return parse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `longitudinal` sub-command."""
    from brainvae.cli._options import request_defaults
    from brainvae.longitudinal import LongitudinalRequest
    from brainvae.longitudinal.directions import STABLE
    from brainvae.longitudinal.pairs import PAIRINGS

    d = request_defaults(LongitudinalRequest)
    parser = subparsers.add_parser(
        "longitudinal",
        help="aging and disease directions (tau_a, tau_d) and simulated trajectories by age",
        description=(
            "Encode every scan of POPULATION with the model in RUN (posterior means), pair "
            "each subject's visits, and learn the aging direction tau_a (the unit vector "
            "closest in mean cosine to the control pairs' latent changes) and one disease "
            "direction tau_d per other group (the same for the patients' changes with their "
            "aging part removed), each with its split-half stability over subjects (stable from "
            f"{STABLE}). Then decode each group's simulated brain at --frames ages (the "
            "published formulas; ages mapped to the aging position by a line fitted over the "
            "controls). Writes CSV tables, NIfTI series (one frame per age), strip.png, "
            "trajectory.gif, loadings.png and summary.json into DIR."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN", help="run folder (or saved model folder)")
    parser.add_argument(
        "population",
        metavar="POPULATION",
        help="a prepared dataset (`brainvae prepare`) or a population folder with subjects.csv",
    )
    parser.add_argument(
        "--group",
        metavar="COL",
        default=d["group"],
        help="column of the subjects table naming each subject's group (default %(default)s)",
    )
    parser.add_argument(
        "--control",
        metavar="LABEL",
        default=d["control"],
        help="the --group value of the healthy controls: tau_a is learned from their pairs, "
        "every other group gets a tau_d (default %(default)s)",
    )
    parser.add_argument(
        "--subject",
        metavar="COL",
        default=d["subject"],
        help="column naming the subject of each scan (default %(default)s)",
    )
    parser.add_argument(
        "--age",
        metavar="COL",
        default=d["age"],
        help="column of each scan's age in years (default %(default)s)",
    )
    parser.add_argument(
        "--order",
        metavar="COL",
        default=d["order"],
        help="column ordering a subject's visits: a visit number or a date (default: by age)",
    )
    parser.add_argument(
        "--pairing",
        choices=PAIRINGS,
        default=d["pairing"],
        help="consecutive: each visit with the next; all: every ordered pair of a subject's "
        "visits (default %(default)s)",
    )
    parser.add_argument(
        "--years",
        type=_years,
        default=d["years"],
        metavar="FIRST,LAST",
        help="first and last age of the simulated trajectories, e.g. 50,80 (default: the "
        "controls' 10th and 90th age percentile, rounded to whole years)",
    )
    parser.add_argument(
        "--frames",
        type=_at_least(2, "--frames"),
        default=d["frames"],
        metavar="N",
        help="ages simulated from the first to the last (default %(default)s)",
    )
    parser.add_argument(
        "--splits",
        type=_at_least(0, "--splits"),
        default=d["n_splits"],
        metavar="N",
        help="random halvings of the subjects for each direction's stability (default "
        "%(default)s; 0 skips the stability)",
    )
    parser.add_argument(
        "--seed", type=int, default=d["seed"], help="the halvings (default %(default)s)"
    )
    add_output_options(parser)
    parser.set_defaults(func=run)
    return parser


def request_of(args: argparse.Namespace) -> Any:
    """The LongitudinalRequest the options ask for."""
    from brainvae.longitudinal import LongitudinalRequest

    return LongitudinalRequest(
        group=args.group,
        control=args.control,
        subject=args.subject,
        age=args.age,
        order=args.order or None,
        pairing=args.pairing,
        n_splits=args.splits,
        years=args.years,
        frames=args.frames,
        seed=args.seed,
    )


def run(args: argparse.Namespace) -> int:
    """Check, load, encode and analyse with progress on stderr, write, print the figures."""
    from brainvae.cli._console import drive_stages
    from brainvae.data.io.output_folder import check_output
    from brainvae.exports.longitudinal_folder import write_longitudinal_results
    from brainvae.exports.longitudinal_summary import summary_lines
    from brainvae.longitudinal.request import check_request
    from brainvae.models import load_model
    from brainvae.training import resolve_device
    from brainvae.usecases.longitudinal_run import longitudinal_run
    from brainvae.usecases.population_run import open_population, run_info

    out = Path(args.out)
    request = request_of(args)
    check_output(out, args.overwrite)
    population = open_population(
        args.population,
        table_for="the aging and disease directions need its subjects, ages and groups",
    )
    check_request(request, population.table)
    model = load_model(args.run_dir).to(resolve_device(args.device))
    steps = longitudinal_run(model, population, request)
    result = drive_stages(steps, args.quiet, "aging and disease")
    info = run_info(args.run_dir, args.population, population, len(result.analysis.latent_names))
    write_longitudinal_results(out, result, population, info, args.overwrite)
    print(f"Aging and disease directions of {population.n_scans} scans in {out}")
    for line in summary_lines(result, population):
        print(line)
    return 0
