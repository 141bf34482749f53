"""Latent explorer dock: one slider per latent, decoded live over the template.

It only orchestrates: the numbers come from brainvae.analysis.latent_space (population
statistics, slider ranges, interpolation, traversal), the live decode from a latest-wins
background decoder, and long work (encoding the population, traversals, exports) runs in
napari workers. Layers are touched on the GUI thread only.
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

from brainvae.napari.widgets.paths import optional_path

if TYPE_CHECKING:
    import napari
    import pandas as pd

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
SLIDER_STEPS = 200  # slider resolution: steps across a latent's range


def sample_model_dir(dims: int = 2) -> Path:
    """A shipped beta-VAE (sample_data/models/beta_vae_2d or _3d, packaged or in the checkout)."""
    from brainvae.data.sample import sample_data_dir

    return sample_data_dir() / "models" / f"beta_vae_{dims}d"


_OPEN: weakref.WeakSet = weakref.WeakSet()


def explorers_of(viewer: Any) -> list[LatentExplorer]:
    """The open latent explorers docked in this viewer (so other docks can hand them a model)."""
    target = getattr(viewer, "__wrapped__", viewer)  # plugins get a public-only proxy
    return [e for e in list(_OPEN) if not e._closed and e._real_viewer is target]


class LatentExplorer(Container):
    """Move each latent and watch the decoded brain; encode subjects, interpolate, traverse.

    Inputs: set_model (a LatentModel or a run folder) and set_population (images, metadata,
    placement), or the dock's own model choice and a population stack layer in the viewer.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
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
        self._code = np.zeros(0)
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
        self.sliders = Container(labels=True)
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
        self.scan_a = SpinBox(label="interpolate from scan", min=0, max=0, value=0)
        self.scan_b = SpinBox(label="to scan", min=0, max=0, value=0)
        self.t = FloatSlider(label="t", min=0.0, max=1.0, step=0.01, value=0.0)
        self.n_frames = SpinBox(label="frames", min=2, max=500, value=10)
        self.interpolation_button = PushButton(text="Export interpolation as stack layer")
        self.n_values = SpinBox(label="values per latent", min=2, max=41, value=7)
        self.grid_button = PushButton(text="Traversal grid as layer")
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
            label.native.setWordWrap(True)  # long messages wrap instead of widening the dock

        self.extend(
            [
                self.model_source, self.run_folder, self.load_button, self.model_info,
                self.population, self.range_mode,
                _heading("Latents (label: mean KL to the prior)"),
                self.sliders, code_buttons,
                _heading("Interpolation between two scans"),
                self.scan_a, self.scan_b, self.t, self.n_frames, self.interpolation_button,
                _heading("Traversal: rows = latents, columns = values"),
                self.n_values, self.grid_button, self.export_path, export_buttons, self.status,
            ]
        )  # fmt: skip
        self.model_source.changed.connect(self._on_model_source_changed)
        self.load_button.changed.connect(self.load_chosen_model)
        self.population.changed.connect(self._on_population_layer_chosen)
        self.range_mode.changed.connect(self._apply_ranges)
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
        # a weak reference, not self: the dock may be gone when its widget is destroyed
        self.native.destroyed.connect(partial(_shut_down, weakref.ref(self), self._decoder))
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
        self._code = np.zeros(config.latent_dim)
        self._code_is_initial = True  # until the user moves it: then the population's mean
        self._rebuild_sliders()
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
        self._code = code.copy()
        self._code_is_initial = False
        for k, slider in enumerate(self.sliders):
            _place_slider(slider, *slider.range, float(code[k]))
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
            self._code = np.zeros(self._model.latent_dim)
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

    def _rebuild_sliders(self) -> None:
        self.sliders.clear()
        for k in range(self._model.latent_dim):
            slider = FloatSlider(
                label=f"z{k + 1}", min=-3.0, max=3.0, step=6.0 / SLIDER_STEPS, value=0.0
            )
            slider.changed.connect(partial(self._on_slider, k))
            self.sliders.append(slider)

    def _on_slider(self, k: int, value: float) -> None:
        self._code[k] = float(value)
        self._code_is_initial = False
        self._request_decode()

    def _apply_ranges(self, *_args) -> None:
        """Slider bounds from the chosen mode; labels show each latent's KL and activity."""
        from brainvae.analysis.latent_space import slider_ranges

        if self._model is None:
            return
        mode = self.range_mode.value
        note = ""
        if mode == "population" and self._statistics is None:
            mode = "fixed3"
            note = "Ranges [-3, 3] until a population is encoded."
        self._ranges = slider_ranges(mode, self._model.latent_dim, self._statistics)
        for k, slider in enumerate(self.sliders):
            low, high = float(self._ranges.low[k]), float(self._ranges.high[k])
            value = float(self._code[k])
            _place_slider(slider, low, high, value, step=(high - low) / SLIDER_STEPS)
            slider.label = self._slider_label(k)
            slider.tooltip = self._slider_tooltip(k)
        if note:
            self.status.value = note

    def _slider_label(self, k: int) -> str:
        stats = self._statistics
        if stats is None:
            return f"z{k + 1}"
        activity = f"KL {stats.kl[k]:.2f}" if stats.kl is not None else f"sd {stats.sd[k]:.2f}"
        return f"z{k + 1}  {activity}" + ("" if stats.active[k] else "  (inactive)")

    def _slider_tooltip(self, k: int) -> str:
        stats = self._statistics
        if stats is None:
            return "Encode a population to see this latent's KL and range"
        kl = (
            f"mean KL to the prior {stats.kl[k]:.3f} nats"
            if stats.kl is not None
            else "no KL (point codes)"
        )
        fallback = self._ranges is not None and bool(self._ranges.prior_fallback[k])
        return (
            f"z{k + 1}: population mean {stats.mean[k]:.2f}, sd {stats.sd[k]:.3f}; {kl}"
            + ("; inactive (code variance <= 0.01)" if not stats.active[k] else "")
            + ("; range from the prior (dead latent)" if fallback else "")
        )

    def highlight_latent(self, k: int) -> None:
        """Bring latent k's slider forward (another dock chose it, e.g. Receptive fields)."""
        if not 0 <= k < len(self.sliders):
            return
        slider = self.sliders[k]
        slider.native.setFocus()
        self.chosen_latent = k
        self.status.value = f"z{k + 1} chosen: {self._slider_tooltip(k)}"

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
            np.copyto(layer.data, result.image)
            layer.refresh(extent=False, highlight=False)  # same grid: only pixels changed
            return
        self._show_image(DECODED_LAYER, result.image, placement)

    def _model_placement(self) -> dict[str, Any]:
        """The population's scale/translate/axis labels when its grid is the model's, else none."""
        return self._placement if self._population_fits(report=False) else {}

    def _on_decode_failed(self, failure) -> None:
        request, err = failure
        if not self._closed and request.model is self._model:
            self._fail(err)

    def _show_image(
        self, name: str, data: np.ndarray, placement: dict[str, Any], **kwargs: Any
    ) -> None:
        """Update a layer's data in place when its shape allows, else (re)create it."""
        layers = self._viewer.layers
        if name in layers:
            layer = layers[name]
            if layer.data.shape == data.shape and tuple(layer.scale) == tuple(
                placement.get("scale", layer.scale)
            ):
                layer.data = data
                return
            layers.remove(name)
        fits = self._display_limits is not None and self._population_fits(report=False)
        limits = self._display_limits if fits else _robust_limits(data)
        layer = self._viewer.add_image(
            data,
            name=name,
            colormap="gray",
            contrast_limits=limits,
            rgb=False,
            metadata={"brainvae": {"kind": "latent_explorer"}},
            **{**placement, **kwargs},
        )
        if name == DECODED_LAYER:  # a new volume: show its middle, not a leftover edge slice
            from brainvae.napari.widgets.view import centre_slices

            centre_slices(self._viewer, layer)

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
        if layer is self._population_layer:
            return
        try:
            metadata = _layer_table(layer)
        except Exception:  # noqa: BLE001 - the table only labels scans; images still work
            metadata = None
        placement = {
            "scale": tuple(layer.scale[1:]),
            "translate": tuple(layer.translate[1:]),
            "axis_labels": tuple(layer.axis_labels[1:]),
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

        from brainvae.analysis.latent_space import population_latents

        generation = self._generation
        self.status.value = f"Encoding {len(self._images)} scans..."
        worker = create_worker(population_latents, self._model, self._images)
        worker.returned.connect(partial(self._on_statistics, generation))
        self._run(worker)

    def _on_statistics(self, generation: int, statistics: LatentStatistics) -> None:
        if generation != self._generation:
            return
        self._statistics = statistics
        start = ""
        if self._code_is_initial:  # a code the user has not chosen: start at the mean brain
            # (the prior's 0 may lie far outside a weakly regularised model's codes)
            self._code = np.asarray(statistics.mean, dtype=np.float64).copy()
            self._code_is_initial = False
            start = " Sliders at the population's mean code."
        self._apply_ranges()
        if start:
            self._request_decode()
        self.status.value = (
            f"{statistics.n_images} scans encoded; {statistics.activity.describe()}." + start
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
        self._show_image(f"interpolation scan {a} to {b}", frames, placement)
        self.status.value = f"{len(frames)} frames from scan {a} to scan {b} (axis 'frame')."

    # ---- traversal ----------------------------------------------------------------------
    def traversal_inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(base code, latents, values): every latent swept over its slider range."""
        from brainvae.analysis.latent_space import traversal_values

        latents = np.arange(self._model.latent_dim)
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
        generation = self._generation
        worker = create_worker(traversal_grid, self._model, *self.traversal_inputs())
        worker.returned.connect(partial(self._on_traversal, generation))
        self.status.value = "Decoding the traversal grid..."
        self._run(worker)

    def _on_traversal(self, generation: int, grid: TraversalGrid) -> None:
        from brainvae.analysis.latent_space import traversal_mosaic

        if generation != self._generation:
            return
        self.last_grid = grid
        placement = self._model_placement()  # the first tile sits on the decoded brain
        new_layer = GRID_LAYER not in self._viewer.layers
        self._show_image(GRID_LAYER, traversal_mosaic(grid), placement)
        if new_layer:
            self._viewer.reset_view()  # the mosaic is larger than the brain: show all of it
        rows, cols = grid.images.shape[:2]
        self.status.value = (
            f"Traversal grid: rows z1..z{rows}, {cols} values each, "
            "from the slider's low end (left) to its high end (right)."
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
        worker = create_worker(
            _export_traversal,
            self._model,
            *self.traversal_inputs(),
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


def _shut_down(explorer: weakref.ref, decoder: Any, *_args: Any) -> None:
    """The dock's Qt widget was destroyed: drop late worker results and stop the decoder."""
    alive = explorer()
    if alive is not None:
        alive._closed = True
        alive._generation += 1
    decoder.stop(0.5)


def _can_overwrite(layer, image: np.ndarray, placement: dict[str, Any]) -> bool:
    """True when a layer holds this dock's own writable array of the image's shape and grid."""
    from brainvae.napari.layer_metadata import stored_metadata

    data = layer.data
    return (
        stored_metadata(layer.metadata).get("kind") == "latent_explorer"
        and isinstance(data, np.ndarray)
        and data.flags.writeable
        and data.shape == image.shape
        and data.dtype == image.dtype
        and np.allclose(layer.scale, placement.get("scale", np.ones(image.ndim)))
        and np.allclose(layer.translate, placement.get("translate", np.zeros(image.ndim)))
    )


def _heading(text: str) -> Label:
    """A bold section title spanning the dock (no label column)."""
    heading = Label(value=f"<b>{text}</b>")
    heading.label = ""
    return heading


def _place_slider(
    slider: FloatSlider, low: float, high: float, value: float, step: float | None = None
) -> None:
    """Show `value` on a slider whose range is [low, high] widened to include it, silently.

    The slider rounds its bounds (6 decimals), so the shown value is clipped to them; the
    exact code stays with the dock.
    """
    with slider.changed.blocked():
        slider.range = (min(low, value), max(high, value))
        if step is not None:
            slider.step = step
        slider.value = float(np.clip(value, slider.min, slider.max))


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
