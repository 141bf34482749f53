"""Projective fields dock: sweep each latent and see, over the atlas, where the brain changes.

It only orchestrates: reads the model (the latent explorer's, or a run folder), the population
(for the base code and each latent's spread) and an ROI labels layer, runs the sweep in a
napari worker (brainvae.analysis.projective_field), and shows one latent's colour map at a time
as an RGBA layer (the hue at full brightness, opacity = the strongest band) over the dimmed
population mean, under ROI outlines in a colour no band takes (a legend in the dock and a line
on the canvas say what each colour means and which colour limits are shown), the ROI x latent
enrichment next to the receptive impact per ROI voxel when the Receptive fields dock has one on
the same ROIs (inactive latents' columns greyed), and, at the cursor, the ROI name and the four
bands per unit var(c).

In 3D view (viewer.dims.ndisplay == 3) the opaque image and labels volumes would hide the colour
volume, so while a result is shown they are hidden (and shown again on leaving 3D or when the
colour layer is removed); the colour volume is rendered as a maximum projection (each ray shows
its strongest voxel's hue), inside a faint surface of the brain (the population mean at the
brain-mask level) with the outlined ROIs as surfaces. "Export figure" writes the publication
figure (brainvae.figures.projective_figure) of the last result in a worker.
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

from brainvae.figures.projective_figure import ANATOMY_BRIGHTNESS
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
UNDERLAY_BRIGHTNESS = ANATOMY_BRIGHTNESS
"""The mean brain under the colours peaks at this grey (as in the exported figure): context that
is never mistaken for a colour; the colours are alpha-blended over it, never added."""
OUTLINE_LAYER = "ROI outlines"
BRAIN_SURFACE_LAYER = "brain surface (3D context)"
ROI_SURFACE_LAYER = "ROI outlines (3D surfaces)"
BRAIN_SURFACE_OPACITY = 0.2
BRAIN_LEVEL = 0.1
"""The brain surface sits where the mean reaches this fraction of its maximum (the default
brain mask's level, brain_mask_from_images)."""
ROI_SURFACE_OPACITY = 0.35
EVERY_ROI_OPACITY = 0.05
"""Every ROI outlined in 3D: their surfaces fill the brain, so each is faint, under the colours."""
RENDERING_3D = "mip"
"""The colour volume in 3D: each ray shows its voxel of largest brightness x opacity in that
voxel's own hue (a translucent blend would mix the hues of a whole ray into grey)."""
FLOOR_3D = 0.5
"""In 3D only voxels above this share of their colour limit show (opacity rising from 0 there
to 1 at the limit): a field spread over the brain otherwise fills the view like fog."""
KEEP_IN_3D = ("roi_highlight",)
"""Kinds of other docks' layers that stay shown in 3D: the Receptive fields dock's ROI
highlight is an outline, not an opaque volume."""
OWN_KINDS = (
    "projective_field",
    "projective_underlay",
    "projective_outlines",
    "projective_surface",
)
FIGURE_SLICES = (("each latent's largest variance", "largest"), ("through the cursor", "cursor"))
FIGURE_LATENTS = (("every swept latent", "all"), ("the shown latent", "shown"))
BASES = (("population mean", "mean"), ("zero (the prior's mean)", "zero"))
SCHEMES = (
    ("paper: cyan +, magenta \u2212, yellow large", "paper"),
    ("rgb: green +, red \u2212, blue large", "rgb"),
)
LIMIT_CHOICES = (
    ("per latent (each fills the scale)", "per-latent"),
    ("shared (latents compare)", "shared"),
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
        self._hidden_in_3d: list[Any] = []  # layers this dock hid on entering 3D
        self._in_3d = False
        self._brain_surface: tuple[Any, Any] | None = None  # (mean image, (vertices, faces))
        self._roi_mesh: tuple[Any, Any] | None = None  # ((ROIs, row), (vertices, faces))
        self._figure_worker: Any = None
        self._replacing = False  # our own layer swaps are no removal by the user

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
        self.scheme = ComboBox(
            label="colours", choices=SCHEMES, value="paper",
            tooltip="paper (Fig. 3A): cyan = small positive c, magenta = small negative c, "
            "yellow = large |c|; rgb: green = small positive, red = small negative, blue = large",
        )  # fmt: skip
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
        self.export_button = PushButton(text="Export maps (NIfTI), figure (PNG), matrix (CSV)")
        self.figure_file = FileEdit(
            label="figure file", mode="w", filter="*.png *.pdf *.svg",
            tooltip="PNG at 300 dpi, or PDF / SVG (vector text) by the suffix; 180 mm wide",
        )  # fmt: skip
        self.figure_latents = ComboBox(label="figure of", choices=FIGURE_LATENTS, value="all")
        self.figure_slices = ComboBox(
            label="figure slices", choices=FIGURE_SLICES, value="largest",
            tooltip="3D results: the axial, coronal and sagittal slices drawn per latent, through "
            "each latent's largest variance or through the point last pointed at on the canvas",
        )  # fmt: skip
        self.figure_button = PushButton(text="Export figure...")
        self.extend(
            [
                self.model_source, self.run_folder, self.population, self.latents, self.base,
                self.preset, self.low, self.high, self.step, self.split, self.units,
                self.scheme, self.limits, self.rois, self.buttons, self.progress, self.status,
                self.shown, self.legend, self.outline_all,
                self.cursor, self.figure_file, self.figure_latents, self.figure_slices,
                self.figure_button, self.export_folder, self.export_button,
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
        form = getattr(self, "inner", None) or self.native  # a scrolling dock's form, if any
        form.layout().addWidget(plots)
        self.projective_plot.on_click = self.select_cell
        self.receptive_plot.on_click = self.select_cell
        self._outlined_row: int | None = None  # ROI row outlined; None: the most enriched

        self.apply_preset()
        self.preset.changed.connect(self.apply_preset)
        self.population.changed.connect(lambda *_: self.base.reset_choices())
        self.shown.changed.connect(lambda *_: self._show_colour())
        self.outline_all.changed.connect(lambda *_: self._refresh_outlines())
        self.scheme.changed.connect(lambda *_: self._recolour())
        self.limits.changed.connect(lambda *_: self._recolour())
        self._show_legend()
        self.export_button.changed.connect(lambda *_: self.export())
        self.figure_button.changed.connect(lambda *_: self.export_figure())
        self._viewer.layers.events.inserted.connect(self._refresh_choices)
        self._viewer.layers.events.removed.connect(self._refresh_choices)
        self._viewer.layers.events.removed.connect(self._on_layer_removed)
        self._viewer.dims.events.ndisplay.connect(self._on_ndisplay)
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
        self.figure_slices.enabled = len(result.spatial_shape) == 3
        self._replacing = True
        try:  # a new population or grid: made afresh
            for name in (COLOUR_LAYER, UNDERLAY_LAYER, OUTLINE_LAYER, *SURFACE_LAYERS):
                if name in self._viewer.layers:
                    self._viewer.layers.remove(name)
        finally:
            self._replacing = False
        self._brain_surface = self._roi_mesh = None
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
        """What each colour means, how opacity reads, which colour limits the map shows and the
        outline colour."""
        from brainvae.analysis.projective_field import colour_legend

        lines = []
        for rgb, text in colour_legend(str(self.scheme.value), str(self.limits.value)):
            if rgb is None:
                lines.append(text)
                continue
            lines.append(f'<span style="color:{_hex(rgb)}">&#9632;&#9632;</span> {text}')
        rgb, name = self._outline_colour()
        lines.append("opacity over the dimmed mean brain = the strongest band")
        lines.append(f'<span style="color:{_hex(rgb)}">&#9633;&#9633;</span> {name}: ROI outlines')
        self.legend.value = "<br>".join(lines)

    def _outline_colour(self) -> tuple[tuple[float, float, float], str]:
        from brainvae.analysis.projective_colour import outline_colour

        return outline_colour(str(self.scheme.value))

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
        layers = self._viewer.layers
        if OUTLINE_LAYER in layers:  # the outline colour follows the scheme
            layers[OUTLINE_LAYER].colormap = _outline_colormap(self._outline_colour()[0])
        if ROI_SURFACE_LAYER in layers:
            self._remove_layers(ROI_SURFACE_LAYER)
        self._show_colour()

    def show_latent_index(self, index: int) -> None:
        """Show the colour map of the index-th swept latent (a heatmap column was clicked)."""
        if self.last_run is not None and 0 <= index < self.last_run.result.n_latents:
            self.shown.value = index

    def _show_colour(self) -> None:
        """The shown latent's colour map as an RGBA layer (hue, opacity = strength) over the
        dimmed mean brain, the outlines above it, the canvas line, and the 3D view's layers."""
        from brainvae.analysis.projective_colour import rgba_overlay

        if self.last_run is None:
            return
        index = int(self.shown.value)
        image = rgba_overlay(self.last_run.colour[index])
        if self._viewer.dims.ndisplay == 3 and image.ndim == 4:
            image[..., 3] = np.clip((image[..., 3] - FLOOR_3D) / (1.0 - FLOOR_3D), 0.0, 1.0)
        name = self.last_run.result.latent_names[index]
        inactive = "" if self.last_run.active[index] else ", INACTIVE: means little"
        self.shown.label = f"latent shown ({name}{inactive})"
        layers = self._viewer.layers
        if COLOUR_LAYER in layers and layers[COLOUR_LAYER].data.shape == image.shape:
            layers[COLOUR_LAYER].data = image
        else:
            self._remove_layers(COLOUR_LAYER, UNDERLAY_LAYER)
            mean = self.last_run.mean_image
            peak = float(np.max(mean)) if mean.size else 1.0
            self._viewer.add_image(
                mean,
                name=UNDERLAY_LAYER,
                colormap="gray",
                contrast_limits=(0.0, (peak / UNDERLAY_BRIGHTNESS) if peak > 0 else 1.0),
                metadata={"brainvae": {"kind": "projective_underlay"}},
                **self._on_grid(),
            )
            layer = self._viewer.add_image(
                image,
                name=COLOUR_LAYER,
                rgb=True,
                blending="translucent",
                contrast_limits=(0.0, 1.0),
                metadata={"brainvae": {"kind": "projective_field"}},
                **self._on_grid(),
            )
            if image.ndim == 4:
                from brainvae.napari.widgets.view import centre_slices

                centre_slices(self._viewer, layer)
        self._show_outlines()
        if OUTLINE_LAYER in layers:  # outlines stay on top of the colours
            layers.move(layers.index(OUTLINE_LAYER), len(layers))
        self._set_cursor_text()
        self._apply_view()

    def select_cell(self, row: int, latent: int) -> None:
        """A heatmap cell was clicked: show that latent's colours and outline that ROI."""
        self._outlined_row = row
        if int(self.shown.value) == latent:
            self._refresh_outlines()
        self.show_latent_index(latent)

    def _refresh_outlines(self) -> None:
        """Other ROIs outlined: the 2D borders, the 3D surfaces and the canvas line."""
        self._show_outlines()
        self._apply_view()

    def _outlined_row_now(self) -> int | None:
        """The ROI row outlined alone (clicked, else the shown latent's most enriched); None
        when every ROI is outlined."""
        run = self.last_run
        if self.outline_all.value or run is None or run.matrix is None:
            return None
        row = self._outlined_row
        if row is None and not run.active[int(self.shown.value)]:
            return None  # an inactive latent has no top ROI worth outlining
        if row is None:
            column = run.matrix[:, int(self.shown.value)]
            row = int(np.nanargmax(column)) if np.isfinite(column).any() else 0
        return row

    def outlined_rois(self) -> np.ndarray | None:
        """The labels to outline: every ROI, or one (clicked, else the shown latent's most
        enriched ROI, else all when there is no matrix or the latent is inactive)."""
        run = self.last_run
        if self._rois is None or run is None:
            return None
        row = self._outlined_row_now()
        if row is None:
            return self._rois
        label = run.roi_labels[row]
        return np.where(self._rois == label, label, 0)

    def _show_outlines(self) -> None:
        """The chosen ROI borders above the colour map, drawn in the displayed planes in one
        colour that no band takes."""
        layers = self._viewer.layers
        rois = self.outlined_rois()
        if rois is None:
            self._remove_layers(OUTLINE_LAYER)
            return
        outlines = in_plane_outlines(rois)
        if OUTLINE_LAYER in layers and layers[OUTLINE_LAYER].data.shape == outlines.shape:
            layers[OUTLINE_LAYER].data = outlines
            return
        self._remove_layers(OUTLINE_LAYER)
        layer = self._viewer.add_labels(
            outlines,
            name=OUTLINE_LAYER,
            opacity=0.9,
            metadata={"brainvae": {"kind": "projective_outlines"}},
            **self._on_grid(),
        )
        layer.colormap = _outline_colormap(self._outline_colour()[0])

    def _on_grid(self) -> dict[str, Any]:
        """scale, translate and (when the population has them) units of the last run's grid,
        so our layers overlay the scans and napari finds the units consistent."""
        keys = ("scale", "translate", "units")
        return {key: self._placement[key] for key in keys if self._placement.get(key)}

    def _remove_layers(self, *names: str) -> None:
        """Remove our own layers by name (not a user's removal of the result)."""
        self._replacing = True
        try:
            for name in names:
                if name in self._viewer.layers:
                    self._viewer.layers.remove(name)
        finally:
            self._replacing = False

    # ---- the canvas line and the 3D view ---------------------------------------------------
    def canvas_text(self) -> str:
        """The line on the canvas: which latent, what each colour and the opacity mean, and
        which ROI the outline shows."""
        from brainvae.analysis.projective_colour import band_names

        run = self.last_run
        if run is None:
            return ""
        index = int(self.shown.value)
        name = run.result.latent_names[index]
        negative, positive, large = band_names(run.scheme)
        state = "" if run.active[index] else " (INACTIVE: means little)"
        limits = "per latent" if run.limits_mode == "per-latent" else "shared"
        opacity = f"opacity = strength (colour limits {limits})"
        if self._viewer.dims.ndisplay == 3 and len(run.result.spatial_shape) == 3:
            opacity = f"3D: brightest voxel per ray, from {FLOOR_3D:.0%} of its limit\ngrey: brain"
        # short lines: the canvas of a laptop screen is about 500 pixels wide
        text = (
            f"Projective field {name}{state}\n"
            f"{positive} = small + c, {negative} = small \u2212 c\n"
            f"{large} = large |c|, grey/white = all alike\n{opacity}"
        )
        if self._rois is not None and run.roi_names:
            row = self._outlined_row_now()
            what = "every ROI" if row is None else run.roi_names[row]
            text += f"\n{self._outline_colour()[1]} outline: {what}"
        return text

    def _update_canvas_text(self, shown: bool) -> None:
        overlay = _text_overlay(self._viewer)
        if overlay is None:
            return
        if not shown:
            if overlay.text.startswith("Projective field"):
                overlay.text, overlay.visible = "", False
            return
        overlay.text = self.canvas_text()
        overlay.position = "top_left"
        overlay.font_size = 9
        overlay.color = (1.0, 1.0, 1.0, 1.0)
        overlay.visible = True

    def _on_ndisplay(self, *_args) -> None:
        """Entering or leaving 3D: the colours' opacity rule and the layers shown change."""
        if self._closed:
            return
        if self.last_run is not None and COLOUR_LAYER in self._viewer.layers:
            self._show_colour()
        else:
            self._apply_view()

    def _on_layer_removed(self, event: Any) -> None:
        """The user removed the colour layer: the result is no longer shown, so the layers
        hidden for 3D come back and the 3D surfaces and canvas line go."""
        from brainvae.napari.layer_metadata import stored_metadata

        layer = getattr(event, "value", None)
        if self._replacing or self._closed or layer is None:
            return
        if stored_metadata(layer.metadata).get("kind") == "projective_field":
            self._leave_3d()
            self._update_canvas_text(False)

    def _apply_view(self) -> None:
        """2D or 3D as the viewer is, for the result shown (nothing without one)."""
        shown = self.last_run is not None and COLOUR_LAYER in self._viewer.layers
        self._update_canvas_text(shown)
        if shown and self._viewer.dims.ndisplay == 3:
            self._enter_3d()
        else:
            self._leave_3d()

    def _enter_3d(self) -> None:
        """Hide the opaque volumes (once, on entering), render the colours as a maximum
        projection, and draw the brain and the outlined ROIs as surfaces."""
        from napari.layers import Image, Labels

        from brainvae.napari.layer_metadata import stored_metadata

        layers = self._viewer.layers
        colour = layers[COLOUR_LAYER]
        volume = colour.ndim == 3
        own_2d = () if not volume else ("projective_underlay", "projective_outlines")
        entering = not self._in_3d
        self._in_3d = True
        for layer in list(layers):
            kind = stored_metadata(layer.metadata).get("kind")
            # others' volumes once, on entering (a user may show one again); ours each time
            # (a new result or outline layer is made visible)
            hide = kind in own_2d or (
                entering
                and kind not in (*OWN_KINDS, *KEEP_IN_3D)
                and isinstance(layer, Image | Labels)
            )
            if hide and layer.visible:
                layer.visible = False
                self._hidden_in_3d.append(layer)
        if entering:
            self._frame(colour)
        colour.rendering = RENDERING_3D
        if not volume:
            return
        self._show_brain_surface()
        self._show_roi_surface()

    def _frame(self, layer: Any) -> None:
        """Fit the 3D view to the result (a hidden decode may sit beside the brain and would
        shrink it): napari's fit to all layers, then centred and zoomed on this one."""
        viewer = self._viewer
        viewer.reset_view()
        offset = viewer.dims.ndim - layer.ndim
        displayed = [axis - offset for axis in viewer.dims.displayed if axis >= offset]
        if len(displayed) != 3:
            return
        every = np.asarray(viewer.layers.extent.world)[:, list(viewer.dims.displayed)]
        own = np.asarray(layer.extent.world)[:, displayed]
        size = float(np.max(own[1] - own[0]))
        camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari 0.9
        if size > 0:
            camera.center = tuple(float(v) for v in own.mean(axis=0))
            camera.zoom = camera.zoom * float(np.max(every[1] - every[0])) / size

    def _leave_3d(self) -> None:
        """Show again what entering 3D hid (if still there) and drop the 3D surfaces."""
        self._remove_layers(*SURFACE_LAYERS)
        hidden, self._hidden_in_3d = self._hidden_in_3d, []
        for layer in hidden:
            if layer in self._viewer.layers:
                layer.visible = True
        self._in_3d = False

    def _show_brain_surface(self) -> None:
        """The population mean's surface at the brain-mask level, faint, as context."""
        mean = self.last_run.mean_image  # kept by a new colouring of the same sweep
        if self._brain_surface is None or self._brain_surface[0] is not mean:
            self._brain_surface = (mean, brain_surface(mean))
        mesh = self._brain_surface[1]
        if mesh is None or BRAIN_SURFACE_LAYER in self._viewer.layers:
            return
        self._add_surface(mesh, BRAIN_SURFACE_LAYER, (0.8, 0.8, 0.8), BRAIN_SURFACE_OPACITY, True)

    def _show_roi_surface(self) -> None:
        """The outlined ROIs (one, or each of all) as surfaces in the outline colour; the mesh
        is kept while the same ROIs stay outlined (a fine atlas takes a moment)."""
        rois = self.outlined_rois()
        self._remove_layers(ROI_SURFACE_LAYER)
        if rois is None:
            return
        key = (id(self._rois), self._outlined_row_now())
        if self._roi_mesh is None or self._roi_mesh[0] != key:
            self._roi_mesh = (key, labels_surface(rois))
        mesh = self._roi_mesh[1]
        if mesh is None:
            return
        colour = self._outline_colour()[0]
        if key[1] is None:  # every ROI: they fill the brain, so faint and under the colours
            self._add_surface(mesh, ROI_SURFACE_LAYER, colour, EVERY_ROI_OPACITY, True)
        else:
            self._add_surface(mesh, ROI_SURFACE_LAYER, colour, ROI_SURFACE_OPACITY, False)

    def _add_surface(
        self,
        mesh: tuple[np.ndarray, np.ndarray],
        name: str,
        rgb: tuple,
        opacity: float,
        below: bool,
    ) -> None:
        """A one-colour surface on the result's grid, under the colour volume (context) or
        above it (outlines)."""
        from napari.utils.colormaps import Colormap

        vertices, faces = mesh
        flat = Colormap([[*rgb, 1.0], [*rgb, 1.0]], name=f"brainvae {name}")
        layer = self._viewer.add_surface(
            (vertices, faces, np.ones(len(vertices), dtype=np.float32)),
            name=name,
            colormap=flat,
            contrast_limits=(0.0, 1.0),
            opacity=opacity,
            blending="translucent_no_depth",
            shading="smooth",
            metadata={"brainvae": {"kind": "projective_surface"}},
            **self._on_grid(),
        )
        if below:
            layers = self._viewer.layers
            layers.move(layers.index(layer), layers.index(COLOUR_LAYER))

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
                mean_image=run.mean_image,
            )
        except Exception as err:  # noqa: BLE001 - a full disk or a read-only folder
            self.fail(err)
            return None
        self.status.value = f"Saved maps, montage and tables in {target}"
        return target

    def figure_options(self) -> dict[str, Any]:
        """What projective_figure draws from the last result: which latents, which slices
        (None: each latent's largest variance), over the mean brain on the population's grid."""
        from brainvae.napari.widgets.analysis_inputs import population_grid

        run = self.last_run
        affine, squeezed = population_grid(self._population_layer())
        latents = None
        if self.figure_latents.value == "shown":
            latents = [int(self.shown.value)]
        slices = None
        if self.figure_slices.value == "cursor" and len(run.result.spatial_shape) == 3:
            slices = self.cursor_slices()
        return {
            "scheme": run.scheme,
            "limits_mode": run.limits_mode,
            "mean_image": run.mean_image,
            "affine": affine,
            "squeezed_axes": squeezed,
            "active": run.active,
            "slices": slices,
            "latents": latents,
        }

    def cursor_slices(self) -> tuple[int, ...]:
        """The grid indices of the point last pointed at (clipped into the grid)."""
        shape = self.last_run.result.spatial_shape
        layer = self._viewer.layers[COLOUR_LAYER] if COLOUR_LAYER in self._viewer.layers else None
        if layer is None:
            raise ValueError("the colour map is not shown: run again to pick slices there")
        position = np.asarray(layer.world_to_data(self._viewer.cursor.position))
        index = np.round(position[-len(shape) :]).astype(int)
        return tuple(int(np.clip(i, 0, n - 1)) for i, n in zip(index, shape, strict=True))

    def export_figure(self, path: str | Path | None = None) -> Any:
        """Write the publication figure of the last result (PNG at 300 dpi, PDF or SVG by the
        suffix) in a worker; returns the worker (None when nothing could start)."""
        from napari.qt.threading import create_worker

        from brainvae.figures.projective_figure import FIGURE_SUFFIXES, save_projective_figure

        if self.last_run is None:
            self.fail(ValueError("run the analysis first"))
            return None
        if self._figure_worker is not None:
            return None
        chosen = optional_path(path if path is not None else self.figure_file.value)
        if chosen is None or chosen.is_dir():
            self.fail(ValueError("choose a figure file (.png, .pdf or .svg) first"))
            return None
        if chosen.suffix.lower() not in FIGURE_SUFFIXES:
            chosen = chosen.with_suffix(".png")
        run = self.last_run
        try:
            options = self.figure_options()
        except Exception as err:  # noqa: BLE001 - no population, or no colour layer
            self.fail(err)
            return None
        self.figure_button.enabled = False
        self.status.value = f"Drawing the figure into {chosen}..."
        self._figure_worker = create_worker(
            save_projective_figure,
            chosen,
            run.result,
            run.colour,
            run.limits,
            **options,
            _connect={
                "returned": self._figure_saved,
                "errored": self.fail,
                "finished": self._figure_finished,
            },
        )
        return self._figure_worker

    def _figure_saved(self, path: Path) -> None:
        if not self._closed:
            self.status.value = f"Saved the figure {path}"

    def _figure_finished(self) -> None:
        self._figure_worker = None
        if not self._closed:
            self.figure_button.enabled = True

    def closing(self) -> None:
        if self._on_mouse_move in self._viewer.mouse_move_callbacks:
            self._viewer.mouse_move_callbacks.remove(self._on_mouse_move)
        self._viewer.dims.events.ndisplay.disconnect(self._on_ndisplay)
        self._viewer.layers.events.removed.disconnect(self._on_layer_removed)
        self._leave_3d()
        self._update_canvas_text(False)
        if self._figure_worker is not None:
            self._figure_worker.quit()


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


SURFACE_LAYERS = (BRAIN_SURFACE_LAYER, ROI_SURFACE_LAYER)


def _hex(rgb: Any) -> str:
    return "#" + "".join(f"{round(255 * v):02x}" for v in rgb)


def _outline_colormap(rgb: tuple[float, float, float]) -> Any:
    """Every label in one colour, the background transparent."""
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict={None: [*rgb, 1.0], 0: [0.0, 0.0, 0.0, 0.0]})


def _text_overlay(viewer: Any) -> Any:
    """The canvas's text overlay (viewer.canvas.overlays.text from napari 0.9, before that
    viewer.text_overlay); None when this napari has neither."""
    overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)
    text = getattr(overlays, "text", None)
    return text if text is not None else getattr(viewer, "text_overlay", None)


def _surface(volume: np.ndarray, level: float, outside: float) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, faces) in voxel coordinates of `volume` at `level`; padded by one voxel of
    `outside` (below the level) so the surface closes at the grid's edge."""
    from skimage.measure import marching_cubes

    padded = np.pad(volume, 1, constant_values=outside)
    vertices, faces, _normals, _values = marching_cubes(padded, level=level)
    return (vertices - 1.0).astype(np.float32), faces.astype(np.int64)


