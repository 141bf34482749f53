"""Receptive fields against ground truth: an oracle model, a PCA baseline, negative controls,
KL by hand, streaming equal to the direct computation, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from brainvae.analysis.perturbations import perturb
from brainvae.analysis.receptive_field import receptive_field, receptive_field_steps
from brainvae.analysis.receptive_kl import FLOOR_FRACTION, gaussian_kl, impact_from_gaussians
from brainvae.errors import ReceptiveFieldError
from brainvae.models import ModelConfig, ModelError, build_model
from helpers.oracle_model import (
    EXPECTED_TOP,
    ROI_NAMES,
    make_phantom,
    oracle_setup,
    ranking_holds,
    sample_factors,
)


@pytest.fixture(scope="module")
def oracle_2d():
    return oracle_setup((32, 40), n=120, seed=0)


@pytest.fixture(scope="module")
def oracle_3d():
    return oracle_setup((12, 14, 10), n=60, seed=3)


# ---- ground truth ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["remove", "add", "blur"])
def test_oracle_2d_each_roi_moves_its_own_factor_and_untouched_stays_quiet(oracle_2d, kind):
    phantom, images, _, model = oracle_2d
    result = receptive_field(model, images, phantom.roi_labels(), ROI_NAMES, kind=kind)
    assert ranking_holds(result.impact, ROI_NAMES, EXPECTED_TOP, untouched=["untouched"])
    assert result.most_affected_latents("ventricles")[0] == 0
    assert result.most_affected_latents("lesion_zone")[0] == 1
    assert not result.any_floor_hit


def test_oracle_3d_ranking(oracle_3d):
    phantom, images, _, model = oracle_3d
    result = receptive_field(model, images, phantom.roi_labels(), ROI_NAMES, batch_size=16)
    assert result.impact.shape == (4, 3)
    assert ranking_holds(result.impact, ROI_NAMES, EXPECTED_TOP, untouched=["untouched"])


@pytest.mark.parametrize(("kind", "seed"), [("remove", 0), ("remove", 1), ("add", 2)])
def test_pca_baseline_on_local_factors_ranks_the_factor_components_first(kind, seed):
    # Eight local factors (ventricle, lesion sd 2.2 px amplitude 0.6, cortex, five nuclei) for
    # an 8-component PCA, so no component is spent on small, whitened-up residual modes.
    shape = (48, 60)
    phantom = make_phantom(shape, lesion_amplitude=0.6, ventricle_edge=0.04, n_nuclei=5)
    factors = sample_factors(160, seed, phantom.n_factors)
    images = phantom.render(factors, noise_sd=0.01, seed=seed + 1)
    config = ModelConfig(input_shape=shape, latent_dim=8, family="pca", likelihood="gaussian")
    model = build_model(config).fit(images)
    codes = model.encode(images)[0].numpy()
    correlation = np.abs(np.corrcoef(codes.T, factors[:, :3].T)[:8, 8:])  # (latent, factor)
    expected = {roi: int(np.argmax(correlation[:, f])) for roi, f in EXPECTED_TOP.items()}
    assert correlation[expected["ventricles"], 0] > 0.8
    assert correlation[expected["lesion_zone"], 1] > 0.8
    result = receptive_field(model, images, phantom.roi_labels(), ROI_NAMES, kind=kind)
    assert ranking_holds(result.impact, ROI_NAMES, expected)


def test_negative_controls_fail_the_ranking(oracle_2d):
    phantom, images, _, model = oracle_2d
    labels = phantom.roi_labels()
    result = receptive_field(model, images, labels, ROI_NAMES)
    assert ranking_holds(result.impact, ROI_NAMES, EXPECTED_TOP, untouched=["untouched"])
    # A shuffled impact matrix.
    shuffled = np.random.default_rng(0).permutation(result.impact.ravel())
    shuffled = shuffled.reshape(result.impact.shape)
    assert not ranking_holds(shuffled, ROI_NAMES, EXPECTED_TOP, untouched=["untouched"])
    # The perturbation applied outside each ROI (inside the brain).
    outside = np.stack([phantom.brain & (labels != label) for label in range(1, 5)])
    wrong = receptive_field(model, images, outside, ROI_NAMES)
    assert not ranking_holds(wrong.impact, ROI_NAMES, EXPECTED_TOP)
    assert not ranking_holds(wrong.impact, ROI_NAMES, {}, untouched=["untouched"])


# ---- the numbers -------------------------------------------------------------------------
def test_gaussian_kl_and_impact_by_hand():
    # KL(N(0,1) || N(1,4)) = 0.5 (ln 4 + (1 + 1) / 4 - 1) = 0.5 ln 4 - 0.25
    assert gaussian_kl(0.0, 1.0, 1.0, 4.0) == pytest.approx(0.5 * np.log(4) - 0.25)
    # KL(N(1,4) || N(0,1)) = 0.5 (ln 1/4 + (4 + 1) / 1 - 1) = 2 - ln 2
    assert gaussian_kl(1.0, 4.0, 0.0, 1.0) == pytest.approx(2.0 - np.log(2))
    assert gaussian_kl(0.3, 2.0, 0.3, 2.0) == 0.0
    means = np.array([[[0.0], [5.0], [1.0]]])  # (R=1, W=3, L=1): only the extremes count
    variances = np.array([[[1.0], [9.0], [4.0]]])
    symmetric, hit = impact_from_gaussians(means, variances)
    one_sided, _ = impact_from_gaussians(means, variances, one_sided=True)
    forward, backward = 0.5 * np.log(4) - 0.25, 2.0 - np.log(2)
    assert symmetric[0, 0] == pytest.approx((forward + backward) / 2)
    assert one_sided[0, 0] == pytest.approx(forward)
    assert not hit.any()


def test_variance_floor_keeps_constant_latents_finite():
    means = np.array([[[1.0, 0.0], [1.0, 2.0]]])  # latent 0 constant, latent 1 moves
    variances = np.array([[[0.0, 1.0], [0.0, 0.0]]])
    impact, hit = impact_from_gaussians(means, variances, variance_floor=1e-4)
    assert np.all(np.isfinite(impact))
    assert impact[0, 0] == 0.0  # same point before and after: no impact
    assert hit.tolist() == [[True, True]]
    forward = 0.5 * (np.log(1e-4 / 1.0) + (1.0 + 4.0) / 1e-4 - 1.0)
    backward = 0.5 * (np.log(1.0 / 1e-4) + (1e-4 + 4.0) / 1.0 - 1.0)
    assert impact[0, 1] == pytest.approx((forward + backward) / 2)


def test_streamed_moments_equal_the_direct_computation(oracle_2d):
    phantom, images, _, model = oracle_2d
    images = images[:37]
    labels = phantom.roi_labels()
    weights = (-1.0, 0.0, 0.5, 1.0)
    result = receptive_field(model, images, labels, ROI_NAMES, weights=weights, batch_size=8)
    for r in range(4):
        for j, w in enumerate(weights):
            codes = model.encode(perturb(images, labels == r + 1, w, "remove", 1.0))[0]
            np.testing.assert_allclose(result.means[r, j], codes.mean(0), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(result.variances[r, j], codes.var(0), rtol=1e-8, atol=1e-12)
    one_batch = receptive_field(model, images, labels, ROI_NAMES, weights=weights, batch_size=64)
    np.testing.assert_allclose(result.impact, one_batch.impact, rtol=1e-8)


def test_noise_and_blur_do_not_depend_on_the_batch_size(oracle_2d):
    phantom, images, _, model = oracle_2d
    labels = phantom.roi_labels()
    for kind in ("noise", "blur"):
        small = receptive_field(model, images[:30], labels, ROI_NAMES, kind=kind, batch_size=7)
        large = receptive_field(model, images[:30], labels, ROI_NAMES, kind=kind, batch_size=30)
        np.testing.assert_allclose(small.impact, large.impact, rtol=1e-5, atol=1e-9)


def test_perturbation_kinds_stay_inside_the_roi():
    rng = np.random.default_rng(0)
    batch = rng.uniform(0.2, 1.0, size=(3, 6, 5)).astype(np.float32)
    mask = np.zeros((6, 5), dtype=bool)
    mask[2:4, 1:3] = True
    noise = rng.standard_normal(batch.shape).astype(np.float32)
    blurred = batch[:, ::-1].copy()
    np.testing.assert_allclose(perturb(batch, mask, 1.0, "remove", 1.0)[:, mask], 0.0)
    np.testing.assert_allclose(perturb(batch, mask, 0.5, "add", 0.4)[:, mask], batch[:, mask] + 0.2)
    for kind in ("remove", "add", "noise", "blur"):
        out = perturb(batch, mask, 0.7, kind, 0.3, noise, blurred)
        np.testing.assert_array_equal(out[:, ~mask], batch[:, ~mask])
        assert not np.allclose(out[:, mask], batch[:, mask])


def test_progress_generator_reports_every_encode_and_returns_the_result(oracle_2d):
    phantom, images, _, model = oracle_2d
    labels = phantom.roi_labels()
    model.encode_calls = 0
    steps = receptive_field_steps(model, images[:25], labels, ROI_NAMES, batch_size=10)
    reports = []
    while True:
        try:
            reports.append(next(steps))
        except StopIteration as finished:
            result = finished.value
            break
    # 3 batches x (1 unperturbed + 4 ROIs x 4 non-zero weights) encode calls.
    assert [p.done for p in reports] == list(range(1, 52))
    assert {p.total for p in reports} == {51} and model.encode_calls == 51
    assert reports[-1].images_done == 25 and reports[0].n_images == 25
    plain = receptive_field(model, images[:25], labels, ROI_NAMES, batch_size=10)
    np.testing.assert_array_equal(result.impact, plain.impact)


def test_memory_is_bounded_by_the_batch(oracle_2d):
    phantom, images, _, model = oracle_2d
    seen: list[int] = []
    encode = model.encode

    class Spy:
        config, latent_dim = model.config, model.latent_dim

        def encode(self, x):
            seen.append(len(x))
            return encode(x)

    receptive_field(Spy(), images, phantom.roi_labels(), ROI_NAMES, batch_size=16)
    assert max(seen) == 16 and sum(seen) == len(images) * 17


def test_tables_name_rois_and_latents(oracle_2d):
    phantom, images, _, model = oracle_2d
    result = receptive_field(model, images[:20], phantom.roi_labels(), ROI_NAMES)
    table = result.impact_table()
    assert list(table.index) == list(ROI_NAMES) and list(table.columns) == ["z1", "z2", "z3"]
    gaussians = result.gaussian_table()
    assert len(gaussians) == 4 * 3 * 5
    row = gaussians.query("roi == 'lesion_zone' and latent == 'z2' and weight == 1.0").iloc[0]
    assert row["mean"] == result.means[1, 4, 1] and row["variance"] == result.variances[1, 4, 1]


def test_channel_axis_and_label_mapping(oracle_2d):
    phantom, images, _, model = oracle_2d
    labels = phantom.roi_labels()
    plain = receptive_field(model, images[:20], labels, ROI_NAMES)
    with_channel = receptive_field(
        model, images[:20, None], labels, dict(enumerate(ROI_NAMES, start=1))
    )
    np.testing.assert_allclose(plain.impact, with_channel.impact)
    chosen = receptive_field(model, images[:20], labels, {2: "lesions", 1: "vents"})
    assert chosen.roi_names == ("vents", "lesions")
    np.testing.assert_allclose(chosen.impact, plain.impact[:2])


# ---- bad input ---------------------------------------------------------------------------
def test_bad_rois_are_named(oracle_2d):
    phantom, images, _, model = oracle_2d
    labels = phantom.roi_labels()
    with pytest.raises(ReceptiveFieldError, match=r"ROI label image is 40 x 32 .* 32 x 40"):
        receptive_field(model, images, labels.T, ROI_NAMES)
    with pytest.raises(ReceptiveFieldError, match=r"empty ROI.*ghost \(label 9\)"):
        receptive_field(model, images, labels, {1: "ventricles", 9: "ghost"})
    with pytest.raises(ReceptiveFieldError, match="2 ROI names for 4 ROIs"):
        receptive_field(model, images, labels, ["a", "b"])
    with pytest.raises(ReceptiveFieldError, match="no non-zero label"):
        receptive_field(model, images, np.zeros_like(labels), None)


def test_bad_weights_images_and_kind(oracle_2d):
    phantom, images, _, model = oracle_2d
    labels = phantom.roi_labels()
    with pytest.raises(ReceptiveFieldError, match="at least two different perturbation weights"):
        receptive_field(model, images, labels, ROI_NAMES, weights=[1.0])
    with pytest.raises(ReceptiveFieldError, match="at least two different"):
        receptive_field(model, images, labels, ROI_NAMES, weights=[0.5, 0.5])
    with pytest.raises(ReceptiveFieldError, match="1 image.*at least 2"):
        receptive_field(model, images[:1], labels, ROI_NAMES)
    with pytest.raises(ReceptiveFieldError, match="unknown perturbation kind 'smear'"):
        receptive_field(model, images, labels, ROI_NAMES, kind="smear")


def test_images_of_another_shape_than_the_model():
    phantom, images, _, model = oracle_setup((32, 40), n=20)
    other = make_phantom((12, 14, 10))
    with pytest.raises(ModelError, match=r"images are 12 x 14 x 10 but the model expects 32 x 40"):
        receptive_field(model, other.render(sample_factors(4)), other.roi_labels(), ROI_NAMES)


def test_constant_latent_stays_finite_and_is_reported(oracle_2d):
    phantom, images, _, model = oracle_2d

    class WithDeadLatent:
        config = type(model.config)(input_shape=model.config.input_shape, latent_dim=4)
        latent_dim = 4

        def encode(self, x):
            mu, logvar = model.encode(x)
            dead = np.full((len(mu), 1), 0.25)
            return np.hstack([mu, dead]), np.hstack([logvar, dead])

    result = receptive_field(WithDeadLatent(), images, phantom.roi_labels(), ROI_NAMES)
    assert np.all(np.isfinite(result.impact))
    assert np.all(result.impact[:, 3] == 0.0)
    assert result.floor_hit[:, 3].all() and result.any_floor_hit
    assert result.floor_fraction == FLOOR_FRACTION
    assert result.variance_floor[3] == FLOOR_FRACTION  # no population spread: the prior's
    assert result.active.tolist() == [True, True, True, False]
    assert result.encoder_only().tolist() == [False] * 4  # zero impact: not encoder-only


def test_indices_choose_the_images_in_any_order(oracle_2d):
    phantom, images, _, model = oracle_2d
    labels = phantom.roi_labels()
    rows = [7, 3, 3, 4, 12, 11, 10, 9]
    chosen = receptive_field(model, images, labels, ROI_NAMES, indices=rows, batch_size=4)
    copied = receptive_field(model, images[rows], labels, ROI_NAMES, batch_size=4)
    np.testing.assert_allclose(chosen.impact, copied.impact, rtol=1e-10)
    assert chosen.n_images == 8
    with pytest.raises(ReceptiveFieldError, match="indices must be rows of the 120 images"):
        receptive_field(model, images, labels, ROI_NAMES, indices=[0, 120])


# ---- activity, the relative floor and encoder-only latents (issue 12) ---------------------
def _scaled_latent(model, latent: int, factor: float):
    """The oracle with one latent's codes multiplied by factor (the decoder is not involved)."""

    class Scaled:
        config = model.config
        latent_dim = model.latent_dim

        def encode(self, x):
            mu, logvar = model.encode(x)
            mu = np.array(mu, dtype=np.float64)
            mu[:, latent] *= factor
            return mu, logvar

    return Scaled()


