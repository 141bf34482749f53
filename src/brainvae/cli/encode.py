"""`brainvae encode`: posterior means and log-variances of every sample of a dataset, as CSV."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import LatentModel

FIRST_COLUMNS = ("subject_id", "session")
"""Leading columns of the latents CSV; every other column of the dataset's metadata.csv
(split, slice_index, age, diagnosis, ...) follows in its own order, then mu_ and logvar_."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `encode` sub-command."""
    parser = subparsers.add_parser(
        "encode",
        help="write the latent codes of a dataset to CSV",
        description=(
            "Encode every sample of DATASET with the model in RUN and write one CSV row per "
            "sample: subject_id, session (when the dataset has it), every other column of the "
            "dataset's metadata.csv (split, slice_index, age, diagnosis, ...), then "
            "mu_1..mu_L and logvar_1..logvar_L. Warns on stderr when DATASET was prepared "
            "differently from the model's training data (recipe or intensity range)."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN", help="run folder (or saved model folder)")
    parser.add_argument("dataset", metavar="DATASET", help="folder made by `brainvae prepare`")
    parser.add_argument("--out", required=True, metavar="LATENTS.csv", help="CSV to write")
    parser.add_argument("--batch", type=int, default=256, help="images per forward pass")
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, mps, cuda, cuda:N")
    parser.set_defaults(func=run)
    return parser


def check_fits(model: LatentModel, dataset: PreparedDataset) -> None:
    """Refuse a dataset whose samples are not the shape the model was trained on."""
    from brainvae.models import ModelError

    expected = tuple(model.config.input_shape)
    shape = tuple(dataset.sample_shape)
    if shape != expected and shape != (model.config.channels, *expected):
        raise ModelError(
            f"{dataset.path}: samples of shape {shape} do not fit the model, which was "
            f"trained on shape {expected}; prepare the data with the model's recipe"
        )


def encode_dataset(model: LatentModel, dataset: PreparedDataset, batch: int = 256) -> pd.DataFrame:
    """The latents table: meta columns, then mu_1..mu_L, logvar_1..logvar_L (one row a sample)."""
    import numpy as np
    import pandas as pd
    import torch

    from brainvae.models import ModelError

    if batch < 1:
        raise ModelError(f"--batch must be >= 1, got {batch}")
    check_fits(model, dataset)
    model.eval()
    mus, logvars = [], []
    with torch.no_grad():
        for start in range(0, len(dataset), batch):
            x = torch.from_numpy(np.array(dataset.images[start : start + batch], dtype=np.float32))
            mu, logvar = model.encode(x.to(model.device))
            mus.append(mu.float().cpu().numpy())
            logvars.append(logvar.float().cpu().numpy())
    latent = model.latent_dim
    mu = np.concatenate(mus) if mus else np.zeros((0, latent))
    logvar = np.concatenate(logvars) if logvars else np.zeros((0, latent))
    names = [f"mu_{i}" for i in range(1, latent + 1)]
    names += [f"logvar_{i}" for i in range(1, latent + 1)]
    table = metadata_columns(dataset.metadata, names)
    numbers = pd.DataFrame(np.concatenate([mu, logvar], axis=1), columns=names)
    return pd.concat([table, numbers], axis=1)


def metadata_columns(metadata: pd.DataFrame, code_names: list[str]) -> pd.DataFrame:
    """Every metadata column, subject_id and session first, so no analysis needs a merge.

    A column named like the codes (mu_..., logvar_...) is refused: `brainvae decode
    --z-file` reads every mu_ column as a code.
    """
    from brainvae.models import ModelError

    clash = [c for c in metadata.columns if str(c).startswith(("mu_", "logvar_"))]
    if clash:
        raise ModelError(
            f"the dataset's metadata.csv has column(s) {', '.join(map(str, clash))} named like "
            f"the codes this command writes ({code_names[0]}, ...); rename them"
        )
    first = [c for c in FIRST_COLUMNS if c in metadata.columns]
    order = first + [c for c in metadata.columns if c not in first]
    return metadata[order].reset_index(drop=True)


def warn_if_prepared_differently(model: LatentModel, dataset: PreparedDataset) -> None:
    """One stderr line per way the dataset differs from the model's training data."""
    import sys

    from brainvae.data.fingerprint import NO_RECORD, check_same_preprocessing

    for note in check_same_preprocessing(model.config, dataset):
        label = "Note" if note == NO_RECORD else "Warning"
        print(f"brainvae encode: {label}: {note}", file=sys.stderr)


def warn_if_stale(run_dir: str | Path, model: LatentModel) -> None:
    """One stderr line when the run's history.csv goes past the saved model: a resumed run
    that was killed leaves the model files of the earlier, shorter run."""
    import sys
    from pathlib import Path

    from brainvae.errors import BrainVAEError
    from brainvae.training.history import HISTORY_FILE, read_history

    saved = (model.config.training or {}).get("epochs_completed")
    path = Path(run_dir) / HISTORY_FILE
    if saved is None or not path.is_file():
        return  # a bare model folder, or a model saved outside a run
    try:
        history = read_history(path)
    except (OSError, ValueError, BrainVAEError):
        return  # an unreadable history is the history's problem, not this model's
    last = int(history["epoch"].max()) if len(history) else 0
    if last > int(saved):
        print(
            f"brainvae encode: Warning: {run_dir}: stale model: the saved model is from epoch "
            f"{saved} but history.csv reaches epoch {last} (training was interrupted); "
            "finish it with `brainvae train ... --resume` to save the newer model",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    """Encode the dataset in batches and write the CSV."""
    from pathlib import Path

    from brainvae.atomic import atomic_file
    from brainvae.data.csv_safety import neutralised
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import load_model
    from brainvae.training import resolve_device

    model = load_model(args.run_dir).to(resolve_device(args.device))
    warn_if_stale(args.run_dir, model)
    dataset = PreparedDataset.open(args.dataset)
    warn_if_prepared_differently(model, dataset)
    table = encode_dataset(model, dataset, args.batch)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as temporary:  # a full disk: DiskFullError, no temporary left
        neutralised(table).to_csv(temporary, index=False, float_format="%.8g")
    print(
        f"Encoded {len(table)} samples of {dataset.path} with {args.run_dir} "
        f"(L = {model.latent_dim}) into {out}"
    )
    return 0
