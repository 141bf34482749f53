"""Projective fields against ground truth: the oracle's local factors, PCA's exact linearity,
streaming equal to numpy over stored decodes, four bands, enrichment, negative controls, bad
input. Colours: test_projective_colour.py; agreement and the far sides:
test_projective_agreement.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainvae.analysis.latent_space import population_latents
from brainvae.analysis.projective_field import base_code, projective_field, projective_field_steps
from brainvae.analysis.projective_maps import (
    brain_mask_from_images,
    projective_matrix,
    projective_table,
)
from brainvae.analysis.projective_sweep import BAND_NAMES, SWEEP_PRESETS, SweepSettings
from brainvae.errors import ProjectiveFieldError
from helpers.oracle_model import ROI_NAMES
from helpers.projective_fixtures import ground_truth_holds, local_pca, small_oracle, variance_share

FEW = SweepSettings(low=-1.0, high=1.0, step=0.25, split=0.5, units="prior")
"""9 values: -1 .. 1, small bands 3 values each (0 in both), large bands 2 each."""


@pytest.fixture(scope="module")
def oracle():
    return small_oracle((24, 30), n=40)


@pytest.fixture(scope="module")
def pca():
    return local_pca()


def _stored_decodes(model, latent, base, values, scale=1.0):
    codes = np.repeat(np.asarray(base, float)[None], len(values), axis=0)
    codes[:, latent] += values * scale
    return np.asarray(model.decode(codes.astype(np.float32)), dtype=np.float64).reshape(
        len(values), *model.config.input_shape
    )


# ---- the grid ----------------------------------------------------------------------------
def test_published_grid_has_2801_values_with_zero_exactly():
    values = SWEEP_PRESETS["published"].values()
    assert values.size == 2801 and values[0] == -7.0 and values[-1] == 7.0
    assert 0.0 in values and np.all(np.diff(values) > 0)
    counts = SWEEP_PRESETS["published"].band_masks().sum(axis=1)
    assert counts.tolist() == [701, 701, 700, 700]  # c = 0 in both small bands
    assert SweepSettings.preset("prior").values().size == 601
    assert (
        SweepSettings.preset("prior").units == "sd" and SWEEP_PRESETS["published"].units == "prior"
    )


def test_zero_is_on_the_grid_even_when_the_bounds_are_not_multiples_of_the_step():
    values = SweepSettings(low=-1.03, high=0.97, step=0.1, split=0.5).values()
    assert 0.0 in values and values[0] == pytest.approx(-1.0) and values[-1] == pytest.approx(0.9)
    masks = FEW.band_masks()
    assert BAND_NAMES == ("small_negative", "small_positive", "large_negative", "large_positive")
    values = FEW.values()
    assert values[masks[0]].tolist() == [-0.5, -0.25, 0.0]
    assert values[masks[1]].tolist() == [0.0, 0.25, 0.5]
    assert values[masks[2]].tolist() == [-1.0, -0.75]
    assert values[masks[3]].tolist() == [0.75, 1.0]
    assert FEW.band_ranges()["large_negative"] == (-1.0, -0.75)
    np.testing.assert_allclose(FEW.band_c_variance(), [1 / 24, 1 / 24, 1 / 64, 1 / 64])


# ---- ground truth ------------------------------------------------------------------------
def test_oracle_each_latent_varies_in_its_own_region(oracle):
    phantom, _, factors, model = oracle
    result = projective_field(model, [0, 1, 2], factors.mean(0), FEW, batch_size=4)
    assert result.band_variance.shape == (3, 4, 24, 30)
    assert result.large_variance.shape == (3, 24, 30) and result.colour_bands.shape[1] == 3
    assert result.total_variance.shape == (3, 24, 30) and result.spatial_shape == (24, 30)
    assert result.latent_names == ("z1", "z2", "z3")
    assert result.band_counts.tolist() == [3, 3, 2, 2]
    # The cortex-intensity factor brightens the whole rim: its variance spreads over the cortex
    # (not concentrated in one spot), and none of it sits in the ventricle zone.
    assert ground_truth_holds(result.total_variance, phantom)
    masks = np.stack([phantom.roi_labels() == label for label in range(1, 5)])
    matrix = projective_matrix(result.total_variance, masks, phantom.brain)
    assert [int(np.argmax(matrix[:, k])) for k in range(3)] == [0, 1, 2]
    assert np.all(matrix[3] == 0.0)  # the untouched region never moves
    assert variance_share(result.total_variance[2], phantom.cortex) > 0.99


def test_oracle_3d(oracle):
    phantom, _, factors, model = small_oracle((12, 14, 10), n=20, seed=3)
    result = projective_field(model, [0, 1, 2], factors.mean(0), FEW, batch_size=16)
    assert result.total_variance.shape == (3, 12, 14, 10)
    assert ground_truth_holds(result.total_variance, phantom)


def test_pca_ventricle_component_is_most_enriched_in_the_ventricles(pca):
    phantom, factors, images, model = pca
    statistics = population_latents(model, images)
    codes = statistics.codes
    correlation = np.abs(np.corrcoef(codes.T, factors[:, :1].T)[:8, 8])
    ventricle = int(np.argmax(correlation))
    assert correlation[ventricle] > 0.8
    settings = SweepSettings(low=-3, high=3, step=0.5, split=1.5, units="sd")
    result = projective_field(
        model, [ventricle], statistics.mean, settings, scale=statistics.sd[[ventricle]]
    )
    masks = np.stack([phantom.roi_labels() == label for label in range(1, 5)])
    matrix = projective_matrix(result.total_variance, masks, phantom.brain)
    assert int(np.argmax(matrix[:, 0])) == ROI_NAMES.index("ventricles")
    assert matrix[0, 0] > 2.0


def linear_bands_hold(band_variance, settings, slope_map, tolerance=1e-3) -> bool:
    """For a decoder linear in c (PCA): band b's variance is var(c in band b) x slope^2, up to
    the float32 rounding of the decodes (tolerance relative to the band's largest value)."""
    values = settings.values()
    expected = [values[mask].var() * slope_map**2 for mask in settings.band_masks()]
    return all(
        np.allclose(band_variance[b], expected[b], rtol=tolerance, atol=tolerance * e.max())
        for b, e in enumerate(expected)
    )


def test_linear_decoder_gives_four_equal_bands_per_unit_var_c(pca):
    """Issue 12 (5): the bands are comparable once divided by var(c) of the band: for PCA
    (linear in c) all four normalised maps equal slope^2, although the pooled large band's raw
    variance is ~28x a small band's for the published preset."""
    _, _, images, model = pca
    base = population_latents(model, images).mean
    settings = SweepSettings(low=-7.0, high=7.0, step=0.05, split=3.5, units="prior")
    result = projective_field(model, [2], base, settings, batch_size=64)
    slope = (
        _stored_decodes(model, 2, base, np.array([1.0]))[0]
        - _stored_decodes(model, 2, base, np.array([0.0]))[0]
    )
    normalised = result.normalised_band_variance[0]
    assert normalised.shape == (4, *slope.shape)
    for band in range(4):
        np.testing.assert_allclose(
            normalised[band], slope**2, rtol=2e-3, atol=2e-3 * (slope**2).max()
        )
    peak = float(np.max(result.band_variance[0, 0]))
    assert 25 < float(np.max(result.large_variance[0])) / peak < 32  # the raw scales differ


def test_pca_bands_are_exactly_the_variance_of_c_times_the_slope(pca):
    _, _, images, model = pca
    base = population_latents(model, images).mean
    result = projective_field(model, [2], base, FEW, batch_size=5)
    slope = (
        _stored_decodes(model, 2, base, np.array([1.0]))[0]
        - _stored_decodes(model, 2, base, np.array([0.0]))[0]
    )
    assert linear_bands_hold(result.band_variance[0], FEW, slope)
    values = FEW.values()
    expected = values.var() * slope**2
    np.testing.assert_allclose(
        result.total_variance[0], expected, rtol=1e-3, atol=1e-3 * expected.max()
    )


# ---- streaming equals the direct computation ---------------------------------------------
@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_streamed_variance_equals_numpy_over_stored_decodes(pca, batch_size):
    _, _, images, model = pca
    statistics = population_latents(model, images)
    settings = SweepSettings(low=-2.0, high=1.6, step=0.2, split=0.7, units="sd")
    latents = [0, 5]
    scale = statistics.sd[latents]
    result = projective_field(model, latents, statistics.mean, settings, scale, batch_size)
    values = settings.values()
    for position, latent in enumerate(latents):
        stored = _stored_decodes(model, latent, statistics.mean, values, scale[position])
        masks = settings.band_masks()
        for band, mask in enumerate([*masks, masks[2] | masks[3]]):
            computed = (
                result.band_variance[position, band]
                if band < 4
                else result.large_variance[position]
            )
            # rtol 1e-5: the decodes are float32, and another batch shape rounds them
            # differently (a one-sided band's variance is ~10x below its mean shift squared)
            np.testing.assert_allclose(
                computed,
                stored[mask].var(axis=0),
                rtol=1e-5,
                atol=1e-6 * stored[mask].var(axis=0).max(),
            )
        reference = stored.var(axis=0)
        np.testing.assert_allclose(
            result.total_variance[position], reference, rtol=1e-6, atol=1e-6 * reference.max()
        )
    np.testing.assert_allclose(result.scale, scale)


@pytest.mark.parametrize("shape", [(16, 20), (8, 12, 8)])
def test_conv_network_sweep_matches_plain_decodes_and_leaves_the_model_alone(shape):
    """A conv decoder in 2D and 3D: the streamed maps equal the variance of plain decodes,
    and the model's weights, layout and activations are left as they were."""
    import torch

    from brainvae.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(input_shape=shape, latent_dim=3, architecture="small"))
    model.eval()
    weight = next(model.parameters())
    layout = weight.stride()
    relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    assert relus and not any(m.inplace for m in relus)
    settings = SweepSettings(low=-1.0, high=1.0, step=0.25, split=0.5, units="prior")
    base = np.zeros(3)
    result = projective_field(model, [1], base, settings, batch_size=4)
    assert not any(m.inplace for m in relus) and model.config.channels_last
    assert next(model.parameters()) is weight and weight.stride() == layout
    with torch.inference_mode():
        stored = _stored_decodes(model, 1, base, settings.values(), 1.0)
    for band, mask in enumerate(settings.band_masks()):
        expected = stored[mask].var(axis=0)
        np.testing.assert_allclose(
            result.band_variance[0, band], expected, rtol=1e-5, atol=1e-6 * expected.max()
        )