def test_impact_does_not_depend_on_a_latents_scale(oracle_2d):
    # Blanking the ventricles makes the ventricle latent's codes nearly equal (variance far
    # below the population's): an absolute floor of 1e-6 gave a latent shrunk by 1e-4 another
    # impact than the same latent at full scale; the relative floor gives the same.
    phantom, images, _, model = oracle_2d
    labels = phantom.roi_labels()
    full = receptive_field(model, images, labels, ROI_NAMES)
    shrunk = receptive_field(_scaled_latent(model, 0, 1e-4), images, labels, ROI_NAMES)
    np.testing.assert_allclose(shrunk.impact, full.impact, rtol=1e-6)
    np.testing.assert_allclose(shrunk.variance_floor[0], full.variance_floor[0] * 1e-8)


def test_a_whispering_latent_is_inactive_ranked_last_and_reported_encoder_only(oracle_2d):
    # The same ventricle signal at 1e-4 of its scale: the encoder answers to the ventricles,
    # but the code varies by ~1e-8 over the population, so no decoder can use it.
    phantom, images, _, model = oracle_2d

    class WithWhisper:
        config = type(model.config)(input_shape=model.config.input_shape, latent_dim=4)
        latent_dim = 4

        def encode(self, x):
            mu, logvar = model.encode(x)
            mu = np.asarray(mu, dtype=np.float64)
            return np.hstack([mu, 1e-4 * mu[:, :1]]), np.hstack([logvar, logvar[:, :1]])

    result = receptive_field(WithWhisper(), images, phantom.roi_labels(), ROI_NAMES)
    assert result.active.tolist() == [True, True, True, False]
    assert result.activity.inactive_names == ("z4",)
    ventricles = result.roi_index("ventricles")
    assert result.impact[ventricles, 3] == pytest.approx(result.impact[ventricles, 0], rel=1e-6)
    assert result.most_affected_latents("ventricles")[0] == 0
    assert result.most_affected_latents("ventricles")[-1] == 3  # inactive: after every active
    assert result.encoder_only().tolist() == [False, False, False, True]


def test_activity_comes_from_the_unperturbed_images_even_without_weight_zero(oracle_2d):
    from brainvae.analysis.latent_activity import latent_activity

    phantom, images, _, model = oracle_2d
    result = receptive_field(
        model, images, phantom.roi_labels(), ROI_NAMES, weights=(0.5, 1.0), batch_size=16
    )
    expected = latent_activity(np.asarray(model.encode(images)[0], dtype=np.float64))
    np.testing.assert_allclose(result.activity.variance, expected.variance, rtol=1e-9)
    assert result.activity.n_images == len(images)
