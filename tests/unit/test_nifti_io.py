"""NIfTI volume I/O: display orientation, exact round trips, and clear errors for bad files."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainvae.data.io.nifti import DISPLAY_AXCODES, is_nifti_path, read_nifti
from brainvae.data.io.nifti_writing import write_nifti
from brainvae.errors import DataFileError, MemoryBudgetError

RAS = np.diag([1.0, 1.0, 1.0, 1.0])
LAS = np.diag([-1.0, 1.0, 1.0, 1.0])
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
# Voxel axes stored as (y, z, x): a permuted, anisotropic affine.
PERMUTED = np.array(
    [[0.0, 0.0, 3.0, -10.0], [-2.0, 0.0, 0.0, 20.0], [0.0, 1.5, 0.0, 5.0], [0, 0, 0, 1]]
)
AFFINES = {"RAS": RAS, "LAS": LAS, "LPS": LPS, "permuted": PERMUTED}


def _corner_voxel(affine: np.ndarray, shape: tuple[int, ...], signs=(1, 1, 1)) -> tuple:
    """Voxel index at the world corner (signs[0] * x, signs[1] * y, signs[2] * z) maximal."""
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in shape], indexing="ij")).reshape(3, -1).T
    world = nib.affines.apply_affine(affine, corners)
    best = np.argmax(world @ np.asarray(signs, dtype=float))
    return tuple(int(i) for i in corners[best])


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


# ---------------------------------------------------------------- orientation


@pytest.mark.parametrize("name", list(AFFINES))
def test_marker_at_world_corner_lands_at_display_corner(tmp_path, name):
    affine = AFFINES[name]
    shape = (5, 6, 7)
    data = np.zeros(shape, np.float32)
    data[_corner_voxel(affine, shape)] = 10.0  # right, anterior, superior corner
    data[_corner_voxel(affine, shape, (-1, -1, -1))] = 5.0  # left, posterior, inferior
    vol = read_nifti(_save(tmp_path / f"{name}.nii.gz", data, affine))
    assert vol.axis_names == ("inferior", "posterior", "right")
    assert vol.data[0, 0, -1] == 10.0  # superior = top slice, anterior = top row, right = right
    assert vol.data[-1, -1, 0] == 5.0
    # The display affine maps display indices to the same world points as the file's.
    marker_display = np.argwhere(vol.data == 10.0)[0]
    marker_file = _corner_voxel(affine, shape)
    np.testing.assert_allclose(
        nib.affines.apply_affine(vol.affine, marker_display),
        nib.affines.apply_affine(affine, marker_file),
    )
    assert nib.aff2axcodes(vol.affine) == DISPLAY_AXCODES


def test_zooms_follow_display_axes(tmp_path):
    vol = read_nifti(_save(tmp_path / "p.nii", np.zeros((4, 5, 6), np.float32), PERMUTED))
    # file axes run along y (2 mm), z (1.5 mm), x (3 mm); display is (z, y, x)
    assert vol.data.shape == (5, 4, 6)
    np.testing.assert_allclose(vol.zooms, (1.5, 2.0, 3.0))


@pytest.mark.parametrize("name", ["RAS", "LPS"])
@pytest.mark.parametrize(
    "plane, shape, expected_signs",
    [
        # coronal: rows inferior (top = superior), columns right
        ("coronal", (6, 1, 7), ((1, 1, 1), (0, -1), (-1, 1, -1), (-1, 0))),
        # axial: rows posterior (top = anterior), columns right
        ("axial", (6, 7, 1), ((1, 1, 1), (0, -1), (-1, -1, 1), (-1, 0))),
        # sagittal: rows inferior, columns posterior (anterior on the left)
        ("sagittal", (1, 6, 7), ((1, 1, 1), (0, 0), (1, -1, -1), (-1, -1))),
    ],
)
def test_single_slice_squeezes_upright(tmp_path, name, plane, shape, expected_signs):
    affine = AFFINES[name]
    corner_a, where_a, corner_b, where_b = expected_signs
    data = np.zeros(shape, np.float32)
    data[_corner_voxel(affine, shape, corner_a)] = 10.0
    data[_corner_voxel(affine, shape, corner_b)] = 5.0
    vol = read_nifti(_save(tmp_path / f"{plane}.nii.gz", data, affine))
    assert vol.data.ndim == 2
    assert vol.data[where_a] == 10.0
    assert vol.data[where_b] == 5.0
    squeezed_name = {"coronal": "posterior", "axial": "inferior", "sagittal": "right"}[plane]
    assert squeezed_name not in vol.axis_names
    assert len(vol.squeezed_axes) == 1


def test_bare_2d_nifti_is_an_axial_slice(tmp_path):
    data = np.zeros((6, 7), np.float32)
    data[5, 6] = 1.0  # +x, +y corner with an RAS affine
    vol = read_nifti(_save(tmp_path / "flat.nii", data, RAS))
    assert vol.data.shape == (7, 6)
    assert vol.axis_names == ("posterior", "right")
    assert vol.data[0, -1] == 1.0


def test_squeeze_false_keeps_three_axes(tmp_path):
    vol = read_nifti(_save(tmp_path / "c.nii", np.zeros((6, 1, 7), np.float32), RAS), squeeze=False)
    assert vol.data.shape == (7, 1, 6)
    assert vol.squeezed_axes == ()


def test_4d_volume_axis_first(tmp_path):
    data = np.arange(3 * 4 * 5 * 2, dtype=np.float32).reshape(3, 4, 5, 2)
    vol = read_nifti(_save(tmp_path / "four.nii.gz", data, LAS))
    assert vol.is_4d
    assert vol.axis_names == ("volume", "inferior", "posterior", "right")
    assert vol.data.shape == (2, 5, 4, 3)
    np.testing.assert_array_equal(vol.data[1].sum(), data[..., 1].sum())


# ---------------------------------------------------------------- dtypes


def test_integer_labels_stay_integer_and_native(tmp_path):
    data = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    vol = read_nifti(_save(tmp_path / "labels.nii", data, RAS))
    assert vol.data.dtype == np.int16
    assert vol.data.dtype.isnative


def test_scaled_integers_become_float32(tmp_path):
    img = nib.Nifti1Image(np.linspace(0.0, 1.5, 24, dtype=np.float32).reshape(2, 3, 4), RAS)
    img.set_data_dtype(np.int16)  # nibabel stores int16 with a slope
    nib.save(img, str(tmp_path / "scaled.nii"))
    assert nib.load(str(tmp_path / "scaled.nii")).dataobj.slope != 1.0
    vol = read_nifti(tmp_path / "scaled.nii")
    assert vol.data.dtype == np.float32
    assert vol.data.max() == pytest.approx(1.5, rel=1e-3)


def test_singular_affine_falls_back_to_voxel_sizes(tmp_path):
    raw = bytearray(_save(tmp_path / "ok.nii", np.zeros((3, 4, 5), np.float32), RAS).read_bytes())
    struct.pack_into("<2h", raw, 252, 0, 1)  # qform_code 0, sform_code 1: use the sform
    struct.pack_into("<12f", raw, 280, *([0.0] * 12))  # srow_x, srow_y, srow_z all zero
    (tmp_path / "flat_affine.nii").write_bytes(bytes(raw))
    vol = read_nifti(tmp_path / "flat_affine.nii")
    assert np.all(np.isfinite(vol.affine))
    assert "affine_replaced" in vol.header


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", ["anatomical.nii", "example4d.nii.gz"])
def test_real_scan_round_trip_is_exact(tmp_path, nibabel_data, name):
    vol = read_nifti(nibabel_data / name)
    out = write_nifti(
        tmp_path / f"copy_{name}",
        vol.data,
        vol.affine,
        squeezed_axes=vol.squeezed_axes,
        is_4d=vol.is_4d,
    )
    again = read_nifti(out)
    assert again.data.dtype == vol.data.dtype
    np.testing.assert_array_equal(again.data, vol.data)
    np.testing.assert_array_equal(again.affine, vol.affine)
    assert again.axis_names == vol.axis_names
    assert again.squeezed_axes == vol.squeezed_axes


def test_real_scan_zooms(nibabel_data):
    anatomical = read_nifti(nibabel_data / "anatomical.nii")
    np.testing.assert_allclose(anatomical.zooms, (2.0, 2.0, 2.0))
    four = read_nifti(nibabel_data / "example4d.nii.gz")
    # file zooms (2.0, 2.0, 2.2) along (L, A, S); display (I, P, R) puts 2.2 first
    np.testing.assert_allclose(four.zooms, (2.2, 2.0, 2.0), atol=1e-5)
    assert four.data.shape == (2, 24, 96, 128)


@pytest.mark.parametrize("plane_shape", [(6, 1, 7), (6, 7, 1), (1, 6, 7)])
def test_single_slice_round_trip_is_exact(tmp_path, plane_shape):
    rng = np.random.default_rng(0)
    affine = np.array([[-0.9, 0, 0, 30.0], [0, 1.1, 0, -12.5], [0, 0, 2.5, 7.25], [0, 0, 0, 1]])
    path = _save(tmp_path / "slice.nii.gz", rng.random(plane_shape, dtype=np.float32), affine)
    vol = read_nifti(path)
    again = read_nifti(
        write_nifti(
            tmp_path / "slice_copy.nii", vol.data, vol.affine, squeezed_axes=vol.squeezed_axes
        )
    )
    np.testing.assert_array_equal(again.data, vol.data)
    np.testing.assert_array_equal(again.affine, vol.affine)
    assert again.squeezed_axes == vol.squeezed_axes


def test_write_casts_to_nifti_types(tmp_path):
    out = write_nifti(tmp_path / "b.nii", np.ones((2, 3, 4), bool))
    assert read_nifti(out).data.dtype == np.uint8
    out = write_nifti(tmp_path / "i.nii", np.arange(24, dtype=np.int64).reshape(2, 3, 4))
    assert read_nifti(out).data.dtype == np.int32
    out = write_nifti(tmp_path / "f.nii", np.ones((2, 3, 4), np.float64))
    assert read_nifti(out).data.dtype == np.float32
    with pytest.raises(DataFileError, match="int32"):
        write_nifti(tmp_path / "big.nii", np.full((2, 2, 2), 2**40, dtype=np.int64))


def test_write_refuses_other_names_and_leaves_no_partial_file(tmp_path):
    with pytest.raises(DataFileError, match="out.tif"):
        write_nifti(tmp_path / "out.tif", np.zeros((2, 2, 2)))
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(DataFileError, match="x.nii.gz"):
        write_nifti(blocker / "x.nii.gz", np.zeros((2, 2, 2)))
    write_nifti(tmp_path / "ok.nii.gz", np.zeros((2, 2, 2)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_folder", "ok.nii.gz"]


def test_is_nifti_path():
    assert is_nifti_path("a.nii") and is_nifti_path("A.NII.GZ") and is_nifti_path(Path("x.nii.gz"))
    assert not is_nifti_path("a.gz") and not is_nifti_path("a.npy") and not is_nifti_path("nii")


# ---------------------------------------------------------------- bad files


@pytest.fixture
def real_files(tmp_path):
    data = np.random.default_rng(1).random((20, 20, 20), dtype=np.float32)
    return _save(tmp_path / "real.nii.gz", data, RAS), _save(tmp_path / "real.nii", data, RAS)


def _bad_file(tmp_path: Path, real_files, kind: str) -> Path:
    gz, plain = real_files
    if kind == "missing":
        return tmp_path / "missing.nii.gz"
    if kind == "truncated_gz":
        path = tmp_path / "cut.nii.gz"
        path.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    elif kind == "truncated_nii":
        path = tmp_path / "cut.nii"
        path.write_bytes(plain.read_bytes()[: plain.stat().st_size // 2])
    elif kind == "random_gz":
        path = tmp_path / "x.nii.gz"
        path.write_bytes(np.random.default_rng(2).bytes(4000))
    elif kind == "text_nii":
        path = tmp_path / "x.nii"
        path.write_text("subject,age\n" * 100)
    elif kind == "gzipped_text":
        path = tmp_path / "text.nii.gz"
        path.write_bytes(gzip.compress(b"subject,age\n" * 100))
    elif kind == "empty":
        path = tmp_path / "empty.nii"
        path.write_bytes(b"")
    elif kind in ("huge_header_nii", "huge_header_gz"):
        raw = bytearray(plain.read_bytes())
        struct.pack_into("<8h", raw, 40, 3, 3000, 3000, 3000, 1, 1, 1, 1)
        if kind == "huge_header_nii":
            path = tmp_path / "huge.nii"
            path.write_bytes(bytes(raw))
        else:
            path = tmp_path / "huge.nii.gz"
            path.write_bytes(gzip.compress(bytes(raw)))
    elif kind == "folder":
        path = tmp_path / "folder.nii"
        path.mkdir()
    else:
        raise AssertionError(kind)
    return path


BAD_KINDS = [
    "missing",
    "truncated_gz",
    "truncated_nii",
    "random_gz",
    "text_nii",
    "gzipped_text",
    "empty",
    "huge_header_nii",
    "huge_header_gz",
    "folder",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_file_raises_data_file_error_naming_it(tmp_path, real_files, kind):
    path = _bad_file(tmp_path, real_files, kind)
    with pytest.raises(DataFileError) as info:
        read_nifti(path)
    assert path.name in str(info.value)
    assert info.value.path == path


def test_memory_budget_checked_before_reading_voxels(tmp_path, real_files):
    # The truncated file would fail on reading voxels: the budget error must come first.
    path = _bad_file(tmp_path, real_files, "truncated_nii")
    with pytest.raises(MemoryBudgetError, match="cut.nii"):
        read_nifti(path, max_bytes=1000)
    assert read_nifti(real_files[0], max_bytes=20**3 * 4).data.shape == (20, 20, 20)


def test_error_keeps_original_cause(tmp_path, real_files):
    path = _bad_file(tmp_path, real_files, "truncated_gz")
    with pytest.raises(DataFileError) as info:
        read_nifti(path)
    assert info.value.__cause__ is not None
    assert os.fspath(path) in str(info.value)


# ---------------------------------------------------------------- source file layout


def _write_back(vol, path: Path) -> Path:
    """write_nifti with the source file's layout (the napari writer's path for an unmoved layer)."""
    from brainvae.data.io.nifti import volume_layout

    return write_nifti(
        path,
        vol.data,
        vol.affine,
        squeezed_axes=vol.squeezed_axes,
        is_4d=vol.is_4d,
        original=volume_layout(vol),
    )


def _assert_same_file_layout(written: Path, source: Path) -> None:
    """Shape, affine, qform/sform codes and (native) voxel type of the file on disk match."""
    out, src = nib.load(str(written)), nib.load(str(source))
    assert out.shape == src.shape
    np.testing.assert_array_equal(out.affine, src.affine)
    assert int(out.header["qform_code"]) == int(src.header["qform_code"])
    assert int(out.header["sform_code"]) == int(src.header["sform_code"])
    assert out.get_data_dtype().newbyteorder("=") == src.get_data_dtype().newbyteorder("=")
    assert out.header.get_xyzt_units() == src.header.get_xyzt_units()


@pytest.mark.parametrize("name", ["anatomical.nii", "example4d.nii.gz"])
def test_write_back_gives_the_source_file_layout(tmp_path, nibabel_data, name):
    source = nibabel_data / name
    vol = read_nifti(source)
    out = _write_back(vol, tmp_path / f"copy_{name}")
    _assert_same_file_layout(out, source)
    np.testing.assert_array_equal(
        np.asarray(nib.load(str(out)).dataobj), np.asarray(nib.load(str(source)).dataobj)
    )
    np.testing.assert_allclose(
        nib.load(str(out)).header.get_zooms(), nib.load(str(source)).header.get_zooms()
    )
    again = read_nifti(out)
    np.testing.assert_array_equal(again.data, vol.data)
    np.testing.assert_array_equal(again.affine, vol.affine)
    assert again.data.dtype == vol.data.dtype


@pytest.mark.parametrize("plane_shape", [(6, 1, 7), (1, 6, 7)])
def test_write_back_single_slice_keeps_its_file_shape(tmp_path, plane_shape):
    affine = np.array([[-0.9, 0, 0, 30.0], [0, 1.1, 0, -12.5], [0, 0, 2.5, 7.25], [0, 0, 0, 1]])
    data = np.arange(np.prod(plane_shape), dtype=np.int16).reshape(plane_shape)
    source = _save(tmp_path / "slice.nii.gz", data, affine)
    vol = read_nifti(source)
    assert vol.data.ndim == 2
    out = _write_back(vol, tmp_path / "slice_copy.nii.gz")
    _assert_same_file_layout(out, source)
    np.testing.assert_array_equal(np.asarray(nib.load(str(out)).dataobj), data)
    np.testing.assert_array_equal(read_nifti(out).data, vol.data)


def test_write_back_mni_template_keeps_scaled_uint8_and_standard_space_code(tmp_path):
    from nilearn.datasets import load_mni152_template

    source = tmp_path / "mni.nii.gz"
    nib.save(load_mni152_template(resolution=2), str(source))
    vol = read_nifti(source)
    assert vol.data.dtype == np.float32  # uint8 with a slope reads as float
    out = _write_back(vol, tmp_path / "mni_copy.nii.gz")
    _assert_same_file_layout(out, source)
    assert int(nib.load(str(out)).header["sform_code"]) == 2
    assert nib.load(str(out)).dataobj.slope == nib.load(str(source)).dataobj.slope
    assert out.stat().st_size < 1.2 * source.stat().st_size
    again = read_nifti(out)
    np.testing.assert_array_equal(again.data, vol.data)
    np.testing.assert_array_equal(again.affine, vol.affine)


def test_write_back_of_edited_values_falls_back_to_float32_in_file_order(tmp_path, nibabel_data):
    source = nibabel_data / "anatomical.nii"
    vol = read_nifti(source)
    vol.data = vol.data.astype(np.float32) + 0.25  # no longer fits int16 without loss
    out = _write_back(vol, tmp_path / "smoothed.nii")
    assert nib.load(str(out)).get_data_dtype() == np.float32
    assert nib.load(str(out)).shape == nib.load(str(source)).shape
    np.testing.assert_array_equal(nib.load(str(out)).affine, nib.load(str(source)).affine)
    np.testing.assert_array_equal(read_nifti(out).data, vol.data)


def test_write_back_refuses_data_off_the_source_grid(tmp_path, nibabel_data):
    from brainvae.data.io.nifti import volume_layout

    vol = read_nifti(nibabel_data / "anatomical.nii")
    with pytest.raises(DataFileError, match="source grid"):
        write_nifti(tmp_path / "crop.nii", vol.data[:, :, :10], original=volume_layout(vol))


@pytest.mark.parametrize("shape", [(6, 7), (4, 6, 7)])
def test_plain_arrays_written_as_nifti_read_back_unchanged(tmp_path, shape):
    """A .npy image (no geometry) saved as NIfTI comes back in the same orientation."""
    from brainvae.data.io.arrays import read_npy

    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    np.save(tmp_path / "img.npy", data)
    volume = read_npy(tmp_path / "img.npy")
    write_nifti(
        tmp_path / "img.nii.gz", volume.data, volume.affine, squeezed_axes=volume.squeezed_axes
    )
    again = read_nifti(tmp_path / "img.nii.gz")
    np.testing.assert_array_equal(again.data, data)
    np.testing.assert_allclose(again.affine, volume.affine)
