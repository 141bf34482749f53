"""Latent explorer dock: a slider per latent (a page at a time), decoded live beside the scan.

It only orchestrates: the numbers come from brainvae.analysis.latent_space (population
statistics, slider ranges, interpolation, traversal), the sliders from latent_sliders (paged,
sorted, filtered, so a 1,000-latent model builds one page of widgets), the decode's place from
decode_placement (beside the scan by default, so the population stays visible), the live
decode from a latest-wins background decoder, and long work (encoding the population with its
per-latent summary, traversals, exports) runs in napari workers. Layers are touched on the GUI
thread only.
"""

from __future__ import annotations

import weakref
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSlider,
    Label,
    PushButton,
    SpinBox,
)

from brainvae.napari.widgets.decode_placement import (
    BESIDE,
    PLACEMENT_CHOICES,
    WHILE_MOVING,
    DecodePlacement,
    beside_translate,
    same_layer,
)
from brainvae.napari.widgets.latent_sliders import LatentSliders, LatentSummary, wrapping
from brainvae.napari.widgets.paths import optional_path
from brainvae.napari.widgets.scroll_dock import ScrollableContainer

if TYPE_CHECKING:
    import napari
    import pandas as pd

    from brainvae.analysis.latent_activity import LatentActivity
    from brainvae.analysis.latent_space import LatentStatistics, SliderRanges, TraversalGrid
    from brainvae.models.base import LatentModel

SAMPLE_MODEL = "Sample model (2D beta-VAE)"
SAMPLE_MODEL_3D = "Sample model (3D beta-VAE)"
RUN_FOLDER = "Run folder"
MODEL_SOURCES = (SAMPLE_MODEL, SAMPLE_MODEL_3D, RUN_FOLDER)
RANGE_CHOICES = (
    ("population mean ± 3 sd", "population"),
    ("fixed [-3, 3]", "fixed3"),
    ("fixed [-7, 7]", "fixed7"),
)
DECODED_LAYER = "latent decode"
GRID_LAYER = "traversal grid"
SEE_EXPORT = "pan right, or use View > Fit to View (the home button) to see everything."


def sample_model_dir(dims: int = 2) -> Path:
    """A shipped beta-VAE (sample_data/models/beta_vae_2d or _3d, packaged or in the checkout)."""
    from brainvae.data.sample import sample_data_dir

    return sample_data_dir() / "models" / f"beta_vae_{dims}d"


_OPEN: weakref.WeakSet = weakref.WeakSet()


def explorers_of(viewer: Any) -> list[LatentExplorer]:
    """The open latent explorers docked in this viewer (so other docks can hand them a model)."""
    target = getattr(viewer, "__wrapped__", viewer)  # plugins get a public-only proxy
    return [e for e in list(_OPEN) if not e._closed and e._real_viewer is target]


