"""A beta x L sweep's cells gathered into one table, and where each metric stops improving.

Each cell of a sweep is a run folder SWEEP/beta-<b>_latent-<L>/ holding, once trained and
evaluated, metrics.json; SWEEP/sweep.json records the grid (so the cells not there yet can be
named). gather_sweep reads whatever cells exist (cells may have been farmed out to a cluster
and finished in any order) into a SweepTable.

The inflection rule (inflection_point, a pure function): along a series (L for one beta, or
beta for one L, in increasing order), a step's improvement is the change of the metric in its
better direction (up for CW-SSIM, down for MSE...). The inflection is the smallest value
from which every later step improves the metric by less than PLATEAU_FRACTION of the metric's
total range over the whole sweep (max - min over every cell): past it, growing L (or beta)
buys little. The range is the sweep's, not the series', so a series that barely moves (two
betas giving almost the same MSE) is flat rather than "100 % of its own range". When the last
step still improves by more, the series has not levelled off within the grid: the inflection
is its last point, marked plateau_reached = False.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.errors import DataFileError

if TYPE_CHECKING:
    import pandas as pd

GRID_FILE = "sweep.json"
METRICS_FILE = "metrics.json"
GRID_FORMAT = "brainvae-sweep"
CELL_FORMAT = "brainvae-sweep-cell"
PLATEAU_FRACTION = 0.10
"""A step improving the metric by less than this share of its range over the series is flat."""
FLAT_RELATIVE = 1e-6
"""A series whose range is below this share of its largest value is flat (float noise)."""
CELL_NAME = re.compile(r"^beta-(?P<beta>[^_]+)_latent-(?P<latent>\d+)$")
AXES = ("latent_dim", "beta")


@dataclass(frozen=True)
class Metric:
    """A column of the sweep table: its label and which way is better (None: neither, so no
    inflection is marked, e.g. the count of active latents)."""

    label: str
    higher_is_better: bool | None


METRICS: dict[str, Metric] = {
    "cw_ssim": Metric("CW-SSIM of reconstructions", True),
    "ssim": Metric("SSIM of reconstructions", True),
    "mse": Metric("MSE of reconstructions", False),
    "pca_fd": Metric("PCA-FD of prior samples", False),
    "active_latents": Metric("active latents", None),
    "mig": Metric("MIG", True),
    "dci_disentanglement": Metric("DCI disentanglement", True),
    "dci_completeness": Metric("DCI completeness", True),
    "dci_informativeness": Metric("DCI informativeness (test)", True),
    "sap": Metric("SAP", True),
    "total_correlation": Metric("Gaussian total correlation", False),
    "receptive_separation": Metric("receptive-field separation", True),
    "final_val_loss": Metric("validation loss", False),
}
"""Every metric a sweep can record, in the order the report shows them."""


def run_name(beta: float, latent_dim: int) -> str:
    """The run folder name of one cell: beta-3_latent-8."""
    return f"beta-{beta:g}_latent-{latent_dim}"


def grid_record(betas: list[float], latents: list[int]) -> dict[str, Any]:
    """What sweep.json holds: the grid and its order (cell K counts from 1, betas outer)."""
    return {
        "format": GRID_FORMAT,
        "betas": [float(b) for b in betas],
        "latents": [int(n) for n in latents],
        "order": "cell K = (beta's position - 1) x number of latent sizes + latent's position",
    }


def read_json(path: Path) -> Any:
    """A JSON file, or a DataFileError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DataFileError(path, f"unreadable ({error})") from error


def read_grid(sweep_dir: str | Path) -> tuple[list[float], list[int]] | None:
    """(betas, latents) from sweep.json, or None when the sweep has no such file."""
    path = Path(sweep_dir) / GRID_FILE
    if not path.is_file():
        return None
    record = read_json(path)
    try:
        if record.get("format") != GRID_FORMAT:
            raise ValueError(f"not a {GRID_FORMAT} record")
        return [float(b) for b in record["betas"]], [int(n) for n in record["latents"]]
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise DataFileError(path, f"damaged sweep record ({error})") from error


