"""Figures of a population analysis: the discriminant axes coloured by class, the confusion
matrix, predicted against true for each brain score, the latent x measure weights and the
per-class distribution of a flagged nuisance column; plus the latent map coloured by class.

Arrays and result dataclasses in, a matplotlib Figure out (saved by
brainvae.exports.population_folder). Matplotlib's object API on the Agg canvas only (no pyplot,
no Qt), imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from brainvae.population import BrainScore, Classification, LatentMap, NuisanceCheck

CLASS_COLOURS = (
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f",
)  # fmt: skip
"""One colour per class, in the order of the classes (tab10, grey last)."""
UNCLASSIFIED = "#c8c8c8"


def _figure(width: float, height: float) -> tuple[Figure, Any]:
    """A white Agg figure with one axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), facecolor="white", layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def class_colour(index: int) -> str:
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


def _number(value: float | None, digits: str = ".2f") -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return format(value, digits)


def discriminant_axes_figure(classification: Classification, class_column: str = "") -> Figure:
    """The scans on the first two discriminant axes, coloured by true class. Tested scans
    (the test split, or every scan under cross-validation) are drawn with a dark edge,
    scans only trained on faint; a black cross marks a held-out scan predicted wrongly.
    Two classes have one axis: a strip per class along LD1."""
    from matplotlib.lines import Line2D

    axes = np.asarray(classification.axes, dtype=np.float64)
    truth = np.asarray(classification.truth)
    predicted = np.asarray(classification.predicted)
    tested = predicted >= 0
    wrong = tested & (predicted != truth)
    classes = classification.classes
    one_axis = axes.shape[1] < 2
    figure, ax = _figure(6.4, 5.0 if not one_axis else 1.6 + 0.7 * len(classes))
    if one_axis:
        jitter = np.random.default_rng(0).uniform(-0.25, 0.25, len(truth))
        x, y = axes[:, 0], truth + jitter
    else:
        x, y = axes[:, 0], axes[:, 1]
    for k, name in enumerate(classes):
        colour = class_colour(k)
        trained = (truth == k) & ~tested
        shown = (truth == k) & tested
        if trained.any():
            ax.scatter(x[trained], y[trained], s=14, color=colour, alpha=0.3, linewidths=0)
        ax.scatter(
            x[shown], y[shown], s=26, color=colour, edgecolors="#202020", linewidths=0.5,
            label=(
                f"{name} ({int((truth == k).sum())})"
                if tested.all()
                else f"{name} (test: {int(shown.sum())} of {int((truth == k).sum())})"
            ),
        )  # fmt: skip
    if wrong.any():
        ax.scatter(x[wrong], y[wrong], s=30, marker="x", color="black", linewidths=0.9)
    handles, labels = ax.get_legend_handles_labels()
    if wrong.any():
        handles.append(Line2D([], [], marker="x", color="black", linestyle="", markersize=6))
        labels.append(f"predicted wrongly ({int(wrong.sum())})")
    if (~tested).any():
        handles.append(Line2D([], [], marker="o", color="grey", alpha=0.3, linestyle=""))
        labels.append(f"train split only ({int((~tested).sum())})")
    ax.legend(handles, labels, fontsize=8, loc="best", framealpha=0.85)
    ax.set_xlabel("LD1")
    if one_axis:
        ax.set_yticks(range(len(classes)), list(classes))
        ax.set_ylim(-0.6, len(classes) - 0.4)
        ax.set_ylabel(class_column or "class")
    else:
        ax.set_ylabel("LD2")
    low, high = classification.interval
    ax.set_title(
        f"LDA of {class_column or 'the classes'}: balanced accuracy "
        f"{_number(classification.balanced_accuracy)} (95 % {_number(low)}-{_number(high)}, "
        f"chance {_number(classification.chance)})\n{classification.axes_note}",
        fontsize=9,
    )
    return figure


def confusion_figure(classification: Classification, class_column: str = "") -> Figure:
    """The held-out confusion matrix: counts in the cells, shaded by the share of each true
    class (so a small class reads as clearly as a large one)."""
    confusion = np.asarray(classification.confusion)
    classes = classification.classes
    totals = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)
    size = 2.6 + 0.7 * len(classes)
    figure, ax = _figure(size + 1.2, size)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(
                j, i, f"{int(confusion[i, j])}\n{share[i, j]:.0%}", ha="center", va="center",
                fontsize=9, color="white" if share[i, j] > 0.55 else "black",
            )  # fmt: skip
    ax.set_xticks(range(len(classes)), list(classes), rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel(f"true {class_column}".strip())
    colourbar = figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colourbar.set_label("share of the true class")
    ax.set_title(
        f"{classification.features}\nbalanced accuracy {_number(classification.balanced_accuracy)}"
        f" (chance {_number(classification.chance)})",
        fontsize=9,
    )
    return figure


def brain_score_figure(score: BrainScore) -> Figure:
    """Held-out predictions of one measure against its true values, with r and p."""
    truth = np.asarray(score.truth, dtype=np.float64)
    predicted = np.asarray(score.predicted, dtype=np.float64)
    held = np.isfinite(predicted)
    figure, ax = _figure(5.0, 4.8)
    ax.scatter(truth[held], predicted[held], s=16, color="#1f77b4", alpha=0.75, linewidths=0)
    if held.any():
        both = np.concatenate([truth[held], predicted[held]])
        low, high = float(both.min()), float(both.max())
        pad = 0.04 * (high - low or 1.0)
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color="grey", linewidth=0.8,
                linestyle="--", label="prediction = truth")  # fmt: skip
        ax.legend(fontsize=8, loc="upper left")
    ax.set_xlabel(f"true {score.measure}")
    ax.set_ylabel(f"predicted {score.measure} (held out)")
    ax.set_title(
        f"{score.measure} from the latents ({score.method}): r = {_number(score.r)}, "
        f"p = {_number(score.p, '.3g')}\n{int(held.sum())} held-out scans, "
        f"{score.n_permutations} permutations",
        fontsize=9,
    )
    return figure


