"""The state the docks of one viewer share, as one evented object.

A dock reads what it needs here and subscribes to the events of what it shows; it never
imports another dock or reaches into one. The Training dock hands its model over with
`state.model = ModelInUse(...)`, the Receptive fields dock publishes its run and the latent
a user clicked, and so on. Every field emits `state.events.<field>` (psygnal, as napari's
own models) when it is given a new object; values are compared by identity, so a result is
never compared element by element.
"""

from __future__ import annotations

import operator
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psygnal import evented

if TYPE_CHECKING:
    from brainvae.data.population import Population
    from brainvae.models.base import LatentModel


@dataclass(frozen=True, eq=False)
class ModelInUse:
    """A model the docks work with and where it came from (a run folder, or None)."""

    model: LatentModel
    folder: Path | None = None
    label: str = ""


@dataclass(frozen=True, eq=False)
class EncodedPopulation:
    """Latent statistics of a population under a model (the explorer encodes once)."""

    model: LatentModel
    population: Population
    statistics: Any  # brainvae.analysis.latent_space.LatentStatistics


@dataclass(frozen=True, eq=False)
class AnalysisResult:
    """A receptive or projective run with the model and population it belongs to."""

    model: LatentModel
    population: Population | None
    run: Any  # the dock's run record (its result, names, colours...)


@dataclass(frozen=True, eq=False)
class ChosenCode:
    """A code (L,) of `model` picked in another dock (a scan clicked on the latent map), for
    the latent explorer to show; `label` says where it came from."""

    model: LatentModel
    code: Any  # (L,) numpy array
    label: str = ""


_FIELDS = (
    "population", "model", "encoded", "receptive", "projective", "latent", "roi", "code",
    "questions", "longitudinal",
)  # fmt: skip


@evented(equality_operators=dict.fromkeys(_FIELDS, operator.is_))
@dataclass(eq=False)
class ViewerState:
    """What the docks of one viewer share.

    population: the population the latent explorer shows (the analysis docks start on it);
    model: the model in use (loaded in the explorer or just trained);
    encoded: the population's latent statistics under that model;
    receptive / projective: the last run of each analysis dock;
    latent: the latent a user pointed at (a click in a heatmap), or None;
    roi: the ROI label a user pointed at, or None;
    code: a code chosen elsewhere (a scan clicked on the population's latent map) for the
    latent explorer to show when it holds that model, or None;
    questions / longitudinal: the last run of the Population analysis and of the Aging and
    disease dock (with the model and population they belong to).
    """

    population: Population | None = None
    model: ModelInUse | None = None
    encoded: EncodedPopulation | None = None
    receptive: AnalysisResult | None = None
    projective: AnalysisResult | None = None
    latent: int | None = None
    roi: int | None = None
    code: ChosenCode | None = None
    questions: AnalysisResult | None = None
    longitudinal: AnalysisResult | None = None

    @property
    def viewer(self) -> Any:
        """The viewer (as the first dock that asked got it) this state belongs to."""
        return self.__dict__.get("_viewer")

    def result_for(self, name: str, model: Any) -> Any:
        """The last `name` ("receptive"/"projective") run of `model`, else None."""
        found: AnalysisResult | None = getattr(self, name)
        return found.run if found is not None and found.model is model else None

    def statistics_for(self, model: Any, population: Any) -> Any:
        """The explorer's statistics of `population` under `model`, else None."""
        found = self.encoded
        if found is None or found.model is not model or found.population is not population:
            return None
        return found.statistics


_STATES: weakref.WeakValueDictionary[int, ViewerState] = weakref.WeakValueDictionary()


def state_of(viewer: Any) -> ViewerState:
    """The state of `viewer`: created on first use, alive while a dock holds it.

    A napari viewer hashes to its id, and the public-only proxy napari hands a plugin's
    widget hashes like the viewer it wraps, so every dock of one viewer finds the same state
    without unwrapping the proxy. The state holds its viewer, so while the state lives no
    other viewer can get that id.
    """
    key = hash(viewer)
    state = _STATES.get(key)
    if state is None:
        state = ViewerState()
        object.__setattr__(state, "_viewer", viewer)  # not a field: no event
        _STATES[key] = state
    return state
