"""Factors -> image and ROI maps: the phantom's pure, deterministic renderer ("oracle decoder").

Contrast (a choice, justified): FLAIR-like, as in the FLAIR study the methods follow
(Vogelsanger & Federau 2020), because it is where the modelled diseases show: CSF
is dark, grey matter slightly brighter than white matter, MS lesions and
leukoencephalopathy bright. Intensities are a mix of the MNI152 tissue
probabilities with per-site tissue values (the "site" factor changes contrast the
way scanners and protocols do), plus the T1 template's residual detail (what the
tissue maps do not explain) so the image keeps the real template's texture.
Images are in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainvae.data.phantom.atlas import ATLAS_LABELS, LABEL_OF
from brainvae.data.phantom.deform import sample_fine, source_points
from brainvae.data.phantom.factors import Lesion, ScanFactors
from brainvae.data.phantom.grid import PhantomGrid, block_mean

# Per-site tissue intensities (csf, gm, wm): site 1 flattens GM/WM contrast and
# lifts CSF, site 2 sharpens it; differences of a few percent, as between scanners.
SITE_CONTRAST: tuple[tuple[float, float, float], ...] = (
    (0.10, 0.62, 0.50),
    (0.15, 0.60, 0.54),
    (0.06, 0.65, 0.46),
)
TEXTURE_GAIN = -0.5  # FLAIR inverts T1's GM/WM order, so the T1 detail enters inverted
# MS lesions are the brightest tissue on FLAIR; the leukoencephalopathy glow is clearly
# hyperintense to white matter (0.46-0.54) but dimmer than lesions, so the two stay apart.
LESION_INTENSITY = 1.0
LEUKO_INTENSITY = 0.78
LEUKO_EDGE_MM = 1.5


@dataclass
class Rendered:
    """A rendered scan: image on the output grid and partial-volume fractions of each ROI."""

    image: np.ndarray  # float32 in [0, 1], output shape
    # Atlas names + "lesions" + "leuko": fractions in [0, 1]; ventricles, lesions and leuko
    # are interpolated (volumes vary smoothly), the other regions come from nearest labels.
    rois: dict[str, np.ndarray]

    def volume_ml(self, name: str, voxel_ml: float) -> float:
        """Volume of an ROI in ml (in 2D: area times the slice thickness)."""
        return float(self.rois[name].sum()) * voxel_ml


def lesion_map(world: np.ndarray, lesions: tuple[Lesion, ...]) -> np.ndarray:
    """Soft union of ovoid lesions at world points (3, ...): 1 inside, smooth 1 mm-ish edge."""
    out = np.zeros(world.shape[1:], np.float32)
    for lesion in lesions:
        offset = world - np.asarray(lesion.centre_mm, np.float32).reshape(
            3, *([1] * (world.ndim - 1))
        )
        along = np.tensordot(np.asarray(lesion.axis, np.float32), offset, axes=1)
        across2 = np.maximum((offset**2).sum(axis=0) - along**2, 0.0)
        radius = np.sqrt((along / lesion.long_radius_mm) ** 2 + across2 / lesion.short_radius_mm**2)
        edge = 1.0 / lesion.short_radius_mm  # about 1 mm of soft boundary
        inside = np.clip((1.0 - radius) / edge + 0.5, 0.0, 1.0)
        np.maximum(out, inside, out=out)
    return out


def lesion_template_map(lesions: tuple[Lesion, ...], grid: PhantomGrid) -> np.ndarray:
    """Lesions drawn on the undeformed fine grid, each only inside its own bounding box (fast)."""
    out = np.zeros(grid.fine_shape, np.float32)
    inverse = np.linalg.inv(grid.fine_affine)
    shape = np.asarray(grid.fine_shape)
    for lesion in lesions:
        centre = inverse[:3, :3] @ np.asarray(lesion.centre_mm) + inverse[:3, 3]
        half = np.ceil((lesion.long_radius_mm + 2.0) / grid.fine_spacing)
        low = np.clip(np.floor(centre - half), 0, shape - 1).astype(int)
        high = np.clip(np.ceil(centre + half) + 1, 1, shape).astype(int)
        box = tuple(slice(a, b) for a, b in zip(low, high, strict=True))
        index = np.indices(high - low, dtype=np.float32) + low.reshape(3, 1, 1, 1)
        world = np.tensordot(grid.fine_affine[:3, :3].astype(np.float32), index, axes=1)
        world += grid.fine_affine[:3, 3].astype(np.float32).reshape(3, 1, 1, 1)
        np.maximum(out[box], lesion_map(world, (lesion,)), out=out[box])
    return out


def smooth_noise(shape: tuple[int, ...], seed: int, sigma_vox: np.ndarray) -> np.ndarray:
    """Smooth random field in [0, 1] (leukoencephalopathy patchiness), deterministic by seed."""
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(
        np.random.default_rng(seed).standard_normal(shape).astype(np.float32), sigma_vox
    )
    field /= max(float(field.std()), 1e-6)
    return np.clip(0.5 + 0.25 * field, 0.0, 1.0)


def _anatomy(factors: ScanFactors, grid: PhantomGrid):
    """Warped tissue maps, labels and disease maps on the fine grid."""
    points = source_points(factors, grid)
    names = ["gm", "wm", "csf", "brain", "texture", "ventricles"]
    names += ["exposure"] * (factors.cortical_thinning > 0) + ["distance"] * (
        factors.leuko_extent_mm > 0
    )
    maps = {name: sample_fine(grid.maps[name], points, grid) for name in names}
    labels = sample_fine(grid.labels, points, grid, order=0)
    cortex = labels == LABEL_OF["cortex"]
    exposure = maps.get("exposure", np.zeros_like(maps["gm"]))
    thin = factors.cortical_thinning * maps["gm"] * np.clip(2.0 * exposure, 0.0, 1.0) * cortex
    maps["gm"] = maps["gm"] - thin
    maps["csf"] = maps["csf"] + thin
    leuko = np.zeros(grid.fine_shape, np.float32)
    if factors.leuko_extent_mm > 0:
        sigma = 3.0 / grid.fine_spacing * (np.asarray(grid.fine_shape) > 1)
        patch = smooth_noise(grid.fine_shape, factors.leuko_seed, sigma)
        reach = 1.0 / (1.0 + np.exp((maps["distance"] - factors.leuko_extent_mm) / LEUKO_EDGE_MM))
        strength = 0.55 + 0.15 * min(max(factors.severity, 1), 3)
        leuko = (maps["wm"] * reach * (0.5 + patch) * strength).clip(0.0, 1.0).astype(np.float32)
        leuko *= labels != LABEL_OF["ventricles"]
    lesions = np.zeros(grid.fine_shape, np.float32)
    if factors.lesions:
        lesions = sample_fine(lesion_template_map(factors.lesions, grid), points, grid)
        lesions *= np.clip(1.0 - maps["csf"], 0.0, 1.0) * maps["brain"]
    return maps, labels, leuko, lesions


def _output_points(grid: PhantomGrid) -> np.ndarray:
    """Display-mm coordinates (3, *output) relative to the output grid's centre."""
    shape = grid.spec.shape
    index = np.indices(shape, dtype=np.float32)
    centre = (np.asarray(shape, np.float32) - 1) / 2
    spacing = np.asarray(grid.spec.spacing_mm, np.float32)
    return (index - centre[:, None, None, None]) * spacing[:, None, None, None]


