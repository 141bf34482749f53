"""What the Population analysis dock shows of a result: the classification in the FLAIR study's
Table 2 layout (one column per class, the latents beside the PCA-of-images reference), balanced
accuracies with their intervals and chance, the acquisition-bias warnings in plain words
(orange), the bias table and each flagged column's distribution per class, the brain scores,
a predicted-vs-true plot and the latent x measure weight heatmap.

`PopulationResults` owns these widgets and fills them from a PopulationAnalysis; it knows
nothing of napari.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainvae.napari.widgets.heatmap import Heatmap
from brainvae.napari.widgets.plot_panel import PlotPanel

HEATMAP_FIELDS = {
    "correlation": ("correlations", "Pearson r of each latent with each measure"),
    "regression weight": ("weights", "standardised weights (each latent given the others)"),
}
"""What the latent x measure heatmap can show: (PopulationAnalysis.weights field, title)."""
WARNING_COLOUR = "#ff9800"
TABLE_ROW_HEIGHT = 22


def fill_table(table: Any, frame: Any, decimals: int = 2) -> None:
    """Show a DataFrame in a QTableWidget: its index as row headers, counts as integers,
    other numbers rounded, the table exactly as tall as its rows (no inner scroll bar)."""
    from qtpy.QtWidgets import QHeaderView, QTableWidgetItem

    table.clear()
    table.setRowCount(len(frame.index))
    table.setColumnCount(len(frame.columns))
    table.setHorizontalHeaderLabels([str(c) for c in frame.columns])
    table.setVerticalHeaderLabels([str(i) for i in frame.index])
    for r, (_, row) in enumerate(frame.iterrows()):
        for c, value in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(format_cell(value, decimals)))
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    table.verticalHeader().setDefaultSectionSize(TABLE_ROW_HEIGHT)
    height = table.horizontalHeader().sizeHint().height() + TABLE_ROW_HEIGHT * len(frame) + 4
    table.setFixedHeight(height)
    table.setVisible(len(frame) > 0)


def format_cell(value: Any, decimals: int = 2) -> str:
    """Integers as integers, other numbers rounded, NaN as a dash, the rest as text."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "-"
        return f"{value:.{decimals}f}"
    return "-" if value is None else str(value)


def table2(classification: Any, reference: Any) -> Any:
    """Table 2's rows (TP, FP, FN, TN, precision, recall), one column per class; with the
    reference, each class has a latents column and a PCA column side by side."""
    import pandas as pd

    latents = counts_as_integers(classification.table())
    if reference is None:
        return latents
    pca = counts_as_integers(reference.table())
    columns = {}
    for name in latents.columns:
        columns[f"{name}\nlatents"] = latents[name]
        columns[f"{name}\nPCA"] = pca[name]
    return pd.DataFrame(columns, index=latents.index)


def counts_as_integers(table: Any) -> Any:
    """Table 2 with its count rows as integers (pandas made every column float)."""
    table = table.astype(object)
    for row in ("TP", "FP", "FN", "TN"):
        if row in table.index:
            table.loc[row] = [int(v) for v in table.loc[row]]
    return table


def accuracy_text(classification: Any, reference: Any) -> str:
    """One line per classifier: balanced accuracy, interval, chance; how it was validated."""
    lines = [classification.describe()]
    if reference is not None:
        lines.append(reference.describe())
    lines.append(f"Validation: {classification.validation}.")
    return "\n".join(lines)


def flagged_checks(bias: Any) -> list[Any]:
    """The nuisance columns the check flagged (confounded with the class, or encoded)."""
    return [] if bias is None else [c for c in bias.checks if c.confounded or c.encoded]


def bias_summary(bias: Any) -> Any:
    """Per nuisance column: the class from the column alone, the class from the latents, the
    column from the latents (with chance), and whether it was flagged."""
    import pandas as pd

    rows = {
        c.column: {
            "class from\nthe column": c.class_from_column,
            "class from\nthe latents": c.class_from_latents,
            "column from\nthe latents": c.latents_to_column,
            "chance for\nthe column": c.latents_to_column_chance,
            "flagged": c.confounded or c.encoded,
        }
        for c in bias.checks
    }
    return pd.DataFrame.from_dict(rows, orient="index")


class PredictedVsTrue(PlotPanel):
    """Held-out predictions of one measure against its true values, with the identity line."""

    def __init__(self) -> None:
        import pyqtgraph as pg
        from qtpy.QtCore import Qt

        super().__init__(title="brain score", min_height=220, plain_axes=("left", "bottom"))
        self.widget.setMaximumHeight(340)  # a square-ish plot, not the dock's whole height
        self.scatter = pg.ScatterPlotItem(size=6, brush=pg.mkBrush("#4e79a7"), pen=None)
        self.identity = pg.PlotCurveItem(
            pen=pg.mkPen("#bbbbbb", width=1, style=Qt.PenStyle.DashLine)
        )
        self.widget.addItem(self.scatter)
        self.widget.addItem(self.identity)
        self.set_shown(False)

    def show_score(self, score: Any) -> None:
        keep = np.isfinite(score.predicted)
        truth, predicted = score.truth[keep], score.predicted[keep]
        self.scatter.setData(truth, predicted)
        low = float(min(truth.min(), predicted.min())) if truth.size else 0.0
        high = float(max(truth.max(), predicted.max())) if truth.size else 1.0
        self.identity.setData([low, high], [low, high])
        self.widget.setLabel("bottom", f"true {score.measure}")
        self.widget.setLabel("left", "predicted (held out)")
        self.widget.setTitle(f"{score.measure}: r = {score.r:.2f}, p = {score.p:.3g}")
        self.set_shown(truth.size > 0)

    def clear_content(self) -> None:
        self.scatter.setData([], [])
        self.identity.setData([], [])


