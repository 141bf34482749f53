"""MSE, SSIM and CW-SSIM: the batched pyramid against pyrtools, CW-SSIM against plenoptic's
pyramid with Sampat's formula transcribed, SSIM against scikit-image, the known properties
(identity, one-pixel shift, noise, 3D slice by slice) on the shipped sample scans, and bad
input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from brainvae.errors import ModelError
from brainvae.evaluation.image_quality import (
    ImageScores,
    cw_ssim,
    default_cw_ssim_scales,
    image_scores,
    mse,
    ssim,
)
from brainvae.evaluation.steerable import complex_bands

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"

# plenoptic's pyramid differs from pyrtools' by ~1e-8 of a coefficient's size (its own
# lookup-table interpolation of the radial and angular masks, and float round-off in torch's
# FFT); CW-SSIM is a ratio of windowed sums of those coefficients: measured worst 6.7e-10
# over 36 sample-scan pairs (3 noise levels, with and without the brain mask).
PLENOPTIC_TOLERANCE = 1e-8


def _sample_scans(dims: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` shipped sample scans (N, *spatial) in [0, 1] and the brain mask."""
    import nibabel as nib

    folder = SAMPLE / f"population_{dims}d"
    files = sorted((folder / "images").glob("*.nii.gz"))[:count]
    scans = np.stack([np.squeeze(np.asarray(nib.load(f).dataobj, np.float64)) for f in files])
    mask = np.squeeze(np.asarray(nib.load(folder / "brain_mask.nii.gz").dataobj)) > 0
    return scans, mask


@pytest.fixture(scope="module")
def scans_2d():
    return _sample_scans(2, 3)


@pytest.fixture(scope="module")
def scans_3d():
    return _sample_scans(3, 2)


# --- the batched pyramid is pyrtools' pyramid ---------------------------------------------