def mask_surface(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(vertices, faces) in voxel coordinates of a 3D mask's boundary; None if it is empty."""
    mask = np.asarray(mask, dtype=np.float32)
    if mask.ndim != 3 or not mask.any():
        return None
    return _surface(mask, 0.5, 0.0)


def labels_surface(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """One mesh of every label's own boundary (each cut out by its bounding box, so a fine
    atlas stays fast; neighbours' shared borders drawn once for each); None without labels."""
    labels = np.asarray(labels)
    if labels.ndim != 3:
        return None
    from scipy.ndimage import find_objects

    vertices, faces, count = [], [], 0
    for label, box in enumerate(find_objects(labels.astype(np.int64)), start=1):
        if box is None:
            continue
        mesh = mask_surface(labels[box] == label)
        if mesh is None:
            continue
        vertices.append(mesh[0] + np.array([part.start for part in box], dtype=np.float32))
        faces.append(mesh[1] + count)
        count += len(mesh[0])
    if not vertices:
        return None
    return np.concatenate(vertices), np.concatenate(faces)


def brain_surface(mean_image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The brain's outer surface: the population mean, smoothed by one voxel, at the brain
    mask's level (10 % of its maximum, as brain_mask_from_images); None for a 2D image or a
    mean with no positive voxel."""
    from scipy.ndimage import gaussian_filter

    mean = np.asarray(mean_image, dtype=np.float32)
    if mean.ndim != 3 or not np.any(mean > 0):
        return None
    smooth = gaussian_filter(mean, 1.0)
    return _surface(smooth, BRAIN_LEVEL * float(smooth.max()), min(float(smooth.min()), 0.0))


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