class LatentExplorer(ScrollableContainer):
    """Move each latent and watch the decoded brain; encode subjects, interpolate, traverse.

    Inputs: set_model (a LatentModel or a run folder) and set_population (images, metadata,
    placement), or the dock's own model choice and a population stack layer in the viewer.
    The decode goes beside the scan (or over it, or only while a slider moves: "decode shown").
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        from brainvae.napari.workers.decode import LatestDecoder

        self._viewer = napari_viewer
        self._real_viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        _OPEN.add(self)
        self._model: LatentModel | None = None
        self._images: np.ndarray | None = None
        self._metadata: pd.DataFrame | None = None
        self._placement: dict[str, Any] = {}
        self._display_limits: list[float] | None = None
        self._population_layer = None
        self._statistics: LatentStatistics | None = None
        self._ranges: SliderRanges | None = None
        self._code_is_initial = True
        self.chosen_latent: int | None = None  # the latent another dock pointed at
        self._endpoint_codes: dict[int, np.ndarray] = {}
        self._workers: set = set()
        self._generation = 0  # bumps on every model/population change; stale results are ignored
        self.rng = np.random.default_rng()
        self.last_grid: TraversalGrid | None = None
        self.shown_request = 0  # id of the decode request whose image the layer shows
        self._closed = False
        self._decoder = LatestDecoder()
        self._decoder.decoded.connect(self._on_decoded)
        self._decoder.failed.connect(self._on_decode_failed)
        self._placer = DecodePlacement(napari_viewer, self._population_layer_shown)

        self.model_source = ComboBox(label="model", choices=MODEL_SOURCES, value=SAMPLE_MODEL)
        self.run_folder = FileEdit(
            label="run folder", mode="d", tooltip="A training run (config.json + weights)"
        )
        self.load_button = PushButton(text="Load model")
        self.model_info = Label(label="loaded", value="no model")
        self.population = ComboBox(
            label="population",
            choices=self._population_layer_names,
            tooltip="The stack layer whose scans are encoded (ranges, Encode current)",
        )
        self.range_mode = ComboBox(label="slider range", choices=RANGE_CHOICES, value="population")
        self.decode_shown = ComboBox(
            label="decode shown",
            choices=PLACEMENT_CHOICES,
            value=BESIDE,
            tooltip=(
                "Where the decoded brain goes: beside the scan (both visible), over the scan "
                "(covers it), or over the scan only while a slider moves (hidden a second "
                "after the last change)"
            ),
        )
        self.latents = LatentSliders()  # a page of sliders; the whole code lives there
        self.sliders = self.latents.sliders  # the page's slider widgets
        self.encode_button = PushButton(
            text="Encode current", tooltip="Sliders to the code of the scan shown in the stack"
        )
        self.mean_button = PushButton(text="Mean", tooltip="Sliders to the population's mean code")
        self.random_button = PushButton(
            text="Random sample", tooltip="Sliders to a draw from the prior N(0, I)"
        )
        self.reset_button = PushButton(text="Reset", tooltip="All latents to 0 (the prior's mean)")
        code_buttons = Container(
            widgets=[self.encode_button, self.mean_button, self.random_button, self.reset_button],
            layout="horizontal",
            labels=False,
        )
        code_buttons.margins = (0, 0, 0, 0)
        self.scan_a = SpinBox(label="interpolate from scan", min=0, max=0, value=0)
        self.scan_b = SpinBox(label="to scan", min=0, max=0, value=0)
        self.t = FloatSlider(label="t", min=0.0, max=1.0, step=0.01, value=0.0)
        self.n_frames = SpinBox(label="frames", min=2, max=500, value=10)
        self.interpolation_button = PushButton(text="Export interpolation as stack layer")
        self.n_values = SpinBox(label="values per latent", min=2, max=41, value=7)
        self.grid_button = PushButton(
            text="Traversal grid as layer",
            tooltip="Rows: the latents on the slider page; placed right of the decode",
        )
        self.export_path = FileEdit(
            label="export to",
            mode="w",
            filter="*.png *.gif",
            tooltip="Base file name; Save PNG writes .png, Save GIF writes .gif",
        )
        self.png_button = PushButton(text="Save grid PNG")
        self.gif_button = PushButton(text="Save traversal GIF")
        export_buttons = Container(
            widgets=[self.png_button, self.gif_button], layout="horizontal", labels=False
        )
        self.status = Label(label="status", value="Load a model to start.")
        for label in (self.status, self.model_info):
            wrapping(label)  # long messages wrap instead of widening the dock

        headings = (
            _heading("Interpolation between two scans"),
            _heading("Traversal of the page's latents (rows) over their ranges"),
        )
        self.extend(
            [
                self.model_source, self.run_folder, self.load_button, self.model_info,
                self.population, self.range_mode, self.decode_shown,
                self.latents, code_buttons,
                headings[0],
                self.scan_a, self.scan_b, self.t, self.n_frames, self.interpolation_button,
                headings[1],
                self.n_values, self.grid_button, self.export_path, export_buttons, self.status,
            ]
        )  # fmt: skip
        for full_width in (self.latents, code_buttons, export_buttons, *headings):
            _without_label_column(full_width)
        self.model_source.changed.connect(self._on_model_source_changed)
        self.load_button.changed.connect(self.load_chosen_model)
        self.population.changed.connect(self._on_population_layer_chosen)
        self.range_mode.changed.connect(self._apply_ranges)
        self.decode_shown.changed.connect(self._on_decode_shown_changed)
        self.latents.moved.connect(self._on_slider)
        self.encode_button.changed.connect(self.encode_current)
        self.mean_button.changed.connect(self.mean_code)
        self.random_button.changed.connect(self.random_sample)
        self.reset_button.changed.connect(self.reset_code)
        self.t.changed.connect(self._on_t_changed)
        self.scan_a.changed.connect(self._on_t_changed)
        self.scan_b.changed.connect(self._on_t_changed)
        self.interpolation_button.changed.connect(self.export_interpolation)
        self.grid_button.changed.connect(self.show_traversal_grid)
        self.png_button.changed.connect(lambda *_: self.save_traversal("png"))
        self.gif_button.changed.connect(lambda *_: self.save_traversal("gif"))
        self._viewer.layers.events.inserted.connect(self._on_layers_changed)
        self._viewer.layers.events.removed.connect(self._on_layers_changed)
        self._viewer.dims.events.order.connect(self._place_decode)  # left-right may change
        # a weak reference, not self: the dock may be gone when its widget is destroyed
        self.native.destroyed.connect(
            partial(_shut_down, weakref.ref(self), self._decoder, self._placer)
        )
        self._on_model_source_changed()
        self._set_model_dependent_enabled(False)
        self._on_layers_changed()

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

    def set_model(self, model: LatentModel | str | Path) -> None:
        """Use a LatentModel, or load one from a run folder; errors become a notification."""
        try:
            if isinstance(model, str | Path):
                from brainvae.models import load_model

                folder = Path(model)
                model = load_model(folder)
                name = folder.name
            else:
                name = type(model).__name__
            if getattr(model, "family", "") == "pca" and not model.is_fitted:
                raise ValueError("this PCA model is not fitted: fit it before exploring")
        except Exception as err:  # noqa: BLE001 - a bad folder must not break the dock
            self._fail(err)
            return
        model.eval()
        self._model = model
        self._generation += 1
        self._statistics = None
        self._endpoint_codes.clear()
        config = model.config
        self.model_info.value = (
            f"{name}: {config.family}, {config.latent_dim} latents, "
            f"{' x '.join(map(str, config.input_shape))} ({config.dims}D)"
        )
        self._code_is_initial = True  # until the user moves it: then the population's mean
        self.latents.reset(config.latent_dim, point_codes=config.family == "pca")
        self._set_model_dependent_enabled(True)
        self._apply_ranges()  # before the checks below, whose messages must stay visible
        if self._population_fits(report=True):
            self._start_population_encoding()
        self._request_decode()

    def set_population(
        self,
        images: np.ndarray,
        metadata: pd.DataFrame | None = None,
        placement: dict[str, Any] | None = None,
    ) -> None:
        """Use (N, *shape) images (with their table and layer scale/translate/axis_labels)."""
        from brainvae.napari.layer_metadata import contrast_limits

        if np.ndim(images) < 3:
            self._fail(ValueError(f"a population is (N, *shape) images, got {np.shape(images)}"))
            return
        self._images = images
        self._metadata = metadata
        self._placement = dict(placement or {})
        step = max(1, len(images) // 16)
        self._display_limits = contrast_limits(np.asarray(images[::step]))
        self._population_layer = self._matching_population_layer(images)
        self._place_decode()  # beside this population's scans now
        self._generation += 1
        self._statistics = None
        self._endpoint_codes.clear()
        for spin in (self.scan_a, self.scan_b):
            spin.max = len(images) - 1
        self.scan_b.value = min(1, len(images) - 1)
        if self._model is None:
            self.status.value = f"Population of {len(images)} scans; load a model."
            return
        self._apply_ranges()
        if self._population_fits(report=True):
            self._start_population_encoding()
        self._request_decode()

    def load_chosen_model(self, *_args) -> None:
        """Load the sample model or the chosen run folder."""
        if self.model_source.value in (SAMPLE_MODEL, SAMPLE_MODEL_3D):
            try:
                folder = sample_model_dir(3 if self.model_source.value == SAMPLE_MODEL_3D else 2)
            except Exception as err:  # noqa: BLE001
                self._fail(err)
                return
        else:
            folder = optional_path(self.run_folder.value)
            if folder is None:
                self._fail(ValueError("choose a run folder (config.json + weights.safetensors)"))
                return
        self.set_model(folder)

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
        self._request_decode()

    def encode_current(self, *_args) -> None:
        """Sliders to the code of the scan under the stack's slider."""
        if not self._ready(population=True):
            return
        index = self.current_scan_index()
        self.set_code(self._code_of_scan(index))
        self.status.value = f"Encoded scan {index}{self._scan_description(index)}."

    def mean_code(self, *_args) -> None:
        """Sliders to the population's mean code (the prior's mean, 0, before encoding)."""
        if not self._ready():
            return
        if self._statistics is None:
            self.set_code(np.zeros(self._model.latent_dim))
            self.status.value = "Population not encoded yet: the prior's mean (0) is shown."
            return
        self.set_code(self._statistics.mean)
        self.status.value = f"Mean code of {self._statistics.n_images} scans."

    def random_sample(self, *_args) -> None:
        """Sliders to z ~ N(0, I)."""
        if self._ready():
            self.set_code(self.rng.standard_normal(self._model.latent_dim))
            self.status.value = "A random draw from the prior N(0, I)."

    def reset_code(self, *_args) -> None:
        """All latents to 0 and the sliders back to the chosen range."""
        if self._ready():
            self.latents.set_values(np.zeros(self._model.latent_dim))
            self._code_is_initial = False
            self._apply_ranges()
            self._request_decode()
            self.status.value = "All latents at 0."

    def current_scan_index(self) -> int:
        """Scan under the viewer's slider for the population stack (its first axis)."""
        n_scans = len(self._images) if self._images is not None else 1
        layer = self._population_layer
        if layer is not None and layer in self._viewer.layers:
            axis = self._viewer.dims.ndim - layer.ndim
            step = self._viewer.dims.current_step[axis] if axis >= 0 else 0
        else:
            step = self._viewer.dims.current_step[0] if self._viewer.dims.ndim else 0
        return int(np.clip(step, 0, n_scans - 1))

    def _on_slider(self, k: int, value: float) -> None:
        """The panel stored latent k's new value in the code; decode it."""
        self._code_is_initial = False
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
        self._ranges = slider_ranges(mode, self._model.latent_dim, self._statistics)
        self.latents.set_ranges(self._ranges)
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

    # ---- live decoding -----------------------------------------------------------------
    def _request_decode(self) -> None:
        if self._model is not None and len(self._code) == self._model.latent_dim:
            self._decoder.request(self._model, self._code)

    def _on_decoded(self, result) -> None:
        if self._closed or result.request.model is not self._model:
            return  # a decode of a model that was replaced meanwhile
        if result.request.request_id < self.shown_request:
            return  # the thread finished an older code after a newer one was shown inline
        self.shown_request = result.request.request_id
        placement = self._model_placement()
        layer = self._viewer.layers[DECODED_LAYER] if DECODED_LAYER in self._viewer.layers else None
        if layer is not None and _can_overwrite(layer, result.image, placement):
            # Our own preview array: copy in and redraw. Half the cost of `layer.data = ...`,
            # whose data-event listeners (thumbnail, dims) took ~10 ms per drag step here.
            # Only pixels change: never the layer's place, never the camera.
            np.copyto(layer.data, result.image)
            layer.refresh(extent=False, highlight=False)
        else:
            layer = self._add_decode_layer(result.image, placement)
        self._placer.after_decode(layer)

    def _add_decode_layer(self, image: np.ndarray, placement: dict[str, Any]):
        """A new decode layer where "decode shown" wants it (beside the scan by default)."""
        if DECODED_LAYER in self._viewer.layers:
            self._viewer.layers.remove(DECODED_LAYER)
        exports = self._export_layers()
        translate = self._placer.translate_for(image.shape, placement, ignore=exports)
        layer = self._add_grey_layer(image, DECODED_LAYER, placement, translate)
        self._placer.place(layer, placement, ignore=exports)  # the camera is fitted once
        _show_a_slice_of(self._viewer, layer)
        return layer

    def _place_decode(self, *_args) -> None:
        """Put the decode layer where the mode wants it (after a change of mode, population
        or axis order); decodes themselves never move it."""
        if DECODED_LAYER not in self._viewer.layers or self._closed:
            return
        layer = self._viewer.layers[DECODED_LAYER]
        placement = self._model_placement()
        scale = placement.get("scale", np.ones(layer.ndim))
        if stored_kind(layer) != "latent_explorer" or not np.allclose(layer.scale, scale):
            return  # a decode on another grid: the next decode replaces it, placed anew
        self._placer.place(layer, placement, ignore=self._export_layers())

    def _on_decode_shown_changed(self, mode: str) -> None:
        self._placer.mode = mode
        self._place_decode()
        if mode == WHILE_MOVING:
            self.status.value = "The decode shows over the scan while the code changes."

    def _population_layer_shown(self):
        """The population layer the decode stands beside, when it is in the viewer."""
        layer = self._population_layer
        return layer if layer is not None and layer in self._viewer.layers else None

    def _export_layers(self) -> list:
        """This dock's layers other than the decode (interpolations, traversal grids)."""
        return [
            layer
            for layer in self._viewer.layers
            if layer.name != DECODED_LAYER and stored_kind(layer) == "latent_explorer"
        ]

    def _model_placement(self) -> dict[str, Any]:
        """The population's scale/translate/axis labels when its grid is the model's, else none."""
        return self._placement if self._population_fits(report=False) else {}

    def _on_decode_failed(self, failure) -> None:
        request, err = failure
        if not self._closed and request.model is self._model:
            self._fail(err)

    def _show_export(self, name: str, data: np.ndarray, placement: dict[str, Any]) -> None:
        """An export (interpolation, traversal grid) as a layer right of the scan and the
        decode, never over them, and without moving the camera: in place when it exists."""
        layers = self._viewer.layers
        if name in layers:
            layer = layers[name]
            if layer.data.shape == data.shape and tuple(layer.scale) == tuple(
                placement.get("scale", layer.scale)
            ):
                layer.data = data
                return
            layers.remove(name)
        anchor = self._population_layer_shown()
        if anchor is None and DECODED_LAYER in layers:
            anchor = layers[DECODED_LAYER]
        translate = beside_translate(self._viewer, data.shape, placement, anchor)
        self._add_grey_layer(data, name, placement, translate)

    def _add_grey_layer(self, data: np.ndarray, name: str, placement: dict, translate) -> Any:
        """A grey image layer of ours at `translate`, in the population's contrast when it
        fits the model, in the scene's units (napari warns when a scene mixes units)."""
        fits = self._display_limits is not None and self._population_fits(report=False)
        return self._viewer.add_image(
            data,
            name=name,
            colormap="gray",
            contrast_limits=self._display_limits if fits else _robust_limits(data),
            rgb=False,
            metadata={"brainvae": {"kind": "latent_explorer"}},
            **{"units": _scene_units(self._viewer, data.ndim), **placement, "translate": translate},
        )

    # ---- population ----------------------------------------------------------------------
    def _population_layer_names(self, *_args) -> list[str]:
        from brainvae.napari.widgets.analysis_inputs import population_layers

        return [layer.name for layer in population_layers(self._viewer)]

    def _on_layers_changed(self, *_args) -> None:
        self.population.reset_choices()
        if self._population_layer is not None and self._population_layer not in self._viewer.layers:
            self._population_layer = None
        if self._images is None and self.population.value is not None:
            self._on_population_layer_chosen(self.population.value)

    def _on_population_layer_chosen(self, name: str | None) -> None:
        if name is None or name not in self._viewer.layers:
            return
        layer = self._viewer.layers[name]
        if same_layer(layer, self._population_layer):
            return
        try:
            metadata = _layer_table(layer)
        except Exception:  # noqa: BLE001 - the table only labels scans; images still work
            metadata = None
        placement = {
            "scale": tuple(layer.scale[1:]),
            "translate": tuple(layer.translate[1:]),
            "axis_labels": tuple(layer.axis_labels[1:]),
            "units": tuple(str(unit) for unit in layer.units[1:]),  # mm: one unit per scene
        }
        self.set_population(layer.data, metadata, placement)
        self._population_layer = layer

    def _matching_population_layer(self, images: np.ndarray):
        """The viewer's population stack showing these images (for the scan under the slider)."""
        layers = [self._viewer.layers[n] for n in self._population_layer_names()]
        for layer in layers:
            if layer.data is images:
                return layer
        for layer in layers:
            if tuple(layer.data.shape) == tuple(np.shape(images)):
                return layer
        return None

    def _population_fits(self, report: bool) -> bool:
        from brainvae.analysis.latent_space import check_images_fit

        if self._model is None or self._images is None:
            return False
        try:
            check_images_fit(self._model, np.shape(self._images))
        except Exception as err:  # noqa: BLE001
            if report:
                self._fail(err)
            return False
        return True

    def _start_population_encoding(self) -> None:
        from napari.qt.threading import create_worker

        from brainvae.napari.workers.decode import encode_population

        generation = self._generation
        self.status.value = f"Encoding {len(self._images)} scans..."
        worker = create_worker(encode_population, self._model, self._images)
        worker.returned.connect(partial(self._on_statistics, generation))
        self._run(worker)

    def _on_statistics(self, generation: int, summary: LatentSummary) -> None:
        if generation != self._generation:
            return
        statistics = summary.statistics
        self._statistics = statistics
        start = ""
        if self._code_is_initial:  # a code the user has not chosen: start at the mean brain
            # (the prior's 0 may lie far outside a weakly regularised model's codes)
            self.latents.set_values(statistics.mean)
            self._code_is_initial = False
            start = " Sliders at the population's mean code."
        self.latents.set_summary(summary)  # labels, order and the active-only filter
        self._apply_ranges()
        if start:
            self._request_decode()
        filtered = bool(self.latents.active_only.value)
        self.status.value = (
            f"{statistics.n_images} scans encoded; {_activity_text(summary.activity, filtered)}."
            + start
        )
        self._warn_if_preprocessed_differently()

    def _warn_if_preprocessed_differently(self) -> None:
        """Add to the status how the population's preprocessing or intensities differ from the
        model's training data (a model trained on other intensities decodes nonsense)."""
        from brainvae.data.fingerprint import preprocessing_warning
        from brainvae.napari.layer_metadata import stored_metadata

        layer = self._population_layer
        dataset = stored_metadata(layer.metadata).get("dataset") if layer is not None else None
        note = preprocessing_warning(self._model.config, self._images, dataset)
        if note:
            self.status.value += " " + note

    def _code_of_scan(self, index: int) -> np.ndarray:
        """Posterior mean of one scan: from the encoded population, else encoded now."""
        from brainvae.analysis.latent_space import check_images_fit

        if self._statistics is not None:
            return self._statistics.codes[index].astype(np.float64)
        if index not in self._endpoint_codes:
            import torch

            check_images_fit(self._model, np.shape(self._images))
            with torch.inference_mode():
                image = np.asarray(self._images[index : index + 1], dtype=np.float32)
                mu = self._model.encode(image)[0]
            self._endpoint_codes[index] = mu[0].float().cpu().numpy().astype(np.float64)
        return self._endpoint_codes[index]

    def _scan_description(self, index: int) -> str:
        table = self._metadata
        if table is None or not 0 <= index < len(table):
            return ""
        row = table.iloc[index]
        parts = [f"{key} {row[key]}" for key in ("subject_id", "session") if key in row]
        return f" ({', '.join(parts)})" if parts else ""

    # ---- interpolation ------------------------------------------------------------------
    def interpolation_codes(self) -> np.ndarray:
        """(frames, L) codes from scan A to scan B."""
        from brainvae.analysis.latent_space import interpolation_codes

        start = self._code_of_scan(self.scan_a.value)
        end = self._code_of_scan(self.scan_b.value)
        return interpolation_codes(start, end, self.n_frames.value)

    def _on_t_changed(self, *_args) -> None:
        if self._model is None or not self._population_fits(report=False):
            return
        start = self._code_of_scan(self.scan_a.value)
        end = self._code_of_scan(self.scan_b.value)
        t = float(self.t.value)
        self.set_code((1.0 - t) * start + t * end)

    def export_interpolation(self, *_args) -> None:
        """Decode the frames from scan A to scan B (in a worker) into a stack layer."""
        from napari.qt.threading import create_worker

        from brainvae.analysis.latent_space import decode_codes

        if not self._ready(population=True):
            return
        codes = self.interpolation_codes()
        a, b = self.scan_a.value, self.scan_b.value
        generation = self._generation
        worker = create_worker(decode_codes, self._model, codes)
        worker.returned.connect(partial(self._on_interpolation, generation, a, b))
        self.status.value = f"Decoding {len(codes)} frames..."
        self._run(worker)

    def _on_interpolation(self, generation: int, a: int, b: int, frames: np.ndarray) -> None:
        if generation != self._generation:
            return
        placement = _with_leading_axis(self._placement, "frame")
        self._show_export(f"interpolation scan {a} to {b}", frames, placement)
        self.status.value = (
            f"{len(frames)} frames from scan {a} to scan {b} (axis 'frame'), placed right of "
            f"the scan and the decode; {SEE_EXPORT}"
        )

    # ---- traversal ----------------------------------------------------------------------
    def traversal_inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(base code, latents, values): each latent on the slider page (in its order) swept
        over its slider range; the page bounds the grid (a 1,000-latent model, 16 rows)."""
        from brainvae.analysis.latent_space import traversal_values

        latents = np.asarray(self.latents.shown_latents(), dtype=int)
        if latents.size == 0:
            raise ValueError("no latent on the slider page: clear the search or the filter")
        return (
            self._code.copy(),
            latents,
            traversal_values(self._ranges, latents, self.n_values.value),
        )

    def show_traversal_grid(self, *_args) -> None:
        """Rows = latents, columns = values over each slider's range, as one mosaic layer."""
        from napari.qt.threading import create_worker

        from brainvae.analysis.latent_space import traversal_grid

        if not self._ready():
            return
        try:
            inputs = self.traversal_inputs()
        except ValueError as err:
            self._fail(err)
            return
        generation = self._generation
        worker = create_worker(traversal_grid, self._model, *inputs)
        worker.returned.connect(partial(self._on_traversal, generation))
        self.status.value = "Decoding the traversal grid..."
        self._run(worker)

    def _on_traversal(self, generation: int, grid: TraversalGrid) -> None:
        from brainvae.analysis.latent_space import traversal_mosaic

        if generation != self._generation:
            return
        self.last_grid = grid
        # right of the scan and the decode; the camera stays on the brain being inspected
        self._show_export(GRID_LAYER, traversal_mosaic(grid), self._model_placement())
        cols = grid.images.shape[1]
        self.status.value = (
            f"Traversal grid: rows {_names(grid.latents)} (top to bottom), {cols} values each "
            "from the slider's low end (left) to its high end (right); placed right of the "
            f"decode: {SEE_EXPORT}"
        )

    def save_traversal(self, kind: str, path: str | Path | None = None) -> None:
        """Write the traversal as a grid PNG or an animated GIF (computed in a worker)."""
        from napari.qt.threading import create_worker

        if not self._ready():
            return
        target = path if path is not None else self.export_path.value
        if target in (None, "") or str(target) in ("", "."):
            self._fail(ValueError("choose a file in 'export to' first"))
            return
        target = Path(target).with_suffix(f".{kind}")
        try:
            inputs = self.traversal_inputs()
        except ValueError as err:
            self._fail(err)
            return
        worker = create_worker(
            _export_traversal,
            self._model,
            *inputs,
            target,
            kind,
            self._axial_slice(),
            self._display_limits,
        )
        worker.returned.connect(self._on_exported)
        self.status.value = f"Writing {target.name}..."
        self._run(worker)

    def _on_exported(self, path: Path) -> None:
        self.status.value = f"Saved {path}"

    def _axial_slice(self) -> int | None:
        """For 3D models, the slice of axis 0 the viewer shows over the decoded volume."""
        if self._model is None or self._model.config.dims != 3:
            return None
        length = self._model.config.input_shape[0]
        scale = self._placement.get("scale", (1.0,) * 3)[0]
        translate = self._placement.get("translate", (0.0,) * 3)[0]
        if self._viewer.dims.ndim < 3:
            return length // 2
        world = self._viewer.dims.point[self._viewer.dims.ndim - 3]
        return int(np.clip(round((world - translate) / scale), 0, length - 1))

    # ---- plumbing ----------------------------------------------------------------------
    def _run(self, worker) -> None:
        """Start a napari worker; errors go to the user, and `busy` tracks it."""
        self._workers.add(worker)
        worker.errored.connect(self._fail)
        worker.finished.connect(partial(self._workers.discard, worker))
        worker.start()

    def _ready(self, population: bool = False) -> bool:
        if self._model is None:
            self._fail(ValueError("load a model first"))
            return False
        if population and self._images is None:
            self._fail(ValueError("open a population first (Population data dock or a sample)"))
            return False
        return not population or self._population_fits(report=True)

    def _set_model_dependent_enabled(self, enabled: bool) -> None:
        for widget in (
            self.encode_button, self.mean_button, self.random_button, self.reset_button,
            self.interpolation_button, self.grid_button, self.png_button, self.gif_button,
        ):  # fmt: skip
            widget.enabled = enabled

    def _on_model_source_changed(self, *_args) -> None:
        self.run_folder.visible = self.model_source.value == RUN_FOLDER

    def _fail(self, err: BaseException) -> None:
        from napari.utils.notifications import show_error

        self.status.value = f"Error: {err}"
        show_error(f"brainvae: {err}")

    def shutdown(self) -> None:
        """Stop the live decoder's thread (the dock closing does this too); late results are
        ignored, so a viewer closed meanwhile is never touched."""
        self._closed = True
        self._generation += 1  # results of running workers are dropped too
        self._decoder.stop()
        self._placer.stop()