@pytest.mark.parametrize(("shape", "scales"), [((64, 80), 3), ((37, 45), 2), ((48, 40), 2)])
def test_batched_pyramid_equals_pyrtools_image_by_image(shape, scales):
    from pyrtools.pyramids import SteerablePyramidFreq

    images = np.random.default_rng(3).random((3, *shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyrtools warns about odd sizes (reconstruction only)
        pyramids = [SteerablePyramidFreq(im, scales, order=3, is_complex=True) for im in images]
    seen = 0
    for scale, orientation, band in complex_bands(images, scales, orientations=4):
        for i, pyramid in enumerate(pyramids):
            np.testing.assert_allclose(
                band[i], pyramid.pyr_coeffs[(scale, orientation)], rtol=0, atol=1e-10
            )
        seen += 1
    assert seen == scales * 4


# --- CW-SSIM against an independent pyramid and a transcription of Sampat's formula ---------


def _reference_cw_ssim(x, y, mask=None, scales=3, orientations=4, window=7, k=0.01):
    """plenoptic's torch pyramid, one image, and the formula written out band by band."""
    import plenoptic
    import torch
    from scipy.signal import correlate2d

    pyramid = plenoptic.process.SteerablePyramidFreq(
        x.shape, height=scales, order=orientations - 1, is_complex=True
    )
    stacked = torch.as_tensor(np.stack([x, y])[:, None], dtype=torch.float64)
    coefficients = pyramid(stacked)
    ones = np.ones((window, window))
    weights = None if mask is None else mask.astype(float)
    edge = window // 2
    band_values = []
    for scale in range(scales):
        if weights is not None and scale > 0:  # [1, 2, 1] / 4 with edge padding, then halve
            padded = np.pad(weights, 1, mode="edge")
            rows = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
            weights = 0.25 * rows[:, :-2] + 0.5 * rows[:, 1:-1] + 0.25 * rows[:, 2:]
            weights = weights[::2, ::2]
        for orientation in range(orientations):
            cx = coefficients[scale][0, 0, orientation].numpy()
            cy = coefficients[scale][1, 0, orientation].numpy()
            cross = correlate2d(cx * np.conj(cy), ones, mode="valid")
            power = correlate2d(np.abs(cx) ** 2 + np.abs(cy) ** 2, ones, mode="valid")
            local = (2 * np.abs(cross) + k) / (power + k)
            if weights is None:
                band_values.append(local.mean())
                continue
            w = weights[edge : edge + local.shape[0], edge : edge + local.shape[1]]
            if w.sum() > 0:
                band_values.append((local * w).sum() / w.sum())
    return float(np.mean(band_values))


def test_cw_ssim_matches_plenoptic_pyramid_and_transcribed_formula(scans_2d):
    scans, mask = scans_2d
    noisy = scans + np.random.default_rng(0).normal(0, 0.05, scans.shape)
    ours = cw_ssim(scans, noisy)
    ours_masked = cw_ssim(scans, noisy, mask)
    scales = default_cw_ssim_scales(scans.shape[1:])
    for i in range(len(scans)):
        reference = _reference_cw_ssim(scans[i], noisy[i], scales=scales)
        assert ours[i] == pytest.approx(reference, abs=PLENOPTIC_TOLERANCE)
        masked = _reference_cw_ssim(scans[i], noisy[i], mask, scales=scales)
        assert ours_masked[i] == pytest.approx(masked, abs=PLENOPTIC_TOLERANCE)
    # the mask changes the score (the noise is everywhere, the brain is not)
    assert np.abs(ours - ours_masked).min() > 1e-3


def test_cw_ssim_options_reach_the_computation():
    rng = np.random.default_rng(1)
    x = rng.random((2, 64, 64))
    y = x + rng.normal(0, 0.1, x.shape)
    base = cw_ssim(x, y)
    assert default_cw_ssim_scales((64, 64)) == 3
    assert base[0] == pytest.approx(
        _reference_cw_ssim(x[0], y[0], scales=3), abs=PLENOPTIC_TOLERANCE
    )
    other = cw_ssim(x, y, scales=1, orientations=6, window=5, k=0.1)
    assert other[0] == pytest.approx(
        _reference_cw_ssim(x[0], y[0], scales=1, orientations=6, window=5, k=0.1), abs=1e-7
    )
    assert np.abs(base - other).min() > 1e-3


# --- known properties ----------------------------------------------------------------------


def test_cw_ssim_of_a_scan_with_itself_is_one(scans_2d, scans_3d):
    scans, mask = scans_2d
    np.testing.assert_allclose(cw_ssim(scans, scans), 1.0, atol=1e-12)
    np.testing.assert_allclose(cw_ssim(scans, scans, mask), 1.0, atol=1e-12)
    volumes, volume_mask = scans_3d
    np.testing.assert_allclose(cw_ssim(volumes, volumes, volume_mask), 1.0, atol=1e-12)


@pytest.mark.parametrize("axis", [1, 2])
def test_one_pixel_shift_keeps_cw_ssim_near_one_where_ssim_drops(scans_2d, axis):
    scans, mask = scans_2d
    shifted = np.roll(scans, 1, axis=axis)  # background at the border: a plain translation
    complex_scores = cw_ssim(scans, shifted, mask)
    plain_scores = ssim(scans, shifted, mask=mask)
    # measured on the sample: CW-SSIM 0.978-0.983, SSIM 0.79-0.89
    assert complex_scores.min() > 0.97
    assert plain_scores.max() < 0.92
    assert (1 - complex_scores).max() < (1 - plain_scores).min() / 4


def test_cw_ssim_falls_with_noise_monotonically(scans_2d):
    scans, mask = scans_2d
    noise = np.random.default_rng(2).normal(0, 1, scans.shape)
    levels = [0.0, 0.01, 0.03, 0.1, 0.3]
    unmasked = np.array([cw_ssim(scans, scans + sd * noise) for sd in levels])
    masked = np.array([cw_ssim(scans, scans + sd * noise, mask) for sd in levels])
    for scores in (unmasked, masked):
        assert (np.diff(scores, axis=0) < 0).all()
        assert scores[-1].max() < 0.7


@pytest.mark.parametrize("slice_axis", [0, 1, 2])
def test_3d_cw_ssim_is_the_mean_of_2d_slices(scans_3d, slice_axis):
    volumes, mask = scans_3d
    degraded = volumes + np.random.default_rng(4).normal(0, 0.05, volumes.shape)
    scores = cw_ssim(volumes, degraded, mask, slice_axis=slice_axis)
    whole = cw_ssim(volumes, degraded, slice_axis=slice_axis)
    for v in range(len(volumes)):
        planes_x = np.moveaxis(volumes[v], slice_axis, 0)
        planes_y = np.moveaxis(degraded[v], slice_axis, 0)
        planes_mask = np.moveaxis(mask, slice_axis, 0)
        brain = planes_mask.any(axis=(1, 2))
        assert 0 < brain.sum() < len(brain)  # some slices hold no brain: they are skipped
        per_slice = cw_ssim(planes_x[brain], planes_y[brain], planes_mask[brain])
        assert scores[v] == pytest.approx(per_slice.mean(), abs=1e-12)
        assert whole[v] == pytest.approx(cw_ssim(planes_x, planes_y).mean(), abs=1e-12)


def test_default_scales_rule():
    assert default_cw_ssim_scales((128, 160)) == 4  # bands 128, 64, 32, 16 >= 14
    assert default_cw_ssim_scales((48, 40)) == 2  # 40, 20; 10 < 14
    assert default_cw_ssim_scales((14, 30)) == 1
    with pytest.raises(ModelError, match="at least 14 pixels"):
        default_cw_ssim_scales((12, 40))


# --- SSIM and MSE against their references ---------------------------------------------------


def test_ssim_equals_skimage_per_image_2d_and_3d(scans_2d, scans_3d):
    from skimage.metrics import structural_similarity

    for stack, _mask in (scans_2d, scans_3d):
        other = np.clip(stack + np.random.default_rng(5).normal(0, 0.05, stack.shape), 0, 1)
        ours = ssim(stack, other)
        for i in range(len(stack)):
            expected = structural_similarity(stack[i], other[i], data_range=1.0)
            assert ours[i] == pytest.approx(expected, abs=1e-10)
        half_range = ssim(stack, other, data_range=0.5)
        assert half_range[0] == pytest.approx(
            structural_similarity(stack[0], other[0], data_range=0.5), abs=1e-10
        )


def test_masked_ssim_averages_the_skimage_map_inside_the_brain(scans_2d):
    from skimage.metrics import structural_similarity

    scans, mask = scans_2d
    other = np.roll(scans, 2, axis=2)
    ours = ssim(scans, other, mask)
    for i in range(len(scans)):
        _, ssim_map = structural_similarity(scans[i], other[i], data_range=1.0, full=True)
        inner = (slice(3, -3), slice(3, -3))
        assert ours[i] == pytest.approx(ssim_map[inner][mask[inner]].mean(), abs=1e-12)
    assert np.abs(ours - ssim(scans, other)).min() > 1e-3


def test_mse_equals_numpy_with_and_without_masks(scans_3d):
    volumes, mask = scans_3d
    other = volumes[::-1]
    np.testing.assert_allclose(mse(volumes, other), ((volumes - other) ** 2).mean(axis=(1, 2, 3)))
    expected = [((volumes[i] - other[i])[mask] ** 2).mean() for i in range(len(volumes))]
    np.testing.assert_allclose(mse(volumes, other, mask), expected, rtol=1e-12)
    per_scan = np.stack([mask, np.roll(mask, 3, axis=0)])
    expected = [((volumes[i] - other[i])[per_scan[i]] ** 2).mean() for i in range(2)]
    np.testing.assert_allclose(mse(volumes, other, per_scan), expected, rtol=1e-12)


def test_image_scores_table_and_summary(scans_2d):
    scans, mask = scans_2d
    noisy = scans + np.random.default_rng(6).normal(0, 0.05, scans.shape)
    scores = image_scores(scans, noisy, mask)
    assert isinstance(scores, ImageScores)
    np.testing.assert_allclose(scores.cw_ssim, cw_ssim(scans, noisy, mask))
    np.testing.assert_allclose(scores.ssim, ssim(scans, noisy, mask))
    np.testing.assert_allclose(scores.mse, mse(scans, noisy, mask))
    table = scores.table()
    assert list(table.columns) == ["scan", "mse", "ssim", "cw_ssim"]
    assert table["scan"].tolist() == [0, 1, 2]
    summary = scores.summary()
    assert summary["ssim_mean"] == pytest.approx(scores.ssim.mean())
    assert summary["cw_ssim_sd"] == pytest.approx(np.std(scores.cw_ssim, ddof=1))
    assert summary["mse_median"] == pytest.approx(np.median(scores.mse))
    assert len(summary) == 9


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [mse, ssim, cw_ssim])
def test_bad_input_is_refused_with_the_problem_named(metric):
    x = np.random.default_rng(7).random((2, 32, 32))
    with pytest.raises(ModelError, match=r"\(2, 32, 32\) and estimates \(2, 32, 30\)"):
        metric(x, x[..., :30])
    with pytest.raises(ModelError, match="2 or 3 spatial axes"):
        metric(x[0], x[0])
    nan = x.copy()
    nan[1, 4, 4] = np.nan
    with pytest.raises(ModelError, match=r"estimate scan\(s\) \[1\] contain NaN"):
        metric(x, nan)
    with pytest.raises(ModelError, match="fits neither"):
        metric(x, x, np.ones((32, 30), bool))
    with pytest.raises(ModelError, match="must be boolean"):
        metric(x, x, np.full((32, 32), 0.5))
    np.testing.assert_allclose(metric(x, x[::-1], np.ones((32, 32), np.uint8)), metric(x, x[::-1]))
    empty = np.ones((2, 32, 32), bool)
    empty[1] = False
    with pytest.raises(ModelError, match=r"empty for scan\(s\) \[1\]"):
        metric(x, x, empty)


def test_cw_ssim_options_are_checked():
    x = np.random.default_rng(8).random((1, 32, 32))
    with pytest.raises(ModelError, match="odd number"):
        cw_ssim(x, x, window=6)
    with pytest.raises(ModelError, match="smaller than the 9-pixel window"):
        cw_ssim(x, x, scales=3, window=9)
    with pytest.raises(ModelError, match="1 to 3 scales"):
        cw_ssim(x, x, scales=4, window=3)
    with pytest.raises(ModelError, match="slice_axis"):
        cw_ssim(np.zeros((1, 16, 16, 16)), np.zeros((1, 16, 16, 16)), slice_axis=3)
    corner = np.zeros((32, 32), bool)
    corner[0, 0] = True
    with pytest.raises(ModelError, match="within 3 pixels of the edge"):
        cw_ssim(x, x, corner)
