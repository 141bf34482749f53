"""The population run as the CLI and the dock call it: either kind of population, the
explorer's codes reused as given, and codes that do not belong to the model refused."""

from __future__ import annotations

import numpy as np
import pytest

from brainvae.cli._console import drive
from brainvae.errors import DatasetError, PopulationAnalysisError
from brainvae.models import load_model
from brainvae.population import PopulationRequest
from brainvae.usecases.population_run import open_population, population_run

REQUEST = PopulationRequest(regress=("age",), n_bootstrap=50, n_permutations=50)


def _run(*args, **kwargs):
    stages = []
    result = drive(population_run(*args, **kwargs), True,
                   lambda r: (stages.append(r.stage), r.done, r.total)[1:] + ("",))  # fmt: skip
    return result, stages


def test_folder_population_is_encoded_then_analysed(sample_data_dir):
    population = open_population(sample_data_dir / "population_3d")
    model = load_model(sample_data_dir / "models" / "beta_vae_3d")
    result, stages = _run(model, population, REQUEST)
    assert stages[0] == "encoding the scans" and stages[-1] == "done"
    (score,) = result.scores
    assert score.r > 0.8 and score.keep.sum() == population.n_scans


def test_given_codes_are_used_as_they_are(sample_data_dir):
    population = open_population(sample_data_dir / "population_3d")
    model = load_model(sample_data_dir / "models" / "beta_vae_3d")
    age = population.table["age"].to_numpy(float)
    codes = np.column_stack([age, np.random.default_rng(0).normal(size=(len(age), 7))])
    result, stages = _run(model, population, REQUEST, codes=codes, active=np.ones(8, bool))
    assert "encoding the scans" not in stages
    assert result.scores[0].r > 0.99  # the given first latent is age itself
    with pytest.raises(PopulationAnalysisError, match="codes have 3 latents but the model has 8"):
        _run(model, population, REQUEST, codes=codes[:, :3], active=np.ones(3, bool))
    with pytest.raises(PopulationAnalysisError, match="82 codes for a population of 83"):
        _run(model, population, REQUEST, codes=codes[:-1], active=np.ones(8, bool))


def test_open_population_names_what_it_needs(tmp_path):
    with pytest.raises(DatasetError, match="neither a prepared dataset.*nor a population"):
        open_population(tmp_path)