def _shut_down(explorer: weakref.ref, decoder: Any, placer: Any, *_args: Any) -> None:
    """The dock's Qt widget was destroyed: drop late worker results and stop the decoder."""
    alive = explorer()
    if alive is not None:
        alive._closed = True
        alive._generation += 1
    decoder.stop(0.5)
    placer.stop()


def stored_kind(layer) -> str | None:
    """The brainvae kind a layer was made as ("latent_explorer", "population", ...)."""
    from brainvae.napari.layer_metadata import stored_metadata

    return stored_metadata(layer.metadata).get("kind")


def _can_overwrite(layer, image: np.ndarray, placement: dict[str, Any]) -> bool:
    """True when a layer holds this dock's own writable array of the image's shape and scale
    (where it stands is the placement's business, not the decode's)."""
    data = layer.data
    return (
        stored_kind(layer) == "latent_explorer"
        and isinstance(data, np.ndarray)
        and data.flags.writeable
        and data.shape == image.shape
        and data.dtype == image.dtype
        and np.allclose(layer.scale, placement.get("scale", np.ones(image.ndim)))
    )


def _show_a_slice_of(viewer: Any, layer: Any) -> None:
    """A new decoded volume: move the depth sliders to its middle only when they stand outside
    it (a leftover edge slice would show nothing); the scan's own slice is left alone."""
    from brainvae.napari.widgets.view import centre_slices

    extent = layer.extent.world
    offset = viewer.dims.ndim - extent.shape[1]
    hidden = [axis for axis in range(extent.shape[1]) if offset + axis not in viewer.dims.displayed]
    point = viewer.dims.point
    if any(not extent[0, a] <= point[offset + a] <= extent[1, a] for a in hidden):
        centre_slices(viewer, layer)


