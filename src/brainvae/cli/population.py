"""`brainvae population`: the population questions asked of a trained latent space.

Encodes every scan of POPULATION (a prepared dataset, or a population folder with its
subjects.csv such as sample_data/population_2d) with the model in RUN, then: LDA of the
--classify column (held-out, per-class precision and recall laid out like the FLAIR study's
Table 2, balanced accuracy with a subject bootstrap interval, chance), the same from PCA of the
raw images for reference, the acquisition-bias check, brain scores of the --regress columns and
the latent map. Writes DIR at once (an interrupted run leaves nothing half-written): CSV tables,
PNG figures and summary.json (brainvae.exports.population_folder). Every default is
PopulationRequest's, shared with the Python API and the Population analysis dock.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from brainvae.cli._options import add_output_options


def _latent_pair(text: str) -> tuple[int, int]:
    """'3,5' as (3, 5): two latent numbers, 1-based."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2 or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise argparse.ArgumentTypeError(
            f"write two latent numbers from 1, such as 1,2; not {text!r}"
        )
    return (int(parts[0]), int(parts[1]))


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `population` sub-command."""
    from brainvae.cli._options import request_defaults
    from brainvae.population import MAP_METHODS, VALIDATION_SCHEMES, PopulationRequest
    from brainvae.population.brain_scores import REGRESSIONS
    from brainvae.population.validation import GROUPED_CV_BELOW

    d = request_defaults(PopulationRequest)
    parser = subparsers.add_parser(
        "population",
        help="population questions: LDA of a class column, acquisition bias, brain scores, map",
        description=(
            "Encode every scan of POPULATION with the model in RUN (posterior means) and ask: "
            "do the classes of --classify separate in the latent space (LDA, held-out "
            "predictions; per-class precision and recall, TP/FP/FN/TN, confusion matrix, "
            "balanced accuracy with a subject bootstrap interval and the chance level), and do "
            "they separate better than from PCA of the raw images with as many components "
            "(the reference)? Is the separation acquisition rather than anatomy (each "
            "nuisance column against the class and the latents)? Which latents carry the "
            "--regress measures (held-out Pearson r, permutation p, latent x measure "
            "weights)? Writes CSV tables, PNG figures and summary.json into DIR."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN", help="run folder (or saved model folder)")
    parser.add_argument(
        "population",
        metavar="POPULATION",
        help="a prepared dataset (`brainvae prepare`) or a population folder with subjects.csv",
    )
    parser.add_argument(
        "--classify",
        metavar="COL",
        default=d["classify"],
        help="class column of the subjects table to separate by LDA (e.g. diagnosis) "
        "(default: none; name it, --regress, or both)",
    )
    parser.add_argument(
        "--merge",
        action="append",
        metavar="A,B,C=NEW",
        help="merge classes before classifying (e.g. leuko_1,leuko_2,leuko_3=leuko); repeat "
        "for several merges (default: none)",
    )
    parser.add_argument(
        "--regress",
        metavar="COL,COL",
        default=",".join(d["regress"]),
        help="numeric columns to predict from the latents (brain scores; e.g. age,score) "
        "(default: none)",
    )
    parser.add_argument(
        "--regression",
        choices=REGRESSIONS,
        default=d["regression"],
        help="ridge (dense) or lasso (sparse one-to-one latent-measure correspondences) "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--nuisance",
        metavar="COL,COL",
        help="columns for the acquisition-bias check, or none to skip it (default: the columns "
        "named like acquisition settings: site, scanner, TR, TE, bandwidth, ...)",
    )
    parser.add_argument(
        "--validation",
        choices=VALIDATION_SCHEMES,
        default=d["validation"],
        help=f"auto (default): cross-validation grouped by subject under {GROUPED_CV_BELOW} "
        "subjects, else the dataset's test split; cv: always grouped cross-validation; split: "
        "train on every scan outside the test split, test on the test split",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=d["folds"],
        metavar="N",
        help="folds of the grouped cross-validation (default %(default)s)",
    )
    parser.add_argument(
        "--shrinkage",
        default="none" if d["shrinkage"] is None else str(d["shrinkage"]),
        metavar="none|auto|X",
        help="LDA covariance shrinkage: none (plain LDA, as published), auto (Ledoit-Wolf) or "
        "a number in [0, 1] (default %(default)s)",
    )
    parser.add_argument(
        "--all-latents",
        action="store_true",
        default=d["all_latents"],
        help="use every latent (default: the active ones only, code variance over the scans "
        "> 0.01)",
    )
    parser.add_argument(
        "--no-reference",
        dest="reference",
        action="store_false",
        default=d["reference"],
        help="skip the reference classification from PCA of the raw images (default: run it)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=d["n_bootstrap"],
        metavar="N",
        help="subject bootstrap resamples for the balanced accuracy's 95 %% interval "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=d["n_permutations"],
        metavar="N",
        help="permutations for the brain scores' and the bias check's p-values (default %(default)s)",
    )
    parser.add_argument(
        "--map",
        choices=MAP_METHODS,
        default=d["map_method"],
        help="the latent map: pca of the used latents (default), umap (needs umap-learn: "
        "pip install 'napari-brainvae[umap]'), latents (the two of --map-latents), lda (the "
        "discriminant axes) (default %(default)s)",
    )
    parser.add_argument(
        "--map-latents",
        type=_latent_pair,
        default=d["map_latents"],
        metavar="I,J",
        help="with --map latents: the two latents, 1-based (default "
        + ",".join(map(str, d["map_latents"]))
        + ": z1 and z2)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=d["seed"],
        help="folds, bootstrap, permutations (default %(default)s)",
    )
    add_output_options(parser)
    parser.set_defaults(func=run)
    return parser


def _names(text: str | None) -> tuple[str, ...]:
    """'a,b, c' -> ('a', 'b', 'c'); None or '' -> ()."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


