"""Latent explorer dock: a slider per latent (a page at a time), decoded live beside the scan.

It only orchestrates: the numbers come from brainvae.analysis.latent_space (population
statistics, slider ranges), the sliders from latent_sliders (paged, sorted, filtered, so a
1,000-latent model builds one page of widgets). Its rows and helpers each have a module:
explorer_model_choice (which model), explorer_population (the scans and their stack layer),
explorer_code_buttons (Encode current, Mean, Random sample, Reset), explorer_display (the
decode beside the scan by default, so the population stays visible, and the exports' layers),
explorer_exports (interpolation and traversal). The live decode comes from a latest-wins
background decoder, and long work (encoding the population with its per-latent summary,
traversals, exports) runs in napari workers. Layers are touched on the GUI thread only.
"""

from __future__ import annotations

import weakref
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox, FloatSlider

from brainvae.napari.viewer_state import ChosenCode, ModelInUse
from brainvae.napari.widgets.dock_base import DockBase
from brainvae.napari.widgets.explorer_age import AgeControl
from brainvae.napari.widgets.explorer_code_buttons import CodeButtons
from brainvae.napari.widgets.explorer_display import DecodeDisplay
from brainvae.napari.widgets.explorer_encoding import PopulationEncoding
from brainvae.napari.widgets.explorer_exports import ExportsPanel
from brainvae.napari.widgets.explorer_form import without_label_column
from brainvae.napari.widgets.explorer_live_decode import LiveDecode
from brainvae.napari.widgets.explorer_model_choice import ModelChoice, explorable_model
from brainvae.napari.widgets.explorer_population import (
    ExplorerScans,
)
from brainvae.napari.widgets.latent_sliders import LatentSliders
from brainvae.napari.widgets.scroll_dock import ScrollableContainer

if TYPE_CHECKING:
    import napari
    import pandas as pd

    from brainvae.analysis.latent_space import LatentStatistics, SliderRanges, TraversalGrid
    from brainvae.models.base import LatentModel

RANGE_CHOICES = (
    ("population mean ± 3 sd", "population"),
    ("fixed [-3, 3]", "fixed3"),
    ("fixed [-7, 7]", "fixed7"),
)


