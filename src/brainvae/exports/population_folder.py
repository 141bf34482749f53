"""The folder of a population analysis, written at once (brainvae.atomic through
atomic_output_folder, so an interrupted run leaves the old folder or the complete new one):

- classification.csv: the FLAIR study's Table 2 layout (rows TP, FP, FN, TN, precision,
  recall; one column per class), from the latents; confusion.csv (rows true, columns
  predicted, held-out scans); reference_classification.csv and reference_confusion.csv: the
  same from PCA of the raw images;
- scans.csv: one row per scan of the population (subject, session, class, held-out prediction,
  its place on the latent map and on the discriminant axes);
- bias.csv (one row per nuisance column) and bias_<column>.csv (its per-class distribution);
- brain_scores.csv (measure, method, r, p, n, validation), brain_score_predictions.csv (each
  held-out prediction), weights.csv (latent x measure standardised regression weights) and
  correlations.csv (latent x measure Pearson r, each latent on its own);
- summary.json: the request, the figures in words and numbers, what validation was used, the
  warnings and notes, and what the caller adds (run, population, ...);
- PNG figures (brainvae.figures.population_figures).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from brainvae.atomic import atomic_file
from brainvae.data.io.output_folder import atomic_output_folder
from brainvae.exports.population_summary import population_summary
from brainvae.exports.tables import write_csv, write_json

if TYPE_CHECKING:
    from brainvae.population import PopulationAnalysis

FIGURE_DPI = 150
SCAN_COLUMNS = ("subject_id", "session", "filename", "split")
"""Columns of the subjects table copied into scans.csv when the table has them."""


def safe_name(text: str) -> str:
    """A column name as part of a file name (letters, digits, _ . - only)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("._") or "column"


def unique_names(names: list[str], prefix: str, suffix: str) -> list[str]:
    """`prefix<safe name>suffix` for each name, numbered where two would be the same file."""
    taken: set[str] = set()
    found = []
    for name in names:
        stem = f"{prefix}{safe_name(name)}"
        candidate, count = f"{stem}{suffix}", 1
        while candidate.lower() in taken:
            count += 1
            candidate = f"{stem}_{count}{suffix}"
        taken.add(candidate.lower())
        found.append(candidate)
    return found


def scans_table(
    analysis: PopulationAnalysis, population_table: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per scan of the population: who it is (subject_id, session, filename, split
    when the table has them), its class and held-out prediction (empty when it was not
    classified or never held out), its place on the latent map and on the discriminant axes."""
    n = len(analysis.map.coordinates)
    table = pd.DataFrame({"row": np.arange(n)})
    if population_table is not None:
        source = population_table.reset_index(drop=True)
        for column in SCAN_COLUMNS:
            if column in source.columns:
                table[column] = source[column].to_numpy()
    result = analysis.classification
    if result is not None and analysis.rows is not None:
        classes = np.asarray(result.classes, dtype=object)
        truth = np.full(n, "", dtype=object)
        predicted = np.full(n, "", dtype=object)
        held = np.zeros(n, dtype=bool)
        truth[analysis.rows] = classes[result.truth]
        kept = result.predicted >= 0
        predicted[analysis.rows[kept]] = classes[result.predicted[kept]]
        held[analysis.rows] = result.held_out
        table["class"] = truth
        table["predicted"] = predicted
        table["held_out"] = held
        if analysis.reference is not None:
            reference = np.full(n, "", dtype=object)
            kept = analysis.reference.predicted >= 0
            reference[analysis.rows[kept]] = classes[analysis.reference.predicted[kept]]
            table["predicted_reference"] = reference
    coordinates = np.asarray(analysis.map.coordinates, dtype=np.float64)
    table["map_x"] = coordinates[:, 0]
    table["map_y"] = coordinates[:, 1]
    if result is not None and analysis.rows is not None:
        for k in range(result.axes.shape[1]):
            axis = np.full(n, np.nan)
            axis[analysis.rows] = result.axes[:, k]
            table[f"LD{k + 1}"] = axis
    return table


def brain_scores_table(analysis: PopulationAnalysis) -> pd.DataFrame:
    """One row per measure: method, held-out r, permutation p, scans used and validation."""
    rows = [
        {
            "measure": s.measure,
            "method": s.method,
            "r": s.r,
            "p": s.p,
            "n": int(len(s.truth)),
            "n_held_out": int(np.isfinite(s.predicted).sum()),
            "n_missing": int(s.n_missing),
            "n_permutations": s.n_permutations,
            "validation": s.validation,
        }
        for s in analysis.scores
    ]
    columns = ["measure", "method", "r", "p", "n", "n_held_out", "n_missing"]
    return pd.DataFrame(rows, columns=[*columns, "n_permutations", "validation"])


def brain_score_predictions(
    analysis: PopulationAnalysis, population_table: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Long table: measure, row (the scan in the population), subject_id when known, true value,
    held-out prediction (empty where the scan was never held out)."""
    subjects = None
    if population_table is not None and "subject_id" in population_table.columns:
        subjects = population_table["subject_id"].reset_index(drop=True).to_numpy()
    parts = []
    for score in analysis.scores:
        rows = np.flatnonzero(score.keep)
        part = pd.DataFrame({"measure": score.measure, "row": rows})
        if subjects is not None:
            part["subject_id"] = subjects[rows]
        part["true"] = score.truth
        part["predicted"] = score.predicted
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["measure", "row", "true", "predicted"])
    return pd.concat(parts, ignore_index=True)


