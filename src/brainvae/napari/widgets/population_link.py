"""The Population analysis dock's latent map, linked to the viewer (a mixin of the dock): the
map drawn from the last run (the run's map, or two chosen latents picked from the codes),
coloured by a column; a clicked point moves the population's scan slider to that scan, shows
its row of the subjects table and sends its code to the latent explorer through the viewer's
state (`state.code`); the scan under the slider is ringed on the map.

It uses the dock's `last_run` (a PopulationRun), `map` (LatentMapPanel), `subject`
(SubjectInfo), `colour_by`, `map_method`, `map_x`, `map_y`, `_run_layer_name`, `_groups()`
(the groups drawn) and `fail`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainvae.napari.viewer_state import ChosenCode


class MapLink:
    """The map's side of the dock (see the module docstring)."""

    def _shown_method(self) -> str | None:
        run = self.last_run
        return None if run is None else run.analysis.map.method

    def current_map(self) -> Any:
        """The map shown: the run's, or two chosen latents (computed here: a column pick)."""
        from brainvae.population import latent_map

        run = self.last_run
        if self.map_method.value == "latents":
            pair = (int(self.map_x.value) - 1, int(self.map_y.value) - 1)
            return latent_map(run.codes, run.analysis.used, "latents", latents=pair)
        return run.analysis.map

    def _redraw_map(self) -> None:
        if self.last_run is None:
            return
        try:
            the_map = self.current_map()
        except Exception as err:  # noqa: BLE001 - a latent the model lacks
            self.fail(err)
            return
        n = len(the_map.coordinates)
        held = np.zeros(n, dtype=bool)
        classification = self.last_run.analysis.classification
        title = f"{the_map.method.upper()} map of {n} scans"
        if classification is not None:
            held[self.last_run.analysis.rows] = classification.held_out
            if held[self.last_run.analysis.rows].all():
                held[:] = False  # cross-validation: every scan was a test scan once
            else:
                title += " (white rings: test scans)"
        if the_map.note:
            title += f"; {the_map.note}"
        self.map.set_points(
            the_map.coordinates, np.arange(n), held, the_map.x_label, the_map.y_label, title
        )
        self._colour_map()
        for name, rows in self._groups().items():
            self.map.show_group(name, rows)

    def _colour_map(self) -> None:
        from brainvae.population.columns import is_categorical

        table = self._run_table()
        column = self.colour_by.value
        if self.last_run is None or table is None or column not in table.columns:
            return
        values = table[column]
        self.map.colour_by(values.to_numpy(dtype=object), is_categorical(values), str(column))
        self._on_step()

    def _run_table(self) -> Any:
        run = self.last_run
        return None if run is None else run.population.table

    def _run_layer(self) -> Any:
        name = self._run_layer_name
        return self._viewer.layers[name] if name in self._viewer.layers else None

    def _scan_axis(self, layer: Any) -> int:
        return self._viewer.dims.ndim - layer.ndim

    def select_scan(self, row: int) -> None:
        """A point was clicked: the scan slider goes to it, its row shows, and its code goes
        to the latent explorer (through the viewer's state)."""
        run = self.last_run
        if run is None or not 0 <= row < len(run.codes):
            return
        layer = self._run_layer()
        if layer is not None:
            self._viewer.dims.set_current_step(self._scan_axis(layer), int(row))
        self._show_subject(row)
        self.map.highlight(row)
        label = f"scan {row}{self._subject_text(row)}"
        self._state.code = ChosenCode(run.model, run.codes[row].astype(np.float64), label)

    def _subject_text(self, row: int) -> str:
        table = self._run_table()
        if table is None or "subject_id" not in table.columns:
            return ""
        return f" (subject {table['subject_id'].iloc[row]})"

    def describe_scan(self, row: int) -> str:
        """'scan 17 (subject sub-0013): diagnosis leuko' for a point's hover text."""
        text = f"scan {row}{self._subject_text(row)}"
        table, column = self._run_table(), self.colour_by.value
        if table is not None and column in table.columns:
            text += f": {column} {table[column].iloc[row]}"
        return text + "; click: show it"

    def _show_subject(self, row: int) -> None:
        table = self._run_table()
        if table is not None and 0 <= row < len(table):
            self.subject.show_row({"scan": row, **table.iloc[row].to_dict()})

    def _on_step(self, *_args) -> None:
        """The viewer's scan slider moved: its point is ringed and its row shown."""
        layer = self._run_layer()
        if self._closed or self.last_run is None or layer is None:
            return
        axis = self._scan_axis(layer)
        if axis < 0:
            return
        row = int(np.clip(self._viewer.dims.current_step[axis], 0, len(layer.data) - 1))
        if row != self.map.highlighted:
            self.map.highlight(row)
            self._show_subject(row)