class PopulationResults:
    """The result widgets, added to a dock's layout in reading order."""

    def __init__(self, layout: Any) -> None:
        from magicgui.widgets import ComboBox, Container, Label
        from qtpy.QtWidgets import QTableWidget

        from brainvae.napari.widgets.dock_base import wrapping

        self.accuracy = wrapping(Label(value=""))
        self.table = QTableWidget()
        self.warnings = wrapping(Label(value=""))
        self.warnings.native.setStyleSheet(f"color: {WARNING_COLOUR};")
        self.bias_table = QTableWidget()
        self.distributions = wrapping(Label(value=""))
        self.distributions.native.setStyleSheet("font-family: monospace;")
        self.scores = wrapping(Label(value=""))
        self.measure_shown = ComboBox(label="measure shown", choices=[])
        self.measure_shown.changed.connect(lambda *_: self._show_measure())
        self.predicted = PredictedVsTrue()
        self.heatmap_shows = ComboBox(
            label="heatmap shows", choices=list(HEATMAP_FIELDS), value=next(iter(HEATMAP_FIELDS))
        )
        self.heatmap_shows.changed.connect(lambda *_: self._show_heatmap())
        self.weights = Heatmap(
            "", colormap="CET-D1", symmetric=True, row_name="measure", column_name="latent"
        )
        self._analysis: Any = None
        for table in (self.table, self.bias_table):
            table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
            table.setVerticalScrollBarPolicy(table.verticalScrollBarPolicy().ScrollBarAlwaysOff)
            table.hide()
        self._scores: dict[str, Any] = {}
        for widget in (
            self.accuracy.native, self.table, self.warnings.native, self.bias_table,
            self.distributions.native, self.scores.native,
            Container(widgets=[self.measure_shown]).native,
            self.predicted.widget, Container(widgets=[self.heatmap_shows]).native,
            self.weights.widget,
        ):  # fmt: skip
            layout.addWidget(widget)
        self.clear()

    def clear(self) -> None:
        for label in (self.accuracy, self.warnings, self.distributions, self.scores):
            label.value = ""
            label.visible = False
        self.table.hide()
        self.bias_table.hide()
        self.measure_shown.visible = False
        self.heatmap_shows.visible = False
        self.predicted.clear()
        self.weights.clear()

    def show(self, analysis: Any) -> None:
        """Fill every widget from one PopulationAnalysis."""
        self.clear()
        classification = analysis.classification
        if classification is not None:
            self.accuracy.value = accuracy_text(classification, analysis.reference)
            self.accuracy.visible = True
            fill_table(self.table, table2(classification, analysis.reference))
        warnings = list(analysis.warnings()) + list(analysis.notes)
        if warnings:
            self.warnings.value = "\n".join(f"\u26a0 {w}" for w in warnings)
            self.warnings.visible = True
        if analysis.bias is not None and analysis.bias.checks:
            fill_table(self.bias_table, bias_summary(analysis.bias))
            flagged = flagged_checks(analysis.bias)
            if flagged:
                self.distributions.value = "\n\n".join(
                    f"{c.column} per {analysis.bias.class_column}:\n"
                    + c.distribution.to_string(float_format=lambda v: f"{v:.3g}")
                    for c in flagged
                )
                self.distributions.visible = True
        self._scores = {score.measure: score for score in analysis.scores}
        if analysis.scores:
            self.scores.value = "\n".join(score.describe() for score in analysis.scores)
            self.scores.visible = True
            self.measure_shown.choices = list(self._scores)
            self.measure_shown.value = analysis.scores[0].measure
            self.measure_shown.visible = len(analysis.scores) > 1
            self._show_measure()
            self._analysis = analysis
            self.heatmap_shows.visible = True
            self._show_heatmap()

    def _show_heatmap(self) -> None:
        """Each latent's own correlation with each measure, or the regression weights."""
        if self._analysis is None or not self._analysis.scores:
            return
        field, title = HEATMAP_FIELDS[self.heatmap_shows.value]
        table = self._analysis.weights(field)
        self.weights.set_title(title)
        # one readable band per measure, not the dock's whole height
        self.weights.widget.setMaximumHeight(140 + 50 * table.shape[1])
        self.weights.set_matrix(
            table.to_numpy().T, [str(c) for c in table.columns], list(table.index)
        )

    def _show_measure(self) -> None:
        score = self._scores.get(self.measure_shown.value)
        if score is not None:
            self.predicted.show_score(score)