def save_figure(path: Path, figure: Any, dpi: int = FIGURE_DPI) -> Path:
    """One figure as a PNG, written whole or not at all."""
    with atomic_file(path) as temporary:
        figure.savefig(temporary, dpi=dpi, format="png", facecolor="white")
    return path


def population_figures(analysis: PopulationAnalysis) -> dict[str, Any]:
    """{file name: Figure} of every figure this analysis has."""
    from brainvae.figures import population_figures as draw

    figures: dict[str, Any] = {}
    column = analysis.request.classify or ""
    result = analysis.classification
    class_of_scan = None
    classes: tuple[str, ...] = ()
    if result is not None and analysis.rows is not None:
        figures["lda_axes.png"] = draw.discriminant_axes_figure(result, column)
        figures["confusion.png"] = draw.confusion_figure(result, column)
        classes = result.classes
        class_of_scan = np.full(len(analysis.map.coordinates), -1)
        class_of_scan[analysis.rows] = result.truth
    if analysis.reference is not None:
        figures["reference_confusion.png"] = draw.confusion_figure(analysis.reference, column)
    figures["latent_map.png"] = draw.latent_map_figure(analysis.map, classes, class_of_scan, column)
    measures = [score.measure for score in analysis.scores]
    for score, name in zip(
        analysis.scores, unique_names(measures, "brain_score_", ".png"), strict=True
    ):
        figures[name] = draw.brain_score_figure(score)
    weights = analysis.weights()
    if weights is not None:
        figures["weights.png"] = draw.weights_figure(
            weights,
            title="Which latent carries which measure\n(regression weights, each latent "
            "given the others)",
        )
        figures["correlations.png"] = draw.weights_figure(
            analysis.weights("correlations"),
            "Pearson r",
            "Each latent's own correlation with each measure",
            limit=1.0,
        )
    if analysis.bias is not None:
        checks = analysis.bias.checks
        names = unique_names([c.column for c in checks], "bias_", ".png")
        for check, name in zip(checks, names, strict=True):
            if check.confounded or check.encoded:
                figures[name] = draw.bias_distribution_figure(check, analysis.bias.class_column)
    return figures


def write_population_tables(
    folder: Path, analysis: PopulationAnalysis, population_table: pd.DataFrame | None = None
) -> list[str]:
    """Write every CSV of the analysis into `folder`; returns their names."""
    written: list[str] = []

    def csv(name: str, table: pd.DataFrame, index: bool = True) -> None:
        write_csv(folder / name, table, index=index)
        written.append(name)

    if analysis.classification is not None:
        csv("classification.csv", analysis.classification.table())
        csv("confusion.csv", analysis.classification.confusion_table())
    if analysis.reference is not None:
        csv("reference_classification.csv", analysis.reference.table())
        csv("reference_confusion.csv", analysis.reference.confusion_table())
    csv("scans.csv", scans_table(analysis, population_table), index=False)
    if analysis.bias is not None and analysis.bias.checks:
        csv("bias.csv", analysis.bias.table(), index=False)
        checks = analysis.bias.checks
        names = unique_names([c.column for c in checks], "bias_", ".csv")
        for check, name in zip(checks, names, strict=True):
            csv(name, check.distribution)
    if analysis.scores:
        csv("brain_scores.csv", brain_scores_table(analysis), index=False)
        csv(
            "brain_score_predictions.csv",
            brain_score_predictions(analysis, population_table),
            index=False,
        )
        csv("weights.csv", analysis.weights())
        csv("correlations.csv", analysis.weights("correlations"))
    return written


def write_population_results(
    out: str | Path,
    analysis: PopulationAnalysis,
    info: dict,
    overwrite: bool,
    population_table: pd.DataFrame | None = None,
    figures: bool = True,
) -> Path:
    """Write the tables, the figures (unless `figures` is False) and summary.json into `out`
    at once (a temporary folder renamed into place). `population_table` (the subjects table,
    one row per scan) adds who each scan is to scans.csv."""
    with atomic_output_folder(out, overwrite) as folder:
        tables = write_population_tables(folder, analysis, population_table)
        drawn: list[str] = []
        if figures:
            for name, figure in population_figures(analysis).items():
                save_figure(folder / name, figure)
                drawn.append(name)
        summary = population_summary(analysis, info)
        summary["tables"] = tables
        summary["figures"] = drawn
        write_json(folder / "summary.json", summary)
    return Path(out)
