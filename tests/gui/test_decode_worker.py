"""The explorer's workers: the population's per-latent summary (KL or sd, activity, ranking),
and the latest-wins decoder behind the sliders (inline for cheap models, a thread for costly
ones; a burst of requests is coalesced to its newest code either way)."""

from __future__ import annotations

import numpy as np
import torch

from brainvae.analysis.latent_space import decode_codes, population_latents
from brainvae.models import ModelConfig, build_model
from brainvae.napari.workers.decode import LatestDecoder, encode_population
from helpers.collapsed_model import collapsed_beta_vae

SHAPE = (12, 14, 10)


def small_vae(latent_dim: int = 4):
    torch.manual_seed(0)
    config = ModelConfig(input_shape=SHAPE, latent_dim=latent_dim, family="beta_vae")
    return build_model(config).eval()


def codes(n: int, latent_dim: int = 4) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(n, latent_dim)).astype(np.float32)


def collect(decoder: LatestDecoder) -> list:
    received: list = []
    decoder.decoded.connect(received.append)
    return received


def test_first_decode_runs_on_the_thread_then_cheap_models_decode_inline(qtbot):
    model, z = small_vae(), codes(3)
    decoder = LatestDecoder()
    received = collect(decoder)
    try:
        assert not decoder.inline_for(model)  # its cost is not known yet
        first = decoder.request(model, z[0])
        assert decoder.wait_idle(30)
        qtbot.waitUntil(lambda: len(received) == 1, timeout=10_000)
        assert received[0].request.request_id == first and not received[0].request.inline
        assert decoder.inline_for(model)  # measured: far below the budget
        second = decoder.request(model, z[1])
        # an idle GUI decodes at once, inside request(): no event loop turn needed
        assert len(received) == 2 and received[1].request.request_id == second
        assert received[1].request.inline
        np.testing.assert_allclose(received[1].image, decode_codes(model, z[1:2])[0], atol=1e-6)
    finally:
        decoder.stop()


def test_a_burst_of_inline_requests_decodes_the_first_and_the_newest_only(qtbot):
    # a decode of ~40 ms (the flair3d net), kept inline by the budget: the loop's gaps below
    # stay far shorter than a decode even on a loaded machine, so the burst is one burst
    torch.manual_seed(0)
    config = ModelConfig(
        input_shape=(40, 48, 40), latent_dim=4, family="beta_vae", architecture="flair3d"
    )
    model, z = build_model(config).eval(), codes(10)
    decoder = LatestDecoder(inline_budget_s=5.0)
    received = collect(decoder)
    try:
        decoder.request(model, z[0])
        assert decoder.wait_idle(30)
        qtbot.waitUntil(lambda: len(received) == 1, timeout=10_000)
        counts_before = (decoder.counts.decoded, decoder.counts.dropped)
        for code in z:  # back to back: far less idle time between them than a decode takes
            decoder.request(model, code)
        assert len(received) == 2  # the burst's first one, at once
        qtbot.waitUntil(lambda: len(received) == 3, timeout=10_000)  # then the newest
        decoded = decoder.counts.decoded - counts_before[0]
        dropped = decoder.counts.dropped - counts_before[1]
        assert (decoded, dropped) == (2, 8)
        assert decoder.counts.decoded + decoder.counts.dropped == decoder.counts.submitted
        np.testing.assert_allclose(received[-1].image, decode_codes(model, z[-1:])[0], atol=1e-6)
    finally:
        decoder.stop()


def test_a_model_over_the_budget_stays_on_the_thread_and_drops_stale_requests(qtbot):
    model, z = small_vae(), codes(40)
    decoder = LatestDecoder(inline_budget_s=0.0)
    received = collect(decoder)
    try:
        for code in z:
            decoder.request(model, code)
        assert decoder.wait_idle(30)
        qtbot.waitUntil(
            lambda: bool(received) and received[-1].request.request_id == decoder.counts.submitted,
            timeout=10_000,
        )
        assert not decoder.inline_for(model)
        assert not any(result.request.inline for result in received)
        assert decoder.counts.dropped > 0 and decoder.counts.decoded < 40
        assert decoder.counts.decoded + decoder.counts.dropped == 40
        np.testing.assert_allclose(received[-1].image, decode_codes(model, z[-1:])[0], atol=1e-6)
    finally:
        decoder.stop()


def test_a_failing_inline_decode_is_reported_not_raised(qtbot):
    model, z = small_vae(), codes(2)
    decoder = LatestDecoder()
    failures: list = []
    decoder.failed.connect(failures.append)
    try:
        decoder.request(model, z[0])
        assert decoder.wait_idle(30)
        decoder.request(model, np.zeros(7, dtype=np.float32))  # wrong latent size
        assert len(failures) == 1 and decoder.counts.failed == 1
        assert failures[0][0].inline
    finally:
        decoder.stop()


def test_encode_population_ranks_latents_by_kl_and_marks_the_inactive_ones():
    images = np.random.default_rng(2).random((10, *SHAPE), dtype=np.float32)
    model = collapsed_beta_vae(images, latent_dim=5, live=(1, 3))
    summary = encode_population(model, images)
    statistics = population_latents(model, images)
    assert summary.measure == "KL"
    np.testing.assert_allclose(summary.measure_values, statistics.kl)
    assert summary.active.tolist() == [False, True, False, True, False]
    np.testing.assert_allclose(summary.activity.variance, statistics.codes.var(axis=0), rtol=1e-5)
    ranked = summary.measure_values[summary.ranking]
    assert sorted(summary.ranking.tolist()) == list(range(5))
    assert np.all(np.diff(ranked) <= 0)  # largest KL first


def test_encode_population_of_a_pca_reports_the_sd_of_each_component():
    images = np.random.default_rng(3).random((12, *SHAPE), dtype=np.float32)
    pca = build_model(ModelConfig(input_shape=SHAPE, latent_dim=3, family="pca"))
    pca.fit(images)
    summary = encode_population(pca, images)
    assert summary.measure == "sd" and summary.statistics.kl is None
    np.testing.assert_allclose(summary.measure_values, summary.statistics.sd)
