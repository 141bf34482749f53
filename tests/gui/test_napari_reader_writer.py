"""The napari reader and writers: world-aligned layers, exact save/open round trips, clear errors."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainvae.data.io.nifti import read_nifti
from brainvae.errors import DataFileError
from brainvae.napari import layer_metadata as lm
from brainvae.napari._reader import get_reader
from brainvae.napari._writer import write_image, write_labels

PLUGIN = "napari-brainvae"


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


# ---------------------------------------------------------------- get_reader


@pytest.mark.parametrize(
    "path",
    ["scan.gz", "scan.npy", "notes.txt", "folder", "scan.nii.gz.bak", "", ["a.nii", "b.npy"]],
)
def test_get_reader_declines_other_names(tmp_path, path):
    assert get_reader(path) is None


def test_get_reader_declines_a_folder_path(tmp_path):
    assert get_reader(tmp_path) is None
    assert get_reader(str(tmp_path)) is None
    (tmp_path / "folder.nii").mkdir()
    assert get_reader(tmp_path / "folder.nii") is None


@pytest.mark.parametrize(
    "path", ["a.nii", "B.NII.GZ", Path("c.nii.gz"), ["a.nii", Path("b.nii.gz")]]
)
def test_get_reader_accepts_nifti_names(path):
    assert callable(get_reader(path))


# ---------------------------------------------------------------- reader output


def test_anatomical_layer_data(nibabel_data):
    path = nibabel_data / "anatomical.nii"
    [(data, kwargs, layer_type)] = get_reader(str(path))(str(path))
    assert layer_type == "image"
    assert kwargs["name"] == "anatomical"
    np.testing.assert_allclose(kwargs["scale"], [2.0, 2.0, 2.0])
    # LAS file, affine offsets (32, -40, -16): voxel 0 of display is the superior, anterior,
    # left corner; its signed world coordinates (-z, -y, +x) give the translate.
    np.testing.assert_allclose(kwargs["translate"], [-32.0, -40.0, -32.0])
    assert kwargs["axis_labels"] == ["inferior", "posterior", "right"]
    assert kwargs["colormap"] == "gray"
    low, high = kwargs["contrast_limits"]
    assert data.min() <= low < high <= data.max()
    meta = kwargs["metadata"][lm.NAMESPACE]
    assert set(lm.METADATA_KEYS) <= set(meta)
    assert meta[lm.ORIGINAL_AXCODES] == ["L", "A", "S"]
    assert meta[lm.SOURCE_PATH] == str(path)
    assert meta[lm.IS_4D] is False and meta[lm.OBLIQUE] is False
    np.testing.assert_allclose(meta[lm.ORIGINAL_AFFINE], nib.load(str(path)).affine)


def test_example4d_is_a_stack_of_volumes(nibabel_data):
    path = nibabel_data / "example4d.nii.gz"
    [(data, kwargs, layer_type)] = get_reader(path)(path)
    assert data.shape == (2, 24, 96, 128)
    assert kwargs["axis_labels"] == ["volume", "inferior", "posterior", "right"]
    # header zooms (2.0, 2.0, 2.2) along the file's (L, A, S) axes -> display (I, P, R)
    np.testing.assert_allclose(kwargs["scale"], [1.0, 2.2, 2.0, 2.0], atol=1e-5)
    assert kwargs["translate"][0] == 0.0
    meta = lm.stored_metadata(kwargs["metadata"])
    assert meta[lm.IS_4D] is True and meta[lm.KIND] == "volume"
    assert meta[lm.OBLIQUE] is True  # this scan is tilted about x


def test_metadata_is_json_friendly(nibabel_data):
    import json

    path = nibabel_data / "example4d.nii.gz"
    [(_, kwargs, _)] = get_reader(path)(path)
    assert json.loads(json.dumps(kwargs["metadata"])) == kwargs["metadata"]


@pytest.mark.parametrize(
    "name, dtype, expected",
    [
        ("aparc+aseg.nii.gz", np.int32, "labels"),
        ("sub-01_desc-brain_mask.nii.gz", np.uint8, "labels"),
        ("AAL_atlas.nii", np.int16, "labels"),
        ("lesion_seg.nii.gz", np.uint8, "labels"),
        ("hippocampus_roi.nii", np.uint8, "labels"),
        ("mask_probability.nii.gz", np.float32, "image"),
        ("t1w.nii.gz", np.int16, "image"),
        ("heroic.nii", np.int16, "image"),
    ],
)
def test_labels_guessed_from_name_and_integer_type(tmp_path, name, dtype, expected):
    path = _save(tmp_path / name, np.arange(60).reshape(3, 4, 5).astype(dtype), np.eye(4))
    [(data, kwargs, layer_type)] = get_reader(path)(path)
    assert layer_type == expected
    if expected == "labels":
        assert data.dtype.kind in "iu"
        assert "contrast_limits" not in kwargs


def test_list_of_paths_gives_one_layer_per_file(tmp_path):
    paths = [
        _save(tmp_path / f"s{i}.nii", np.zeros((3, 4, 5), np.float32), np.eye(4)) for i in range(2)
    ]
    layers = get_reader(paths)(paths)
    assert [kwargs["name"] for _, kwargs, _ in layers] == ["s0", "s1"]


def test_three_voxel_wide_volume_is_not_taken_for_rgb(make_napari_viewer, tmp_path):
    path = _save(tmp_path / "narrow.nii", np.random.default_rng(0).random((3, 40, 41)), np.eye(4))
    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin=PLUGIN)
    assert layer.data.shape == (41, 40, 3)
    assert layer.rgb is False and layer.ndim == 3


def test_layer_volume_round_trips_a_volume(nibabel_data):
    volume = read_nifti(nibabel_data / "example4d.nii.gz")
    data, kwargs, _ = lm.volume_layer_data(volume)
    back = lm.layer_volume(data, kwargs)
    np.testing.assert_array_equal(back.affine, volume.affine)
    assert back.axis_names == volume.axis_names
    assert back.is_4d and back.squeezed_axes == volume.squeezed_axes
    np.testing.assert_allclose(back.zooms, volume.zooms)
    assert back.original_axcodes == volume.original_axcodes


def test_placement_helpers_match_the_reader(tmp_path, nibabel_data):
    path = _save(tmp_path / "cor.nii", np.zeros((6, 1, 7), np.float32), np.diag([2.0, 3.0, 4.0, 1]))
    for source in (path, nibabel_data / "example4d.nii.gz"):
        volume = read_nifti(source)
        _, kwargs, _ = lm.volume_layer_data(volume)
        spatial = slice(1, None) if volume.is_4d else slice(None)
        expected = {
            "scale": kwargs["scale"][spatial],
            "translate": kwargs["translate"][spatial],
            "axis_labels": kwargs["axis_labels"][spatial],
            "units": kwargs["units"][spatial],  # mm: layers on this grid agree with the file's
        }
        assert expected["units"] == ["mm"] * len(expected["scale"])
        assert lm.volume_placement(volume) == expected
        by_names = lm.affine_placement(
            volume.affine, spatial_shape=volume.data.shape[spatial], axis_names=volume.axis_names
        )
        assert by_names == expected
    with pytest.raises(ValueError):
        lm.affine_placement(np.eye(4), spatial_shape=(5, 6))


# ---------------------------------------------------------------- writer without napari


def test_writer_refuses_other_names(tmp_path):
    with pytest.raises(DataFileError, match="out.tif"):
        write_image(str(tmp_path / "out.tif"), np.zeros((2, 3, 4)), {})
    with pytest.raises(DataFileError, match="rgb.nii"):
        write_image(str(tmp_path / "rgb.nii"), np.zeros((4, 5, 3)), {"rgb": True})
    with pytest.raises(DataFileError, match="5D"):
        write_image(str(tmp_path / "five.nii"), np.zeros((2, 2, 2, 2, 2)), {})


@pytest.mark.parametrize("ndim", [2, 3, 4])
def test_layer_without_metadata_keeps_scale_and_translate(tmp_path, ndim):
    shape = (3, 4, 5, 6)[-ndim:]
    scale = [1.0, 0.8, 1.5, 2.5][-ndim:]
    translate = [0.0, -20.0, 12.5, 7.0][-ndim:]
    meta = {"scale": scale, "translate": translate, "name": "made in napari"}
    [out] = write_image(str(tmp_path / "made.nii.gz"), np.ones(shape, np.float64), meta)
    [(data, kwargs, _)] = get_reader(out)(out)
    assert data.shape == shape and data.dtype == np.float32
    np.testing.assert_allclose(kwargs["scale"], scale, rtol=1e-6)
    np.testing.assert_allclose(kwargs["translate"], translate, atol=1e-5)


def test_population_stack_saves_as_4d_with_its_grid(tmp_path):
    """A stack of coronal slices (scan, inferior, right) keeps its grid affine when saved."""
    affine = np.array([[0, 0, 1.5, -60.0], [0, -2.0, 0, 10.0], [-1.5, 0, 0, 70.0], [0, 0, 0, 1]])
    scale, translate = lm.layer_scale_translate(affine, (1,), is_4d=True)
    meta = {
        "scale": scale,
        "translate": translate,
        "metadata": {
            "brainvae": {"kind": "population", "affine": affine.tolist(), "squeezed_axes": [1]}
        },
    }
    stack = np.random.default_rng(0).random((5, 30, 20), dtype=np.float32)
    [out] = write_image(str(tmp_path / "stack.nii.gz"), stack, meta)
    volume = read_nifti(out)
    assert volume.is_4d and volume.axis_names == ("volume", "inferior", "right")
    np.testing.assert_array_equal(volume.data, stack)
    np.testing.assert_array_equal(volume.affine, affine)


def test_labels_written_as_integers(tmp_path):
    [out] = write_labels(
        str(tmp_path / "seg.nii"), np.arange(24, dtype=np.int64).reshape(2, 3, 4), {}
    )
    assert read_nifti(out).data.dtype == np.int32
    [out] = write_labels(str(tmp_path / "seg8.nii"), np.ones((2, 3, 4), np.uint8), {})
    assert read_nifti(out).data.dtype == np.uint8


def test_changed_scale_wins_over_stored_affine(tmp_path, nibabel_data):
    [(data, kwargs, _)] = get_reader(nibabel_data / "anatomical.nii")(
        nibabel_data / "anatomical.nii"
    )
    meta = dict(kwargs, scale=[3.0, 2.0, 1.0])
    [out] = write_image(str(tmp_path / "rescaled.nii"), data, meta)
    [(_, again, _)] = get_reader(out)(out)
    np.testing.assert_allclose(again["scale"], [3.0, 2.0, 1.0])
    np.testing.assert_allclose(again["translate"], kwargs["translate"])


# ---------------------------------------------------------------- in a real viewer


def test_open_real_scan_in_viewer(make_napari_viewer, nibabel_data):
    viewer = make_napari_viewer()
    [layer] = viewer.open(nibabel_data / "anatomical.nii", plugin=PLUGIN)
    assert layer.name == "anatomical"
    np.testing.assert_allclose(layer.scale, [2.0, 2.0, 2.0])
    np.testing.assert_allclose(layer.translate, [-32.0, -40.0, -32.0])
    assert tuple(layer.axis_labels) == ("inferior", "posterior", "right")
    assert layer.metadata["brainvae"][lm.ORIGINAL_AXCODES] == ["L", "A", "S"]
    [stack] = viewer.open(nibabel_data / "example4d.nii.gz", plugin=PLUGIN)
    assert stack.ndim == 4
    assert tuple(stack.axis_labels) == ("volume", "inferior", "posterior", "right")


def test_different_resolutions_overlay_in_world(make_napari_viewer, tmp_path):
    """A marker at world (10, -20, 30) mm lands at the same viewer point in both files."""
    fine_affine = np.array([[1.0, 0, 0, -40], [0, 1, 0, -50], [0, 0, 1, -30], [0, 0, 0, 1]])  # RAS
    coarse_affine = np.array(
        [[-2.0, 0, 0, 40], [0, -2, 0, 30], [0, 0, 3, -30], [0, 0, 0, 1]]
    )  # LPS
    target = np.array([10.0, -20.0, 30.0])
    paths = []
    for name, affine, shape in [
        ("fine", fine_affine, (81, 81, 81)),
        ("coarse", coarse_affine, (41, 41, 31)),
    ]:
        data = np.zeros(shape, np.float32)
        voxel = np.round(nib.affines.apply_affine(np.linalg.inv(affine), target)).astype(int)
        data[tuple(voxel)] = 1.0
        paths.append(_save(tmp_path / f"{name}.nii.gz", data, affine))
    viewer = make_napari_viewer()
    points = []
    for path in paths:
        [layer] = viewer.open(path, plugin=PLUGIN)
        marker = np.argwhere(layer.data == 1.0)[0]
        points.append(np.asarray(layer.data_to_world(marker)))
    np.testing.assert_allclose(points[0], points[1], atol=1e-6)
    np.testing.assert_allclose(points[0], [-30.0, 20.0, 10.0])  # (-z, -y, +x)


@pytest.mark.parametrize("kind", ["truncated", "not_an_image"])
def test_bad_file_error_reaches_the_user(make_napari_viewer, tmp_path, kind):
    path = _save(tmp_path / "good.nii.gz", np.random.default_rng(0).random((20, 20, 20)), np.eye(4))
    bad = tmp_path / f"broken_{kind}.nii.gz"
    if kind == "truncated":
        bad.write_bytes(path.read_bytes()[:-200])
    else:
        bad.write_bytes(b"this is a spreadsheet, not a scan\n" * 50)
    viewer = make_napari_viewer()
    with pytest.raises(Exception, match=bad.name):
        viewer.open(bad, plugin=PLUGIN)
    assert len(viewer.layers) == 0


@pytest.mark.parametrize("name", ["anatomical.nii", "example4d.nii.gz"])
def test_viewer_save_then_open_is_exact(make_napari_viewer, tmp_path, nibabel_data, name):
    viewer = make_napari_viewer()
    [layer] = viewer.open(nibabel_data / name, plugin=PLUGIN)
    out = tmp_path / f"saved_{name}"
    written = viewer.layers.save(str(out), selected=False, plugin=PLUGIN)
    assert written == [str(out)]
    [again] = viewer.open(out, plugin=PLUGIN)
    np.testing.assert_array_equal(again.data, layer.data)
    assert again.data.dtype == layer.data.dtype
    np.testing.assert_array_equal(
        lm.stored_metadata(again.metadata)[lm.AFFINE], lm.stored_metadata(layer.metadata)[lm.AFFINE]
    )
    np.testing.assert_array_equal(again.scale, layer.scale)
    np.testing.assert_array_equal(again.translate, layer.translate)


def test_single_slice_save_then_open_is_exact(make_napari_viewer, tmp_path):
    import napari

    affine = np.array([[-0.9, 0, 0, 30.0], [0, 1.1, 0, -12.5], [0, 0, 2.5, 7.25], [0, 0, 0, 1]])
    data = np.random.default_rng(3).random((30, 1, 20), dtype=np.float32)  # one coronal slice
    path = _save(tmp_path / "coronal.nii.gz", data, affine)
    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin=PLUGIN)
    assert layer.ndim == 2 and tuple(layer.axis_labels) == ("inferior", "right")
    out = tmp_path / "coronal_copy.nii"
    napari.save_layers(str(out), [layer], plugin=PLUGIN)
    original, again = read_nifti(path), read_nifti(out)
    np.testing.assert_array_equal(again.data, original.data)
    np.testing.assert_array_equal(again.affine, original.affine)
    assert again.squeezed_axes == original.squeezed_axes == (1,)


def test_labels_layer_save_then_open(make_napari_viewer, tmp_path):
    import napari

    viewer = make_napari_viewer()
    labels = np.zeros((6, 7, 8), np.uint16)
    labels[2:4, 3:5, 1:6] = 7
    layer = viewer.add_labels(labels, name="drawn", scale=(1.5, 2.0, 2.5), translate=(-10, 5, 0))
    out = tmp_path / "drawn_seg.nii.gz"
    napari.save_layers(str(out), [layer], plugin=PLUGIN)
    [again] = viewer.open(out, plugin=PLUGIN)
    assert again._type_string == "labels"
    np.testing.assert_array_equal(again.data, labels)
    np.testing.assert_allclose(again.scale, layer.scale)
    np.testing.assert_allclose(again.translate, layer.translate)


# ---------------------------------------------------------------- saved back on the source grid


def _mni_path(tmp_path: Path) -> Path:
    from nilearn.datasets import load_mni152_template

    path = tmp_path / "mni152.nii.gz"
    nib.save(load_mni152_template(resolution=2), str(path))
    return path


def _assert_file_grid(written: Path, source: Path) -> None:
    """The saved file has the source file's shape, affine and qform/sform codes."""
    out, src = nib.load(str(written)), nib.load(str(source))
    assert out.shape == src.shape
    np.testing.assert_array_equal(out.affine, src.affine)
    assert int(out.header["qform_code"]) == int(src.header["qform_code"])
    assert int(out.header["sform_code"]) == int(src.header["sform_code"])


