"""The Population analysis dock's form as a request, and the run it starts: the choices its
combo boxes offer (the table's columns, categorical-looking first; the map methods, UMAP only
when installed), the PopulationRequest the fields stand for (every default is the request's),
and the worker's job: the explorer's codes when the viewer holds them, else an encoding, then
`population_run`."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

NO_CLASS = "(no classification)"
DRAG_CHOICES = (
    ("pans the map", "pan"),
    ("draws group A", "A"),
    ("draws group B", "B"),
)


@dataclass(frozen=True)
class PopulationRun:
    """One finished analysis with what the map and the groups need: the model, the population,
    its codes (N, L) and active latents, and whether the codes were the explorer's."""

    model: Any
    population: Any
    codes: np.ndarray
    active: np.ndarray
    analysis: Any  # brainvae.population.PopulationAnalysis
    reused_codes: bool


def analysis_job(
    model: Any, population: Any, request: Any, statistics: Any
) -> Generator[Any, None, PopulationRun]:
    """Encode the population unless `statistics` (the explorer's) are given, then analyse."""
    from brainvae.usecases.population_run import encode_population, population_run

    if statistics is not None:
        codes, active = np.asarray(statistics.codes), np.asarray(statistics.active)
    else:
        codes, active = yield from encode_population(model, population.images)
    analysis = yield from population_run(model, population, request, codes, active)
    return PopulationRun(model, population, codes, active, analysis, statistics is not None)


def map_choices() -> list[str]:
    """The map methods, UMAP only when umap-learn is installed."""
    from brainvae.population.latent_map import MAP_METHODS, umap_available

    return [m for m in MAP_METHODS if m != "umap" or umap_available()]


def column_choices(table: Any) -> list[str]:
    """The table's columns a user may ask about: categorical-looking first (classes, sites),
    then numeric ones; bookkeeping columns (ids, file names) left out."""
    from brainvae.population.columns import BOOKKEEPING_COLUMNS, is_categorical

    if table is None:
        return []
    columns = [str(c) for c in table.columns if c not in BOOKKEEPING_COLUMNS]
    categorical = [c for c in columns if is_categorical(table[c])]
    return categorical + [c for c in columns if c not in categorical]


def request_of(form: Any) -> Any:
    """The PopulationRequest a dock's fields stand for (errors name the field)."""
    from brainvae.population import PopulationRequest
    from brainvae.population.columns import parse_merge

    classify = form.class_column.value
    merge_text = [t for t in str(form.merge.value).split(";") if t.strip()]
    regress = tuple(c.strip() for c in str(form.regress.value).split(",") if c.strip())
    shrinkage = str(form.shrinkage.value).strip() or "none"
    method = str(form.map_method.value)
    return PopulationRequest(
        classify=None if classify in (None, NO_CLASS) else str(classify),
        merge=parse_merge(merge_text),
        regress=regress,
        regression=str(form.regression.value),
        validation=str(form.validation.value),
        folds=int(form.folds.value),
        shrinkage=None if shrinkage == "none" else shrinkage,
        all_latents=bool(form.all_latents.value),
        reference=bool(form.reference.value),
        n_bootstrap=int(form.n_bootstrap.value),
        n_permutations=int(form.n_permutations.value),
        map_method=method,
        map_latents=(int(form.map_x.value), int(form.map_y.value)),
    )