def test_negative_controls_fail_the_ground_truth(oracle, pca):
    phantom, _, factors, model = oracle
    stored = np.stack([_stored_decodes(model, k, factors.mean(0), FEW.values()) for k in range(3)])
    right = stored.var(axis=1)  # over the sweep: passes
    assert ground_truth_holds(right, phantom)
    # Variance over the wrong axis (image rows instead of decodes), spread back over the grid.
    wrong_axis = np.broadcast_to(stored.var(axis=2, keepdims=True).mean(axis=1), right.shape)
    assert not ground_truth_holds(wrong_axis, phantom)
    # The mean image instead of the variance.
    assert not ground_truth_holds(stored.mean(axis=1), phantom)
    # Latents swapped (maps attributed to the wrong latent).
    assert not ground_truth_holds(right[[1, 0, 2]], phantom)
    # Bands with a mis-placed split (0.25 instead of 0.5) fail the exact linear truth of PCA.
    _, _, images, pca_model = pca
    base = population_latents(pca_model, images).mean
    values = FEW.values()
    decodes = _stored_decodes(pca_model, 2, base, values)
    slope = decodes[values == 1.0][0] - decodes[values == 0.0][0]
    good = np.stack([decodes[mask].var(axis=0) for mask in FEW.band_masks()])
    assert linear_bands_hold(good, FEW, slope)
    shifted = SweepSettings(low=-1.0, high=1.0, step=0.25, split=0.25, units="prior")
    misplaced = np.stack([decodes[mask].var(axis=0) for mask in shifted.band_masks()])
    assert not linear_bands_hold(misplaced, FEW, slope)
    # Both large sides pooled into the large-negative band (the old three-band layout).
    pooled = good.copy()
    pooled[2] = decodes[np.abs(values) > 0.5].var(axis=0)
    assert not linear_bands_hold(pooled, FEW, slope)


