"""Aging and disease directions on phantom populations with known truth (an oracle encoder of
the generating factors), the published simulation formulas against a direct transcription,
the negative control, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainvae.errors import PopulationAnalysisError
from brainvae.longitudinal import (
    LongitudinalRequest,
    analyse_longitudinal,
    control_codes,
    disease_codes,
    visit_pairs,
)
from brainvae.longitudinal.directions import STABLE
from helpers.phantom_tables import factor_table, longitudinal_oracle_codes

AGE, LESION, LEUKO = 0, 1, 2  # the oracle's latents (helpers.phantom_tables.ORACLE_FACTORS)


@pytest.fixture(
    scope="module",
    params=[
        {"dims": 2, "n_subjects": 200, "seed": 1, "longitudinal_share": 0.6},
        {"dims": 3, "n_subjects": 150, "seed": 4, "longitudinal_share": 0.6},
        {"dims": 2, "orientation": "axial", "n_subjects": 160, "seed": 8},
    ],
    ids=["coronal2d", "3d", "axial2d-default-share"],
)
def population(request):
    table = factor_table(**request.param)
    return longitudinal_oracle_codes(table), table


def test_oracle_directions_are_the_age_and_lesion_axes(population):
    codes, table = population
    result = analyse_longitudinal(codes, table, LongitudinalRequest(n_splits=100))
    d = result.directions
    assert abs(d.tau_a[AGE]) >= 0.95 and d.tau_a[AGE] > 0  # older = further along tau_a
    assert abs(d.tau_d["ms"][LESION]) >= 0.95 and d.tau_d["ms"][LESION] > 0
    assert abs(d.tau_d["leuko"][LEUKO]) >= 0.95
    for group in ("ms", "leuko"):
        assert abs(d.tau_a @ d.tau_d[group]) <= 0.1
    assert d.stability_a > STABLE and min(d.stability_d.values()) > STABLE
    loadings = result.loadings()
    assert loadings.loc["z1", "tau_a"] == pytest.approx(d.tau_a[AGE])
    assert np.all((d.share_a >= 0) & (d.share_a <= 1 + 1e-12))


def test_directions_maximise_the_mean_cosine(population):
    """The closed form beats every nearby unit vector on the published objective."""
    codes, table = population
    result = analyse_longitudinal(codes, table, LongitudinalRequest(n_splits=10))
    pairs, tau_a = result.pairs, result.directions.tau_a
    changes = codes[pairs.later] - codes[pairs.earlier]
    controls = changes[pairs.group == "healthy"]

    def objective(tau):
        return np.mean(controls @ tau / np.linalg.norm(controls, axis=1))

    rng = np.random.default_rng(0)
    for _ in range(200):
        other = tau_a + rng.normal(0, 0.05, tau_a.shape)
        assert objective(tau_a) >= objective(other / np.linalg.norm(other)) - 1e-12
    assert objective(tau_a) == pytest.approx(result.directions.objective_a)


def test_shuffled_visit_order_gives_no_stable_aging_direction(population):
    codes, table = population
    for seed in range(3):
        rng = np.random.default_rng(seed)
        shuffled = table.copy()
        shuffled["age"] = shuffled.groupby("subject_id")["age"].transform(
            lambda ages, rng=rng: rng.permutation(ages.to_numpy())
        )
        result = analyse_longitudinal(codes, shuffled, LongitudinalRequest(n_splits=100))
        assert result.directions.stability_a < STABLE


def test_simulation_formulas_match_a_direct_transcription():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(40, 6))
    tau_a = rng.normal(size=6)
    tau_a /= np.linalg.norm(tau_a)
    tau_d = rng.normal(size=6)
    tau_d -= (tau_d @ tau_a) * tau_a
    tau_d /= np.linalg.norm(tau_d)
    phis = np.array([-1.0, 0.3, 2.5])
    expected_c, expected_d = [], []
    for phi in phis:  # z_C = phi tau_a + mean_i(z_i - phi_i tau_a), one scan at a time
        rest_c = np.mean([zi - (zi @ tau_a) * tau_a for zi in z], axis=0)
        expected_c.append(phi * tau_a + rest_c)
        rest_d = np.mean([zi - (zi @ tau_a) * tau_a - (zi @ tau_d) * tau_d for zi in z], axis=0)
        mean_phi_d = np.mean([zi @ tau_d for zi in z])
        expected_d.append(phi * tau_a + mean_phi_d * tau_d + rest_d)
    np.testing.assert_allclose(control_codes(z, tau_a, phis), expected_c, atol=1e-10)
    np.testing.assert_allclose(disease_codes(z, tau_a, tau_d, phis), expected_d, atol=1e-10)


def test_trajectories_move_along_tau_a_in_years(population):
    codes, table = population
    request = LongitudinalRequest(years=(50.0, 80.0), frames=4, n_splits=10)
    result = analyse_longitudinal(codes, table, request)
    control = result.trajectories["healthy"]
    np.testing.assert_allclose(control.years, [50, 60, 70, 80])
    steps = np.diff(control.codes, axis=0)
    assert np.all(steps[:, AGE] > 0)  # older: further along the age latent
    np.testing.assert_allclose(steps[:, LESION], 0, atol=0.05)
    ms = result.trajectories["ms"]  # the disease keeps the group's lesion position
    assert np.all(ms.codes[:, LESION] > control.codes[:, LESION] + 0.5)
    assert result.scale.r > 0.9


def test_pairs_from_the_table():
    table = pd.DataFrame(
        {
            "subject_id": ["a", "a", "a", "b", "c", "c"],
            "age": [60.0, 62.0, 65.0, 50.0, 40.0, np.nan],
            "diagnosis": ["healthy"] * 6,
            "date": [
                "2020-01-01",
                "2022-01-01",
                "2025-01-01",
                "2020-01-01",
                "2020-01-01",
                "2021-01-01",
            ],  # fmt: skip
        }
    )
    consecutive = visit_pairs(table, "diagnosis")
    assert list(zip(consecutive.earlier, consecutive.later, strict=True)) == [(0, 1), (1, 2)]
    np.testing.assert_allclose(consecutive.years, [2.0, 3.0])
    assert consecutive.n_single_visit == 2 and consecutive.n_missing_age == 1
    every = visit_pairs(table, "diagnosis", pairing="all", order="date")
    assert sorted(zip(every.earlier, every.later, strict=True)) == [(0, 1), (0, 2), (1, 2)]


def test_bad_input_is_named():
    table = factor_table(dims=3, n_subjects=60, seed=2, longitudinal_share=0.5)
    codes = longitudinal_oracle_codes(table)
    with pytest.raises(
        PopulationAnalysisError, match="no scan has diagnosis = 'control'.*healthy, leuko, ms"
    ):
        analyse_longitudinal(codes, table, LongitudinalRequest(control="control"))
    with pytest.raises(PopulationAnalysisError, match="no column 'group'.*diagnosis"):
        analyse_longitudinal(codes, table, LongitudinalRequest(group="group"))
    single = table.drop_duplicates("subject_id")
    with pytest.raises(PopulationAnalysisError, match="no subject has two visits"):
        analyse_longitudinal(codes[single.index], single, LongitudinalRequest())
    same_date = table.assign(visit_date="2020-05-01")
    with pytest.raises(PopulationAnalysisError, match="same visit_date"):
        analyse_longitudinal(codes, same_date, LongitudinalRequest(order="visit_date"))
    gaps = table.copy()
    gaps.loc[gaps.index[::7], "age"] = np.nan
    result = analyse_longitudinal(codes, gaps, LongitudinalRequest(n_splits=10))
    assert result.pairs.n_missing_age == len(gaps.index[::7])
    assert any("without an age were left out" in note for note in result.notes)
