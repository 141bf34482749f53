"""`brainvae phantom`: write a ground-truth phantom population built from the MNI152 template."""

from __future__ import annotations

import argparse


def _artefacts(text: str) -> tuple[str, ...]:
    """'none' or a comma list of leakage, missing, grid."""
    names = tuple(n.strip() for n in text.split(",") if n.strip() and n.strip() != "none")
    allowed = ("leakage", "missing", "grid")
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown artefact {unknown[0]!r}; choose from none, {', '.join(allowed)}"
        )
    return names


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def add_parser(subparsers) -> None:
    """Register `phantom` (argparse only here: heavy imports happen in run)."""
    parser = subparsers.add_parser(
        "phantom",
        help="generate a phantom population with known factors",
        description="Render a population from the MNI152 template with known age, disease, "
        "nuisance and artefact factors (values in subjects.csv, regions in atlas.nii.gz).",
    )
    parser.add_argument(
        "--dims",
        type=int,
        choices=(2, 3),
        default=2,
        help="2: one slice (see --orientation); 3: 40x48x40 volume at 4 mm (default 2)",
    )
    parser.add_argument(
        "--orientation",
        choices=("coronal", "axial"),
        default="coronal",
        help="2D slice: coronal 128x160 at 1.1 mm (default, the sample's) or axial 144x120 at "
        "1.25 mm through the lateral ventricles",
    )
    parser.add_argument(
        "--n",
        type=_positive,
        default=100,
        help="number of subjects (scans can be more: longitudinal visits)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output folder (must be empty or new)")
    parser.add_argument(
        "--longitudinal-share", type=_share, default=0.3, help="share of subjects with 2-3 visits"
    )
    parser.add_argument(
        "--artefacts",
        type=_artefacts,
        default=(),
        help="none, or a comma list of leakage,missing,grid",
    )
    parser.add_argument(
        "--artefact-share",
        type=_share,
        default=0.3,
        help="share of scans given each chosen artefact",
    )
    parser.add_argument(
        "--ventricles",
        choices=("age", "independent"),
        default="age",
        help="age: ventricles expand with age, as in real cohorts (default); independent: "
        "ventricle size drawn apart from age, a planted factor a model can learn on its own",
    )
    parser.add_argument(
        "--site-follows-diagnosis",
        type=_share,
        default=0.0,
        metavar="SHARE",
        help="share of subjects scanned at the site numbered like their diagnosis (healthy 0, "
        "ms 1, leuko 2) instead of a random one: a planted acquisition bias for "
        "`brainvae population`'s bias check (default 0: sites independent of diagnosis)",
    )
    parser.add_argument("--workers", type=_positive, default=2, help="rendering processes")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the phantom files of an existing folder (its other files stay; the old "
        "population stays whole until the new one is written)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the population and print a one-line summary."""
    import time

    from brainvae.data.phantom import PopulationConfig, build_population

    config = PopulationConfig(
        dims=args.dims,
        orientation=args.orientation,
        n_subjects=args.n,
        seed=args.seed,
        longitudinal_share=args.longitudinal_share,
        artefacts=tuple(args.artefacts),
        artefact_share=args.artefact_share,
        ventricles=args.ventricles,
        site_follows_diagnosis=args.site_follows_diagnosis,
    )
    start = time.perf_counter()
    summary = build_population(config, args.out, overwrite=args.overwrite, workers=args.workers)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.diagnoses.items()))
    print(
        f"wrote {summary.n_scans} scans ({counts}) of {summary.n_subjects} subjects "
        f"to {summary.folder} in {time.perf_counter() - start:.1f} s"
    )
    return 0