class LatentExplorer(LiveDecode, PopulationEncoding, DockBase, ScrollableContainer):
    """Move each latent and watch the decoded brain; encode subjects, interpolate, traverse.

    Inputs: set_model (a LatentModel or a run folder) and set_population (images, metadata,
    placement), or the dock's own model choice and a population stack layer in the viewer.
    The decode goes beside the scan (or over it, or only while a slider moves: "decode shown").
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        from brainvae.napari.workers.decode import LatestDecoder

        self.setup_dock(napari_viewer, "Load a model to start.")
        self._model: LatentModel | None = None
        self.scans = ExplorerScans(napari_viewer, self._use_stack)  # images, table, layer
        self._statistics: LatentStatistics | None = None
        self.ranges: SliderRanges | None = None  # every latent's slider bounds
        self._code_is_initial = True
        self.chosen_latent: int | None = None  # the latent another dock pointed at
        self._workers: set = set()
        self._generation = 0  # bumps on every model/population change; stale results are ignored
        self.rng = np.random.default_rng()
        self.shown_request = 0  # id of the decode request whose image the layer shows
        self._decoder = LatestDecoder()
        self._decoder.decoded.connect(self._on_decoded)
        self._decoder.failed.connect(self._on_decode_failed)
        self._display = DecodeDisplay(napari_viewer, self.scans.layer_shown)

        self.model_choice = ModelChoice(self.set_model, self.fail)
        choice = self.model_choice
        self.model_source, self.run_folder, self.load_button, self.model_info = choice.rows
        self.load_chosen_model = choice.load_chosen_model
        self.population = self.scans.combo
        self.range_mode = ComboBox(label="slider range", choices=RANGE_CHOICES, value="population")
        self.decode_shown = self._display.mode_choice  # beside the scan, over it, ...
        self.latents = LatentSliders()  # a page of sliders; the whole code lives there
        self.sliders = self.latents.sliders  # the page's slider widgets
        self.code_buttons = CodeButtons(self)  # Encode current, Mean, Random sample, Reset
        self.age = AgeControl(self, napari_viewer)  # an age-conditioned VAE's age slider
        codes = self.code_buttons
        self.encode_button, self.mean_button, self.random_button, self.reset_button = codes.buttons
        self.encode_current = codes.encode_current
        self.mean_code = codes.mean_code
        self.random_sample = codes.random_sample
        self.exports = ExportsPanel(self, napari_viewer)  # interpolation and traversal
        panel = self.exports
        self.scan_a, self.scan_b, self.t, self.n_frames = (
            panel.scan_a, panel.scan_b, panel.t, panel.n_frames
        )  # fmt: skip
        self.interpolation_button, self.n_values, self.grid_button = (
            panel.interpolation_button, panel.n_values, panel.grid_button
        )  # fmt: skip
        self.export_path, self.png_button, self.gif_button = (
            panel.export_path, panel.png_button, panel.gif_button
        )  # fmt: skip
        # the panel's verbs, on the dock as before
        self.interpolation_codes = panel.interpolation_codes
        self.export_interpolation = panel.export_interpolation
        self.traversal_inputs = panel.traversal_inputs
        self.show_traversal_grid = panel.show_traversal_grid
        self.save_traversal = panel.save_traversal

        self.extend(
            [
                *choice.rows,
                self.population, self.range_mode, self.decode_shown,
                self.latents, codes.row, *self.age.rows,
                *panel.rows, self.status,
            ]
        )  # fmt: skip
        for full_width in (self.latents, codes.row, *panel.full_width_rows):
            without_label_column(full_width)
        self.range_mode.changed.connect(self._apply_ranges)
        self.decode_shown.changed.connect(self._on_decode_shown_changed)
        self.latents.moved.connect(self._on_slider)
        self._viewer.layers.events.inserted.connect(self.scans.on_layers_changed)
        self._viewer.layers.events.removed.connect(self.scans.on_layers_changed)
        self._viewer.dims.events.order.connect(self._place_decode)  # left-right may change
        # a weak reference, not self: the dock may be gone when its widget is destroyed
        self.native.destroyed.connect(
            partial(_shut_down, weakref.ref(self), self._decoder, self._display)
        )
        # the model in use and the latent a user points at come from the viewer's state
        self._state.events.model.connect(self._on_model_in_use)
        self._state.events.latent.connect(self._on_latent_chosen)
        self._state.events.code.connect(self._on_code_chosen)
        choice.show_source()
        self._set_model_dependent_enabled(False)
        self.scans.on_layers_changed()
        if self._state.model is not None:  # opened after a model was trained or loaded
            self._on_model_in_use(self._state.model)

    # ---- public inputs ---------------------------------------------------------------
    @property
    def model(self) -> LatentModel | None:
        return self._model

    @property
    def code(self) -> np.ndarray:
        """The code the sliders stand for (L,), a copy."""
        return self._code.copy()

    @property
    def _code(self) -> np.ndarray:
        """The whole code (L,), kept by the slider panel (latents off its page included)."""
        return self.latents.values

    @property
    def statistics(self) -> LatentStatistics | None:
        """Latent statistics of the population under the current model, once encoded."""
        return self._statistics

    @property
    def busy(self) -> bool:
        """True while a population encode, traversal or export runs in the background."""
        return bool(self._workers)

    @property
    def generation(self) -> int:
        """Bumps on every model or population change: older workers' results are dropped."""
        return self._generation

    @property
    def last_grid(self) -> TraversalGrid | None:
        """The traversal grid last shown as a layer."""
        return self.exports.last_grid

    def set_model(
        self, model: LatentModel | str | Path, name: str | None = None, publish: bool = True
    ) -> None:
        """Use a LatentModel, or load one from a run folder; errors become a notification.

        The model becomes the viewer's model in use (the analysis docks work with it) unless
        it came from there (`publish` False)."""
        try:
            model, folder, name = explorable_model(model, name)
        except Exception as err:  # noqa: BLE001 - a bad folder must not break the dock
            self.fail(err)
            return
        model.eval()
        self._model = model
        self._generation += 1
        self._statistics = None
        self.scans.forget_codes()
        config = model.config
        self.model_choice.show_loaded(name, config)
        self._code_is_initial = True  # until the user moves it: then the population's mean
        self.latents.reset(config.latent_dim, point_codes=config.family == "pca")
        self._set_model_dependent_enabled(True)
        self.age.reset(folder)
        if publish:
            self._state.model = ModelInUse(model, folder, name)
        self._encode_and_decode()

    def _on_model_in_use(self, choice: ModelInUse | None) -> None:
        """Another dock made a model the one in use (a training just ended): show it."""
        if self._closed or choice is None or choice.model is self._model:
            return
        self.model_choice.show_folder(choice.folder)
        self.set_model(choice.model, name=choice.label, publish=False)

    def _on_latent_chosen(self, k: int | None) -> None:
        if not self._closed and k is not None:
            self.highlight_latent(k)

    def _on_code_chosen(self, chosen: ChosenCode | None) -> None:
        """Another dock picked a code (a scan on the latent map): the sliders go there when
        it is a code of this explorer's model."""
        if not self._closed and chosen is not None and chosen.model is self._model:
            self.set_code(chosen.code)
            if chosen.label:
                self.status.value = f"Code of {chosen.label}."

    def set_population(
        self,
        images: np.ndarray,
        metadata: pd.DataFrame | None = None,
        placement: dict[str, Any] | None = None,
    ) -> None:
        """Use (N, *shape) images (with their table and layer scale/translate/axis_labels)."""
        if np.ndim(images) < 3:
            self.fail(ValueError(f"a population is (N, *shape) images, got {np.shape(images)}"))
            return
        self.scans.use(images, metadata, placement)
        self._place_decode()  # beside this population's scans now
        self._generation += 1
        self._statistics = None
        self.exports.set_scan_count(len(images))
        self.age.show_brain_age()
        if self._model is None:
            self.status.value = f"Population of {len(images)} scans; load a model."
            return
        self._encode_and_decode()

    def _encode_and_decode(self) -> None:
        """A new model or population: ranges, the population's encoding, a decode."""
        self._apply_ranges()  # before the checks below, whose messages must stay visible
        if self.population_fits(report=True):
            self._start_population_encoding()
        self._request_decode()

    # ---- the code and its sliders ------------------------------------------------------
    def set_code(self, code: np.ndarray) -> None:
        """Move every slider to `code` (ranges widen to show values outside them) and decode."""
        if self._model is None:
            return
        code = np.asarray(code, dtype=np.float64).reshape(-1)
        if code.shape != (self._model.latent_dim,):
            raise ValueError(f"code must have {self._model.latent_dim} values, got {code.shape}")
        self.latents.set_values(code)
        self._code_is_initial = False
        self.age.refresh()
        self._request_decode()

    def reset_code(self, *_args) -> None:
        """All latents to 0 and the sliders back to the chosen range."""
        if self.ready():
            self.latents.set_values(np.zeros(self._model.latent_dim))
            self._code_is_initial = False
            self._apply_ranges()
            self.age.refresh()
            self._request_decode()
            self.status.value = "All latents at 0."

    def current_scan_index(self) -> int:
        """Scan under the viewer's slider for the population stack (its first axis)."""
        return self.scans.scan_under_slider()

    def code_of_scan(self, index: int) -> np.ndarray:
        """Posterior mean of one scan: from the encoded population, else encoded now."""
        return self.scans.code_of_scan(self._model, self._statistics, index)

    def _on_slider(self, k: int, value: float) -> None:
        """The panel stored latent k's new value in the code; decode it."""
        self._code_is_initial = False
        self.age.refresh()
        self._request_decode()

    def _apply_ranges(self, *_args) -> None:
        """Slider bounds from the chosen mode, for every latent (the page shows its own)."""
        from brainvae.analysis.latent_space import slider_ranges

        if self._model is None:
            return
        mode = self.range_mode.value
        note = ""
        if mode == "population" and self._statistics is None:
            mode = "fixed3"
            note = "Ranges [-3, 3] until a population is encoded."
        self.ranges = slider_ranges(mode, self._model.latent_dim, self._statistics)
        self.latents.set_ranges(self.ranges)
        if note:
            self.status.value = note

    def slider_for(self, k: int) -> FloatSlider | None:
        """The slider of latent k when the page shows it, else None."""
        return self.latents.slider_for(k)

    def highlight_latent(self, k: int) -> None:
        """Bring latent k's slider forward (another dock chose it, e.g. Receptive fields):
        its page comes up, found by name if the filter hid it, and the detail line shows it."""
        if self._model is None or not 0 <= k < self._model.latent_dim:
            return
        self.latents.select(k)
        self.chosen_latent = k
        self.status.value = f"z{k + 1} chosen: {self.latents.tooltip_of(k)}"

    # ---- plumbing ----------------------------------------------------------------------
    def run_worker(self, worker) -> None:
        """Start a napari worker; errors go to the user, and `busy` tracks it."""
        self._workers.add(worker)
        worker.errored.connect(self.fail)
        worker.finished.connect(partial(self._workers.discard, worker))
        worker.start()

    def ready(self, population: bool = False) -> bool:
        """Whether a model is loaded (and a fitting population, with `population`); else
        the status line says what is missing."""
        if self._model is None:
            self.fail(ValueError("load a model first"))
            return False
        if population and self.scans.images is None:
            self.fail(ValueError("open a population first (Population data dock or a sample)"))
            return False
        return not population or self.population_fits(report=True)

    def _set_model_dependent_enabled(self, enabled: bool) -> None:
        self.code_buttons.set_enabled(enabled)
        self.exports.set_enabled(enabled)

    def shutdown(self) -> None:
        """Stop the live decoder's thread (the dock closing does this too); late results are
        ignored, so a viewer closed meanwhile is never touched."""
        self._closed = True
        self._generation += 1  # results of running workers are dropped too
        self._decoder.stop()
        self._display.stop()


def _shut_down(explorer: weakref.ref, decoder: Any, display: Any, *_args: Any) -> None:
    """The dock's Qt widget was destroyed: drop late worker results and stop the decoder."""
    alive = explorer()
    if alive is not None:
        alive._closed = True
        alive._generation += 1
    decoder.stop(0.5)
    display.stop()


if __name__ == "__main__":  # a demo: the 2D sample population with the sample model
    import napari

    viewer = napari.Viewer()
    viewer.open_sample("napari-brainvae", "population_2d")
    explorer = LatentExplorer(viewer)
    viewer.window.add_dock_widget(explorer, name="Latent explorer", area="right")
    explorer.load_chosen_model()
    napari.run()
