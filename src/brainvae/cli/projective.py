"""`brainvae projective`: projective fields (which output regions each latent moves) as NIfTI.

Writes into DIR (atomically: a hidden temporary folder renamed at the end, so an interrupted
run leaves nothing): per swept latent the four band maps zK_small_negative / small_positive /
large_negative / large_positive.nii.gz and the pooled zK_large.nii.gz (per-voxel variance of the
decodes, intensity squared), zK_bands_per_var_c.nii.gz (the four bands per unit var(c), so they
compare) and zK_colour.nii.gz (the colour composite, RGB on a last axis of 3), all on the
dataset's grid (2D slice datasets: a one-slice volume at the dataset's slice); montage.png (the
publication figure of brainvae.figures.projective_figure: each latent over the dimmed population
mean, volumes as axial, coronal and sagittal slices through its largest variance, sides and
positions marked, the colour key below, 180 mm wide at 300 dpi); projective.csv (ROI x latent enrichment and an "active"
row, with --rois) and summary.json. c = 0 belongs to both small bands. Inactive latents
(latent_activity) are named on stdout and in every file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brainvae.cli._options import add_output_options
from brainvae.number_lists import number_list

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset

NOTABLE_ASYMMETRY = 1.5
"""A far-negative surplus this many times the far-positive side gets its ROI named."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `projective` sub-command."""
    from brainvae.analysis.projective_colour import (
        COLOUR_LIMITS,
        COLOUR_SCHEMES,
        DEFAULT_COLOUR_LIMITS,
    )

    parser = subparsers.add_parser(
        "projective",
        help="which output regions each latent moves (projective fields, colour maps)",
        description=(
            "Sweep each chosen latent of the model in RUN around a base code, decode, and map "
            "the per-voxel variance of the decodes in four bands of the weight c: small "
            "negative (-split <= c <= 0), small positive (0 <= c <= split), large negative "
            "(c < -split) and large positive (c > split), each also per unit var(c). Colours "
            "(--scheme paper, as published): cyan = small positive, magenta = small negative, "
            "yellow = large |c| (both signs); hue = the bands' mix, brightness = the strongest. "
            "With --rois, projective.csv holds each latent's variance enrichment per ROI. "
            "montage.png is a publication figure (180 mm wide, 300 dpi): each latent over the "
            "dimmed population mean (volumes: axial, coronal and sagittal slices through the "
            "latent's largest variance), sides and slice positions marked, the colour key. "
            "Inactive latents are named and marked. Negative numbers: write --range=-7,7 "
            "(with =)."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN", help="run folder (or saved model folder)")
    parser.add_argument(
        "--dataset",
        metavar="DATASET",
        help="prepared dataset for the population codes and the grid (default: the one the "
        "model was trained on, as recorded in RUN)",
    )
    parser.add_argument("--latents", help="comma-separated 1-based latents (default all)")
    parser.add_argument(
        "--preset",
        default="prior",
        choices=("prior", "published"),
        help="prior (default): c in [-3, 3] population sd, step 0.01, split 1.5; published: "
        "c in [-7, 7] prior units, step 0.005, split 3.5",
    )
    parser.add_argument(
        "--range",
        dest="sweep_range",
        nargs="+",
        metavar="LOW HIGH",
        help="sweep range overriding the preset's: --range=-7,7 or --range -7 7 (default: "
        "the preset's)",
    )
    parser.add_argument("--step", type=float, help="step of c (default: the preset's)")
    parser.add_argument(
        "--split", type=float, help="|c| splitting small from large (default: the preset's)"
    )
    parser.add_argument(
        "--units",
        choices=("sd", "prior"),
        help="c in population sds or absolute prior units (default: the preset's; a latent "
        "whose population sd is ~0 is swept in prior units, and the output says so)",
    )
    parser.add_argument(
        "--base", default="mean", help="base code: mean (default), zero, or a subject id"
    )
    parser.add_argument("--rois", metavar="ROIS.nii.gz", help="label image on the dataset's grid")
    parser.add_argument(
        "--roi-names", metavar="NAMES.csv", help="CSV with columns label,name (default roi_N)"
    )
    parser.add_argument(
        "--brain-mask",
        metavar="MASK.nii.gz",
        help="voxels the enrichment and the far-side asymmetry count (default: mean image > "
        "10 %% of its maximum)",
    )
    parser.add_argument(
        "--impact",
        metavar="IMPACT.csv",
        help="impact.csv of `brainvae receptive` on the same ROIs: each latent's impact per "
        "ROI voxel (divided by the ROI voxel counts of --rois) is rank-correlated with its "
        "enrichment (Spearman rho over ROIs); active latents with rho < 0.5 are flagged as "
        "disagreeing (needs --rois)",
    )
    parser.add_argument(
        "--scheme",
        default="paper",
        choices=tuple(COLOUR_SCHEMES),
        help="paper (default): cyan small +, magenta small -, yellow large |c|; rgb: red "
        "small -, green small +, blue large |c|",
    )
    parser.add_argument(
        "--limits",
        default=DEFAULT_COLOUR_LIMITS,
        choices=COLOUR_LIMITS,
        help=f"colour limits: per-latent (default: {DEFAULT_COLOUR_LIMITS}; each latent's "
        "bands fill the scale, every active latent visible) or shared (one limit per band "
        "for all latents, so colours compare across latents)",
    )
    parser.add_argument(
        "--batch", type=int, default=32, help="decodes per forward pass (default 32)"
    )
    add_output_options(parser)
    parser.set_defaults(func=run)
    return parser


def sweep_settings(args: argparse.Namespace) -> Any:
    """The preset with --range/--step/--split/--units applied, validated."""
    from dataclasses import replace

    from brainvae.analysis.projective_sweep import SweepSettings
    from brainvae.errors import ProjectiveFieldError

    settings = SweepSettings.preset(args.preset)
    changes: dict[str, Any] = {}
    if args.sweep_range is not None:
        text = ",".join(args.sweep_range)
        try:
            bounds = number_list(text)
        except ValueError:
            bounds = []
        if len(bounds) != 2:
            raise ProjectiveFieldError(
                f"--range needs two numbers LOW HIGH, got {text!r}; write --range=-7,7"
            )
        changes.update(low=bounds[0], high=bounds[1])
    for name in ("step", "split", "units"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    settings = replace(settings, **changes)
    settings.validate()
    return settings


def parse_latents(text: str | None, latent_dim: int) -> list[int]:
    """1-based comma-separated latents -> 0-based indices (default all)."""
    from brainvae.errors import ProjectiveFieldError

    if text is None:
        return list(range(latent_dim))
    try:
        chosen = number_list(text, int, prefix="z")
    except ValueError:
        raise ProjectiveFieldError(
            f"--latents must be comma-separated 1-based numbers, got {text!r}"
        ) from None
    bad = [k for k in chosen if not 1 <= k <= latent_dim]
    if not chosen or bad:
        raise ProjectiveFieldError(
            f"--latents {text!r}: latent {bad[0] if bad else '(none)'} is out of bounds; the "
            f"model has L = {latent_dim} latents, z1..z{latent_dim}"
        )
    return [k - 1 for k in dict.fromkeys(chosen)]


def open_dataset(args: argparse.Namespace, model: Any) -> PreparedDataset:
    """--dataset, or the one the run recorded (saying so on stderr when it had to fall back)."""
    import sys

    from brainvae.errors import DatasetError
    from brainvae.usecases.run_dataset import NoRecordedDataset, run_dataset

    try:
        found = run_dataset(args.run_dir, model, args.dataset)
    except NoRecordedDataset as error:
        raise DatasetError(f"{error}: give the population with --dataset") from error
    except DatasetError as error:
        if args.dataset:
            raise
        raise DatasetError(f"{error}: give it with --dataset") from error
    if found.note:
        print(f"brainvae projective: {found.note}", file=sys.stderr)
    return found.dataset


def _brain_mask(args: argparse.Namespace, dataset: PreparedDataset, spatial: tuple) -> Any:
    """--brain-mask (None without it: the run takes the population mean above 10 % of its
    maximum)."""
    import numpy as np

    from brainvae.cli._console import read_rois_noting
    from brainvae.errors import DataFileError

    if args.brain_mask is None:
        return None
    mask = read_rois_noting(args.brain_mask, dataset, spatial, "projective", args.quiet) > 0
    if not np.any(mask):
        raise DataFileError(args.brain_mask, "the brain mask is empty")
    return mask


def run(args: argparse.Namespace) -> int:
    """Load, check, sweep with progress on stderr, write, and say what the fields mean."""
    from brainvae.cli._console import drive, read_rois_noting
    from brainvae.data.io.output_folder import check_output
    from brainvae.data.roi_files import read_roi_names
    from brainvae.errors import DataFileError, ReceptiveFieldError
    from brainvae.exports.projective_folder import write_projective_results
    from brainvae.models import ModelError, load_model
    from brainvae.training import resolve_device
    from brainvae.usecases.encoding import check_fits
    from brainvae.usecases.projective_run import (
        ProjectiveRequest,
        agreement_record,
        projective_run,
        roi_selection,
    )
    from brainvae.usecases.receptive_run import present_rois

    if args.batch < 1:
        raise ModelError(f"--batch must be >= 1, got {args.batch}")
    settings = sweep_settings(args)
    out = Path(args.out)
    check_output(out, args.overwrite)
    model = load_model(args.run_dir).to(resolve_device(args.device))
    latents = parse_latents(args.latents, model.latent_dim)
    dataset = open_dataset(args, model)
    check_fits(model, dataset)
    spatial = tuple(int(s) for s in model.config.input_shape)
    rois = None
    if args.rois:
        labels = read_rois_noting(args.rois, dataset, spatial, "projective", args.quiet)
        given = read_roi_names(args.roi_names) if args.roi_names else None
        try:
            rois = roi_selection(labels, present_rois(labels, given).names, spatial)
        except ReceptiveFieldError as error:
            raise DataFileError(args.rois, str(error)) from error
    names = () if rois is None else rois.names
    brain = _brain_mask(args, dataset, spatial)
    impact = _impact(args, names, tuple(f"z{k + 1}" for k in latents))
    request = ProjectiveRequest(
        tuple(latents), args.base, settings, args.scheme, args.limits, rois, brain, args.batch
    )
    run = drive(
        projective_run(model, dataset.images, dataset.metadata, request), args.quiet, _describe
    )
    result, activity = run.result, run.activity
    agreement = {} if impact is None else agreement_record(args.impact, run, impact, rois)
    extra = {
        **agreement,
        "run": str(args.run_dir),
        "dataset": str(dataset.path),
        "preset": args.preset,
        "rois_file": args.rois,
        "brain_mask_voxels": int(run.brain_mask.sum()),
        "brain_mask_file": args.brain_mask,
    }
    write_projective_results(
        out, result, run.colour, run.limits, args.scheme, dataset.maps_affine(),
        dataset.squeezed_axes, matrix=run.matrix, roi_names=names, extra=extra,
        overwrite=args.overwrite, limits_mode=args.limits, activity=activity,
        asymmetry=run.asymmetry, mean_image=run.mean_image,
    )  # fmt: skip
    for line in report_lines(result, activity, run.matrix, names, run.asymmetry, agreement):
        print(line)
    units = "population sd" if settings.units == "sd" else "prior units"
    if result.fallback_names:
        units += f" ({', '.join(result.fallback_names)} in prior units)"
    print(
        f"Projective fields of {result.n_latents} latent(s) ({settings.values().size} decodes "
        f"each over c in [{settings.low:g}, {settings.high:g}] {units}, base {run.base_label}; "
        f"colour limits {args.limits}) in {out}"
    )
    return 0


def report_lines(
    result: Any,
    activity: Any,
    matrix: Any,
    roi_names: tuple[str, ...],
    asymmetry: dict,
    agreement: dict,
) -> list[str]:
    """What the command prints about the fields: activity first (which fields mean little),
    the unit fallback, each active latent's top ROI, the far-side asymmetry, the agreement."""
    import numpy as np

    from brainvae.analysis.projective_report import swept_active

    active = swept_active(result, activity)
    names = result.latent_names
    lines = [f"Activity: {activity.describe()}."]
    inactive = [n for n, a in zip(names, active, strict=True) if not a]
    if inactive:
        lines.append(
            f"Inactive swept latents {', '.join(inactive)}: their projective fields mean little "
            "(the decoder is pushed along a code no scan varies), so no ROI is reported for "
            "them; they are marked 'inactive' in montage.png, projective.csv and summary.json."
        )
    if result.fallback_names:
        lines.append(
            f"Swept in prior units, not population sd: {', '.join(result.fallback_names)} "
            "(their population sd is ~0, below 1e-3; scale 1 in summary.json)."
        )
    if matrix is not None:
        top = [
            f"{name} {roi_names[int(np.nanargmax(matrix[:, k]))]}"
            for k, name in enumerate(names)
            if active[k] and np.isfinite(matrix[:, k]).any()
        ]
        lines.append(f"Most enriched ROI (active latents): {'; '.join(top) or 'none'}.")
    if asymmetry:
        parts = []
        for name, is_active in zip(names, active, strict=True):
            if not is_active:
                parts.append(f"{name} inactive")
                continue
            entry = asymmetry[name]
            ratio = entry["large_negative_over_positive"]
            text = f"{name} {'n/a' if ratio is None else format(ratio, '.3g')}"
            notable = ratio is not None and ratio >= NOTABLE_ASYMMETRY
            if "negative_surplus_most_enriched_roi" in entry and notable:
                text += f" ({entry['negative_surplus_most_enriched_roi']})"
            parts.append(text)
        lines.append(
            "Far sides per unit var(c) in the brain, large negative / large positive (1 = "
            "symmetric; > 1: more change far on the negative side; in brackets where that "
            f"surplus is most enriched, for ratios >= {NOTABLE_ASYMMETRY:g}): {', '.join(parts)}."
        )
    if agreement:
        flagged = ", ".join(agreement["fields_disagree"]) or "none"
        threshold = agreement["agreement_threshold"]
        text = (
            "Receptive impact per ROI voxel vs projective enrichment: latents whose fields "
            f"disagree (rho < {threshold:g}): {flagged}"
        )
        if agreement["agreement_inactive"]:
            text += f"; not compared (inactive): {', '.join(agreement['agreement_inactive'])}"
        lines.append(text + ".")
    return lines


def _impact(args: argparse.Namespace, roi_names: tuple, latents: tuple) -> Any:
    """The receptive impacts to compare with (--impact), read and checked before the sweep."""
    if args.impact is None:
        return None
    from brainvae.errors import DataFileError
    from brainvae.exports.receptive_tables import read_impact

    if len(roi_names) < 3:
        raise DataFileError(
            args.impact,
            "comparing receptive and projective fields ranks ROIs: give --rois with at least 3 "
            f"ROIs (got {len(roi_names)})",
        )
    return read_impact(args.impact, roi_names, latents)


def _describe(report: Any) -> tuple[int, int, str]:
    """Progress of a sweep: decodes done, and which latent is being swept."""
    text = f"projective fields (z{report.latent + 1}, {report.latents_done + 1}/{report.n_latents})"
    return report.decodes_done, report.total_decodes, text
