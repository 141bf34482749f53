"""Preprocessing steps on known arrays, the config's JSON round trip and validation,
and the affine bookkeeping that keeps world coordinates through crop + block averaging."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainvae.data.io.nifti import read_nifti
from brainvae.data.preprocessing import PreprocessConfig, preprocess_volume, steps
from brainvae.data.preprocessing.pipeline import load_mask
from brainvae.errors import DataFileError, DatasetError


def test_crop_box_and_centred_box():
    x = np.arange(6 * 8 * 10).reshape(6, 8, 10)
    out = steps.crop(x, ((1, 5), (2, 8), (0, 10)))
    assert out.shape == (4, 6, 10)
    assert out[0, 0, 0] == x[1, 2, 0]
    assert steps.centred_box((182, 218, 182), (160, 192, 160)) == ((11, 171), (13, 205), (11, 171))
    assert steps.centred_box((5,), (2,)) == ((1, 3),)
    with pytest.raises(ValueError, match="outside"):
        steps.crop(x, ((0, 7), (0, 8), (0, 10)))
    with pytest.raises(ValueError, match="larger"):
        steps.centred_box((4, 4), (5, 4))


def test_block_average_values_exact():
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    out = steps.block_average(x, 2)
    np.testing.assert_array_equal(out, [[2.5, 4.5], [10.5, 12.5]])
    assert out.dtype == np.float32
    y = np.arange(4 * 6 * 2, dtype=np.float32).reshape(4, 6, 2)
    np.testing.assert_allclose(steps.block_average(y, (2, 3, 1))[1, 1, 1], y[2:4, 3:6, 1].mean())


def test_block_average_remainder_trimmed_or_refused():
    x = np.arange(25, dtype=np.float32).reshape(5, 5)
    out = steps.block_average(x, 2)  # last row and column dropped
    np.testing.assert_array_equal(out, steps.block_average(x[:4, :4], 2))
    with pytest.raises(ValueError, match="not divisible"):
        steps.block_average(x, 2, remainder="error")


def test_mask_zeroes_outside():
    x = np.full((3, 3), 5.0, dtype=np.float32)
    mask = np.zeros((3, 3), bool)
    mask[1, 1] = True
    out = steps.apply_mask(x, mask)
    assert out.sum() == 5.0 and out[1, 1] == 5.0


def test_clip_at_percentile():
    x = np.arange(1000, dtype=np.float32)
    out = steps.clip_percentile(x, 99.5)
    assert out.max() == pytest.approx(np.percentile(x, 99.5))
    np.testing.assert_array_equal(out[:990], x[:990])


def test_scale_unit_range_uses_min_and_range():
    x = np.array([-2.0, 0.0, 2.0], dtype=np.float32)
    np.testing.assert_allclose(steps.scale_unit_range(x), [0.0, 0.5, 1.0])
    assert steps.scale_unit_range(np.full(4, 3.0)).max() == 0.0


def test_brightness_equalisation_with_saturation():
    images = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 3.0)]).astype(np.float32)
    images[1, 0, 0] = 100.0  # a bright leak
    means = images.reshape(2, -1).mean(axis=1)
    population = float(means.mean())
    out = steps.equalise_brightness(images, means, population, k=3.8, normalise=False)
    assert out[0].mean() == pytest.approx(population)
    assert out.max() == pytest.approx(3.8 * population)  # the leak is saturated
    normalised = steps.equalise_brightness(images, means, population, k=3.8)
    assert normalised.max() == pytest.approx(1.0)


def test_extract_slices_axis_index_and_range():
    x = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    one = steps.extract_slices(x, 1, [2])
    np.testing.assert_array_equal(one[0], x[:, 2, :])
    many = steps.extract_slices(x, 2, range(1, 4))
    assert many.shape == (3, 4, 5)
    np.testing.assert_array_equal(many[2], x[:, :, 3])
    with pytest.raises(ValueError, match="outside"):
        steps.extract_slices(x, 0, [4])


def test_config_json_round_trip(tmp_path):
    config = PreprocessConfig(
        crop=((1, 9), (0, 8), (2, 6)),
        block=(2, 2, 1),
        slice_axis="coronal",
        slice_range=(1, 3),
        brightness_k=3.8,
        split_seed=4,
    )
    path = config.save(tmp_path / "prep.json")
    assert json.loads(path.read_text())["version"] == 1
    assert PreprocessConfig.load(path) == config
    assert PreprocessConfig.from_dict(config.to_dict()) == config
    assert config.slice_axis == 1 and config.slice_indices() == (1, 2)


def test_presets():
    flair = PreprocessConfig.flair_3d()
    assert (
        flair.crop_shape == (160, 192, 160) and flair.block == 4 and flair.clip_percentile == 99.5
    )
    assert flair.scale and flair.expected_ndim == 3
    assert PreprocessConfig.mouse_2d().brightness_k == 3.8
    identity = PreprocessConfig.identity()
    assert identity.clip_percentile is None and not identity.scale and identity.block == 1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"colour": 1}, "unknown key.*colour"),
        ({"block": 0}, "block"),
        ({"clip_percentile": 150}, "clip_percentile"),
        ({"slice_axis": "diagonal", "slice_index": 1}, "slice_axis"),
        ({"slice_index": 3}, "slice_axis"),
        ({"nonfinite": "ignore"}, "nonfinite"),
        ({"crop": [[0, 4], [0, 4]], "crop_shape": [2, 2]}, "not both"),
        ({"split_fractions": [0.5, 0.2, 0.2]}, "split_fractions"),
        ({"version": 99}, "newer"),
        ({"expected_ndim": 4}, "expected_ndim"),
    ],
)
def test_config_validation_errors(values, message):
    with pytest.raises(DatasetError, match=message):
        PreprocessConfig.from_dict(values)


def test_config_load_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"blocks": 2}')
    with pytest.raises(DataFileError, match="bad.json.*blocks"):
        PreprocessConfig.load(path)


def test_affine_keeps_world_coordinates_after_crop_and_block(write_nii):
    affine = np.array([[0, 0, -1.5, 40], [0, 2.0, 0, -60], [1.0, 0, 0, -20], [0, 0, 0, 1]])
    data = np.random.default_rng(0).random((12, 14, 16)).astype(np.float32)
    volume = read_nifti(write_nii("v.nii.gz", data, affine))
    config = PreprocessConfig.identity(crop=((2, 10), (1, 13), (3, 15)), block=(2, 3, 4))
    result = preprocess_volume(volume, config)
    assert result.scan_shape == (4, 4, 3)
    out_index = np.array([1, 2, 1])
    block_start = np.array([2, 1, 3]) + out_index * [2, 3, 4]
    block_centre = block_start + (np.array([2, 3, 4]) - 1) / 2
    world_out = result.affine @ np.append(out_index, 1)
    world_in = volume.affine @ np.append(block_centre, 1)
    np.testing.assert_allclose(world_out, world_in)
    # and the value is the mean of that block
    block = volume.data[tuple(slice(s, s + f) for s, f in zip(block_start, (2, 3, 4), strict=True))]
    assert result.samples[0][tuple(out_index)] == pytest.approx(block.mean(), rel=1e-5)
    assert result.voxel_size == pytest.approx(tuple(np.array(volume.zooms) * [2, 3, 4]))


def test_slices_keep_their_world_position(write_nii):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    volume = read_nifti(write_nii("v.nii.gz", np.random.rand(6, 8, 10).astype(np.float32), affine))
    config = PreprocessConfig.identity(slice_axis="coronal", slice_range=(2, 5), block=2)
    result = preprocess_volume(volume, config)
    assert result.samples.shape == (3, volume.data.shape[0] // 2, volume.data.shape[2] // 2)
    assert result.squeezed_axes == (1,) and result.slice_indices == (2, 3, 4)
    index = np.array([1.0, 3.0, 2.0, 1.0])  # slice 3 of the input, output pixel (1, 2)
    expected = volume.affine @ np.array([2 + 0.5, 3, 4 + 0.5, 1])
    np.testing.assert_allclose(result.affine @ index, expected)
    np.testing.assert_allclose(result.samples[1], steps.block_average(volume.data[:, 3, :], 2))


def test_slice_error_says_it_comes_from_the_config(write_nii):
    volume = read_nifti(write_nii("v.nii.gz", np.zeros((6, 8, 4), np.float32)))
    config = PreprocessConfig(slice_axis="coronal", slice_index=20)
    with pytest.raises(DataFileError) as info:
        preprocess_volume(volume, config)
    message = str(info.value)
    assert "slice index 20 is outside" in message
    expected = "the slice comes from the preprocessing config (slice_axis=1 = posterior axis, "
    assert expected + "slice_index=20)" in message
    assert "display orientation (axes inferior, posterior, right)" in message


# -- the flair3d preset: clip within the brain, split 90/10 (issue 12.6.2) --------------------
def brain_in_background(shape=(40, 40, 40), radius=12.0, seed=0) -> np.ndarray:
    """A ball of positive, continuous intensities in a zero background (~11 % of the voxels)."""
    rng = np.random.default_rng(seed)
    offsets = np.indices(shape) - (np.array(shape) - 1).reshape(-1, 1, 1, 1) / 2
    ball = (offsets**2).sum(0) <= radius**2
    return np.where(ball, rng.uniform(0.2, 1.0, shape), 0.0).astype(np.float32)


def test_flair_clip_removes_half_a_percent_of_the_brain_not_of_the_background(write_nii):
    data = brain_in_background()
    assert (data > 0).mean() < 0.15  # mostly background, like a skull-stripped scan
    volume = read_nifti(write_nii("v.nii.gz", data))
    sample = preprocess_volume(volume, PreprocessConfig.flair_3d(crop_shape=None, block=1))
    brain = sample.samples[0][sample.samples[0] > 0]
    clipped = np.mean(brain == brain.max())  # clipped voxels all land on the scaled maximum
    assert clipped == pytest.approx(0.005, abs=0.001)


def test_flair_clip_percentile_is_taken_within_the_mask(write_nii):
    data = brain_in_background(radius=12.0)
    mask_path = write_nii("mask.nii.gz", (brain_in_background(radius=15.0) > 0).astype(np.uint8))
    volume = read_nifti(write_nii("v.nii.gz", data))
    mask = load_mask(str(mask_path))
    config = PreprocessConfig.flair_3d(crop_shape=None, block=2, scale=False, mask=str(mask_path))
    sample = preprocess_volume(volume, config, mask).samples[0]
    blocks = steps.block_average(np.where(mask, volume.data, 0), 2)
    in_brain = steps.block_average(mask.astype(np.float32), 2) > 0  # includes zero voxels
    assert (blocks[in_brain] == 0).mean() > 0.2
    assert sample.max() == pytest.approx(np.percentile(blocks[in_brain], 99.5), rel=1e-6)


def test_clip_region_is_brain_only_for_flair3d():
    assert PreprocessConfig.flair_3d().clip_region == "brain"
    assert PreprocessConfig().clip_region == "image"
    assert PreprocessConfig.from_dict({"clip_region": "brain"}).clip_region == "brain"
    with pytest.raises(DatasetError, match="clip_region"):
        PreprocessConfig(clip_region="skull")
    x = np.zeros(1000, np.float32)
    x[:100] = np.arange(1, 101)
    np.testing.assert_array_equal(
        steps.clip_percentile(x, 50.0, x > 0)[:100], np.minimum(x[:100], 50.5)
    )
    np.testing.assert_array_equal(steps.clip_percentile(x, 50.0), np.zeros(1000))  # whole image


def test_flair_preset_splits_90_10_with_no_test_split():
    assert PreprocessConfig.flair_3d().split_fractions == (0.9, 0.1, 0.0)
    for other in (PreprocessConfig(), PreprocessConfig.identity(), PreprocessConfig.mouse_2d()):
        assert other.split_fractions == (0.8, 0.1, 0.1)


def test_prepare_with_the_flair_preset_gives_90_10(tmp_path, write_nii):
    from brainvae.data.prepare import prepare

    for i in range(20):
        write_nii(f"src/sub-{i:02d}.nii.gz", brain_in_background((12, 12, 12), 4.0, seed=i))
    config = PreprocessConfig.flair_3d(crop_shape=None, block=2)
    dataset = prepare(tmp_path / "src", tmp_path / "ds", config, workers=1)
    counts = dataset.metadata["split"].value_counts().to_dict()
    assert counts == {"train": 18, "val": 2}
    assert dataset.report["warnings"] == []  # no test split was asked for: none is "empty"
