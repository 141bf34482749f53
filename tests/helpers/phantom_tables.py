"""Phantom subjects tables without rendering a scan: the drawn factors of a population (its
diagnosis, site, age, lesion burden, ...) and an oracle encoder's codes built from them."""

from __future__ import annotations

import numpy as np
import pandas as pd

ORACLE_FACTORS = ("age", "lesion_burden", "leuko_extent_mm")
"""The independent generating factors the oracle's first latents encode (standardised). The
lesion latent is sqrt(lesion_burden): the renderer scales lesion radii with it, so it is what
an image shows (burden itself crowds the mildest MS scans against zero)."""


def factor_table(**config) -> pd.DataFrame:
    """One row per scan of a phantom population drawn with PopulationConfig(**config)."""
    from brainvae.data.phantom import PopulationConfig, get_grid, sample_population
    from brainvae.data.phantom.deform import lesion_sites

    population = PopulationConfig(**config)
    grid = get_grid(population.dims, population.orientation)
    scans = sample_population(population, lesion_sites(grid))
    rows = [
        {"subject_id": s.subject_id, "session": s.session, "age": s.age,
         "diagnosis": s.diagnosis, **s.csv_values()}
        for s in scans
    ]  # fmt: skip
    return pd.DataFrame(rows)


def oracle_codes(table: pd.DataFrame, n_noise: int = 3, noise: float = 0.05, seed: int = 0):
    """(N, 3 + n_noise) codes: the standardised true factors plus small noise, then pure-noise
    latents (what a perfect encoder of the generating factors would give)."""
    rng = np.random.default_rng(seed)
    factors = table[list(ORACLE_FACTORS)].to_numpy(dtype=float, copy=True)
    factors[:, 1] = np.sqrt(factors[:, 1])
    factors = (factors - factors.mean(0)) / factors.std(0)
    factors += rng.normal(0, noise, factors.shape)
    return np.column_stack([factors, rng.normal(0, 1, (len(table), n_noise))])


def longitudinal_oracle_codes(
    table: pd.DataFrame, n_noise: int = 3, noise: float = 0.02, seed: int = 0
) -> np.ndarray:
    """Oracle codes for longitudinal tests: the standardised true factors (as oracle_codes)
    and `n_noise` latents that are subject traits (one N(0, 1) draw per subject, constant over
    visits, like the identity a real encoder keeps), every latent with N(0, noise) scan noise."""
    rng = np.random.default_rng(seed)
    factors = oracle_codes(table, n_noise=0, noise=0.0, seed=seed)
    subjects, index = np.unique(table["subject_id"].astype(str), return_inverse=True)
    traits = rng.normal(0, 1, (len(subjects), n_noise))[index]
    codes = np.column_stack([factors, traits])
    return codes + rng.normal(0, noise, codes.shape)
