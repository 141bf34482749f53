"""What the Evaluation dock shows in words and tables: the denoising summary (per artefact x
model the mean CW-SSIM, SSIM and MSE against the clean scan and the share of the artefact
reproduced), a plain verdict (which model reproduces which artefact least) and the runs'
evaluation (reconstruction scores and the PCA-based Frechet distance of prior samples).
Pure functions from results to rows and sentences, and small read-only tables; no napari."""

from __future__ import annotations

from typing import Any

import numpy as np

DENOISING_COLUMNS = ("artefact", "model", "CW-SSIM", "SSIM", "MSE", "reproduced")
EVALUATION_COLUMNS = ("model", "scans", "CW-SSIM", "SSIM", "MSE", "PCA-FD", "active")
CLEAN_ROWS = "clean (baseline)"
"""The artefact column's text for the reconstructions of the clean scans."""


def number(value: Any, digits: int = 3) -> str:
    """A score as read in a table: 3 decimals; 3 significant digits when below 0.01 (MSE);
    fewer decimals from 100 on (a Frechet distance); an empty cell for NaN."""
    value = float(value)
    if not np.isfinite(value):
        return ""
    if value != 0 and abs(value) < 0.01:
        return f"{value:.{digits}g}"
    if abs(value) >= 100:
        return f"{value:.{max(digits - len(str(int(abs(value)))) + 2, 0)}f}"
    return f"{value:.{digits}f}"


def percent(share: float) -> str:
    """A share as a percentage with one decimal: small differences stay visible."""
    return f"{100 * share:.1f} %"


def denoising_rows(summary: Any) -> list[list[str]]:
    """One row per artefact x model of DenoisingComparison.summary(), in its order."""
    rows = []
    for _, row in summary.iterrows():
        artefact = CLEAN_ROWS if row["artefact"] == "none" else str(row["artefact"])
        reproduced = float(row["artefact_reproduced"])
        rows.append([
            artefact, str(row["model"]), number(row["cw_ssim"]), number(row["ssim"]),
            number(row["mse"]), "" if not np.isfinite(reproduced) else percent(reproduced),
        ])  # fmt: skip
    return rows


def verdict_lines(comparison: Any) -> list[str]:
    """Per artefact, in plain words: which model reproduces it least and how much of it each
    model passes into its reconstruction."""
    summary = comparison.summary()
    least = comparison.least_reproduced()
    lines = []
    for artefact in comparison.artefacts:
        rows = summary[summary["artefact"] == artefact]
        shares = {str(r["model"]): float(r["artefact_reproduced"]) for _, r in rows.iterrows()}
        best = least.get(artefact)
        if best is None:
            lines.append(f"{artefact.capitalize()}: no voxel changed, nothing to compare.")
            continue
        others = ", ".join(f"{m} {percent(s)}" for m, s in shares.items() if m != best)
        also = f" (vs {others})" if others else ""
        lines.append(
            f"{artefact.capitalize()}: {best} reproduces it least, passing "
            f"{percent(shares[best])} of it into its reconstruction{also}."
        )
    return lines


def evaluation_rows(found: list[Any]) -> list[list[str]]:
    """One row per evaluated run (workers.evaluation.RunScores)."""
    rows = []
    for scores in found:
        evaluation = scores.evaluation
        scored = evaluation.reconstruction
        rows.append([
            scores.name, str(evaluation.n_scans), number(_mean(scored.cw_ssim)),
            number(_mean(scored.ssim)), number(_mean(scored.mse)),
            number(evaluation.pca_fd.distance), str(evaluation.activity().n_active),
        ])  # fmt: skip
    return rows


def _mean(values: Any) -> float:
    """The mean over the scans with a score (NaN when none has)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


class ResultTable:
    """A read-only Qt table with named columns, as tall as its rows (up to max_rows), hidden
    while empty. `native` is the QTableWidget a dock places."""

    def __init__(self, columns: tuple[str, ...], max_rows: int = 14) -> None:
        from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget

        self.columns = tuple(columns)
        self.max_rows = max_rows
        self.native = QTableWidget(0, len(columns))
        self.native.setHorizontalHeaderLabels(list(columns))
        self.native.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.native.verticalHeader().setVisible(False)
        header = self.native.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self._rows: list[list[str]] = []
        self.native.setVisible(False)

    def show_rows(self, rows: list[list[str]]) -> None:
        """Replace the rows (none: the table hides)."""
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QTableWidgetItem

        self._rows = [[str(v) for v in row] for row in rows]
        native = self.native
        native.setRowCount(len(rows))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for r, row in enumerate(self._rows):
            for c, text in enumerate(row):
                item = QTableWidgetItem(text)
                if c >= 2 or (c == 1 and text.isdigit()):
                    item.setTextAlignment(right)
                native.setItem(r, c, item)
        native.resizeColumnsToContents()
        native.resizeRowsToContents()
        shown = min(len(rows), self.max_rows)
        height = native.horizontalHeader().sizeHint().height() + 2 * native.frameWidth() + 2
        height += sum(native.rowHeight(i) for i in range(shown))
        native.setFixedHeight(height)
        native.setVisible(bool(rows))

    def texts(self) -> list[list[str]]:
        """What the table shows, row by row."""
        return [list(row) for row in self._rows]
