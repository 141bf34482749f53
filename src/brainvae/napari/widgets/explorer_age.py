"""The latent explorer's age row for an age-conditioned VAE: an "age (years)" slider that moves
the code along the model's learned age direction u, and the brain age (the regressor's
predicted age) of the scan under the viewer's slider beside its recorded age, and its error on
the held-out scans of the run's training dataset (measured in a worker when the model loads).
Hidden for every other model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from magicgui.widgets import FloatSlider, Label

if TYPE_CHECKING:
    from brainvae.models.base import LatentModel
    from brainvae.napari.widgets.explorer_population import ExplorerScans

AGE_SPAN_SD = 2.5
"""The slider runs over the training ages' mean +- this many standard deviations."""


class AgeHost(Protocol):
    """What the age row uses of the explorer it sits in."""

    scans: ExplorerScans

    @property
    def model(self) -> LatentModel | None: ...
    @property
    def code(self) -> np.ndarray: ...
    def set_code(self, code: np.ndarray) -> None: ...
    def current_scan_index(self) -> int: ...


def age_direction(model: Any) -> np.ndarray | None:
    """The model's unit age direction u (L,), or None for a model without one."""
    direction = getattr(model, "direction", None)
    if not callable(direction):
        return None
    return direction().detach().float().cpu().numpy().astype(np.float64)


def code_at_age(model: Any, code: np.ndarray, years: float) -> np.ndarray:
    """`code` with its component along u replaced by the standardised age `years` (the prior
    N(c u, I) puts a scan of standardised age c at c along u)."""
    u = age_direction(model)
    config = model.config
    target = (float(years) - config.condition_mean) / config.condition_sd
    code = np.asarray(code, dtype=np.float64)
    return code + (target - code @ u) * u


def age_of_code(model: Any, code: np.ndarray) -> float:
    """The age (condition units) a code stands for along u."""
    config = model.config
    return float(
        config.condition_mean + config.condition_sd * (np.asarray(code) @ age_direction(model))
    )


class AgeControl:
    """The age slider and the brain-age line; `rows` go into the explorer's form."""

    def __init__(self, host: AgeHost, viewer: Any) -> None:
        self._host = host
        self._updating = False
        self.slider = FloatSlider(
            label="age (years)",
            min=0.0,
            max=100.0,
            value=50.0,
            visible=False,
            tooltip="Moves the code along the age-conditioned VAE's age direction u",
        )
        self.brain_age = Label(value="", visible=False)
        self.held_out = Label(value="", visible=False)
        self.rows = (self.slider, self.brain_age, self.held_out)
        self._generation = 0
        self.slider.changed.connect(self._on_age)
        viewer.dims.events.current_step.connect(lambda *_: self.show_brain_age())

    @property
    def active(self) -> bool:
        return age_direction(self._host.model) is not None

    def reset(self, folder: Any = None) -> None:
        """A new model: shown, with the training ages' range, for an age-conditioned VAE;
        its held-out brain age measured in a worker from the run `folder`'s dataset."""
        self.slider.visible = self.brain_age.visible = self.held_out.visible = self.active
        self._generation += 1
        if not self.active:
            return
        self._measure_held_out(folder)
        config = self._host.model.config
        low = config.condition_mean - AGE_SPAN_SD * config.condition_sd
        high = config.condition_mean + AGE_SPAN_SD * config.condition_sd
        self._updating = True
        try:
            self.slider.min, self.slider.max = round(low, 1), round(high, 1)
        finally:
            self._updating = False
        self.slider.label = f"{config.condition} (years)" if config.condition else "age (years)"
        self.refresh()
        self.show_brain_age()

    def _measure_held_out(self, folder: Any) -> None:
        from napari.qt.threading import create_worker

        from brainvae.napari.workers.decode import run_brain_age

        generation = self._generation
        self.held_out.value = "brain age on held-out scans: measuring..."
        worker = create_worker(run_brain_age, self._host.model, folder)
        worker.returned.connect(lambda text: self._show_held_out(generation, text))
        worker.start()

    def _show_held_out(self, generation: int, text: str) -> None:
        if generation == self._generation:  # not a model loaded since
            self.held_out.value = text

    def refresh(self) -> None:
        """The slider follows the code when other sliders move it."""
        if not self.active:
            return
        self._updating = True
        try:
            years = age_of_code(self._host.model, self._host.code)
            self.slider.value = float(np.clip(years, self.slider.min, self.slider.max))
        finally:
            self._updating = False

    def _on_age(self, years: float) -> None:
        if self._updating or not self.active:
            return
        self._host.set_code(code_at_age(self._host.model, self._host.code, years))

    def show_brain_age(self) -> None:
        """The regressor's predicted age of the scan under the viewer's slider, beside the
        age its table records."""
        model, scans = self._host.model, self._host.scans
        if not self.active or getattr(scans, "images", None) is None or not scans.fits(model):
            return
        index = self._host.current_scan_index()
        if not 0 <= index < len(scans.images):
            return
        predicted, spread = model.predict_condition(np.asarray(scans.images[index : index + 1]))
        text = f"brain age of scan {index}: {predicted[0]:.1f} (+- {spread[0]:.1f})"
        column = model.config.condition
        table = scans.metadata
        if table is not None and column in getattr(table, "columns", ()):
            recorded = np.asarray(table[column], dtype=object)[index]
            try:
                text += f"; recorded {column} {float(recorded):.1f}"
            except (TypeError, ValueError):
                pass
        self.brain_age.value = text
