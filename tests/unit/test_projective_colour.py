"""The projective field's colours (issue 12, point 4): the paper's colours the right way round,
a composite that never sends different band mixes to one colour, per-latent or shared limits,
the legend; and (issue 14, point 3) how they sit over anatomy and which colour outlines take."""

from __future__ import annotations

import numpy as np
import pytest

from brainvae.analysis.projective_colour import (
    DEFAULT_COLOUR_LIMITS,
    colour_composite,
    colour_legend,
)
from brainvae.analysis.projective_sweep import COLOUR_BANDS
from brainvae.errors import ProjectiveFieldError

CYAN, MAGENTA, YELLOW = (0, 1, 1), (1, 0, 1), (1, 1, 0)


def _pixels(triples: np.ndarray, scheme: str = "paper") -> np.ndarray:
    """Colours of (n, 3) band strengths in [0, 1] (limits of 1: strength = variance)."""
    bands = np.asarray(triples, dtype=np.float64).T.reshape(1, 3, -1)
    colour, _ = colour_composite(bands, scheme, limits=np.ones(3))
    return colour[0]


def _recover(rgb: np.ndarray) -> np.ndarray:
    """Invert the paper composite: max channel = strongest band, direction = the mix."""
    colours = np.array([MAGENTA, CYAN, YELLOW], dtype=np.float64)
    peak = rgb.max(axis=-1, keepdims=True)
    mix = rgb * 2.0 / np.maximum(rgb.sum(axis=-1, keepdims=True), 1e-12)
    weights = mix @ np.linalg.inv(colours)
    return weights * peak / np.maximum(weights.max(axis=-1, keepdims=True), 1e-12)


def test_pure_bands_are_exactly_the_published_colours_at_full_strength():
    """Fig. 3A: cyan = small POSITIVE c, magenta = small NEGATIVE c, yellow = large |c|."""
    assert COLOUR_BANDS == ("small_negative", "small_positive", "large")
    pure = _pixels(np.eye(3))
    np.testing.assert_array_equal(pure[0], MAGENTA)  # small negative
    np.testing.assert_array_equal(pure[1], CYAN)  # small positive
    np.testing.assert_array_equal(pure[2], YELLOW)  # large |c|
    half = _pixels(0.5 * np.eye(3))
    np.testing.assert_allclose(half, 0.5 * pure)  # brightness follows the strength
    np.testing.assert_array_equal(_pixels(np.zeros((1, 3)))[0], [0, 0, 0])
    rgb = _pixels(np.eye(3), "rgb")  # the plain channels keep their meaning
    np.testing.assert_array_equal(rgb, np.eye(3))


def test_band_mixes_that_used_to_collide_on_white_get_distinct_colours():
    """Adding the colours and clipping sent all four of these to white (1, 1, 1)."""
    triples = np.array([[1, 1, 0], [1, 1, 1], [0.5, 0.5, 0.5], [1, 0.5, 0.5]], dtype=float)
    colours = _pixels(triples)
    distances = np.linalg.norm(colours[:, None] - colours[None], axis=-1)
    assert distances[~np.eye(4, dtype=bool)].min() > 0.1
    np.testing.assert_allclose(colours[1], [1, 1, 1])  # all three at full: white, and only it
    np.testing.assert_allclose(colours[2], [0.5, 0.5, 0.5])  # all three at half: mid grey
    # the composite can be inverted: every strength triple comes back from its colour
    rng = np.random.default_rng(0)
    random = rng.uniform(0, 1, size=(2000, 3))
    np.testing.assert_allclose(_recover(_pixels(random).astype(np.float64)), random, atol=1e-5)
    old = np.clip(random @ np.array([CYAN, MAGENTA, YELLOW], dtype=float), 0, 1)
    assert np.mean(np.all(old == 1, axis=1)) > 0.2  # what the old rule did to these triples