def test_progress_yields_every_batch_and_checks_before_decoding(oracle):
    phantom, _, factors, model = oracle
    steps = projective_field_steps(model, [2, 0], factors.mean(0), FEW, batch_size=4)
    reports = []
    while True:
        try:
            reports.append(next(steps))
        except StopIteration as finished:
            result = finished.value
            break
    # 9 values in batches of 4: 3 batches per latent.
    assert [p.decodes_done for p in reports] == [4, 8, 9, 13, 17, 18]
    assert {p.total_decodes for p in reports} == {18}
    assert [p.latent for p in reports] == [2, 2, 2, 0, 0, 0]
    assert [p.latents_done for p in reports] == [0, 0, 0, 1, 1, 1]
    assert result.latents.tolist() == [2, 0] and result.latent_names == ("z3", "z1")

    class Counting:
        config, latent_dim = model.config, model.latent_dim
        calls = 0

        def decode(self, z):
            Counting.calls += 1
            return model.decode(z)

    with pytest.raises(ProjectiveFieldError, match="latent index 3"):
        projective_field_steps(Counting(), [3], factors.mean(0), FEW)
    assert Counting.calls == 0


def test_memory_is_bounded_by_the_batch(oracle):
    _, _, factors, model = oracle
    seen: list[int] = []

    class Spy:
        config, latent_dim = model.config, model.latent_dim

        def decode(self, z):
            seen.append(len(z))
            return model.decode(z)

    settings = SweepSettings(low=-1.0, high=1.0, step=0.1, split=0.5, units="prior")
    projective_field(Spy(), [1], factors.mean(0), settings, batch_size=8)
    assert seen[0] == 1 and max(seen[1:]) == 8 and sum(seen[1:]) == 21