def request_of(args: argparse.Namespace) -> Any:
    """The PopulationRequest the options ask for."""
    from brainvae.population import PopulationRequest
    from brainvae.population.classification import parse_shrinkage
    from brainvae.population.columns import parse_merge

    if args.nuisance is None:
        nuisance = None
    elif args.nuisance.strip().lower() == "none":
        nuisance = ()
    else:
        nuisance = _names(args.nuisance)
    return PopulationRequest(
        classify=args.classify or None,
        merge=parse_merge(args.merge),
        regress=_names(args.regress),
        regression=args.regression,
        nuisance=nuisance,
        validation=args.validation,
        folds=args.folds,
        shrinkage=parse_shrinkage(args.shrinkage),
        all_latents=args.all_latents,
        reference=args.reference,
        n_bootstrap=args.bootstrap,
        n_permutations=args.permutations,
        map_method=args.map,
        map_latents=args.map_latents,
        seed=args.seed,
    )


def run(args: argparse.Namespace) -> int:
    """Check, load, encode and analyse with progress on stderr, write, print the figures."""
    from brainvae.cli._console import drive_stages
    from brainvae.data.io.output_folder import check_output
    from brainvae.exports.population_folder import write_population_results
    from brainvae.exports.population_summary import summary_lines
    from brainvae.models import load_model
    from brainvae.population.request import check_request
    from brainvae.training import resolve_device
    from brainvae.usecases.population_run import open_population, population_run, run_info

    out = Path(args.out)
    request = request_of(args)
    check_output(out, args.overwrite)
    population = open_population(args.population, table_for="the population questions need one")
    check_request(request, population.table)
    model = load_model(args.run_dir).to(resolve_device(args.device))
    steps = population_run(model, population, request)
    analysis = drive_stages(steps, args.quiet, "population analysis")
    info = run_info(args.run_dir, args.population, population, len(analysis.latent_names))
    write_population_results(out, analysis, info, args.overwrite, population.table)
    used = int(analysis.used.sum())
    print(
        f"Population analysis of {population.n_scans} scans ({used} of "
        f"{len(analysis.latent_names)} latents used) in {out}"
    )
    for line in summary_lines(analysis):
        print(line)
    return 0