def test_per_latent_limits_show_every_latent_and_shared_limits_compare():
    bands = np.zeros((2, 3, 4, 4))
    bands[0, 1, 1:3, 1:3] = 1.0  # a strong latent
    bands[1, 1, 1:3, 1:3] = 0.01  # a latent 100x weaker, the same pattern
    own, own_limits = colour_composite(bands)  # the default: per latent
    assert DEFAULT_COLOUR_LIMITS == "per-latent" and own_limits.shape == (2, 3)
    np.testing.assert_allclose(own[0, 1, 1], CYAN)
    np.testing.assert_allclose(own[1, 1, 1], CYAN)  # the weak latent is visible too
    shared, shared_limits = colour_composite(bands, mode="shared")
    np.testing.assert_allclose(shared_limits[0], shared_limits[1])
    np.testing.assert_allclose(shared[1, 1, 1], [0, 0.01, 0.01], atol=1e-6)  # compared: dim
    silent = np.zeros((1, 3, 4, 4))
    silent[0, 0, 0, 0] = 1e-9  # a latent moving (almost) nothing stays (almost) black
    both = np.concatenate([bands, silent])
    dark, _ = colour_composite(both)
    assert dark[2].max() < 1e-3
    with pytest.raises(ProjectiveFieldError, match="unknown colour limits 'auto'"):
        colour_composite(bands, mode="auto")
    with pytest.raises(ProjectiveFieldError, match=r"colour bands must be \(K, 3"):
        colour_composite(np.zeros((1, 4, 2, 2)))
    with pytest.raises(ProjectiveFieldError, match="unknown colour scheme 'hsv'"):
        colour_composite(bands, "hsv")


def test_legend_names_each_colour_and_the_limits():
    legend = colour_legend("paper", "per-latent")
    assert legend[0] == (CYAN, "cyan: small positive c (0 to split)")
    assert legend[1] == (MAGENTA, "magenta: small negative c (-split to 0)")
    assert legend[2][0] == YELLOW and legend[2][1].startswith("yellow: large |c|")
    assert "per latent" in legend[-1][1]
    assert "shared" in colour_legend("paper", "shared")[-1][1]
    assert colour_legend("rgb")[0][1].startswith("green: small positive")


def test_over_anatomy_the_hue_is_kept_and_the_opacity_is_the_strength():
    """Issue 14 (3): adding the colours to a grey brain washed them out to grey-white; blended
    with opacity = strength, a strong voxel keeps its hue and a weak one shows the brain."""
    from brainvae.analysis.projective_colour import over_anatomy, rgba_overlay

    rng = np.random.default_rng(1)
    colour = _pixels(rng.uniform(0, 1, size=(500, 3)))
    rgba = rgba_overlay(colour)
    np.testing.assert_allclose(rgba[:, :3] * rgba[:, 3:], colour, atol=1e-6)  # over black
    np.testing.assert_allclose(rgba[:, 3], colour.max(axis=1))
    np.testing.assert_allclose(rgba_overlay(np.zeros((2, 3))), 0.0)  # nothing: transparent
    grey = np.full(len(colour), 0.35)
    blended = over_anatomy(colour, grey)
    full = _pixels(np.eye(3))  # magenta, cyan, yellow at full strength: exactly themselves
    np.testing.assert_allclose(over_anatomy(full, np.full(3, 0.35)), full)
    np.testing.assert_allclose(over_anatomy(np.zeros((1, 3)), [0.35]), [[0.35] * 3])
    added = np.clip(colour + grey[:, None], 0, 1)  # the old additive overlay
    saturation = lambda rgb: rgb.max(axis=1) - rgb.min(axis=1)  # noqa: E731
    assert np.all(saturation(blended) >= saturation(added) - 1e-6)
    assert np.mean(np.all(added > 0.99, axis=1)) > np.mean(np.all(blended > 0.99, axis=1))


def test_roi_outlines_take_a_colour_no_band_takes():
    from brainvae.analysis.projective_colour import COLOUR_SCHEMES, outline_colour

    for scheme, band_colours in COLOUR_SCHEMES.items():
        rgb, name = outline_colour(scheme)
        assert not any(np.allclose(rgb, band) for band in band_colours), scheme
        assert name in ("green", "orange")
    rgb, _ = outline_colour("paper")
    assert rgb == (0.0, 1.0, 0.0)
    # no strength triple makes the paper composite pure green (any brightness)
    triples = np.random.default_rng(2).uniform(0, 1, size=(20000, 3))
    colours = _pixels(triples)
    hue = colours / np.maximum(colours.max(axis=1, keepdims=True), 1e-9)
    assert np.linalg.norm(hue - np.array(rgb), axis=1).min() > 0.5
    with pytest.raises(ProjectiveFieldError, match="unknown colour scheme 'hsv'"):
        outline_colour("hsv")