@pytest.mark.parametrize("name", ["anatomical.nii", "example4d.nii.gz", "mni"])
def test_viewer_save_gives_back_the_source_file(make_napari_viewer, tmp_path, nibabel_data, name):
    import napari

    source = _mni_path(tmp_path) if name == "mni" else nibabel_data / name
    viewer = make_napari_viewer()
    [layer] = viewer.open(source, plugin=PLUGIN)
    out = tmp_path / f"saved_{source.name}"
    napari.save_layers(str(out), [layer], plugin=PLUGIN)
    _assert_file_grid(out, source)
    saved, original = nib.load(str(out)), nib.load(str(source))
    assert saved.get_data_dtype().newbyteorder("=") == original.get_data_dtype().newbyteorder("=")
    np.testing.assert_array_equal(saved.get_fdata(), original.get_fdata())
    [again] = viewer.open(out, plugin=PLUGIN)
    np.testing.assert_array_equal(again.data, layer.data)
    np.testing.assert_array_equal(again.scale, layer.scale)
    np.testing.assert_array_equal(again.translate, layer.translate)


def test_single_slice_saved_with_its_file_shape(make_napari_viewer, tmp_path):
    import napari

    affine = np.array([[-0.9, 0, 0, 30.0], [0, 1.1, 0, -12.5], [0, 0, 2.5, 7.25], [0, 0, 0, 1]])
    data = np.random.default_rng(3).random((30, 1, 20), dtype=np.float32)  # one coronal slice
    source = _save(tmp_path / "coronal.nii.gz", data, affine)
    viewer = make_napari_viewer()
    [layer] = viewer.open(source, plugin=PLUGIN)
    out = tmp_path / "coronal_copy.nii.gz"
    napari.save_layers(str(out), [layer], plugin=PLUGIN)
    _assert_file_grid(out, source)
    np.testing.assert_array_equal(np.asarray(nib.load(str(out)).dataobj), data)


