"""The longitudinal run on the shipped samples: the decoded control trajectory of the 2D model
enlarges the ventricles with age, the MS trajectory adds signal in the lesion zone, and codes
that do not belong to the model are refused."""

from __future__ import annotations

import numpy as np
import pytest

from brainvae.cli._console import drive
from brainvae.errors import PopulationAnalysisError
from brainvae.longitudinal import LongitudinalRequest
from brainvae.models import load_model
from brainvae.usecases.longitudinal_run import longitudinal_run
from brainvae.usecases.population_run import open_population

REQUEST = LongitudinalRequest(years=(50.0, 80.0), frames=7, n_splits=20)


def _run(*args, **kwargs):
    return drive(longitudinal_run(*args, **kwargs), True, lambda r: (r.done, r.total, r.stage))


def test_2d_trajectories_age_the_ventricles_and_add_lesions(sample_data_dir):
    population = open_population(sample_data_dir / "population_2d")
    model = load_model(sample_data_dir / "models" / "beta_vae_2d")
    result = _run(model, population, REQUEST)
    atlas = np.squeeze(population.atlas)
    ventricles = {g: f[:, atlas == 1].mean(axis=1) for g, f in result.frames.items()}
    lesion_zone = {g: f[:, atlas == 7].mean(axis=1) for g, f in result.frames.items()}
    assert np.all(np.diff(ventricles["healthy"]) < 0)  # dark CSF fills the ventricle ROI
    assert np.all(lesion_zone["ms"] > lesion_zone["healthy"])
    np.testing.assert_allclose(result.years, np.linspace(50, 80, 7))
    assert result.frames["healthy"].shape == (7, *population.scan_shape)
    np.testing.assert_allclose(result.change("ms")[0], 0.0)


def test_codes_that_do_not_fit_are_refused(sample_data_dir):
    population = open_population(sample_data_dir / "population_3d")
    model = load_model(sample_data_dir / "models" / "beta_vae_3d")
    with pytest.raises(PopulationAnalysisError, match="do not belong"):
        _run(model, population, REQUEST, codes=np.zeros((population.n_scans, 3)))
