"""Ground truth for receptive-field tests: a local-factor phantom and an oracle latent model.

The phantom is a simplified, fast stand-in for brainvae.data.phantom on a small template
(2D or 3D): every factor changes only its own region. ventricle_size grows a dark central
ventricle inside the ventricle zone; lesion_load scales bright blobs at fixed periventricular
sites (truncated Gaussians: nothing outside the lesion zone changes); cortex_intensity brightens
the rim. The "untouched" region is brain that no factor changes. The oracle model's latents are
the factors: decode renders the phantom from them, encode is a ridge (least-squares) linear
read-out fitted on the population, so which ROI should move which latent is known by
construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

FACTORS = ("ventricle_size", "lesion_load", "cortex_intensity")
ROI_NAMES = ("ventricles", "lesion_zone", "cortex", "untouched")
EXPECTED_TOP = {"ventricles": 0, "lesion_zone": 1, "cortex": 2}
"""For the oracle: the latent (factor index) each ROI must move most."""


@dataclass(frozen=True)
class Phantom:
    """A small template with the regions each factor may change (boolean masks)."""

    shape: tuple[int, ...]
    coords: np.ndarray  # (D, *shape) normalised coordinates in [-1, 1]
    brain: np.ndarray
    ventricle_zone: np.ndarray
    lesion_sites: np.ndarray  # (S, D) centres, normalised units
    lesion_sd: float  # normalised units
    lesion_amplitude: float
    cortex: np.ndarray
    untouched: np.ndarray
    ventricle_edge: float = 0.02  # width of the ventricle wall's logistic ramp, normalised
    nuclei: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (K, D) centres

    @property
    def n_factors(self) -> int:
        return len(FACTORS) + len(self.nuclei)

    def nucleus_field(self, index: int) -> np.ndarray:
        """A truncated Gaussian (sd NUCLEUS_SD, 2.5 sd) at nucleus `index`."""
        return _blob(self.coords, self.nuclei[index], NUCLEUS_SD)

    @property
    def lesion_zone(self) -> np.ndarray:
        return self.lesion_field(1.0) > 0

    def lesion_field(self, load: float) -> np.ndarray:
        """Sum of truncated Gaussian blobs (2.5 sd) at the sites, scaled by the load."""
        blobs = sum(_blob(self.coords, site, self.lesion_sd) for site in self.lesion_sites)
        return load * self.lesion_amplitude * blobs * self.brain

    def render(self, factors: np.ndarray, noise_sd: float = 0.0, seed: int = 0) -> np.ndarray:
        """(N, *shape) float32 images from (N, n_factors) factors, each in about [0, 1].

        Columns: FACTORS, then one intensity factor per nucleus (a local bright blob).
        """
        factors = np.atleast_2d(np.asarray(factors, dtype=np.float64))
        radius = np.sqrt((self.coords**2).sum(axis=0))
        vent_r = np.sqrt(sum((self.coords[a] / _VENT_AXES[a]) ** 2 for a in range(len(self.shape))))
        unit_lesion = self.lesion_field(1.0)
        nuclei = [self.nucleus_field(j) for j in range(len(self.nuclei))]
        rng = np.random.default_rng(seed)
        images = np.empty((len(factors), *self.shape), dtype=np.float32)
        for i, (ventricle, lesion, cortex, *extra) in enumerate(factors):
            image = np.where(self.brain, 0.5, 0.0)
            edge = 0.1 + 0.12 * ventricle
            dark = 1.0 / (1.0 + np.exp((vent_r - edge) / self.ventricle_edge))
            image = np.where(self.ventricle_zone, image - 0.4 * dark, image)
            image = image + lesion * unit_lesion
            image = np.where(
                self.cortex, image + 0.3 * cortex * (radius - CORTEX_INNER) / 0.1, image
            )
            for amount, nucleus in zip(extra, nuclei, strict=True):
                image = image + NUCLEUS_AMPLITUDE * amount * nucleus
            if noise_sd > 0:
                image = image + noise_sd * rng.standard_normal(self.shape) * self.brain
            images[i] = image
        return images

    def roi_labels(self) -> np.ndarray:
        """Integer labels 1..4 in ROI_NAMES order (ventricles, lesion_zone, cortex, untouched)."""
        labels = np.zeros(self.shape, dtype=np.int16)
        for label, mask in enumerate(
            (self.ventricle_zone, self.lesion_zone, self.cortex, self.untouched), start=1
        ):
            labels[mask & (labels == 0)] = label
        return labels


def _blob(coords: np.ndarray, centre: np.ndarray, sd: float) -> np.ndarray:
    """exp(-d^2 / 2 sd^2), exactly zero beyond 2.5 sd: strictly local."""
    d2 = sum((coords[a] - centre[a]) ** 2 for a in range(len(coords)))
    return np.where(d2 <= (2.5 * sd) ** 2, np.exp(-d2 / (2 * sd**2)), 0.0)


NUCLEUS_SD = 0.05
NUCLEUS_AMPLITUDE = 0.3
NUCLEUS_CENTRES = ((-0.45, -0.45), (-0.15, -0.6), (0.15, -0.6), (0.45, -0.45), (-0.3, 0.55))
"""Extra local factors for the PCA population (2D, normalised units), none in another region."""
_VENT_AXES = (1.0, 1.3, 1.0)
VENTRICLE_ZONE = 0.3
CORTEX_INNER = 0.8


def make_phantom(
    shape: tuple[int, ...] = (32, 40),
    lesion_sd: float = 0.09,
    lesion_amplitude: float = 0.5,
    ventricle_edge: float = 0.02,
    n_nuclei: int = 0,
) -> Phantom:
    """The template and regions on a grid of 2 or 3 axes (nuclei: 2D only, up to 5)."""
    axes = [np.linspace(-1.0, 1.0, n) for n in shape]
    coords = np.stack(np.meshgrid(*axes, indexing="ij"))
    radius = np.sqrt((coords**2).sum(axis=0))
    brain = radius < 0.9
    vent_r = np.sqrt(sum((coords[a] / _VENT_AXES[a]) ** 2 for a in range(len(shape))))
    ventricle_zone = vent_r < VENTRICLE_ZONE
    sites = np.zeros((2, len(shape)))
    sites[:, 0] = (-0.55, 0.55)
    cortex = brain & (radius >= CORTEX_INNER)
    site_distance = np.min(
        [np.sqrt(((coords - site.reshape(-1, *([1] * len(shape)))) ** 2).sum(0)) for site in sites],
        axis=0,
    )
    untouched = (radius < CORTEX_INNER - 0.05) & (vent_r > VENTRICLE_ZONE + 0.1)
    untouched &= (site_distance > 2.5 * lesion_sd + 0.1) & (coords[1] > 0.3) & (coords[0] > 0.1)
    if len(shape) == 3:
        untouched &= np.abs(coords[2]) < 0.5
    phantom = Phantom(
        shape=tuple(shape),
        coords=coords,
        brain=brain,
        ventricle_zone=ventricle_zone,
        lesion_sites=sites,
        lesion_sd=lesion_sd,
        lesion_amplitude=lesion_amplitude,
        cortex=cortex,
        untouched=untouched,
        ventricle_edge=ventricle_edge,
        nuclei=np.asarray(NUCLEUS_CENTRES[:n_nuclei], dtype=np.float64).reshape(-1, len(shape)),
    )
    lesions = phantom.lesion_zone
    overlap = (ventricle_zone & lesions) | (cortex & (ventricle_zone | lesions))
    overlap |= untouched & (ventricle_zone | lesions | cortex)
    for j in range(n_nuclei):
        overlap |= (phantom.nucleus_field(j) > 0) & (ventricle_zone | lesions | cortex | untouched)
    assert not overlap.any(), "phantom regions overlap: adjust the geometry"
    return phantom


def sample_factors(n: int, seed: int = 0, n_factors: int = len(FACTORS)) -> np.ndarray:
    """(n, n_factors) independent factors, uniform in [0, 1]."""
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, n_factors))


@dataclass(frozen=True)
class OracleConfig:
    """The parts of ModelConfig the analyses read."""

    input_shape: tuple[int, ...]
    latent_dim: int = len(FACTORS)
    channels: int = 1
    family: str = "oracle"

    @property
    def dims(self) -> int:
        return len(self.input_shape)


class OracleModel:
    """LatentModel-compatible: latents are the phantom's factors (encode returns numpy)."""

    def __init__(self, phantom: Phantom, images: np.ndarray, factors: np.ndarray, ridge=1e-3):
        self.phantom = phantom
        self.config = OracleConfig(input_shape=phantom.shape)
        flat = images.reshape(len(images), -1).astype(np.float64)
        self.image_mean = flat.mean(axis=0)
        self.factor_mean = factors.mean(axis=0)
        centred, targets = flat - self.image_mean, factors - self.factor_mean
        gram = centred @ centred.T
        penalty = ridge * np.trace(gram) / len(gram)
        dual = np.linalg.solve(gram + penalty * np.eye(len(gram)), targets)
        self.readout = centred.T @ dual  # (P, L): ridge least squares, in the images' span
        residual = targets - centred @ self.readout
        self.logvar = np.log(np.maximum(residual.var(axis=0), 1e-12))
        self.encode_calls = 0

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def eval(self) -> OracleModel:
        return self

    def encode(self, x) -> tuple[np.ndarray, np.ndarray]:
        self.encode_calls += 1
        flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        mu = (flat - self.image_mean) @ self.readout + self.factor_mean
        return mu, np.broadcast_to(self.logvar, mu.shape).copy()

    def decode(self, z) -> np.ndarray:
        return self.phantom.render(np.asarray(z))


def oracle_setup(shape: tuple[int, ...], n: int = 120, seed: int = 0):
    """(phantom, images, factors, model): a population with light noise and its oracle."""
    phantom = make_phantom(shape)
    factors = sample_factors(n, seed)
    images = phantom.render(factors, noise_sd=0.01, seed=seed + 1)
    return phantom, images, factors, OracleModel(phantom, images, factors)


def ranking_holds(
    impact: np.ndarray,
    roi_names: Sequence[str],
    expected_top: Mapping[str, int],
    untouched: Sequence[str] = (),
    near_zero: float = 0.02,
) -> bool:
    """True when each ROI's largest impact is on its expected latent and every untouched ROI's
    impacts stay below near_zero times the largest impact of the matrix."""
    impact = np.asarray(impact)
    names = list(roi_names)
    for roi, latent in expected_top.items():
        if int(np.argmax(impact[names.index(roi)])) != latent:
            return False
    largest = float(impact.max())
    return all(float(impact[names.index(roi)].max()) <= near_zero * largest for roi in untouched)
