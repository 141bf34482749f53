"""Simulated brains of a group at any age, from the aging and disease directions (Ouyang et
al., IEEE TMI 2022).

Each scan's position along the directions: phi_i = z_i . tau_a, phi_d,i = z_i . tau_d. A
control group at aging position phi: z_C(phi) = phi tau_a + mean_i (z_i - phi_i tau_a) (the
group's mean code with its aging part replaced by phi). A disease group D at phi:
z_D(phi) = phi tau_a + mean_i(phi_d,i) tau_d + mean_i (z_i - phi_i tau_a - phi_d,i tau_d),
which keeps the group's mean disease position. phi is mapped to years by a least-squares line
of phi_i on age over the control scans, so a trajectory is asked for in years.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainvae.errors import PopulationAnalysisError


def control_codes(codes: np.ndarray, tau_a: np.ndarray, phis: np.ndarray) -> np.ndarray:
    """(T, L) z_C(phi) for each phi of `phis`, from a control group's codes (N, L)."""
    codes = np.asarray(codes, dtype=np.float64)
    phi_i = codes @ tau_a
    rest = (codes - np.outer(phi_i, tau_a)).mean(axis=0)
    return np.outer(np.asarray(phis, dtype=np.float64), tau_a) + rest


def disease_codes(
    codes: np.ndarray, tau_a: np.ndarray, tau_d: np.ndarray, phis: np.ndarray
) -> np.ndarray:
    """(T, L) z_D(phi) for each phi of `phis`, from a disease group's codes (N, L)."""
    codes = np.asarray(codes, dtype=np.float64)
    phi_i = codes @ tau_a
    phi_d = codes @ tau_d
    rest = (codes - np.outer(phi_i, tau_a) - np.outer(phi_d, tau_d)).mean(axis=0)
    return np.outer(np.asarray(phis, dtype=np.float64), tau_a) + phi_d.mean() * tau_d + rest


@dataclass(frozen=True)
class AgeScale:
    """phi = intercept + slope * age, fitted over the control scans (r: how well age explains
    the aging position)."""

    intercept: float
    slope: float
    r: float

    def phi(self, years: np.ndarray) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(years, dtype=np.float64)


def age_scale(codes: np.ndarray, ages: np.ndarray, tau_a: np.ndarray) -> AgeScale:
    """The least-squares line of phi_i = z_i . tau_a on age over the given (control) scans."""
    ages = np.asarray(ages, dtype=np.float64)
    keep = np.isfinite(ages)
    if keep.sum() < 3 or np.ptp(ages[keep]) == 0:
        raise PopulationAnalysisError(
            "mapping the aging direction to years needs control scans of at least 3 different ages"
        )
    phi = np.asarray(codes, dtype=np.float64)[keep] @ tau_a
    slope, intercept = np.polyfit(ages[keep], phi, 1)
    r = float(np.corrcoef(ages[keep], phi)[0, 1])
    return AgeScale(float(intercept), float(slope), r)


@dataclass(frozen=True)
class Trajectory:
    """Codes of one group at each age of `years` (T, L), and which group and formula."""

    group: str
    years: np.ndarray
    codes: np.ndarray
    disease: bool


def trajectory(
    codes: np.ndarray,
    years: np.ndarray,
    scale: AgeScale,
    tau_a: np.ndarray,
    tau_d: np.ndarray | None,
    group: str,
) -> Trajectory:
    """The group's simulated codes at each age in `years` (control formula when tau_d is
    None, the disease formula otherwise)."""
    phis = scale.phi(years)
    if tau_d is None:
        simulated = control_codes(codes, tau_a, phis)
    else:
        simulated = disease_codes(codes, tau_a, tau_d, phis)
    return Trajectory(group, np.asarray(years, dtype=np.float64), simulated, tau_d is not None)
