"""The latent explorer's population: the stack a user chose, whether its scans fit the model,
and their encoding in a worker into latent statistics, published in the viewer's state for the
other docks. A mixin of LatentExplorer."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from brainvae.napari.viewer_state import EncodedPopulation
from brainvae.napari.widgets.explorer_population import activity_text, stack_placement

if TYPE_CHECKING:
    from brainvae.data.population import Population
    from brainvae.napari.widgets.explorer_latent_summary import LatentSummary


class PopulationEncoding:
    """The chosen stack and its encoding (mixed into LatentExplorer)."""

    def _use_stack(self, layer: Any, population: Population | None) -> None:
        """A population stack was chosen: its scans, table and placement; the viewer's
        population (the analysis docks use it) when it has one."""
        metadata = population.table if population is not None else None
        self.set_population(layer.data, metadata, stack_placement(layer))
        self.scans.layer = layer
        self.scans.population = population
        if population is not None:
            self._state.population = population

    def population_fits(self, report: bool) -> bool:
        """Whether a model and a population are there and the scans fit the model's input
        (`report`: say why not in the status line)."""
        try:
            return self.scans.fits(self._model)
        except Exception as err:  # noqa: BLE001
            if report:
                self.fail(err)
            return False

    def _start_population_encoding(self) -> None:
        from napari.qt.threading import create_worker

        from brainvae.napari.workers.decode import encode_population

        generation = self._generation
        self.status.value = f"Encoding {len(self.scans.images)} scans..."
        worker = create_worker(encode_population, self._model, self.scans.images)
        worker.returned.connect(partial(self._on_statistics, generation))
        self.run_worker(worker)

    def _on_statistics(self, generation: int, summary: LatentSummary) -> None:
        if generation != self._generation:
            return
        statistics = summary.statistics
        self._statistics = statistics
        population = self.scans.population
        if population is not None and population.images is self.scans.images:
            self._state.encoded = EncodedPopulation(self._model, population, statistics)
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
        activity = activity_text(summary.activity, filtered)
        self.status.value = f"{statistics.n_images} scans encoded; {activity}." + start
        # a model trained on other intensities decodes nonsense: say how they differ
        note = self.scans.preprocessing_note(self._model)
        if note:
            self.status.value += " " + note