# ---- maps and tables ---------------------------------------------------------------------
def test_projective_matrix_by_hand_and_table_with_active_row():
    variance = np.zeros((2, 2, 4))
    variance[0, 0, :2] = 1.0  # latent 0: all in the first two voxels
    brain = np.ones((2, 4), bool)
    masks = np.zeros((3, 2, 4), bool)
    masks[0, 0, :2] = True  # 2 of 8 voxels hold all of latent 0
    masks[1, 1] = True  # 4 of 8 voxels, none of it
    masks[2, 0, 2:] = True
    matrix = projective_matrix(variance, masks, brain)
    np.testing.assert_allclose(matrix[:, 0], [4.0, 0.0, 0.0])  # share 1 / voxel share 1/4
    np.testing.assert_array_equal(matrix[:, 1], 0.0)  # a latent that moves nothing: 0
    table = projective_table(matrix, ["a", "b", "c"], ["z1", "z2"])
    assert table.index.name == "roi" and table.shape == (3, 2)
    mask = brain_mask_from_images(np.array([[0.0, 0.05], [0.5, 1.0]]))
    assert mask.tolist() == [[False, False], [True, True]]


def test_projective_csv_marks_inactive_latents_and_reads_back(tmp_path):
    """Issue 12 (1): projective.csv says which latents are inactive (a last "active" row) and
    reads back into the same enrichment and flags."""
    from brainvae.analysis.projective_maps import ACTIVE_ROW, split_projective_table

    matrix = np.array([[2.0, 0.5], [0.5, 1.5], [1.0, 1.0]])
    table = projective_table(matrix, ["a", "b", "c"], ["z1", "z2"], active=[True, False])
    table.to_csv(tmp_path / "projective.csv", float_format="%.8g")
    back = pd.read_csv(tmp_path / "projective.csv", index_col="roi")
    assert list(back.index) == ["a", "b", "c", ACTIVE_ROW]
    assert back.loc[ACTIVE_ROW].tolist() == [1.0, 0.0]
    enrichment, active = split_projective_table(back)
    np.testing.assert_allclose(enrichment.to_numpy(), matrix)
    assert active.tolist() == [True, False]
    plain, none = split_projective_table(projective_table(matrix, ["a", "b", "c"], ["z1", "z2"]))
    assert none is None and plain.shape == (3, 2)


