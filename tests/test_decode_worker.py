"""The latest-wins decoder behind the explorer's sliders: inline for cheap models, a thread
for costly ones; a burst of requests is coalesced to its newest code either way."""

from __future__ import annotations

import numpy as np
import torch

from brainvae.analysis.latent_space import decode_codes
from brainvae.models import ModelConfig, build_model
from brainvae.napari.workers.decode import LatestDecoder

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
    model, z = small_vae(), codes(10)
    decoder = LatestDecoder()
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
