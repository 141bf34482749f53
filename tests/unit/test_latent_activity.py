"""One definition of an active latent, shared by training history, the explorer's statistics
and the receptive fields (issue 12): the variance of the posterior means over the scans."""

from __future__ import annotations

import numpy as np
import pytest

from brainvae.analysis.latent_activity import ACTIVE_VARIANCE, latent_activity
from brainvae.analysis.latent_space import population_latents
from brainvae.training.history import active_units
from helpers.collapsed_model import collapsed_beta_vae
from helpers.oracle_model import make_phantom, sample_factors


def test_threshold_and_description():
    codes = np.zeros((6, 3))
    codes[:, 0] = [-1.0, 1.0] * 3  # variance 1
    codes[:, 1] = np.sqrt(ACTIVE_VARIANCE) * np.array([-1.0, 1.0] * 3) * 0.99  # just below
    activity = latent_activity(codes)
    assert activity.active.tolist() == [True, False, False] and activity.n_active == 1
    assert activity.inactive_names == ("z2", "z3")
    assert activity.describe().startswith("1 of 3 latents active; inactive: z2, z3")
    record = activity.to_json()
    assert record["active"] == ["z1"] and record["inactive"] == ["z2", "z3"]
    with pytest.raises(ValueError, match="scans, latents"):
        latent_activity(np.zeros(4))


def test_training_history_and_explorer_statistics_agree_on_a_collapsed_model():
    # Before, training counted the variance of per-subject means and the explorer the variance
    # over scans: a latent varying between one subject's visits was active in one, not the other.
    images = make_phantom((32, 40)).render(sample_factors(30, 0), noise_sd=0.01, seed=1)
    model = collapsed_beta_vae(images, latent_dim=5, live=(0, 3))
    statistics = population_latents(model, images)
    assert statistics.active.tolist() == [True, False, False, True, False]
    assert statistics.activity.n_active == 2
    assert active_units(statistics.codes) == 2