def _activity_text(activity: LatentActivity, filtered: bool) -> str:
    """How many latents are active; the inactive ones named when few (a 1,000-latent model
    would fill the dock with names)."""
    text = f"{activity.n_active} of {activity.latent_dim} latents active"
    names = activity.inactive_names
    if not names:
        return text
    listed = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return text + (
        f"; inactive: {listed} (their posterior means vary by <= {activity.threshold:g} over "
        f"the {activity.n_images} scans, so the decoder cannot use them"
        + ("; 'active latents only' hides them)" if filtered else ")")
    )


def _names(latents: np.ndarray) -> str:
    """z-names of a few latents: 'z3, z1, z7', shortened when long."""
    names = [f"z{k + 1}" for k in np.asarray(latents).tolist()]
    return ", ".join(names) if len(names) <= 8 else ", ".join(names[:8]) + ", ..."


def _scene_units(viewer: Any, ndim: int) -> tuple[str, ...]:
    """Units for a decode shown before any population: the scene's (napari warns when a
    scene mixes units), else millimetres, the units of every layer this plugin makes."""
    for layer in viewer.layers:
        if layer.name != DECODED_LAYER and len(layer.units) >= ndim:
            return tuple(str(unit) for unit in layer.units[-ndim:])
    return ("mm",) * ndim