@pytest.mark.parametrize("name", ["anatomical.nii", "mni"])
def test_mask_painted_over_a_scan_is_saved_on_its_grid(
    make_napari_viewer, tmp_path, nibabel_data, name
):
    """A labels layer given the scan layer's metadata saves with the scan's shape and affine."""
    import napari

    source = _mni_path(tmp_path) if name == "mni" else nibabel_data / name
    viewer = make_napari_viewer()
    [scan] = viewer.open(source, plugin=PLUGIN)
    mask = viewer.add_labels(
        np.zeros(scan.data.shape, int),
        name="mask",
        scale=scan.scale,
        translate=scan.translate,
        metadata=scan.metadata,
    )
    display_voxel = (3, 5, 7)
    mask.data[display_voxel] = 2
    mask.refresh()
    out = tmp_path / "mask.nii.gz"
    napari.save_layers(str(out), [mask], plugin=PLUGIN)
    _assert_file_grid(out, source)
    saved = nib.load(str(out))
    assert saved.get_data_dtype() == np.uint8  # an integer type, not the scan's float
    [file_voxel] = np.argwhere(np.asarray(saved.dataobj) == 2)
    display_affine = np.asarray(lm.stored_metadata(scan.metadata)[lm.AFFINE])
    np.testing.assert_allclose(
        nib.affines.apply_affine(saved.affine, file_voxel),
        nib.affines.apply_affine(display_affine, display_voxel),
    )
    [again] = viewer.open(out, plugin=PLUGIN)
    np.testing.assert_array_equal(again.data, mask.data)
    np.testing.assert_array_equal(again.translate, scan.translate)


