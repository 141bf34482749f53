"""Projective fields dock: sweep each latent and see, over the atlas, where the brain changes.

It only orchestrates: reads the model (the latent explorer's, or a run folder), the population
(for the base code and each latent's spread) and an ROI labels layer, runs the sweep in a
napari worker (brainvae.analysis.projective_field), and shows one latent's colour map at a time
as an RGB layer with additive blending under the ROI outlines (a legend says what each colour
means and which colour limits are shown), the ROI x latent enrichment next to the receptive
impact per ROI voxel when the Receptive fields dock has one on the same ROIs (inactive latents'
columns greyed), and, at the cursor, the ROI name and the four bands per unit var(c).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    Slider,
)

from brainvae.napari.widgets.analysis_dock import AnalysisDock
from brainvae.napari.widgets.analysis_inputs import (
    label_names,
    labels_layer_names,
    spatial_placement,
)
from brainvae.napari.widgets.paths import optional_path

if TYPE_CHECKING:
    import napari

COLOUR_LAYER = "projective field (colour)"
UNDERLAY_LAYER = "mean brain, dimmed (under the colours)"
UNDERLAY_BRIGHTNESS = 0.35
"""The mean brain under the additive colours peaks at this grey, so colours stay readable
(over a full-brightness scan cyan + magenta + yellow would wash out to white)."""
OUTLINE_LAYER = "ROI outlines"
BASES = (("population mean", "mean"), ("zero (the prior's mean)", "zero"))
SCHEMES = (
    ("cyan small +, magenta small -, yellow large |c| (paper)", "paper"),
    ("red small -, green small +, blue large |c|", "rgb"),
)
LIMIT_CHOICES = (
    ("per latent (each latent fills the scale)", "per-latent"),
    ("shared (colours compare across latents)", "shared"),
)
NO_ROIS = "(no ROIs)"


class ProjectiveFieldWidget(AnalysisDock):
    """Sweep latents one at a time and overlay where the decoded brain changes."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        from brainvae.analysis.projective_field import DEFAULT_COLOUR_LIMITS, PRESETS

        super().__init__(napari_viewer, "Choose latents and press Run.")
        self._rois: np.ndarray | None = None  # the labels the last run's matrix used
        self._placement: dict[str, Any] = {}  # the last run's grid in the viewer
        self._model: Any = None  # the last run's model (a receptive result must share it)
        self._pending: tuple[dict[str, Any], np.ndarray | None, Any] = ({}, None, None)

        self.latents = LineEdit(
            label="latents", value="", tooltip="1-based, comma separated (1, 3, 4); empty: all"
        )
        self.base = ComboBox(label="base code", choices=self._base_choices)
        self.preset = ComboBox(label="preset", choices=tuple(PRESETS), value="prior")
        self.low = FloatSpinBox(label="from c", min=-1000, max=1000, step=0.5)
        self.high = FloatSpinBox(label="to c", min=-1000, max=1000, step=0.5)
        self.step = FloatSpinBox(label="step", min=1e-4, max=100, step=0.005)
        self.step.native.setDecimals(4)
        self.split = FloatSpinBox(label="small/large split |c|", min=1e-4, max=1000, step=0.5)
        self.units = ComboBox(
            label="units of c",
            choices=(("population sd of the latent", "sd"), ("absolute (prior sd)", "prior")),
        )
        self.scheme = ComboBox(label="colours", choices=SCHEMES, value="paper")
        self.limits = ComboBox(
            label="colour limits", choices=LIMIT_CHOICES, value=DEFAULT_COLOUR_LIMITS
        )
        self.legend = Label(label="legend", value="")
        self.legend.native.setWordWrap(True)
        from qtpy.QtCore import Qt

        self.legend.native.setTextFormat(Qt.TextFormat.RichText)  # coloured swatches
        self.rois = ComboBox(label="ROIs", choices=self._roi_choices)
        self.shown = Slider(label="latent shown", min=0, max=0, value=0, enabled=False)
        self.outline_all = CheckBox(
            label="outline every ROI",
            value=False,
            tooltip="Off: only the ROI of the clicked heatmap cell (at first the shown latent's "
            "most enriched ROI); a fine atlas on a coarse grid is nearly all borders.",
        )
        self.cursor = Label(label="at cursor", value="")
        self.cursor.native.setWordWrap(True)
        self.export_folder = FileEdit(label="export to", mode="d")
        self.export_button = PushButton(text="Export maps (NIfTI), montage (PNG), matrix (CSV)")
        self.extend(
            [
                self.model_source, self.run_folder, self.population, self.latents, self.base,
                self.preset, self.low, self.high, self.step, self.split, self.units,
                self.scheme, self.limits, self.rois, self.buttons, self.progress, self.status,
                self.shown, self.legend, self.outline_all,
                self.cursor, self.export_folder, self.export_button,
            ]
        )  # fmt: skip

        from qtpy.QtWidgets import QHBoxLayout, QWidget

        from brainvae.napari.widgets.heatmap import Heatmap

        self.projective_plot = Heatmap("Projective (enrichment)")
        self.receptive_plot = Heatmap("Receptive (KL/voxel, scaled)")
        plots = QWidget()
        row = QHBoxLayout(plots)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.projective_plot.widget)
        row.addWidget(self.receptive_plot.widget)
        self.native.layout().addWidget(plots)
        self.projective_plot.on_click = self.select_cell
        self.receptive_plot.on_click = self.select_cell
        self._outlined_row: int | None = None  # ROI row outlined; None: the most enriched

        self.apply_preset()
        self.preset.changed.connect(self.apply_preset)
        self.population.changed.connect(lambda *_: self.base.reset_choices())
        self.shown.changed.connect(lambda *_: self._show_colour())
        self.outline_all.changed.connect(lambda *_: self._show_outlines())
        self.scheme.changed.connect(lambda *_: self._recolour())
        self.limits.changed.connect(lambda *_: self._recolour())
        self._show_legend()
        self.export_button.changed.connect(lambda *_: self.export())
        self._viewer.layers.events.inserted.connect(self._refresh_choices)
        self._viewer.layers.events.removed.connect(self._refresh_choices)
        self._viewer.mouse_move_callbacks.append(self._on_mouse_move)

    # ---- choices ---------------------------------------------------------------------------
    def _base_choices(self, *_args) -> list[tuple[str, str]]:
        table = self._population_table()
        subjects = []
        if table is not None and "subject_id" in table:
            subjects = [
                (f"subject {s}", str(s)) for s in sorted(set(map(str, table["subject_id"])))
            ]
        return [*BASES, *subjects]

    def _roi_choices(self, *_args) -> list[str]:
        return [*labels_layer_names(self._viewer), NO_ROIS]

    def _refresh_choices(self, *_args) -> None:
        for combo in (self.population, self.base, self.rois):
            combo.reset_choices()

    def apply_preset(self, *_args) -> None:
        """Fill range, step, split and units from the chosen preset."""
        from brainvae.analysis.projective_field import SweepSettings

        settings = SweepSettings.preset(self.preset.value)
        self.low.value, self.high.value = settings.low, settings.high
        self.step.value, self.split.value = settings.step, settings.split
        self.units.value = settings.units

    # ---- inputs ----------------------------------------------------------------------------
    def chosen_settings(self) -> Any:
        """The sweep settings of the form, checked (a clear error for a bad range)."""
        from brainvae.analysis.projective_field import SweepSettings

        settings = SweepSettings(
            low=float(self.low.value),
            high=float(self.high.value),
            step=float(self.step.value),
            split=float(self.split.value),
            units=str(self.units.value),
        )
        settings.validate()
        return settings

    def chosen_latents(self, latent_dim: int) -> list[int]:
        """0-based indices from the 1-based field; all latents when it is empty."""
        text = str(self.latents.value or "").replace(";", ",")
        if not text.strip():
            return list(range(latent_dim))
        try:
            chosen = [int(part) for part in text.split(",") if part.strip()]
        except ValueError as err:
            raise ValueError(f"latents: {self.latents.value!r} is not a list of numbers") from err
        wrong = [k for k in chosen if not 1 <= k <= latent_dim]
        if wrong:
            raise ValueError(f"latents {wrong} do not exist: the model has z1..z{latent_dim}")
        return [k - 1 for k in dict.fromkeys(chosen)]

    def chosen_rois(self) -> tuple[np.ndarray | None, dict[int, str] | None]:
        name = self.rois.value
        if name in (None, NO_ROIS) or name not in self._viewer.layers:
            return None, None
        layer = self._viewer.layers[name]
        names = label_names(layer)
        # a copy: painting after the run must not change what its matrix and outlines mean
        return (np.array(layer.data, copy=True), names) if names else (None, None)

    # ---- running ---------------------------------------------------------------------------
    def run(self, *_args) -> None:
        """Sweep every chosen latent in a napari worker; progress per batch of decodes."""
        from brainvae.napari.workers.projective import projective_run

        if self._worker is not None:
            return
        try:
            model = self.chosen_model()
            layer = self._population_layer()
            latents = self.chosen_latents(model.latent_dim)
            settings = self.chosen_settings()
            rois, names = self.chosen_rois()
        except Exception as err:  # noqa: BLE001 - any input problem goes to the user
            self.fail(err)
            return
        # shown with the result (a cancelled run leaves the last result's grid and ROIs alone)
        self._pending = (spatial_placement(layer), rois, model)
        self.start(
            projective_run,
            model,
            layer.data,
            self._population_table(),
            latents,
            str(self.base.value),
            settings,
            str(self.scheme.value),
            rois,
            names,
            32,  # decodes per batch
            str(self.limits.value),
            message=f"Sweeping {len(latents)} latent(s), {settings.values().size} decodes each...",
        )

    def progress_of(self, report: Any) -> tuple[int, int]:
        """Decodes done of all; the status names the latent being swept (once per latent)."""
        sweeping = (
            f"Sweeping z{report.latent + 1} ({report.latents_done + 1} of {report.n_latents})"
        )
        if not self.status.value.startswith(sweeping):
            self.status.value = f"{sweeping}..."
        return int(report.decodes_done), int(report.total_decodes)

    def show_result(self, run: Any) -> None:
        self._placement, self._rois, self._model = self._pending
        result = run.result
        self.shown.max = result.n_latents - 1
        self.shown.enabled = result.n_latents > 1
        self._outlined_row = None
        self.shown.value = 0
        for name in (COLOUR_LAYER, UNDERLAY_LAYER):  # a new population or grid: made afresh
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)
        if OUTLINE_LAYER in self._viewer.layers:
            self._viewer.layers.remove(OUTLINE_LAYER)
        self._show_colour()
        self.status.value = result_text(run)
        if run.matrix is not None:
            self.projective_plot.set_matrix(
                run.matrix, run.roi_names, result.latent_names, inactive_columns=~run.active
            )
            self.status.value += " " + self._show_receptive(run)

    def _show_receptive(self, run: Any) -> str:
        """The receptive impact per ROI voxel on the same ROIs beside the enrichment, and where
        the two fields disagree (rank correlation over ROIs, active latents only)."""
        from brainvae.analysis.projective_field import field_agreement

        receptive = self._receptive_result()
        if receptive is None or tuple(receptive.roi_names) != tuple(run.roi_names):
            self.receptive_plot.clear()
            return (
                "Run the Receptive fields dock with the same model and ROIs to compare both fields."
            )
        latents = run.result.latents
        impact = receptive.impact[:, latents]
        per_voxel = receptive.impact_per_voxel[:, latents]
        # each latent's impact per ROI voxel scaled to its largest: the profile the agreement
        # ranks (raw KLs grow with ROI size, so the cortex row would hide the rest); hover:
        # the KL per voxel
        peak = np.max(np.abs(per_voxel), axis=0, keepdims=True)
        scaled = np.divide(per_voxel, peak, out=np.zeros_like(per_voxel), where=peak > 0)
        self.receptive_plot.set_matrix(
            scaled, receptive.roi_names, run.result.latent_names, inactive_columns=~run.active
        )
        self.receptive_plot.raw = per_voxel
        if len(run.roi_names) < 3:
            return "Comparing the fields needs at least 3 ROIs."
        agreement = field_agreement(run.matrix, impact, receptive.roi_sizes, active=run.active)
        names = run.result.latent_names
        flagged = [
            f"{names[k]} (rho {agreement.rho[k]:.2f})" for k in np.flatnonzero(agreement.disagree)
        ]
        text = (
            "Receptive (impact per ROI voxel) and projective fields disagree for: "
            + ", ".join(flagged)
            + "."
            if flagged
            else "Receptive (impact per ROI voxel) and projective fields agree for every active "
            "latent."
        )
        if agreement.inactive.any():
            skipped = ", ".join(names[k] for k in np.flatnonzero(agreement.inactive))
            text += f" Not compared (inactive): {skipped}."
        return text

    def _receptive_result(self) -> Any:
        from brainvae.napari.widgets.receptive_widget import receptive_docks_of

        for dock in receptive_docks_of(self._viewer):
            if dock.last_run is not None and dock.last_run.model is self._model:
                return dock.last_run.result
        return None

    # ---- layers ----------------------------------------------------------------------------
    def _show_legend(self) -> None:
        """What each colour means, and which colour limits the map shows."""
        from brainvae.analysis.projective_field import colour_legend

        lines = []
        for rgb, text in colour_legend(str(self.scheme.value), str(self.limits.value)):
            if rgb is None:
                lines.append(text)
                continue
            hex_colour = "#" + "".join(f"{round(255 * v):02x}" for v in rgb)
            lines.append(f'<span style="color:{hex_colour}">&#9632;&#9632;</span> {text}')
        self.legend.value = "<br>".join(lines)

    def _recolour(self) -> None:
        """New colours for the last sweep (another scheme or limits rule), and the legend."""
        self._show_legend()
        if self.last_run is None:
            return
        from dataclasses import replace

        from brainvae.analysis.projective_field import colour_composite

        mode = str(self.limits.value)
        colour, limits = colour_composite(
            self.last_run.result.colour_bands, str(self.scheme.value), mode=mode
        )
        self.last_run = replace(
            self.last_run, colour=colour, limits=limits, scheme=str(self.scheme.value),
            limits_mode=mode,
        )  # fmt: skip
        self._show_colour()

    def show_latent_index(self, index: int) -> None:
        """Show the colour map of the index-th swept latent (a heatmap column was clicked)."""
        if self.last_run is not None and 0 <= index < self.last_run.result.n_latents:
            self.shown.value = index

    def _show_colour(self) -> None:
        """The shown latent's colour map as an RGB layer, additive over the brain."""
        if self.last_run is None:
            return
        index = int(self.shown.value)
        image = self.last_run.colour[index]
        name = self.last_run.result.latent_names[index]
        inactive = "" if self.last_run.active[index] else ", INACTIVE: means little"
        self.shown.label = f"latent shown ({name}{inactive})"
        layers = self._viewer.layers
        if COLOUR_LAYER in layers and layers[COLOUR_LAYER].data.shape == image.shape:
            layers[COLOUR_LAYER].data = image
        else:
            for name in (COLOUR_LAYER, UNDERLAY_LAYER):
                if name in layers:
                    layers.remove(name)
            mean = self.last_run.mean_image
            peak = float(np.max(mean)) if mean.size else 1.0
            self._viewer.add_image(
                mean,
                name=UNDERLAY_LAYER,
                colormap="gray",
                contrast_limits=(0.0, (peak / UNDERLAY_BRIGHTNESS) if peak > 0 else 1.0),
                metadata={"brainvae": {"kind": "projective_underlay"}},
                scale=self._placement.get("scale"),
                translate=self._placement.get("translate"),
            )
            layer = self._viewer.add_image(
                image,
                name=COLOUR_LAYER,
                rgb=True,
                blending="additive",
                contrast_limits=(0.0, 1.0),
                metadata={"brainvae": {"kind": "projective_field"}},
                scale=self._placement.get("scale"),
                translate=self._placement.get("translate"),
            )
            if image.ndim == 4:
                from brainvae.napari.widgets.view import centre_slices

                centre_slices(self._viewer, layer)
        self._show_outlines()
        if OUTLINE_LAYER in layers:  # outlines stay on top of the colours
            layers.move(layers.index(OUTLINE_LAYER), len(layers))
        self._set_cursor_text()

    def select_cell(self, row: int, latent: int) -> None:
        """A heatmap cell was clicked: show that latent's colours and outline that ROI."""
        self._outlined_row = row
        if int(self.shown.value) == latent:
            self._show_outlines()
        self.show_latent_index(latent)

    def outlined_rois(self) -> np.ndarray | None:
        """The labels to outline: every ROI, or one (clicked, else the shown latent's most
        enriched ROI, else all when there is no matrix or the latent is inactive)."""
        run = self.last_run
        if self._rois is None or run is None:
            return None
        if self.outline_all.value or run.matrix is None:
            return self._rois
        row = self._outlined_row
        if row is None and not run.active[int(self.shown.value)]:
            return self._rois  # an inactive latent has no top ROI worth outlining
        if row is None:
            column = run.matrix[:, int(self.shown.value)]
            row = int(np.nanargmax(column)) if np.isfinite(column).any() else 0
        label = run.roi_labels[row]
        return np.where(self._rois == label, label, 0)

    def _show_outlines(self) -> None:
        """The chosen ROI borders above the colour map, drawn in the displayed planes."""
        layers = self._viewer.layers
        rois = self.outlined_rois()
        if rois is None:
            if OUTLINE_LAYER in layers:
                layers.remove(OUTLINE_LAYER)
            return
        outlines = in_plane_outlines(rois)
        if OUTLINE_LAYER in layers and layers[OUTLINE_LAYER].data.shape == outlines.shape:
            layers[OUTLINE_LAYER].data = outlines
            return
        if OUTLINE_LAYER in layers:
            layers.remove(OUTLINE_LAYER)
        self._viewer.add_labels(
            outlines,
            name=OUTLINE_LAYER,
            opacity=0.7,
            metadata={"brainvae": {"kind": "projective_outlines"}},
            scale=self._placement.get("scale"),
            translate=self._placement.get("translate"),
        )

    # ---- cursor ----------------------------------------------------------------------------
    def _on_mouse_move(self, _viewer: Any, _event: Any) -> None:
        self._set_cursor_text()

    def cursor_values(self) -> tuple[str, np.ndarray] | None:
        """(ROI name, the four bands per unit var(c)) at the mouse, or None off the map."""
        layers = self._viewer.layers
        if self.last_run is None or COLOUR_LAYER not in layers:
            return None
        layer = layers[COLOUR_LAYER]
        position = np.asarray(layer.world_to_data(self._viewer.cursor.position))
        index = tuple(int(v) for v in np.round(position[-layer.ndim :]))
        shape = self.last_run.result.spatial_shape
        if len(index) != len(shape) or any(
            not 0 <= i < n for i, n in zip(index, shape, strict=True)
        ):
            return None
        result = self.last_run.result
        bands = result.band_variance[(int(self.shown.value), slice(None), *index)]
        bands = np.asarray(bands, dtype=np.float64) / result.settings.band_c_variance()
        region = ""
        if self._rois is not None:
            label = int(self._rois[index])
            names = dict(zip(self.last_run.roi_labels, self.last_run.roi_names, strict=True))
            region = names.get(label, "outside the ROIs" if label == 0 else f"label {label}")
        return region, np.asarray(bands, dtype=np.float64)

    def _set_cursor_text(self) -> None:
        if self._closed:
            return
        values = self.cursor_values()
        if values is None:
            self.cursor.value = ""
            return
        region, bands = values
        prefix = f"{region}: " if region else ""
        self.cursor.value = (
            f"{prefix}variance per unit var(c): small - {bands[0]:.3g}, small + {bands[1]:.3g}, "
            f"large - {bands[2]:.3g}, large + {bands[3]:.3g}"
        )

    # ---- exports ---------------------------------------------------------------------------
    def export(self, folder: str | Path | None = None) -> Path | None:
        """Write the last sweep into FOLDER/projective_fields as `brainvae projective` does:
        band maps and colour composites as NIfTI on the population's grid, the montage PNG,
        projective.csv and summary.json; plus the two heatmaps as PNG. Replaced whole."""
        from brainvae.analysis.projective_report import write_projective_results
        from brainvae.napari.widgets.analysis_inputs import population_grid

        if self.last_run is None:
            self.fail(ValueError("run the analysis first"))
            return None
        chosen = optional_path(folder if folder is not None else self.export_folder.value)
        if chosen is None:
            self.fail(ValueError("choose a folder in 'export to' first"))
            return None
        target = chosen / "projective_fields"
        run = self.last_run
        try:
            affine, squeezed = population_grid(self._population_layer())

            def plots(into: Path) -> None:
                self.projective_plot.save_png(into / "projective.png")
                if self.receptive_plot.matrix.size:
                    self.receptive_plot.save_png(into / "receptive_impact.png")

            write_projective_results(
                target,
                run.result,
                run.colour,
                run.limits,
                run.scheme,
                affine,
                squeezed,
                matrix=run.matrix,
                roi_names=run.roi_names,
                extra={"population": self.population.value},
                overwrite=True,
                also=plots,
                limits_mode=run.limits_mode,
                activity=run.activity,
                asymmetry=run.asymmetry,
            )
        except Exception as err:  # noqa: BLE001 - a full disk or a read-only folder
            self.fail(err)
            return None
        self.status.value = f"Saved maps, montage and tables in {target}"
        return target

    def closing(self) -> None:
        if self._on_mouse_move in self._viewer.mouse_move_callbacks:
            self._viewer.mouse_move_callbacks.remove(self._on_mouse_move)


