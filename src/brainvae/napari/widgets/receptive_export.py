"""The receptive fields dock's export of a run: the tables `brainvae receptive` writes
(impact.csv, covariance.csv, gaussians.csv, summary.json) and the dock's three plots as PNG,
in FOLDER/receptive_fields, replaced whole (never the chosen folder itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

EXPORT_FOLDER = "receptive_fields"


def export_run(folder: Path, run: Any, population: str | None, plots: Any) -> Path:
    """Write the run (and `plots`, a ReceptivePlots, as drawn now) into folder/receptive_fields
    atomically; returns that subfolder."""
    from brainvae.analysis.receptive_report import receptive_summary
    from brainvae.data.io.output_folder import atomic_output_folder
    from brainvae.exports.receptive_tables import write_receptive_tables

    target = folder / EXPORT_FOLDER
    info = receptive_summary(run.result, {"population": population})
    with atomic_output_folder(target, overwrite=True) as written:
        write_receptive_tables(written, run.result, info)
        plots.save_pngs(written)
    return target
