"""`brainvae prepare`: build a cached, split dataset from a folder of volumes (+ CSV)."""

from __future__ import annotations

import argparse
import math

from brainvae.data.preprocessing.config import (
    DEFAULT_PRESET,
    PREPROCESS_RECIPES,
    PreprocessConfig,
    describe_intensity,
)

PRESET_NAMES = tuple(PREPROCESS_RECIPES)


def _megabytes(text: str) -> float:
    """Parse a memory budget in MiB: a finite number above 0 (nan, inf and 0 are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of MiB, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"must be a finite number of MiB above 0 (e.g. 2000), got {text!r}"
        )
    return value


def _slice_range(text: str) -> tuple[int, int]:
    """Parse "START:STOP" (stop excluded, like Python)."""
    try:
        start, stop = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected START:STOP (e.g. 10:30), got {text!r}"
        ) from None
    return start, stop


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `prepare` sub-command."""
    parser = subparsers.add_parser(
        "prepare",
        help="preprocess a folder of volumes into a cached dataset",
        description=(
            "Preprocess every NIfTI/.npy/.tif volume under SRC into DATASET (images.npy, "
            "metadata.csv, dataset.json, report.json), matched to an optional CSV and "
            "split by subject. CSV rows match files by a 'filename' column, else by file "
            "stem = <subject_id>_<session>, <subject_id>_ses-<session> or <subject_id>. "
            "Without --csv the subject of a file is sub-<label> (and its session ses-<label>) "
            "found in the file stem between '_' separators (sub-0005_ses-2_FLAIR -> subject "
            "sub-0005), else the first-level folder under SRC (SRC/patientA/visit2/scan.nii.gz "
            "-> patientA), else the file stem; all scans of a subject land in one split. "
            "A BIDS root (participants.tsv at its top) needs no --csv: its scans under "
            "sub-*/[ses-*/]anat/ get participants.tsv's columns by subject and "
            "sub-*/sub-*_sessions.tsv's by subject and session (sub-/ses- read from the file "
            "names, without pybids)."
        ),
    )
    parser.add_argument(
        "source", metavar="SRC", help="folder of image files (searched recursively)"
    )
    parser.add_argument("--out", required=True, metavar="DATASET", help="dataset folder to create")
    parser.add_argument(
        "--csv",
        metavar="META.csv",
        help="per-subject metadata, comma- or tab-separated (.tsv), e.g. BIDS participants.tsv",
    )
    parser.add_argument(
        "--id-column",
        metavar="NAME",
        help="the table's subject id column (default: subject_id, participant_id or subject, "
        "the first present)",
    )
    recipe = parser.add_mutually_exclusive_group()
    recipe.add_argument("--config", metavar="PREP.json", help="preprocessing config (JSON)")
    recipe.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        help=f"a recipe; without --preset or --config: {DEFAULT_PRESET} "
        f"({describe_intensity(PreprocessConfig.default())}), the same as the Population "
        "data dock's folder source",
    )
    parser.add_argument("--slice-axis", metavar="AXIS", help="axial, coronal, sagittal or 0/1/2")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--slice-index", type=int, metavar="K", help="one slice per volume")
    where.add_argument(
        "--slice-range", type=_slice_range, metavar="START:STOP", help="slices START..STOP-1"
    )
    parser.add_argument("--volume-index", type=int, metavar="K", help="volume of 4D files to use")
    parser.add_argument("--expected-ndim", type=int, choices=(2, 3), help="refuse other inputs")
    parser.add_argument(
        "--nonfinite", choices=("error", "zero"), help="NaN/Inf voxels: refuse or zero"
    )
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip unreadable/odd files, list them"
    )
    parser.add_argument(
        "--allow-unmatched", action="store_true", help="go on past unmatched CSV rows/files"
    )
    parser.add_argument("--workers", type=int, metavar="N", help="processes (default: up to 2)")
    parser.add_argument("--seed", type=int, help="split seed (default: the config's, 0)")
    from brainvae.data.io.nifti_integrity import describe_default_budget

    parser.add_argument(
        "--max-mb",
        type=_megabytes,
        metavar="MB",
        help="refuse files larger than this as float32 (default: "
        f"{describe_default_budget().replace('%', '%%')})",  # argparse formats with %
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DATASET")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def build_config(args: argparse.Namespace):
    """The PreprocessConfig from --config/--preset (default: the shared default recipe)
    with the command-line overrides applied."""
    if args.config:
        config = PreprocessConfig.load(args.config)
    else:
        config = PREPROCESS_RECIPES[args.preset or DEFAULT_PRESET]()
    changes = {}
    if args.slice_axis is not None or args.slice_index is not None or args.slice_range is not None:
        changes.update(
            slice_axis=args.slice_axis if args.slice_axis is not None else config.slice_axis,
            slice_index=args.slice_index,
            slice_range=args.slice_range,
        )
    for name in ("volume_index", "expected_ndim", "nonfinite"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.seed is not None:
        changes["split_seed"] = args.seed
    return config.with_changes(**changes) if changes else config


def run(args: argparse.Namespace) -> int:
    """Prepare the dataset with a progress bar, then print a summary."""
    from tqdm import tqdm

    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.prepare import prepare_dataset

    config = build_config(args)
    max_bytes = None if args.max_mb is None else int(args.max_mb * 2**20)
    bars: dict[str, tqdm] = {}
    last = None
    try:
        for progress in prepare_dataset(
            args.source,
            args.out,
            config,
            args.csv,
            workers=args.workers,
            skip_bad=args.skip_bad,
            allow_unmatched=args.allow_unmatched,
            overwrite=args.overwrite,
            max_bytes=max_bytes,
            id_column=args.id_column,
        ):
            last = progress
            if args.quiet or progress.stage not in ("preprocess", "equalise"):
                continue
            bar = bars.get(progress.stage)
            if bar is None:
                bar = bars[progress.stage] = tqdm(
                    total=progress.total,
                    desc=progress.stage,
                    unit="file" if progress.stage == "preprocess" else "row",
                )
            bar.update(progress.done - bar.n)
            if progress.skipped:
                bar.set_postfix(skipped=len(progress.skipped))
    finally:
        for bar in bars.values():
            bar.close()
    dataset = PreparedDataset.open(last.dataset)
    print(summary(dataset))
    return 0


def split_line(dataset) -> str:
    """Samples and distinct subjects per split; a split with fraction 0 is said to be off."""
    metadata = dataset.metadata
    fractions = dataset.config.split_fractions
    parts = []
    for name, share in zip(("train", "val", "test"), fractions, strict=True):
        rows = metadata[metadata["split"] == name]
        if share == 0 and len(rows) == 0:
            parts.append(f"no {name} split (fraction 0)")
            continue
        parts.append(f"{name} {len(rows)} scans ({rows['subject_id'].nunique()} subjects)")
    return "Split by subject: " + ", ".join(parts)


def summary(dataset) -> str:
    """A few lines: scans, shape, voxel size, split sizes, warnings, unmatched and skipped files."""
    report = dataset.report
    counts = report["counts"]
    lines = [
        f"Prepared {len(dataset)} scans of shape {tuple(dataset.scan_shape)} "
        f"(voxel {' x '.join(f'{v:g}' for v in dataset.voxel_size)} mm) "
        f"from {counts['files_used']} files of {counts['subjects']} subjects into {dataset.path}",
        split_line(dataset),
    ]
    if report.get("columns"):
        lines.append(columns_line(report["columns"]))
    lines += [f"Warning: {note}" for note in report.get("warnings", [])]
    labels = (
        ("unmatched_rows", "CSV rows without a file"),
        ("unmatched_files", "files without a CSV row"),
        ("ignored_files", "ignored image files outside the CSV's image folders"),
        ("participants_without_scans", "participants.tsv subjects without an anatomical scan"),
        ("not_anatomical_files", "BIDS files left out (not under sub-*/[ses-*/]anat/)"),
    )
    for key, label in labels:
        if report.get(key):
            lines.append(f"{label} ({len(report[key])}): " + "; ".join(report[key]))
    skipped = report["skipped"]
    lines.append(f"Skipped {len(skipped)} file(s)" + (":" if skipped else ""))
    lines += [f"  {item['file']}: {item['reason']}" for item in skipped]
    return "\n".join(lines)


def columns_line(columns: dict) -> str:
    """The metadata columns read: the id column, the known ones, and the others (a typo shows
    there, with the known name it is close to)."""
    hints = columns.get("did_you_mean", {})
    other = [f"{c} (did you mean {hints[c]}?)" if c in hints else c for c in columns["other"]]
    identity = columns["id_column"]
    parts = [f"id {identity}" + ("" if identity == "subject_id" else " (as subject_id)")]
    parts.append("known: " + (", ".join(columns["known"]) or "none"))
    if other:
        parts.append("other (kept as they are; check the spelling): " + ", ".join(other))
    read_as = columns.get("table_format")
    if read_as:
        parts.append(f"read as {read_as['separator']}-separated {read_as['encoding']}")
    return "Metadata columns: " + "; ".join(parts)