def result_text(run: Any) -> str:
    """The status after a sweep: what was swept, which latents are inactive (and why that
    matters), which fell back to prior units, each active latent's top ROI, the far sides."""
    result = run.result
    names = result.latent_names
    active = run.active
    colour_limits = "per latent" if run.limits_mode == "per-latent" else "shared by all latents"
    text = (
        f"{result.n_latents} latent(s) swept around the {result.base_label} code, "
        f"{result.total_counts} decodes each; colour limits {colour_limits}. "
    )
    if run.activity is not None:
        text += f"{run.activity.describe()}. "
    inactive = [name for name, a in zip(names, active, strict=True) if not a]
    if inactive:
        text += f"Inactive ({', '.join(inactive)}): their fields mean little, no ROI reported. "
    if result.fallback_names:
        text += f"Swept in prior units (population sd ~0): {', '.join(result.fallback_names)}. "
    if run.matrix is not None:
        top = "; ".join(
            f"{name}: {run.roi_names[int(np.nanargmax(run.matrix[:, k]))]}"
            for k, name in enumerate(names)
            if active[k] and np.isfinite(run.matrix[:, k]).any()
        )
        text += f"Most enriched ROI: {top or 'none'}. "
    ratios = [
        f"{name} {entry['large_negative_over_positive']:.2g}"
        for name, entry in run.asymmetry.items()
        if entry["large_negative_over_positive"] is not None
    ]
    if ratios:
        text += f"Far sides, large - / large + per unit var(c): {', '.join(ratios)}."
    return text.strip()


def in_plane_outlines(labels: np.ndarray) -> np.ndarray:
    """Each ROI's border within the planes of the last two axes (the slices napari shows):
    a voxel keeps its label where an in-plane neighbour has another label, else 0. napari's
    own contour works in every axis, so in a coarse volume nearly every voxel is a border."""
    labels = np.asarray(labels).astype(np.int32)
    border = np.zeros(labels.shape, dtype=bool)
    for axis in (-2, -1):
        differs = np.diff(labels, axis=axis) != 0
        before = [slice(None)] * labels.ndim
        after = [slice(None)] * labels.ndim
        before[axis], after[axis] = slice(None, -1), slice(1, None)
        border[tuple(before)] |= differs
        border[tuple(after)] |= differs
    return np.where(border, labels, 0).astype(np.int32)
