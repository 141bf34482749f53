"""Shared ground truth for projective-field tests: the oracle, a PCA fit and the checks."""

from __future__ import annotations

import numpy as np

from helpers.oracle_model import make_phantom, oracle_setup, sample_factors


def small_oracle(shape: tuple[int, ...] = (24, 30), n: int = 40, seed: int = 0):
    """(phantom, images, factors, model) on a small grid: rendering is the slow part."""
    return oracle_setup(shape, n=n, seed=seed)


def local_pca(shape: tuple[int, ...] = (48, 60), seed: int = 0):
    """(phantom, factors, model): an 8-component PCA of a population of eight local factors
    (ventricle, lesions, cortex, five nuclei), as test_receptive_field.py builds it."""
    from brainvae.models import ModelConfig, build_model

    phantom = make_phantom(shape, lesion_amplitude=0.6, ventricle_edge=0.04, n_nuclei=5)
    factors = sample_factors(160, seed, phantom.n_factors)
    images = phantom.render(factors, noise_sd=0.01, seed=seed + 1)
    config = ModelConfig(input_shape=shape, latent_dim=8, family="pca", likelihood="gaussian")
    return phantom, factors, images, build_model(config).fit(images)


def variance_share(variance_map: np.ndarray, region: np.ndarray, dilation: int = 0) -> float:
    """Share of a map's total variance inside a region (dilated by `dilation` voxels)."""
    from scipy.ndimage import binary_dilation

    region = np.asarray(region, dtype=bool)
    if dilation:
        region = binary_dilation(region, iterations=dilation)
    total = float(np.sum(variance_map))
    return float(np.sum(variance_map[region]) / total) if total > 0 else 0.0


def ground_truth_holds(total_variance: np.ndarray, phantom) -> bool:
    """The oracle's truth: z1 (ventricle) varies >= 80 % inside the ventricle zone dilated by 2,
    z2 (lesions) >= 80 % inside the lesion zone dilated by 2, and z3 (cortex intensity) puts
    < 5 % of its variance in the ventricle zone and >= 80 % in the cortex."""
    ventricle, lesion, cortex = (np.asarray(total_variance[k]) for k in range(3))
    return (
        variance_share(ventricle, phantom.ventricle_zone, 2) >= 0.8
        and variance_share(lesion, phantom.lesion_zone, 2) >= 0.8
        and variance_share(cortex, phantom.ventricle_zone, 2) < 0.05
        and variance_share(cortex, phantom.cortex, 1) >= 0.8
    )


class PatternConfig:
    """The parts of ModelConfig the analyses read."""

    def __init__(self, shape: tuple[int, ...], latent_dim: int) -> None:
        self.input_shape, self.latent_dim, self.channels, self.family = (
            shape,
            latent_dim,
            1,
            "pattern",
        )

    @property
    def dims(self) -> int:
        return len(self.input_shape)


class PatternModel:
    """A linear latent model whose encoder reads `read[k]` and decoder writes `write[k]`:
    mu_k = <read_k, x - template>, decode(z) = template + sum_k z_k write_k (numpy in and out).
    With read = write the encoder and decoder share one spatial pattern."""

    def __init__(self, template: np.ndarray, read: np.ndarray, write: np.ndarray) -> None:
        self.template = np.asarray(template, dtype=np.float64)
        self.read = np.asarray(read, dtype=np.float64).reshape(len(read), -1)
        self.write = np.asarray(write, dtype=np.float64).reshape(len(write), -1)
        self.config = PatternConfig(self.template.shape, len(self.read))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def eval(self) -> PatternModel:
        return self

    def encode(self, x) -> tuple[np.ndarray, np.ndarray]:
        flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1) - self.template.reshape(1, -1)
        mu = flat @ self.read.T
        return mu, np.full_like(mu, -4.0)

    def decode(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        flat = self.template.reshape(1, -1) + z @ self.write
        return flat.reshape(len(z), *self.template.shape)


def sized_rois(shape: tuple[int, int] = (40, 40)) -> tuple[np.ndarray, np.ndarray]:
    """(labels, template): four ROIs of very different sizes (600, 150, 36, 9 voxels; labels
    1..4, the biggest first) on a grey template, the rest background (label 0, but brain)."""
    labels = np.zeros(shape, dtype=np.int32)
    labels[0:15, 0:40] = 1  # 600
    labels[20:30, 0:15] = 2  # 150
    labels[20:26, 20:26] = 3  # 36
    labels[32:35, 32:35] = 4  # 9
    return labels, np.full(shape, 0.5)


SHARED_AMPLITUDES = (0.1, 0.3, 0.9, 2.0)
"""Per-voxel weight of the shared pattern in ROIs 1..4: small where the ROI is big, so the raw
impact (weight^2 x size^2 for a linear encoder) ranks the ROIs the other way round from the
per-voxel fields (weight^2 and weight^2 x size)."""


def pattern_population(model: PatternModel, n: int = 60, seed: int = 0) -> np.ndarray:
    """(n, *shape) images: the model's decodes of N(0, 1) codes plus light noise."""
    rng = np.random.default_rng(seed)
    images = model.decode(rng.normal(size=(n, model.latent_dim)))
    return (images + rng.normal(scale=0.01, size=images.shape)).astype(np.float32)


class HingeModel(PatternModel):
    """PatternModel plus a bend far on the negative side of latent 0: decode adds
    (min(z_0 + hinge, 0))^2 * bend, so beyond c = -hinge the `bend` region changes (an
    extrapolation artefact) while the positive side stays linear."""

    def __init__(self, template, read, write, bend: np.ndarray, hinge: float) -> None:
        super().__init__(template, read, write)
        self.bend, self.hinge = np.asarray(bend, dtype=np.float64).reshape(1, -1), float(hinge)

    def decode(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        linear = super().decode(z).reshape(len(z), -1)
        far = np.minimum(z[:, :1] + self.hinge, 0.0) ** 2
        return (linear + far * self.bend).reshape(len(z), *self.template.shape)
