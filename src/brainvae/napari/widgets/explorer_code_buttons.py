"""Where the explorer's code comes from: the scan under the stack's slider, the population's
mean, a draw from the prior, or all zeros (one row of buttons below the sliders)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from magicgui.widgets import Container, Label, PushButton

if TYPE_CHECKING:
    from brainvae.analysis.latent_space import LatentStatistics
    from brainvae.models.base import LatentModel
    from brainvae.napari.widgets.explorer_population import ExplorerScans


class CodeHost(Protocol):
    """What the buttons use of the explorer they sit in."""

    status: Label
    rng: np.random.Generator
    scans: ExplorerScans

    @property
    def model(self) -> LatentModel | None: ...
    @property
    def statistics(self) -> LatentStatistics | None: ...
    def ready(self, population: bool = False) -> bool: ...
    def set_code(self, code: np.ndarray) -> None: ...
    def current_scan_index(self) -> int: ...
    def code_of_scan(self, index: int) -> np.ndarray: ...
    def reset_code(self, *_args: Any) -> None: ...


class CodeButtons:
    """Encode current, Mean, Random sample, Reset: `row` goes into the explorer's form."""

    def __init__(self, host: CodeHost) -> None:
        self._host = host
        self.encode_button = PushButton(
            text="Encode current", tooltip="Sliders to the code of the scan shown in the stack"
        )
        self.mean_button = PushButton(text="Mean", tooltip="Sliders to the population's mean code")
        self.random_button = PushButton(
            text="Random sample", tooltip="Sliders to a draw from the prior N(0, I)"
        )
        self.reset_button = PushButton(text="Reset", tooltip="All latents to 0 (the prior's mean)")
        self.buttons = (self.encode_button, self.mean_button, self.random_button, self.reset_button)
        self.row = Container(widgets=list(self.buttons), layout="horizontal", labels=False)
        self.row.margins = (0, 0, 0, 0)
        self.encode_button.changed.connect(self.encode_current)
        self.mean_button.changed.connect(self.mean_code)
        self.random_button.changed.connect(self.random_sample)
        self.reset_button.changed.connect(host.reset_code)

    def set_enabled(self, enabled: bool) -> None:
        """The buttons work once a model is loaded."""
        for button in self.buttons:
            button.enabled = enabled

    def encode_current(self, *_args: Any) -> None:
        """Sliders to the code of the scan under the stack's slider."""
        host = self._host
        if not host.ready(population=True):
            return
        index = host.current_scan_index()
        host.set_code(host.code_of_scan(index))
        host.status.value = f"Encoded scan {index}{host.scans.description(index)}."

    def mean_code(self, *_args: Any) -> None:
        """Sliders to the population's mean code (the prior's mean, 0, before encoding)."""
        host = self._host
        if not host.ready():
            return
        statistics = host.statistics
        if statistics is None:
            host.set_code(np.zeros(host.model.latent_dim))
            host.status.value = "Population not encoded yet: the prior's mean (0) is shown."
            return
        host.set_code(statistics.mean)
        host.status.value = f"Mean code of {statistics.n_images} scans."

    def random_sample(self, *_args: Any) -> None:
        """Sliders to z ~ N(0, I)."""
        host = self._host
        if host.ready():
            host.set_code(host.rng.standard_normal(host.model.latent_dim))
            host.status.value = "A random draw from the prior N(0, I)."
