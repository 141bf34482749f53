"""Latent-space analyses on small real models: statistics, ranges, interpolation, traversal, export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainvae.analysis.latent_space import (
    check_images_fit,
    decode_codes,
    interpolation_codes,
    population_latents,
    slider_ranges,
    traversal_grid,
    traversal_values,
)
from brainvae.analysis.traversal_pictures import (
    labelled_traversal_picture,
    tile,
    to_uint8,
    traversal_animation_frames,
    traversal_mosaic,
)
from brainvae.exports.pictures import save_gif, save_labelled_traversal_png, save_png
from brainvae.models import ModelConfig, ModelError, build_model


def small_vae(shape: tuple[int, ...], latent_dim: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    config = ModelConfig(
        input_shape=shape, latent_dim=latent_dim, architecture="small", family="beta_vae"
    )
    return build_model(config).eval()


def fitted_pca(shape: tuple[int, ...], latent_dim: int = 3, n: int = 30):
    data = np.random.default_rng(0).random((n, *shape), dtype=np.float32)
    model = build_model(ModelConfig(input_shape=shape, latent_dim=latent_dim, family="pca"))
    return model.fit(data).eval(), data


def test_population_statistics_match_the_encoder():
    model = small_vae((24, 20))
    images = np.random.default_rng(1).random((37, 24, 20), dtype=np.float32)
    stats = population_latents(model, images, batch_size=8)  # batches of 8, last one partial
    with torch.inference_mode():
        mu, logvar = model.encode(images)
    assert stats.codes.shape == (37, 4)
    np.testing.assert_allclose(stats.codes, mu.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.mean, mu.numpy().mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.sd, mu.numpy().std(0), rtol=1e-4, atol=1e-6)
    expected_kl = 0.5 * (mu.square() + logvar.exp() - logvar - 1).mean(0)
    np.testing.assert_allclose(stats.kl, expected_kl.numpy(), rtol=1e-4, atol=1e-6)
    assert stats.active.tolist() == (stats.sd**2 > 0.01).tolist()


def test_pca_has_no_kl_and_unit_sd():
    model, data = fitted_pca((12, 10))
    stats = population_latents(model, data)
    assert stats.kl is None  # point codes: a KL would only measure the stand-in logvar
    np.testing.assert_allclose(stats.sd, 1.0, atol=0.05)  # whitened on the same data
    assert stats.active.all()


def test_wrong_shape_is_a_clear_error():
    model = small_vae((24, 20))
    with pytest.raises(ModelError, match="images are 20 x 24 but the model expects 24 x 20"):
        check_images_fit(model, (5, 20, 24))
    with pytest.raises(ModelError, match="3D"):
        population_latents(small_vae((12, 14, 10)), np.zeros((2, 24, 20), np.float32))


def test_slider_ranges_modes_and_dead_latent_fallback():
    model = small_vae((24, 20))
    images = np.random.default_rng(2).random((20, 24, 20), dtype=np.float32)
    stats = population_latents(model, images)
    ranges = slider_ranges("population", 4, stats, n_sd=3.0)
    np.testing.assert_allclose(ranges.low, stats.mean - 3 * stats.sd)
    np.testing.assert_allclose(ranges.high, stats.mean + 3 * stats.sd)
    assert slider_ranges("fixed3", 4).high.tolist() == [3.0] * 4
    assert slider_ranges("fixed7", 4).low.tolist() == [-7.0] * 4
    # A latent that never moves keeps a usable slider (the prior's width) and is flagged.
    dead = population_latents(model, np.repeat(images[:1], 5, axis=0))
    fallback = slider_ranges("population", 4, dead)
    assert fallback.prior_fallback.all()
    np.testing.assert_allclose(fallback.high - fallback.low, 6.0)
    assert not dead.active.any()
    with pytest.raises(ValueError, match="statistics"):
        slider_ranges("population", 4, None)
    with pytest.raises(ValueError, match="unknown range mode"):
        slider_ranges("quantile", 4)


def test_interpolation_codes_run_from_start_to_end():
    start, end = np.array([0.0, 1.0, -2.0]), np.array([2.0, 1.0, 2.0])
    codes = interpolation_codes(start, end, 5)
    assert codes.shape == (5, 3)
    np.testing.assert_allclose(codes[0], start)
    np.testing.assert_allclose(codes[-1], end)
    np.testing.assert_allclose(codes[2], (start + end) / 2)
    with pytest.raises(ValueError, match="at least 2"):
        interpolation_codes(start, end, 1)


@pytest.mark.parametrize("shape", [(24, 20), (12, 14, 10)])
def test_traversal_grid_matches_single_decodes(shape):
    model = small_vae(shape)
    base = np.array([0.3, -0.2, 0.1, 0.5])
    ranges = slider_ranges("fixed3", 4)
    values = traversal_values(ranges, [0, 2], 5)
    np.testing.assert_allclose(values[0], np.linspace(-3, 3, 5))
    grid = traversal_grid(model, base, [0, 2], values, batch_size=3)
    assert grid.images.shape == (2, 5, *shape)
    code = base.copy()
    code[2] = values[1, 3]
    np.testing.assert_allclose(grid.images[1, 3], decode_codes(model, code)[0], atol=1e-5)
    # Different values give different images (the grid is not one image repeated).
    assert not np.allclose(grid.images[0, 0], grid.images[0, -1])


def test_pca_decodes_its_own_codes_back():
    model, data = fitted_pca((12, 10), latent_dim=3)
    stats = population_latents(model, data)
    recon = decode_codes(model, stats.codes[:4])
    with torch.inference_mode():
        expected = model.reconstruct(data[:4]).numpy()
    np.testing.assert_allclose(recon, expected, atol=1e-5)


def test_mosaic_places_each_tile():
    images = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)
    mosaic = tile(images, gap=1, fill=-1.0)
    assert mosaic.shape == (2 * 4 + 1, 3 * 5 + 2)
    np.testing.assert_array_equal(mosaic[5:9, 6:11], images[1, 1])
    assert (mosaic[4] == -1).all() and (mosaic[:, 5] == -1).all()
    volumes = np.random.default_rng(0).random((2, 3, 6, 4, 5))
    assert tile(volumes, gap=2).shape == (6, 2 * 4 + 2, 3 * 5 + 4)  # axial axis kept


def test_3d_traversal_pictures_and_files(tmp_path):
    from PIL import Image

    model = small_vae((12, 14, 10))
    grid = traversal_grid(model, np.zeros(4), [0, 1, 2, 3], np.linspace(-2, 2, 4))
    mosaic = traversal_mosaic(grid, slice_index=6, gap=2)
    assert mosaic.shape == (4 * 14 + 6, 4 * 10 + 6)
    np.testing.assert_array_equal(mosaic[16:30, 12:22], grid.images[1, 1, 6])
    frames = traversal_animation_frames(grid, slice_index=6, gap=2)
    assert frames.shape == (4 + 2, 14, 4 * 10 + 6)  # up 0..3 then back 2, 1
    np.testing.assert_array_equal(frames[4][:, :10], grid.images[0, 2, 6])
    png = save_png(mosaic, tmp_path / "grid.png")
    picture = np.asarray(Image.open(png))
    assert picture.shape == mosaic.shape and picture.dtype == np.uint8
    assert picture.max() > picture.min()
    labelled = save_labelled_traversal_png(grid, tmp_path / "labelled.png", slice_index=6)
    picture = np.asarray(Image.open(labelled))
    expected, (top, left) = labelled_traversal_picture(grid, slice_index=6)
    np.testing.assert_array_equal(picture, expected)
    # the grid itself is untouched beside its labels, scaled like the unlabelled PNG
    np.testing.assert_array_equal(picture[top:, left:], to_uint8(mosaic))
    for row in range(4):  # each row band of the margin carries its label's text
        band = picture[top + row * 16 : top + row * 16 + 14, :left]
        assert (band > 0).any(), f"no label beside row {row}"
    assert (picture[:top] > 0).any()  # the column note
    gif = save_gif(frames, tmp_path / "traversal.gif", frames_per_second=5)
    with Image.open(gif) as animation:
        assert animation.n_frames == len(frames)
        assert animation.info["duration"] == 200