def _bias_field(factors: ScanFactors, grid: PhantomGrid) -> np.ndarray:
    """Smooth multiplicative bias: exp(+-amplitude) across the field of view along a direction."""
    points = _output_points(grid)
    extent = max(float(np.abs(points).max()), 1.0)
    ramp = np.tensordot(np.asarray(factors.bias_direction, np.float32), points, axes=1) / extent
    return np.exp(factors.bias_amplitude * ramp).astype(np.float32)


def apply_artefacts(image: np.ndarray, artefacts: tuple[str, ...], seed: int) -> np.ndarray:
    """Leakage blobs, a missing (zeroed) band, a grid pattern: the denoising study's corruptions
    at severity 1 (brainvae.evaluation.artefacts, the one implementation any dataset uses too)."""
    from brainvae.evaluation.artefacts import corrupt_scan

    if not artefacts:
        return image.copy()
    return corrupt_scan(image, artefacts, np.random.default_rng(seed))


def render(factors: ScanFactors, grid: PhantomGrid) -> Rendered:
    """Render one scan from its factors on a grid; same inputs, same output, bit for bit."""
    maps, labels, leuko, lesions = _anatomy(factors, grid)
    csf_value, gm_value, wm_value = SITE_CONTRAST[factors.site % len(SITE_CONTRAST)]
    tissue = csf_value * maps["csf"] + gm_value * maps["gm"] + wm_value * maps["wm"]
    image = (tissue + TEXTURE_GAIN * maps["texture"]) * (maps["brain"] > 0.05)
    image = image * (1.0 - leuko) + LEUKO_INTENSITY * leuko * maps["brain"]
    image = image * (1.0 - lesions) + LESION_INTENSITY * lesions
    factors_xyz = grid.factors
    out_shape = grid.spec.output_shape
    image = block_mean(image.astype(np.float32), factors_xyz)
    image = image * _bias_field(factors, grid) * np.float32(factors.intensity_scale)
    if factors.noise_sd > 0:
        noise = np.random.default_rng(factors.noise_seed).normal(0.0, factors.noise_sd, image.shape)
        image = np.abs(image + noise.astype(np.float32))
    image = image.reshape(out_shape)
    if factors.artefacts:
        image = apply_artefacts(image, factors.artefacts, factors.artefact_seed)
    rois = {
        name: block_mean((labels == label).astype(np.float32), factors_xyz).reshape(out_shape)
        for label, name in ATLAS_LABELS.items()
    }
    rois["ventricles"] = block_mean(maps["ventricles"], factors_xyz).reshape(out_shape)
    rois["lesions"] = block_mean(lesions, factors_xyz).reshape(out_shape)
    rois["leuko"] = block_mean(leuko, factors_xyz).reshape(out_shape)
    return Rendered(image=np.clip(image, 0.0, 1.0).astype(np.float32), rois=rois)


def reference_factors() -> ScanFactors:
    """The undeformed, disease-free, nuisance-free scan (written as template.nii.gz)."""
    return ScanFactors(subject_id="template", age=20.0 + 70.0 * 0.8 / 3.8)
