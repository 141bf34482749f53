"""The population analysis as the command line and the dock run it: open the population (a
prepared dataset, or a folder of scans with its subjects.csv such as the shipped samples),
encode it with the model in batches (unless the caller already holds its codes: the dock
reuses the latent explorer's), then ask the request's questions."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from brainvae.data.population import Population
    from brainvae.population import PopulationAnalysis, PopulationProgress, PopulationRequest

ENCODE_CHUNK = 512
"""Scans encoded between two progress reports."""


def open_population(path: str | Path, table_for: str | None = None) -> Population:
    """A prepared dataset (it has dataset.json) or a population folder (it has subjects.csv).
    table_for: what its subjects table is needed for; one without a table is then refused."""
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.dataset_folder import DatasetFolder
    from brainvae.data.population import Population
    from brainvae.data.population_folder import TABLE_NAME, read_population_folder
    from brainvae.errors import DatasetError

    path = Path(path)
    population = None
    if (path / DatasetFolder.DESCRIPTION).is_file():
        population = Population.from_dataset(PreparedDataset.open(path))
    elif (path / TABLE_NAME).is_file():
        population = Population.from_folder(read_population_folder(path))
    if population is not None:
        if table_for is not None and population.table is None:
            from brainvae.errors import PopulationAnalysisError

            raise PopulationAnalysisError(
                f"{path}: the population has no subjects table ({table_for})"
            )
        return population
    raise DatasetError(
        f"{path}: neither a prepared dataset ({DatasetFolder.DESCRIPTION}) nor a population "
        f"folder ({TABLE_NAME} with the scans it lists)"
    )


def run_info(
    run_dir: str | Path, source: str | Path, population: Population, latent_dim: int
) -> dict:
    """What a result folder's summary.json records of its run and population."""
    return {
        "run": str(run_dir),
        "population": str(source),
        "n_scans": int(population.n_scans),
        "scan_shape": [int(s) for s in population.scan_shape],
        "latent_dim": int(latent_dim),
    }


def encode_population(
    model: Any, images: Any
) -> Generator[PopulationProgress, None, tuple[np.ndarray, np.ndarray]]:
    """Posterior means (N, L) of every scan, ENCODE_CHUNK at a time, and which are active."""
    from brainvae.analysis.latent_activity import latent_activity
    from brainvae.analysis.latent_space import check_images_fit, population_latents
    from brainvae.population import PopulationProgress

    check_images_fit(model, np.shape(images))
    n = len(images)
    codes = np.empty((n, model.latent_dim), dtype=np.float32)
    for start in range(0, n, ENCODE_CHUNK):
        yield PopulationProgress("encoding the scans", start, n)
        stop = min(start + ENCODE_CHUNK, n)
        codes[start:stop] = population_latents(model, images[start:stop]).codes
    return codes, latent_activity(codes).active


def population_run(
    model: Any,
    population: Population,
    request: PopulationRequest,
    codes: np.ndarray | None = None,
    active: np.ndarray | None = None,
) -> Generator[PopulationProgress, None, PopulationAnalysis]:
    """Encode (unless `codes` and `active` are given) and analyse; progress all the way."""
    import pandas as pd

    from brainvae.errors import PopulationAnalysisError
    from brainvae.population import analyse_population

    if population.table is None:
        raise PopulationAnalysisError(
            f"{population.source}: the population has no subjects table to ask questions of"
        )
    if codes is None or active is None:
        codes, active = yield from encode_population(model, population.images)
    elif len(codes) != population.n_scans:
        raise PopulationAnalysisError(
            f"{len(codes)} codes for a population of {population.n_scans} scans"
        )
    elif model is not None and np.shape(codes)[1] != model.latent_dim:
        raise PopulationAnalysisError(
            f"the codes have {np.shape(codes)[1]} latents but the model has {model.latent_dim}: "
            "encode the population with this model"
        )
    table = pd.DataFrame(population.table).reset_index(drop=True)
    return (yield from analyse_population(codes, table, active, request, population.images))
