"""A sweep's metrics drawn against L (one line per beta) or against beta (one line per L), one
panel per metric, each series' inflection ringed (brainvae.evaluation.sweep_report's rule: a
ring where the series levels off, a square on the last point where it still improves at the
grid's end)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from brainvae.evaluation.sweep_report import SweepTable

COLUMNS = 3
PANEL_INCHES = (4.0, 3.1)
AXIS_LABELS = {"latent_dim": "latent size L", "beta": "beta"}
SERIES_LABELS = {"latent_dim": "beta = {:g}", "beta": "L = {:g}"}
SERIES_MARKERS = ("o", "^", "D", "v", "P", "X")
LEGEND_INCHES = 0.5


def _log_axis(values: np.ndarray) -> bool:
    """A log axis when every value is positive and they span a factor of 4 or more."""
    values = values[np.isfinite(values)]
    return bool(len(values) and values.min() > 0 and values.max() / values.min() >= 4)


def metric_panel(ax: Any, sweep: SweepTable, metric: str, along: str, fraction: float) -> None:
    """One metric: a line per series, its inflection ringed, the better direction said."""
    from matplotlib import colormaps
    from matplotlib.ticker import FuncFormatter

    from brainvae.evaluation.sweep_report import METRICS

    series = sweep.series(metric, along)
    points = sweep.inflection(metric, along, fraction)
    colours = colormaps["viridis"](np.linspace(0.0, 0.85, max(len(series), 1)))
    grid = np.asarray(sweep.latents if along == "latent_dim" else sweep.betas, dtype=np.float64)
    for number, (colour, (key, (x, y))) in enumerate(zip(colours, series.items(), strict=False)):
        keep = np.isfinite(y)
        ax.plot(  # earlier series drawn wider, so equal series stay visible one over the other
            x[keep], y[keep], color=colour, lw=max(3.2 - 0.8 * number, 1.0),
            marker=SERIES_MARKERS[number % len(SERIES_MARKERS)], ms=6,
            label=SERIES_LABELS[along].format(key),
        )  # fmt: skip
        point = points.get(key)
        if point is not None and point.x is not None:
            at = np.flatnonzero(x == point.x)[0]
            marker = "o" if point.plateau_reached else "s"
            ax.plot(point.x, y[at], marker, ms=14, mfc="none", mec=colour, mew=2.0, ls="none")
    if _log_axis(grid):
        ax.set_xscale("log")
        ax.set_xlim(grid.min() / 1.2, grid.max() * 1.2)
    else:
        margin = 0.08 * max(float(np.ptp(grid)), 1.0)
        ax.set_xlim(grid.min() - margin, grid.max() + margin)
    ax.set_xticks(grid)
    ax.set_xticklabels([f"{v:g}" for v in grid])
    ax.minorticks_off()
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.4g}"))  # no offset
    info = METRICS.get(metric)
    better = {True: " (higher is better)", False: " (lower is better)", None: ""}[
        info.higher_is_better if info else None
    ]
    ax.set_title((info.label if info else metric) + better, fontsize=9)
    ax.set_xlabel(AXIS_LABELS[along], fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)


def sweep_figure(sweep: SweepTable, along: str = "latent_dim", fraction: float = 0.1) -> Any:
    """Every metric of the sweep against `along` ("latent_dim" or "beta"), one panel each."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    metrics = sweep.metrics()
    if not metrics:
        raise ValueError(f"{sweep.sweep_dir}: the sweep's cells hold no metric to draw")
    columns = min(COLUMNS, len(metrics))
    rows = -(-len(metrics) // columns)
    height = PANEL_INCHES[1] * rows + LEGEND_INCHES + 0.4
    figure = Figure(figsize=(PANEL_INCHES[0] * columns, height))
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for ax, metric in zip(axes, metrics, strict=False):
        metric_panel(ax, sweep, metric, along, fraction)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    ring = dict(ms=11, mfc="none", mec="black", mew=2.0, ls="none")
    handles += [Line2D([], [], marker="o", **ring), Line2D([], [], marker="s", **ring)]
    labels += [
        f"inflection: later steps improve < {100 * fraction:g} % of the sweep's range",
        "no plateau within the grid: last point",
    ]
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8)
    missing = f"; missing cells: {', '.join(sweep.missing)}" if sweep.missing else ""
    figure.suptitle(f"Sweep metrics against {AXIS_LABELS[along]}{missing}", fontsize=10, wrap=True)
    figure.tight_layout(rect=(0, LEGEND_INCHES / height, 1, 1 - 0.3 / height))
    return figure
