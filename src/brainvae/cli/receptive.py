"""`brainvae receptive`: receptive fields of a model's latents over ROIs of a dataset, as CSV.

Writes into DIR (atomically: a hidden temporary folder renamed at the end, so an interrupted
run leaves nothing half-written): impact.csv (ROI rows, latent columns z1..zL, KL in nats),
covariance.csv (A, latent x latent), gaussians.csv (roi, latent, weight, mean, variance) and
summary.json (active latents, separation and published s over them, kind, weights, n_images,
where the variance floor was used), plus impact_per_voxel.csv and latents.csv (each latent
active, inactive or encoder-only). ROIs listed in --roi-names without a voxel in the mask are skipped and
reported (the 2D sample atlas names the cerebellum, which its coronal slice misses).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import Any

from brainvae.number_lists import number_list

SPLITS = ("all", "train", "val", "test")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `receptive` sub-command."""
    from brainvae.analysis.perturbations import DEFAULT_AMPLITUDE, PERTURBATION_KINDS
    from brainvae.analysis.receptive_field import DEFAULT_WEIGHTS

    parser = subparsers.add_parser(
        "receptive",
        help="which latents answer to which regions (receptive fields, impact matrix)",
        description=(
            "Perturb each ROI of --rois in every image of DATASET at each weight, encode with "
            "the model in RUN, fit a Gaussian per latent and write the ROI x latent impact "
            "(KL between the extreme weights), the latent covariance A and two scores over the "
            "ACTIVE latents (code variance over the images > 0.01; inactive ones are listed, "
            "and an inactive latent with a strong impact is reported as encoder-only): "
            "separation in [0, 1] (1 - mean cosine similarity of the latents' profiles of impact "
            "per ROI voxel: 1 = every latent answers to its own ROIs, 0 = all answer to the same "
            "ones; the one to read) and the published s = Tr(A) / (sum(A) - Tr(A)), kept as published (a "
            "perfectly local model gets -1, identical profiles +1/(L-1))."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN", help="run folder (or saved model folder)")
    parser.add_argument("dataset", metavar="DATASET", help="folder made by `brainvae prepare`")
    parser.add_argument(
        "--rois", required=True, metavar="ROIS.nii.gz", help="label image on the dataset's grid"
    )
    parser.add_argument(
        "--roi-names", metavar="NAMES.csv", help="CSV with columns label,name (default roi_N)"
    )
    parser.add_argument(
        "--weights",
        default=",".join(f"{w:g}" for w in DEFAULT_WEIGHTS),
        help=(
            "comma-separated perturbation weights, at least two different (default "
            "%(default)s); write --weights=-1,1 (with =) when the list starts with a minus"
        ),
    )
    parser.add_argument(
        "--kind",
        default="remove",
        choices=PERTURBATION_KINDS,
        help="perturbation (default %(default)s: w = 1 blanks the ROI)",
    )
    parser.add_argument(
        "--amplitude",
        type=float,
        help="add: intensity, noise: sd, blur: sigma in voxels (default per kind: "
        + ", ".join(f"{kind} {value:g}" for kind, value in DEFAULT_AMPLITUDE.items())
        + ")",
    )
    parser.add_argument(
        "--one-sided", action="store_true", help="KL(N(w_min) || N(w_max)) instead of symmetric"
    )
    parser.add_argument("--split", default="all", choices=SPLITS, help="images to use (all)")
    parser.add_argument(
        "--subjects",
        metavar="ID,ID,...",
        help="only these subjects' scans (comma-separated subject ids), within --split",
    )
    parser.add_argument(
        "--batch", type=int, default=64, help="images per forward pass (default %(default)s)"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, mps, cuda, cuda:N")
    parser.add_argument("--out", metavar="DIR", help="output folder (default RUN/receptive_field)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=run)
    return parser


def parse_weights(text: str) -> list[float]:
    """Comma-separated numbers; the analysis checks there are at least two different ones."""
    from brainvae.errors import ReceptiveFieldError

    try:
        return number_list(text)
    except ValueError:
        raise ReceptiveFieldError(
            f"--weights must be comma-separated numbers, got {text!r}"
        ) from None


def run(args: argparse.Namespace) -> int:
    """Load, check, compute with progress on stderr, write."""
    from brainvae.analysis.receptive_report import receptive_summary
    from brainvae.analysis.roi_masks import roi_masks
    from brainvae.cli._console import drive, read_rois_noting
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.io.output_folder import check_output
    from brainvae.data.roi_files import read_roi_names
    from brainvae.errors import DataFileError, ReceptiveFieldError
    from brainvae.exports.receptive_tables import write_receptive_results
    from brainvae.models import ModelError, load_model
    from brainvae.training import resolve_device
    from brainvae.usecases.encoding import check_fits
    from brainvae.usecases.receptive_run import (
        announce_long_run,
        chosen_scans,
        long_run_note,
        present_rois,
        receptive_run,
    )

    if args.batch < 1:
        raise ModelError(f"--batch must be >= 1, got {args.batch}")
    weights = parse_weights(args.weights)
    out = Path(args.out) if args.out else Path(args.run_dir) / "receptive_field"
    check_output(out, args.overwrite)
    model = load_model(args.run_dir).to(resolve_device(args.device))
    dataset = PreparedDataset.open(args.dataset)
    check_fits(model, dataset)
    spatial = tuple(int(s) for s in model.config.input_shape)
    labels = read_rois_noting(args.rois, dataset, spatial, "receptive", args.quiet)
    rois = present_rois(labels, read_roi_names(args.roi_names) if args.roi_names else None)
    if rois.skipped and not args.quiet:
        print(
            f"brainvae receptive: skipped ROIs without voxels: {', '.join(rois.skipped)}",
            file=sys.stderr,
        )
    indices = chosen_scans(dataset, args.split, args.subjects)
    try:
        masks, roi_names = roi_masks(labels, rois.names, spatial)
    except ReceptiveFieldError as error:
        raise DataFileError(args.rois, str(error)) from error
    steps = receptive_run(
        model, dataset.images, masks, roi_names, weights, args.kind, args.one_sided, indices,
        batch_size=args.batch, amplitude=args.amplitude,
    )  # fmt: skip
    note = partial(
        long_run_note, n_rois=len(roi_names), n_weights=len(weights), n_images=len(indices)
    )
    if not args.quiet:  # \r: over the progress line's start
        steps = announce_long_run(
            steps, lambda seconds: print(f"\rbrainvae receptive: {note(seconds)}", file=sys.stderr)
        )
    result = drive(steps, args.quiet, lambda r: (r.done, r.total, "receptive fields")).result
    extra = {
        "run": str(args.run_dir),
        "dataset": str(dataset.path),
        "rois_file": str(args.rois),
        "split": args.split,
        "subjects": [s.strip() for s in args.subjects.split(",")] if args.subjects else None,
        "skipped_empty_rois": rois.skipped,
    }
    info = receptive_summary(result, extra)
    write_receptive_results(out, result, info, args.overwrite)
    print(
        f"Receptive fields of {result.latent_dim} latents over {result.n_rois} ROIs "
        f"({result.n_images} images, {result.kind}, weights {args.weights}) in {out}"
    )
    for line in summary_lines(result, info):
        print(line)
    return 0


def summary_lines(result: Any, info: dict) -> list[str]:
    """What a person reads after a run: activity, encoder-only latents, the scores."""

    def number(key: str, digits: str) -> str:
        value = info.get(key)
        if value is None:
            return {"inf": "+inf", "-inf": "-inf"}.get(info.get(f"{key}_text", ""), "n/a")
        return format(value, digits)

    lines = [f"Activity: {result.activity.describe()}."]
    for entry in info["encoder_only"]:
        lines.append(
            f"{entry['latent']} is encoder-only: it answers to {entry['roi']} (impact "
            f"{entry['impact']:.3g} nats), but its code hardly varies over the scans, so the "
            "decoder does not use it; its field means little."
        )
    if result.activity.n_active == 0:
        lines.append(
            "No latent is active: the model has collapsed to its prior, and every field above "
            "measures noise the decoder ignores. Retrain (more steps, lower beta, a KL warm-up) "
            "or use PCA for a small population."
        )
    scored = ", ".join(info["scored_latents"]) or "none"
    lines.append(
        f"Separation = {number('separation', '.3f')} (impact per ROI voxel; 0..1, 1 = every "
        f"latent answers to its own ROIs; on raw impact {number('separation_raw_impact', '.3f')})"
        f", published s = {number('published_s', '.4g')} (as published: -1 for a perfectly "
        f"local model); over the active latents {scored}."
    )
    if info.get("scores_note"):
        lines.append(f"Note: {info['scores_note']}.")
    return lines