def test_cropped_layer_with_scan_metadata_saves_in_display_order(tmp_path, nibabel_data):
    """Data that no longer fits the source grid is written as before (display order)."""
    path = nibabel_data / "anatomical.nii"
    [(data, kwargs, _)] = get_reader(path)(path)
    cropped = data[:, :, :10]
    [out] = write_image(str(tmp_path / "cropped.nii"), cropped, kwargs)
    assert nib.load(out).shape == cropped.shape
    np.testing.assert_array_equal(read_nifti(out).data, cropped)


def _unit_warnings(records) -> list[str]:
    return [str(n.message) for n in records if "Inconsistent units" in str(n.message)]


def test_roi_file_over_a_loaded_population_shares_its_units(
    make_napari_viewer, sample_data_dir, tmp_path
):
    """Issue 14 (6): an ROI file opened with the plugin's reader over a population the docks
    loaded, with the ROI and highlight layers the receptive dock makes: one set of units (mm),
    so napari never says "Inconsistent units across layers" (it checks when it draws)."""
    from napari.layers import Labels
    from napari.utils.notifications import notification_manager

    from brainvae.data.population_folder import read_population_folder
    from brainvae.napari.label_view import highlight_roi
    from brainvae.napari.population_layers import folder_layer_data
    from brainvae.napari.widgets.receptive_widget import ReceptiveFieldWidget

    viewer = make_napari_viewer(show=True)
    folder = sample_data_dir / "population_2d"
    population = read_population_folder(folder, max_scans=2)
    for data, kwargs, kind in folder_layer_data(population, "population (sample 2D)"):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    atlas = nib.load(str(folder / "atlas.nii.gz"))
    mask = (np.asarray(atlas.dataobj) == 2).astype(np.uint8)  # the hippocampus
    path = _save(tmp_path / "hippocampus_roi.nii.gz", mask, atlas.affine)
    [roi] = viewer.open(path, plugin=PLUGIN)
    assert isinstance(roi, Labels)
    dock = ReceptiveFieldWidget(viewer)
    painted = dock.new_roi_layer()
    assert highlight_roi(viewer, roi, 1, "hippocampus") is not None
    before = len(notification_manager.records)
    viewer.screenshot(canvas_only=True, flash=False)  # a draw: napari compares units here
    assert not _unit_warnings(notification_manager.records[before:])
    units = viewer.layers.extent.units
    assert units is not None and [str(u) for u in units[-2:]] == ["millimeter"] * 2
    for layer in (roi, painted, viewer.layers["ROI atlas"]):
        assert [str(u) for u in layer.units] == ["millimeter"] * 2, layer.name
    # the file lies where the population's atlas says the hippocampus is
    np.testing.assert_allclose(roi.extent.world, viewer.layers["ROI atlas"].extent.world)
    # a layer without units (napari's default: pixels) is what the warning is about
    viewer.add_image(np.zeros(mask.squeeze().shape), name="unitless")
    viewer.screenshot(canvas_only=True, flash=False)
    assert _unit_warnings(notification_manager.records[before:])
