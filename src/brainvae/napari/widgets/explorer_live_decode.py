"""The latent explorer's live decode: every slider move asks the latest-wins decoder for the
code, and the newest image is shown beside the scan (explorer_display places it). A mixin of
LatentExplorer, whose model, code, scans and display it reads."""

from __future__ import annotations

from typing import Any

import numpy as np

from brainvae.napari.widgets.decode_placement import WHILE_MOVING


class LiveDecode:
    """Decode requests and what comes back (mixed into LatentExplorer)."""

    def _request_decode(self) -> None:
        if self._model is not None and len(self._code) == self._model.latent_dim:
            self._decoder.request(self._model, self._code)

    def _on_decoded(self, result) -> None:
        if self._closed or result.request.model is not self._model:
            return  # a decode of a model that was replaced meanwhile
        if result.request.request_id < self.shown_request:
            return  # the thread finished an older code after a newer one was shown inline
        self.shown_request = result.request.request_id
        fits = self.population_fits(report=False)  # once per decode: it runs on every drag
        placement = self.scans.placement if fits else {}
        limits = self.scans.display_limits if fits else None
        self._display.show_decode(result.image, placement, limits)

    def _on_decode_failed(self, failure) -> None:
        request, err = failure
        if not self._closed and request.model is self._model:
            self.fail(err)

    def _place_decode(self, *_args) -> None:
        """Put the decode layer where the mode wants it (after a change of mode, population
        or axis order); decodes themselves never move it."""
        if not self._closed:
            self._display.place_decode(self.model_placement())

    def _on_decode_shown_changed(self, mode: str) -> None:
        self._display.placer.mode = mode
        self._place_decode()
        if mode == WHILE_MOVING:
            self.status.value = "The decode shows over the scan while the code changes."

    def model_placement(self) -> dict[str, Any]:
        """The population's scale/translate/axis labels when its grid is the model's, else none."""
        return self.scans.placement if self.population_fits(report=False) else {}

    def show_export(self, name: str, data: np.ndarray, placement: dict[str, Any]) -> None:
        """An export as a layer right of the scan and the decode, in the population's contrast
        when it fits the model (explorer_display)."""
        fits = self.population_fits(report=False)
        self._display.show_export(
            name, data, placement, self.scans.display_limits if fits else None
        )