def test_base_code_mean_zero_and_subject(pca):
    _, _, images, model = pca
    statistics = population_latents(model, images[:6])
    table = pd.DataFrame({"subject_id": ["a", "a", "b", "c", "d", "e"]})
    code, label = base_code(statistics, table, "mean")
    np.testing.assert_allclose(code, statistics.mean)
    assert label == "mean"
    code, label = base_code(statistics, table, "zero")
    assert label == "zero" and np.all(code == 0) and code.shape == (8,)
    code, label = base_code(statistics, table, "a")
    np.testing.assert_allclose(code, statistics.codes[:2].mean(axis=0), rtol=1e-6)
    assert label == "a"
    with pytest.raises(ProjectiveFieldError, match=r"subject 'zz' is not in the dataset.*a, b"):
        base_code(statistics, table, "zz")


# ---- bad input ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (SweepSettings(low=0.0, high=3.0), r"must contain both signs \(low < 0 < high\)"),
        (SweepSettings(low=1.0, high=3.0), "must contain both signs"),
        (SweepSettings(low=-1.0, high=1.0, step=2.5, split=0.5), "at most the range's width 2"),
        (SweepSettings(step=0.0), "step must be > 0"),
        (SweepSettings(low=-1.0, high=3.0, split=1.5), r"below min\(-low, high\) = 1"),
        (SweepSettings(units="furlongs"), "unknown sweep units 'furlongs'"),
        (
            SweepSettings(low=-1.0, high=1.0, step=0.6, split=0.5),
            "small_negative, small_positive.* hold fewer than two values",
        ),
        (
            SweepSettings(low=-1.0, high=1.0, step=0.25, split=0.8),
            "large_negative, large_positive hold fewer than two values",
        ),
        (SweepSettings(low=float("nan")), "sweep low must be a finite number"),
    ],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ProjectiveFieldError, match=message):
        settings.validate()


def test_bad_sweep_inputs_are_named(oracle):
    _, _, factors, model = oracle
    base = factors.mean(0)
    with pytest.raises(ProjectiveFieldError, match=r"latent index 5 \(z6\).*L = 3"):
        projective_field(model, [0, 5], base, FEW)
    with pytest.raises(ProjectiveFieldError, match=r"latent index -1"):
        projective_field(model, [-1], base, FEW)
    with pytest.raises(ProjectiveFieldError, match=r"base code has shape \(2,\).*L = 3"):
        projective_field(model, [0], base[:2], FEW)
    with pytest.raises(ProjectiveFieldError, match="units 'sd'.*give scale"):
        projective_field(model, [0], base, SweepSettings(units="sd"))
    with pytest.raises(ProjectiveFieldError, match="one value per swept latent"):
        projective_field(model, [0, 1], base, SweepSettings(), scale=np.ones(5))
    with pytest.raises(ProjectiveFieldError, match="at least one latent"):
        projective_field(model, [], base, FEW)
    with pytest.raises(ProjectiveFieldError, match="unknown sweep preset 'wide'"):
        SweepSettings.preset("wide")
    with pytest.raises(ProjectiveFieldError, match="batch_size must be >= 1"):
        projective_field(model, [0], base, FEW, batch_size=0)


def test_dead_latent_sd_falls_back_to_one_and_says_so(oracle):
    _, _, factors, model = oracle
    settings = SweepSettings(low=-1.0, high=1.0, step=0.25, split=0.5, units="sd")
    result = projective_field(model, [0, 1], factors.mean(0), settings, scale=np.array([0.0, 2]))
    np.testing.assert_array_equal(result.scale, [1.0, 2.0])
    assert result.unit_fallback.tolist() == [True, False] and result.fallback_names == ("z1",)
    prior = projective_field(model, [0], factors.mean(0), FEW, scale=np.array([0.0]))
    assert prior.fallback_names == ()  # asked in prior units: nothing fell back


def test_bf16_autocast_runs_only_the_decoder_in_low_precision(pca):
    import torch

    _, _, images, model = pca
    base = population_latents(model, images).mean
    fp32 = projective_field(model, [0], base, FEW)
    low = projective_field(model, [0], base, FEW, autocast_dtype=torch.bfloat16)
    assert low.band_variance.dtype == np.float32 and np.all(np.isfinite(low.band_variance))
    correlation = np.corrcoef(low.total_variance.ravel(), fp32.total_variance.ravel())[0, 1]
    assert correlation > 0.99
