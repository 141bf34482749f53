"""`brainvae projective`: projective fields (which output regions each latent moves) as NIfTI.

Writes into DIR (atomically: a hidden temporary folder renamed at the end, so an interrupted
run leaves nothing): per swept latent zK_small_negative / zK_small_positive / zK_large.nii.gz
(per-voxel variance of the decodes in each band of c) and zK_colour.nii.gz (the colour
composite, RGB on a last axis of 3), all on the dataset's grid (2D slice datasets: a one-slice
volume at the dataset's slice); montage.png; projective.csv (ROI x latent enrichment, with
--rois) and summary.json. c = 0 belongs to both small bands.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `projective` sub-command."""
    parser = subparsers.add_parser(
        "projective",
        help="which output regions each latent moves (projective fields, colour maps)",
        description=(
            "Sweep each chosen latent of the model in RUN around a base code, decode, and map "
            "the per-voxel variance of the decodes in three bands of the weight c: small "
            "negative (-split <= c <= 0), small positive (0 <= c <= split) and large "
            "(|c| > split). Colours: cyan, magenta, yellow (--scheme paper) or R, G, B. With "
            "--rois, projective.csv holds each latent's variance enrichment per ROI. Negative "
            "numbers: write --range=-7,7 (with =)."
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
    parser.add_argument("--preset", default="prior", choices=("prior", "published"))
    parser.add_argument(
        "--range",
        dest="sweep_range",
        nargs="+",
        metavar="LOW HIGH",
        help="sweep range overriding the preset's: --range=-7,7 or --range -7 7",
    )
    parser.add_argument("--step", type=float, help="step of c (overrides the preset)")
    parser.add_argument("--split", type=float, help="|c| splitting small from large")
    parser.add_argument(
        "--units", choices=("sd", "prior"), help="c in population sds or absolute prior units"
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
        help="voxels the enrichment counts (default: mean image > 10 %% of its maximum)",
    )
    parser.add_argument(
        "--impact",
        metavar="IMPACT.csv",
        help="impact.csv of `brainvae receptive` on the same ROIs: compare both fields per "
        "latent (Spearman rho over ROIs) and flag latents where they disagree (needs --rois)",
    )
    parser.add_argument("--scheme", default="paper", choices=("paper", "rgb"))
    parser.add_argument("--batch", type=int, default=32, help="decodes per forward pass")
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, mps, cuda, cuda:N")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=run)
    return parser


def sweep_settings(args: argparse.Namespace) -> Any:
    """The preset with --range/--step/--split/--units applied, validated."""
    from dataclasses import replace

    from brainvae.analysis.projective_field import ProjectiveFieldError, SweepSettings

    settings = SweepSettings.preset(args.preset)
    changes: dict[str, Any] = {}
    if args.sweep_range is not None:
        text = ",".join(args.sweep_range)
        try:
            bounds = [float(part) for part in text.replace(" ", "").split(",") if part != ""]
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
    from brainvae.analysis.projective_field import ProjectiveFieldError

    if text is None:
        return list(range(latent_dim))
    try:
        chosen = [int(part) for part in text.replace(" ", "").replace("z", "").split(",") if part]
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


def recorded_dataset(run_dir: str | Path, model: Any) -> str | None:
    """The dataset path a run recorded: config.json's training summary, else run.json."""
    import json

    training = getattr(model.config, "training", None) or {}
    if isinstance(training.get("dataset"), str):
        return training["dataset"]
    try:
        record = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
        return str(record["dataset"]["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def open_dataset(args: argparse.Namespace, model: Any) -> PreparedDataset:
    """--dataset, or the recorded one; a clear error asking for --dataset otherwise."""
    from brainvae.data.dataset import PreparedDataset
    from brainvae.errors import DatasetError

    if args.dataset:
        return PreparedDataset.open(args.dataset)
    recorded = recorded_dataset(args.run_dir, model)
    if recorded is None:
        raise DatasetError(
            f"{args.run_dir}: records no training dataset: give the population with --dataset"
        )
    try:
        return PreparedDataset.open(recorded)
    except DatasetError as error:
        raise DatasetError(
            f"the dataset recorded in {args.run_dir} cannot be opened ({error}): give it with "
            "--dataset"
        ) from error


def _brain_mask(args: argparse.Namespace, dataset: PreparedDataset, spatial: tuple) -> Any:
    import numpy as np

    from brainvae.analysis.projective_field import brain_mask_from_images, mean_image
    from brainvae.data.roi_files import read_rois
    from brainvae.errors import DataFileError

    if args.brain_mask is None:
        mean = mean_image(dataset.images).reshape(spatial) if dataset.images.size else None
        return brain_mask_from_images(mean)
    mask = read_rois(args.brain_mask, dataset, spatial) > 0
    if not np.any(mask):
        raise DataFileError(args.brain_mask, "the brain mask is empty")
    return mask


def run(args: argparse.Namespace) -> int:
    """Load, check, sweep with progress on stderr, write."""
    import numpy as np

    from brainvae.analysis.latent_space import population_latents
    from brainvae.analysis.projective_field import (
        base_code,
        colour_composite,
        projective_field_steps,
        projective_matrix,
    )
    from brainvae.analysis.projective_report import write_projective_results
    from brainvae.analysis.receptive_field import ReceptiveFieldError, roi_masks
    from brainvae.cli.encode import check_fits
    from brainvae.cli.progress_line import drive
    from brainvae.data.io.output_folder import check_output
    from brainvae.data.roi_files import read_roi_names, read_rois
    from brainvae.errors import DataFileError
    from brainvae.models import ModelError, load_model
    from brainvae.training import resolve_device

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
    masks = names = None
    if args.rois:
        labels = read_rois(args.rois, dataset, spatial)
        present = {int(v) for v in np.unique(labels) if v != 0}
        given = read_roi_names(args.roi_names) if args.roi_names else {}
        chosen = {label: given.get(label, f"roi_{label}") for label in sorted(present)}
        try:
            masks, names = roi_masks(labels, chosen, spatial)
        except ReceptiveFieldError as error:
            raise DataFileError(args.rois, str(error)) from error
    brain = _brain_mask(args, dataset, spatial) if masks is not None else None
    impact = _impact(args, tuple(names or ()), tuple(f"z{k + 1}" for k in latents))
    statistics = population_latents(model, dataset.images)
    code, label = base_code(statistics, dataset.metadata, args.base)
    steps = projective_field_steps(
        model, latents, code, settings, scale=statistics.sd[latents],
        batch_size=args.batch, base_label=label,
    )  # fmt: skip
    result = drive(steps, args.quiet, _describe)
    colour, limits = colour_composite(result.band_variance, args.scheme)
    matrix = None if masks is None else projective_matrix(result.total_variance, masks, brain)
    agreement = _agreement(args.impact, matrix, impact, result.latent_names)
    extra = {
        **agreement,
        "run": str(args.run_dir),
        "dataset": str(dataset.path),
        "preset": args.preset,
        "rois_file": args.rois,
        "brain_mask_voxels": None if brain is None else int(brain.sum()),
        "brain_mask_file": args.brain_mask,
    }
    write_projective_results(
        out, result, colour, limits, args.scheme, dataset.maps_affine(), dataset.squeezed_axes,
        matrix=matrix, roi_names=tuple(names or ()), extra=extra, overwrite=args.overwrite,
    )  # fmt: skip
    if agreement:
        flagged = ", ".join(agreement["fields_disagree"]) or "none"
        threshold = agreement["agreement_threshold"]
        print(
            f"Latents whose receptive and projective fields disagree (rho < {threshold:g}): {flagged}"
        )
    print(
        f"Projective fields of {result.n_latents} latent(s) ({settings.values().size} decodes "
        f"each over [{settings.low:g}, {settings.high:g}] {settings.units}, base {label}) in {out}"
    )
    return 0


def _impact(args: argparse.Namespace, roi_names: tuple, latents: tuple) -> Any:
    """The receptive impacts to compare with (--impact), read and checked before the sweep."""
    if args.impact is None:
        return None
    from brainvae.analysis.receptive_report import read_impact
    from brainvae.errors import DataFileError

    if len(roi_names) < 3:
        raise DataFileError(
            args.impact,
            "comparing receptive and projective fields ranks ROIs: give --rois with at least 3 "
            f"ROIs (got {len(roi_names)})",
        )
    return read_impact(args.impact, roi_names, latents)


def _agreement(path: str | None, matrix: Any, impact: Any, latents: tuple) -> dict:
    """summary.json entries comparing the projective with the receptive field (--impact)."""
    if impact is None:
        return {}
    from brainvae.analysis.projective_field import field_agreement

    agreement = field_agreement(matrix, impact)
    return {
        "impact_file": str(path),
        "field_agreement_rho": {
            name: (float(rho) if rho == rho else None)
            for name, rho in zip(latents, agreement.rho, strict=True)
        },
        "agreement_threshold": float(agreement.threshold),
        "fields_disagree": [
            name for name, bad in zip(latents, agreement.disagree, strict=True) if bad
        ],
    }


def _describe(report: Any) -> tuple[int, int, str]:
    """Progress of a sweep: decodes done, and which latent is being swept."""
    text = f"projective fields (z{report.latent + 1}, {report.latents_done + 1}/{report.n_latents})"
    return report.decodes_done, report.total_decodes, text
