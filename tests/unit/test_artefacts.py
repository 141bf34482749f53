"""The three artefacts for any image (brainvae.evaluation.artefacts): the phantom's corruption
bit for bit at severity 1, nothing at severity 0, growing in place with the severity, 2D and 3D,
each scan its own randomness, errors naming the known artefacts."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter

from brainvae.evaluation.artefacts import (
    ARTEFACTS,
    ArtefactError,
    corrupt,
    corrupt_scan,
    corrupt_scans,
)


def phantom_artefacts_before(image: np.ndarray, artefacts: tuple[str, ...], seed: int):
    """render.apply_artefacts as it was before it called brainvae.evaluation.artefacts
    (commit 46b49f0), verbatim: the reference the shared implementation must match bit for bit."""
    rng = np.random.default_rng(seed)
    image = image.copy()
    shape = np.asarray(image.shape)
    if "leakage" in artefacts:
        index = np.indices(image.shape, dtype=np.float32)
        brain = np.argwhere(image > 0.3)
        for _ in range(int(rng.integers(1, 4))):
            centre = brain[int(rng.integers(len(brain)))] if len(brain) else shape / 2
            sigma = float(rng.uniform(0.02, 0.05)) * shape.max()
            distance2 = sum((index[a] - centre[a]) ** 2 for a in range(image.ndim))
            blob = float(rng.uniform(0.6, 1.0)) * np.exp(-distance2 / (2 * sigma**2))
            image = np.maximum(image, blob.astype(np.float32))
    if "missing" in artefacts:
        axis = int(rng.integers(image.ndim))
        width = max(1, int(shape[axis] * rng.uniform(0.05, 0.12)))
        inside = np.flatnonzero(
            (image > 0.3).any(axis=tuple(a for a in range(image.ndim) if a != axis))
        )
        low, high = (int(inside[0]), int(inside[-1]) + 1) if inside.size else (0, int(shape[axis]))
        start = int(rng.integers(low, max(low + 1, high - width)))  # the band crosses the brain
        band = [slice(None)] * image.ndim
        band[axis] = slice(start, start + width)
        image[tuple(band)] = 0.0
    if "grid" in artefacts:
        period = int(rng.integers(6, 10))
        lines = np.ones(image.shape, np.float32)
        for axis in range(image.ndim):
            keep = (np.arange(image.shape[axis]) % period) == 0
            view = [None] * image.ndim
            view[axis] = slice(None)
            lines = lines * np.where(keep[tuple(view)], 0.6, 1.0)
        image = image * lines
    return image


def brain_like(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """A smooth bright ellipsoid with texture on a dark background, values in [0, 1]."""
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    radius = np.sqrt(sum((g / 0.8) ** 2 for g in grid))
    texture = gaussian_filter(np.random.default_rng(seed).standard_normal(shape), 1.5)
    image = np.clip(1.2 - radius, 0, 1) * (0.55 + 0.4 * texture / np.abs(texture).max())
    return np.clip(image, 0, 1).astype(np.float32)


ALL_COMBINATIONS = [c for k in (1, 2, 3) for c in combinations(ARTEFACTS, k)]


@pytest.fixture(scope="module")
def phantom_scans(sample_data_dir) -> list[np.ndarray]:
    """Two rendered phantom scans as shipped (2D slice and 3D volume), read from NIfTI."""
    from brainvae.data.io.nifti import read_nifti

    return [
        read_nifti(sample_data_dir / f"population_{dims}" / "images" / "sub-0001_ses-1.nii.gz").data
        for dims in ("2d", "3d")
    ]


@pytest.mark.parametrize("artefacts", ALL_COMBINATIONS, ids="+".join)
def test_phantom_corruption_is_bit_identical_to_the_code_it_replaced(phantom_scans, artefacts):
    from brainvae.data.phantom.render import apply_artefacts

    for image in [*phantom_scans, brain_like((20, 24, 18), 3)]:
        assert image.dtype == np.float32
        for seed in (0, 1, 7, 2**31 - 5):
            before = phantom_artefacts_before(image, artefacts, seed)
            after = apply_artefacts(image, artefacts, seed)
            assert after.dtype == before.dtype
            assert np.array_equal(after, before), (artefacts, seed, image.shape)
            assert not np.array_equal(after, image)


@pytest.mark.parametrize("shape", [(4, 40, 48), (3, 20, 24, 18)], ids=["2d", "3d"])
@pytest.mark.parametrize("artefact", ARTEFACTS)
def test_severity_zero_changes_nothing_and_more_severity_grows_in_place(shape, artefact):
    images = np.stack([brain_like(shape[1:], i) for i in range(shape[0])])
    none = corrupt(images, artefact, severity=0.0, seed=5)
    assert np.array_equal(none.images, images) and not none.changed.any()
    previous_change = np.zeros(images.shape)
    previous_region = np.zeros(images.shape, bool)
    for severity in (0.5, 1.0, 2.0):
        result = corrupt(images, artefact, severity=severity, seed=5)
        assert result.images.shape == images.shape and result.images.dtype == images.dtype
        assert result.artefact == artefact and result.severity == severity
        change = np.abs(result.images.astype(np.float64) - images)
        assert np.array_equal(result.changed, change > 0.01)
        if severity >= 1:  # weaker blobs can hide under bright tissue (they replace darker)
            assert result.changed.reshape(len(images), -1).any(axis=1).all()
        # the same draws at every severity: the region only grows, the change only deepens
        assert not (previous_region & ~result.changed).any()
        assert (change >= previous_change - 1e-6).all()
        previous_change, previous_region = change, result.changed
        assert result.images.max() <= 1.0  # blobs saturate at the bright end of [0, 1]


def test_the_batch_is_the_per_scan_corruption_each_scan_its_own_draws():
    images = np.stack([brain_like((40, 48), 0)] * 6)  # the same scan six times
    for artefact in ARTEFACTS:
        whole = corrupt(images, artefact, seed=11)
        pictures = {whole.images[i].tobytes() for i in range(6)}
        assert len(pictures) > 1, artefact  # different draws per scan
        part = corrupt_scans(images[2:5], artefact, seed=11, positions=[2, 3, 4])
        assert np.array_equal(part.images, whole.images[2:5])
        assert np.array_equal(part.changed, whole.changed[2:5])
        again = corrupt(images, artefact, seed=11)
        assert np.array_equal(again.images, whole.images)
        other = corrupt(images, artefact, seed=12)
        assert not np.array_equal(other.images, whole.images)


def test_the_grid_batched_by_period_matches_the_one_scan_implementation():
    from brainvae.evaluation.artefacts import scan_generator

    images = np.stack([brain_like((36, 30), i) for i in range(8)])
    result = corrupt(images, "grid", severity=1.5, seed=3)
    for i in range(8):
        one = corrupt_scan(images[i], ("grid",), scan_generator(3, "grid", i), severity=1.5)
        assert np.array_equal(result.images[i], one.astype(np.float32))


def test_the_brain_mask_places_blobs_and_bands_inside_it():
    images = np.stack([brain_like((60, 60), i) for i in range(5)])
    mask = np.zeros((60, 60), bool)
    mask[40:55, 5:20] = True  # a corner the default rule would rarely pick
    blobs = corrupt(images, "leakage", severity=0.5, seed=2, brain_mask=mask)
    for i in range(5):
        added = blobs.images[i] - images[i]
        peak = np.unravel_index(np.argmax(added), added.shape)
        assert mask[peak]
    bands = corrupt(images, "missing", seed=2, brain_mask=mask)
    for i in range(5):
        zeroed = (bands.images[i] == 0) & (images[i] != 0)
        assert (zeroed & mask).any()
    with pytest.raises(ArtefactError, match=r"\(60, 60\)"):
        corrupt(images, "grid", brain_mask=np.ones((10, 10), bool))


def test_scans_outside_zero_one_are_corrupted_on_their_own_scale():
    """z-scored-like data: background -60, bright end about 84; the band takes the background,
    the blobs rise from it (the background elsewhere stays), the brain rule scales too."""
    image = brain_like((48, 48), 4)
    scaled = (image - 0.3) * 200.0
    background, bright = scaled.min(), np.percentile(scaled, 99.9)
    result = corrupt(scaled[None], "missing", seed=1)
    zeroed = result.images[0] != scaled
    assert zeroed.any() and np.all(result.images[0][zeroed] == background)
    assert np.array_equal(
        result.changed[0], zeroed & (scaled - background > 0.01 * (bright - background))
    )
    blobs = corrupt(scaled[None], "leakage", seed=1)
    added = blobs.images[0] - scaled
    assert added.min() >= 0 and added.max() > 0.1 * (bright - background)
    assert blobs.images[0][added > 0].max() <= bright + 1e-3  # a blob peaks at most at bright
    dark = scaled == background
    assert blobs.changed[0][dark].mean() < 0.5  # not the whole background lifted to 0


def test_bad_requests_name_what_is_wrong():
    images = np.zeros((2, 8, 8), np.float32)
    with pytest.raises(ArtefactError, match="known: leakage, missing, grid"):
        corrupt(images, "ghosting")
    with pytest.raises(ArtefactError, match="severity"):
        corrupt(images, "grid", severity=-1)
    with pytest.raises(ArtefactError, match="severity"):
        corrupt(images, "grid", severity=float("nan"))
    with pytest.raises(ArtefactError, match="seed"):
        corrupt(images, "grid", seed=-3)
    with pytest.raises(ArtefactError, match=r"\(N, \*spatial\)"):
        corrupt(np.zeros(8), "grid")


@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from([(20, 24), (17, 31), (9, 12, 10), (12, 7, 15)]),
    texture_seed=st.integers(0, 1000),
    seed=st.integers(0, 2**32 - 1),
    artefacts=st.sampled_from(ALL_COMBINATIONS),
    dark=st.booleans(),
)
def test_any_scan_and_seed_matches_the_replaced_code(shape, texture_seed, seed, artefacts, dark):
    """Bit for bit on random grids, seeds and combinations, also for a scan with no voxel
    above the brain level (the blobs then sit at the centre, the band anywhere)."""
    from brainvae.data.phantom.render import apply_artefacts

    image = brain_like(shape, texture_seed) * (0.25 if dark else 1.0)
    before = phantom_artefacts_before(image, artefacts, seed)
    after = apply_artefacts(image, artefacts, seed)
    assert after.dtype == before.dtype and np.array_equal(after, before)
