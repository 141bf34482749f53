"""Per-epoch history (history.csv), active units and the Bernoulli entropy floor of the data.

history.csv's val_loss, val_reconstruction and val_kl (and kl_1..kl_L) are scored at the
posterior mean z = mu, without sampling; train_* average the training steps, which sample z.
So val_* are not comparable with train_* (progress.VALIDATION_NOTE); the column names stay
as they are so existing readers and older run folders keep working.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.errors import DataFileError
from brainvae.run_folder import RunFolder
from brainvae.training.progress import EpochReport

if TYPE_CHECKING:
    import pandas as pd

BASE_COLUMNS = (
    "epoch",
    "step",
    "train_loss",
    "train_reconstruction",
    "train_kl",
    "val_loss",
    "val_reconstruction",
    "val_kl",
    "reconstruction_net",
    "active_units",
    "images_per_s",
    "elapsed_s",
)
DIRECTION_PREFIX = "eval_cosine_"
"""history.csv columns of a longitudinal VAE's directions (eval_cosine_aging, eval_cosine_<group>):
the mean cosine of the evaluation scans' visit changes with each direction after each epoch."""


def active_units(mu: np.ndarray) -> int:
    """How many latents are active over these scans' posterior means (N, L): the one definition
    shared by every part of brainvae (analysis.latent_activity)."""
    from brainvae.analysis.latent_activity import latent_activity

    return latent_activity(mu).n_active


def bernoulli_entropy(values: np.ndarray) -> np.ndarray:
    """Binary entropy (nats) of grey values in [0, 1]: the least BCE a perfect model can reach."""
    p = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log(p) + (1 - p) * np.log1p(-p))
    return np.nan_to_num(h, nan=0.0)


def bernoulli_entropy_floor(images: np.ndarray, indices: np.ndarray, chunk: int = 64) -> float:
    """Mean over the chosen images of the summed voxel entropies (nats per image)."""
    if len(indices) == 0:
        return 0.0
    total = 0.0
    for start in range(0, len(indices), chunk):
        block = np.asarray(images[np.sort(indices[start : start + chunk])])
        total += float(bernoulli_entropy(block).reshape(len(block), -1).sum())
    return total / len(indices)


def history_row(report: EpochReport, step: int) -> dict[str, Any]:
    """One history.csv row: the report's numbers, with kl_1..kl_L for the KL per latent."""
    row: dict[str, Any] = {
        "epoch": report.epoch,
        "step": step,
        "train_loss": report.train_loss,
        "train_reconstruction": report.train_reconstruction,
        "train_kl": report.train_kl,
        "val_loss": report.val_loss,
        "val_reconstruction": report.val_reconstruction,
        "val_kl": report.val_kl,
        "reconstruction_net": report.reconstruction_net,
        "active_units": report.active_units,
        "images_per_s": report.images_per_s,
        "elapsed_s": report.elapsed_s,
    }
    for i, value in enumerate(report.kl_per_latent, start=1):
        row[f"kl_{i}"] = value
    for name, value in report.direction_cosines.items():
        row[f"{DIRECTION_PREFIX}{name}"] = value
    return row


def write_history(rows: list[dict[str, Any]], run_dir: str | Path) -> Path:
    """Write history.csv (one row per epoch) atomically: temporary file, then rename."""
    import pandas as pd

    path = RunFolder(run_dir).history
    columns = list(BASE_COLUMNS) + sorted(
        {k for row in rows for k in row if k.startswith("kl_")}, key=lambda k: int(k[3:])
    )
    columns += list(dict.fromkeys(k for row in rows for k in row if k.startswith(DIRECTION_PREFIX)))
    from brainvae.atomic import atomic_file
    from brainvae.data.csv_safety import neutralised

    table = pd.DataFrame(rows, columns=columns)
    with atomic_file(path) as temporary:
        neutralised(table).to_csv(temporary, index=False, float_format="%.10g")
    return path


def read_history(path: str | Path) -> pd.DataFrame:
    """A run's history.csv (give the run folder or the file) as numbers, one row per epoch.

    A file that is empty, binary, not a table, without an epoch column or with text where
    numbers belong is a DataFileError naming it, so Load run and other readers say what
    is wrong instead of failing inside pandas or a plot.
    """
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        path = RunFolder(path).history
    if not path.is_file():
        raise DataFileError(path, f"no {RunFolder.HISTORY} here; choose a run folder")
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if not head.strip():
        raise DataFileError(path, "is empty: the run has not finished an epoch, or it was cut")
    if b"\x00" in head:
        raise DataFileError(path, "is not a text table (binary content): not a brainvae history")
    try:
        table = pd.read_csv(path, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise DataFileError(path, f"not a readable history table ({type(err).__name__})") from err
    if "epoch" not in table.columns:
        found = ", ".join(str(c) for c in table.columns[:8])
        raise DataFileError(path, f"missing the epoch column (found: {found}): not a history")
    numeric = [
        c
        for c in table.columns
        if c in BASE_COLUMNS or str(c).startswith(("kl_", DIRECTION_PREFIX))
    ]
    for column in numeric:
        values = pd.to_numeric(table[column], errors="coerce")
        text = table[column].notna() & values.isna()
        if text.any():
            line = int(np.flatnonzero(text.to_numpy())[0]) + 2
            raise DataFileError(
                path,
                f"column {column} holds {table[column][text].iloc[0]!r} on line {line}, "
                "not a number",
            )
        table[column] = values
    for column, lowest in (("epoch", 1), ("step", 0)):  # counts: whole numbers
        if column not in table.columns:
            continue
        values = table[column].to_numpy(dtype=float)
        bad = ~np.isfinite(values) | (values != np.round(values)) | (values < lowest)
        if bad.any():
            line = int(np.flatnonzero(bad)[0]) + 2
            raise DataFileError(
                path,
                f"column {column} holds {values[bad][0]!r} on line {line}, not a whole "
                f"number >= {lowest}",
            )
    return table


def finite_or_none(value: float | None) -> float | None:
    """JSON cannot hold NaN: keep finite numbers, None otherwise."""
    return value if value is not None and math.isfinite(value) else None