def _heading(text: str) -> Label:
    """A bold section title spanning the dock (no label column)."""
    heading = Label(value=f"<b>{text}</b>")
    heading.label = ""
    return heading


def _without_label_column(widget: Any) -> None:
    """Let a row of the form span the dock's width: hide its (empty) label cell, which would
    otherwise indent it by the label column."""
    labelled = widget._labeled_widget()
    if labelled is not None:
        labelled._label_widget.visible = False


def _export_traversal(
    model, base, latents, values, path: Path, kind: str, slice_index, limits
) -> Path:
    """Worker body: decode the traversal and write it as a PNG grid or a GIF."""
    from brainvae.analysis.latent_space import (
        save_gif,
        save_labelled_traversal_png,
        traversal_animation_frames,
        traversal_grid,
    )

    grid = traversal_grid(model, base, latents, values)
    if kind == "png":
        index = slice_index if grid.images.ndim == 5 else None
        return save_labelled_traversal_png(grid, path, index, limits)
    return save_gif(traversal_animation_frames(grid, slice_index), path, limits=limits)


def _with_leading_axis(placement: dict[str, Any], name: str) -> dict[str, Any]:
    """Placement of a stack: a unit axis called `name` in front of the spatial ones."""
    out = dict(placement)
    if "scale" in out:
        out["scale"] = (1.0, *out["scale"])
    if "translate" in out:
        out["translate"] = (0.0, *out["translate"])
    if "axis_labels" in out:
        out["axis_labels"] = (name, *out["axis_labels"])
    if "units" in out:
        out["units"] = ("pixel", *out["units"])  # frames are counted, like the scans
    return out


def _robust_limits(data: np.ndarray) -> list[float]:
    from brainvae.napari.layer_metadata import contrast_limits

    return contrast_limits(data)


def _layer_table(layer) -> pd.DataFrame | None:
    """The scans' metadata table of a population layer (prepared dataset or sample folder)."""
    import pandas as pd

    from brainvae.napari.layer_metadata import stored_metadata

    entries = stored_metadata(layer.metadata)
    if "table" in entries:
        return pd.DataFrame(entries["table"])
    if "dataset" in entries:
        from brainvae.data.dataset import PreparedDataset

        return PreparedDataset.open(entries["dataset"]).metadata
    return None


if __name__ == "__main__":  # a demo: the 2D sample population with the sample model
    import napari

    viewer = napari.Viewer()
    viewer.open_sample("napari-brainvae", "population_2d")
    explorer = LatentExplorer(viewer)
    viewer.window.add_dock_widget(explorer, name="Latent explorer", area="right")
    explorer.load_chosen_model()
    napari.run()