def read_cell(run_dir: str | Path) -> dict[str, Any] | None:
    """A cell's metrics.json, or None when the cell has not written one."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return None
    record = read_json(path)
    if not isinstance(record, dict) or record.get("format") != CELL_FORMAT:
        raise DataFileError(path, f"not a {CELL_FORMAT} record")
    return record


def cell_row(record: dict[str, Any]) -> dict[str, Any]:
    """One row of the sweep table from a cell's metrics.json: the cell, its training, its
    metrics."""
    return {
        "cell": record.get("cell"),
        "beta": record.get("beta"),
        "latent_dim": record.get("latent_dim"),
        "run": record.get("run"),
        **(record.get("training") or {}),
        **(record.get("metrics") or {}),
    }


@dataclass(frozen=True)
class Inflection:
    """Where one series levels off: index and x of the inflection (None with fewer than two
    finite points), whether the series levelled off within the grid, the range the steps were
    measured against (the metric's over the sweep) and each step's improvement (in the better
    direction)."""

    index: int | None
    x: float | None
    plateau_reached: bool
    total_range: float
    improvements: np.ndarray
    fraction: float


def inflection_point(
    x: Any,
    y: Any,
    higher_is_better: bool,
    fraction: float = PLATEAU_FRACTION,
    scale: float | None = None,
) -> Inflection:
    """The smallest x from which every later step improves y by less than `fraction` of
    `scale` (the metric's range over the sweep; None: y's own range); see the module's
    docstring. Points with a NaN y are left out."""
    if not 0 < fraction < 1:
        raise ValueError(f"the plateau fraction must be in (0, 1), got {fraction}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if len(x) < 2:
        return Inflection(None, None, False, float("nan"), np.zeros(0), fraction)
    improvements = np.diff(y) * (1.0 if higher_is_better else -1.0)
    total = float(y.max() - y.min()) if scale is None else float(scale)
    if not total > FLAT_RELATIVE * float(np.abs(y).max()):
        total = 0.0  # differences in the last digits (float noise): a flat series
    steep = np.flatnonzero(improvements >= fraction * total) if total > 0 else np.zeros(0, int)
    index = int(steep[-1]) + 1 if len(steep) else 0
    reached = index < len(x) - 1  # at least one flat step after it
    return Inflection(index, float(x[index]), reached, total, improvements, fraction)


@dataclass(frozen=True)
class SweepTable:
    """The cells found: table (one row per cell with metrics, in grid order), missing (the
    grid's cells without metrics.json, by run name) and the grid."""

    table: pd.DataFrame
    missing: tuple[str, ...]
    betas: tuple[float, ...]
    latents: tuple[int, ...]
    sweep_dir: Path = field(default=Path("."))

    def axes(self) -> list[str]:
        """The parameters the grid varies (at least two values): "latent_dim", "beta"."""
        values = {"latent_dim": self.latents, "beta": self.betas}
        return [along for along in AXES if len(set(values[along])) >= 2]

    def metrics(self) -> list[str]:
        """The known metrics with at least one finite value, in METRICS order."""
        found = []
        for name in METRICS:
            if name in self.table.columns:
                values = np.asarray(self.table[name], dtype=np.float64)
                if np.isfinite(values).any():
                    found.append(name)
        return found

    def series(self, metric: str, along: str = "latent_dim") -> dict[float, tuple]:
        """{value of the other parameter: (x, y)} of one metric along L or beta."""
        if along not in AXES:
            raise ValueError(f"along must be one of {', '.join(AXES)}, got {along!r}")
        other = "beta" if along == "latent_dim" else "latent_dim"
        found = {}
        for key, part in self.table.groupby(other, sort=True):
            part = part.sort_values(along)
            found[key] = (
                part[along].to_numpy(np.float64),
                part[metric].to_numpy(np.float64),
            )
        return found

    def inflection(
        self, metric: str, along: str = "latent_dim", fraction: float = PLATEAU_FRACTION
    ) -> dict[float, Inflection]:
        """Per series (each beta when along L, each L when along beta): its Inflection.
        A metric without a better direction (active latents) has none."""
        direction = METRICS[metric].higher_is_better if metric in METRICS else None
        if direction is None:
            return {}
        values = np.asarray(self.table[metric], dtype=np.float64)
        values = values[np.isfinite(values)]
        scale = float(values.max() - values.min()) if len(values) else 0.0
        return {
            key: inflection_point(x, y, direction, fraction, scale)
            for key, (x, y) in self.series(metric, along).items()
        }

    def inflection_table(self, fraction: float = PLATEAU_FRACTION) -> pd.DataFrame:
        """One row per metric x axis x series: where the metric levels off."""
        import pandas as pd

        rows = []
        for metric in self.metrics():
            for along in self.axes():
                other = "beta" if along == "latent_dim" else "latent_dim"
                for key, found in self.inflection(metric, along, fraction).items():
                    rows.append(
                        {
                            "metric": metric,
                            "along": along,
                            other: key,
                            "inflection": found.x,
                            "plateau_reached": found.plateau_reached,
                            "total_range": found.total_range,
                            "points": len(found.improvements) + 1 if found.x is not None else 0,
                        }
                    )
        columns = ["metric", "along", "beta", "latent_dim", "inflection", "plateau_reached"]
        return pd.DataFrame(rows, columns=[*columns, "total_range", "points"])


def cell_folders(sweep_dir: Path) -> dict[tuple[float, int], Path]:
    """{(beta, L): folder} of the sub-folders named like sweep cells."""
    found = {}
    for path in sorted(sweep_dir.iterdir()):
        match = CELL_NAME.match(path.name)
        if path.is_dir() and match:
            try:
                found[(float(match["beta"]), int(match["latent"]))] = path
            except ValueError:
                continue
    return found


def gather_sweep(sweep_dir: str | Path) -> SweepTable:
    """Every cell of the sweep with a metrics.json, in grid order (betas outer); the grid
    comes from sweep.json (else from the cells' names) and the cells without metrics are named
    in `missing`. A folder with no cell at all is refused."""
    import pandas as pd

    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise DataFileError(sweep_dir, "no such sweep folder")
    grid = read_grid(sweep_dir)
    folders = cell_folders(sweep_dir)
    if grid is None:
        betas = sorted({beta for beta, _ in folders})
        latents = sorted({latent for _, latent in folders})
    else:
        betas, latents = grid
    rows, missing = [], []
    for beta in betas:
        for latent in latents:
            record = read_cell(sweep_dir / run_name(beta, latent))
            if record is None:
                missing.append(run_name(beta, latent))
            else:
                rows.append(cell_row(record))
    if not rows:
        what = f"none of its {len(missing)} cells has" if missing else "it holds no cell with"
        raise DataFileError(
            sweep_dir,
            f"not a sweep with results: {what} a {METRICS_FILE} (cells are folders "
            "beta-<b>_latent-<L>/ written by `brainvae sweep`)",
        )
    table = pd.DataFrame(rows)
    return SweepTable(table, tuple(missing), tuple(betas), tuple(latents), sweep_dir)


def inflection_lines(sweep: SweepTable, fraction: float = PLATEAU_FRACTION) -> list[str]:
    """The inflection points in words, one line per metric and axis."""
    lines = []
    for metric in sweep.metrics():
        for along in sweep.axes():
            found = sweep.inflection(metric, along, fraction)
            if not found:
                continue
            other = "beta" if along == "latent_dim" else "L"
            name = "L" if along == "latent_dim" else "beta"
            parts = []
            for key, point in found.items():
                if point.x is None:
                    parts.append(f"{other} = {key:g}: too few points")
                    continue
                flat = "" if point.plateau_reached else " (still improving at the grid's end)"
                parts.append(f"{other} = {key:g}: {name} = {point.x:g}{flat}")
            lines.append(f"{METRICS[metric].label} against {name}: " + "; ".join(parts))
    return lines


REPORT_TABLE = "report.csv"
INFLECTION_TABLE = "inflections.csv"
FIGURE_STEMS = {"latent_dim": "metrics_vs_latent", "beta": "metrics_vs_beta"}


def write_sweep_report(
    out: str | Path, sweep: SweepTable, fraction: float = PLATEAU_FRACTION, overwrite: bool = False
) -> Path:
    """report.csv, inflections.csv, each figure as PNG and PDF and summary.json into `out`, at
    once (brainvae.data.io.output_folder)."""
    from brainvae.atomic import atomic_file
    from brainvae.data.io.output_folder import atomic_output_folder
    from brainvae.exports.tables import write_csv, write_json
    from brainvae.figures.sweep_figures import sweep_figure

    files = [REPORT_TABLE, INFLECTION_TABLE]
    with atomic_output_folder(out, overwrite) as folder:
        write_csv(folder / REPORT_TABLE, sweep.table, index=False)
        write_csv(folder / INFLECTION_TABLE, sweep.inflection_table(fraction), index=False)
        for along in sweep.axes():
            stem = FIGURE_STEMS[along]
            figure = sweep_figure(sweep, along, fraction)
            for suffix in ("png", "pdf"):
                with atomic_file(folder / f"{stem}.{suffix}") as temporary:
                    figure.savefig(temporary, format=suffix, dpi=150, facecolor="white")
                files.append(f"{stem}.{suffix}")
        summary = {
            "sweep": str(sweep.sweep_dir),
            "betas": list(sweep.betas),
            "latents": list(sweep.latents),
            "cells_found": int(len(sweep.table)),
            "missing": list(sweep.missing),
            "metrics": sweep.metrics(),
            "inflection_rule": (
                "along L (or beta) in increasing order, the smallest value from which every "
                f"later step improves the metric by less than {100 * fraction:g} % of its total "
                "range over the sweep (max - min over every cell); plateau_reached false: the "
                "last step still improved by more (no plateau within the grid)"
            ),
            "plateau_fraction": fraction,
            "inflection_lines": inflection_lines(sweep, fraction),
            "files": [*files, "summary.json"],
        }
        write_json(folder / "summary.json", summary)
    return Path(out)