def weights_figure(
    weights: pd.DataFrame,
    label: str = "standardised weight",
    title: str = "Which latent carries which measure",
    limit: float | None = None,
) -> Figure:
    """Latent x measure values as a diverging heatmap centred at 0 (which latent carries which
    measure: regression weights, or correlations with limit=1); values in the cells when they
    fit."""
    values = weights.to_numpy(dtype=np.float64)
    latents, measures = values.shape
    if limit is None:
        limit = float(np.nanmax(np.abs(values))) if values.size else 1.0
        limit = limit if np.isfinite(limit) and limit > 0 else 1.0
    figure, ax = _figure(2.6 + 1.1 * measures, 1.4 + 0.32 * latents)
    image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    if latents * measures <= 400:
        for i in range(latents):
            for j in range(measures):
                ax.text(
                    j, i, f"{values[i, j]:.2g}", ha="center", va="center", fontsize=7,
                    color="white" if abs(values[i, j]) > 0.6 * limit else "black",
                )  # fmt: skip
    ax.set_xticks(range(measures), [str(c) for c in weights.columns], rotation=30, ha="right")
    ax.set_yticks(range(latents), [str(i) for i in weights.index])
    ax.set_ylabel("latent")
    colourbar = figure.colorbar(image, ax=ax, fraction=0.08, pad=0.04)
    colourbar.set_label(label)
    ax.set_title(title, fontsize=9)
    return figure


def bias_distribution_figure(check: NuisanceCheck, class_column: str = "") -> Figure:
    """Per class, how a nuisance column is distributed: the share of each level (a
    categorical column such as site) or min, median, mean +- sd and max (a numeric one)."""
    table = check.distribution
    classes = [str(c) for c in table.index]
    figure, ax = _figure(6.0, 4.2)
    if check.kind == "categorical":
        counts = table.to_numpy(dtype=np.float64)
        totals = counts.sum(axis=1, keepdims=True)
        share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
        left = np.zeros(len(classes))
        for j, level in enumerate(table.columns):
            ax.barh(classes, share[:, j], left=left, color=class_colour(j),
                    label=f"{check.column} {level}", edgecolor="white")  # fmt: skip
            for i in range(len(classes)):
                if share[i, j] >= 0.06:
                    ax.text(left[i] + share[i, j] / 2, i, str(int(counts[i, j])), ha="center",
                            va="center", fontsize=8, color="white")  # fmt: skip
            left += share[:, j]
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"share of the class's scans (counts in the bars) by {check.column}")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        for i, label in enumerate(table.index):
            row = table.loc[label]
            colour = class_colour(i)
            ax.plot([row["min"], row["max"]], [i, i], color=colour, linewidth=1.2)
            ax.plot([row["mean"] - row["std"], row["mean"] + row["std"]], [i, i], color=colour,
                    linewidth=6, alpha=0.45, solid_capstyle="butt")  # fmt: skip
            ax.plot(row["50%"], i, marker="|", color="black", markersize=14)
            ax.plot(row["mean"], i, marker="o", color=colour, markeredgecolor="black")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel(f"{check.column} (line: min-max; band: mean +- sd; dot: mean; bar: median)")
    ax.set_ylabel(class_column or "class")
    flags = [w for w, on in (("confounded", check.confounded), ("encoded", check.encoded)) if on]
    ax.set_title(
        f"{check.column} per {class_column or 'class'}"
        + (f" (flagged: {', '.join(flags)})" if flags else ""),
        fontsize=9,
    )
    return figure


def latent_map_figure(
    the_map: LatentMap,
    classes: tuple[str, ...] = (),
    class_of_scan: np.ndarray | None = None,
    class_column: str = "",
) -> Figure:
    """Every scan of the population on the latent map; coloured by class when
    `class_of_scan` (N,) gives each scan's class index (-1: no class, grey)."""
    coordinates = np.asarray(the_map.coordinates, dtype=np.float64)
    figure, ax = _figure(6.4, 5.0)
    if class_of_scan is None or not classes:
        ax.scatter(coordinates[:, 0], coordinates[:, 1], s=14, color="#1f77b4", linewidths=0)
    else:
        index = np.asarray(class_of_scan)
        none = index < 0
        if none.any():
            ax.scatter(coordinates[none, 0], coordinates[none, 1], s=10, color=UNCLASSIFIED,
                       linewidths=0, label=f"no {class_column or 'class'} ({int(none.sum())})")  # fmt: skip
        for k, name in enumerate(classes):
            rows = index == k
            ax.scatter(coordinates[rows, 0], coordinates[rows, 1], s=16, color=class_colour(k),
                       linewidths=0, alpha=0.85, label=f"{name} ({int(rows.sum())})")  # fmt: skip
        ax.legend(fontsize=8, loc="best", framealpha=0.85)
    ax.set_xlabel(the_map.x_label)
    ax.set_ylabel(the_map.y_label)
    ax.set_title(
        f"Latent map ({the_map.method})" + (f"\n{the_map.note}" if the_map.note else ""),
        fontsize=9,
    )
    return figure
