"""Encode a prepared dataset with a model, after checking its images fit the model.

The latents table (one row a scan: its metadata columns, then mu_1..mu_L, logvar_1..logvar_L)
is what `brainvae encode` writes and what the benchmarks and analyses read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import LatentModel

FIRST_COLUMNS = ("subject_id", "session")
"""Leading columns of the latents table; every other column of the dataset's metadata.csv
(split, slice_index, age, diagnosis, ...) follows in its own order, then mu_ and logvar_."""


def check_fits(model: LatentModel, dataset: PreparedDataset) -> None:
    """Refuse a dataset whose scans are not the shape the model was trained on."""
    from brainvae.models import ModelError

    expected = tuple(model.config.input_shape)
    shape = tuple(dataset.scan_shape)
    if shape != expected and shape != (model.config.channels, *expected):
        raise ModelError(
            f"{dataset.path}: scans of shape {shape} do not fit the model, which was "
            f"trained on shape {expected}; prepare the data with the model's recipe"
        )


def encode_dataset(model: LatentModel, dataset: PreparedDataset, batch: int = 256) -> pd.DataFrame:
    """The latents table: meta columns, then mu_1..mu_L, logvar_1..logvar_L (one row per scan)."""
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
            bad = ~torch.isfinite(x)
            if bad.any():  # a damaged dataset: name its file and the first scan
                from brainvae.data.dataset_folder import DatasetFolder
                from brainvae.errors import DataFileError

                row = start + int(torch.nonzero(bad.flatten(1).any(1))[0])
                raise DataFileError(
                    dataset.path / DatasetFolder.IMAGES,
                    f"scan {row} holds NaN or Inf voxels ({int(bad.sum())} in rows {start}-"
                    f"{start + len(x) - 1}): the file is damaged; prepare the dataset again",
                )
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


def preparation_notes(model: LatentModel, dataset: PreparedDataset) -> list[tuple[bool, str]]:
    """(is_warning, text) per way the dataset differs from the model's training data; a
    model that recorded nothing to compare with gives one note that is not a warning."""
    from brainvae.data.fingerprint import NO_RECORD, check_same_preprocessing

    return [(note != NO_RECORD, note) for note in check_same_preprocessing(model.config, dataset)]


def stale_model_note(run_dir: str | Path, model: LatentModel) -> str | None:
    """A sentence when the run's history.csv goes past the saved model (a resumed run that
    was killed leaves the model files of the earlier, shorter run); else None."""
    from brainvae.errors import BrainVAEError
    from brainvae.run_folder import RunFolder
    from brainvae.training.history import read_history

    saved = (model.config.training or {}).get("epochs_completed")
    path = RunFolder(run_dir).history
    if saved is None or not path.is_file():
        return None  # a bare model folder, or a model saved outside a run
    try:
        history = read_history(path)
    except (OSError, ValueError, BrainVAEError):
        return None  # an unreadable history is the history's problem, not this model's
    last = int(history["epoch"].max()) if len(history) else 0
    if last <= int(saved):
        return None
    return (
        f"{run_dir}: stale model: the saved model is from epoch {saved} but history.csv "
        f"reaches epoch {last} (training was interrupted); finish it with "
        "`brainvae train ... --resume` to save the newer model"
    )
