"""The population data dock in a real napari viewer: sample and folder sources, errors, metadata."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from brainvae.napari.widgets.data_widget import FOLDER, SAMPLE_2D, SAMPLE_3D, DataWidget


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """Prepared datasets go to a per-test cache, never the user's."""
    monkeypatch.setenv("BRAINVAE_CACHE_DIR", str(tmp_path / "cache" / "brainvae"))
    return tmp_path / "cache"


def _wait_for(widget: DataWidget, qtbot, timeout_ms: int = 120_000) -> None:
    qtbot.waitUntil(lambda: widget._worker is None, timeout=timeout_ms)


def _population_layer(viewer):
    return next(layer for layer in viewer.layers if layer.name.startswith("population"))


@pytest.mark.slow
@pytest.mark.parametrize(("source", "ndim"), [(SAMPLE_2D, 2), (SAMPLE_3D, 3)])
def test_sample_population_loads_as_stack_with_atlas(
    make_napari_viewer, qtbot, cache_home, sample_data_dir, source, ndim
):
    viewer = make_napari_viewer()
    widget = DataWidget(viewer)
    widget.source.value = source
    widget.start_loading()
    _wait_for(widget, qtbot)
    layer = _population_layer(viewer)
    assert layer.data.ndim == ndim + 1
    assert layer.data.shape[0] >= (200 if ndim == 2 else 60)
    assert layer.axis_labels[0] == "scan"
    atlas = viewer.layers["ROI atlas"]
    assert atlas.data.shape == layer.data.shape[1:]
    assert set(atlas.features["name"]) >= {"ventricles", "hippocampus", "thalamus"}
    # outlines; on the 4 mm grid they cover most of each region, so the atlas is fainter
    assert atlas.contour == 1 and atlas.opacity == (0.4 if ndim == 2 else 0.2)
    assert f"{layer.data.shape[0]} scans" in widget.status.value
    # a file opened with the plugin's reader (the sample's own atlas) agrees on units: mm
    folder = "population_2d" if ndim == 2 else "population_3d"
    [opened] = viewer.open(sample_data_dir / folder / "atlas.nii.gz", plugin="napari-brainvae")
    assert [str(u) for u in layer.units] == ["pixel", *["millimeter"] * ndim]
    assert [str(u) for u in atlas.units] == [str(u) for u in opened.units]
    assert viewer.layers.extent.units is not None  # else napari: "Inconsistent units"
    # The metadata table follows the slider.
    viewer.dims.set_current_step(0, 3)
    rows = widget.subject_info.shown()
    assert rows["subject_id"] == str(widget._dataset.metadata.iloc[3]["subject_id"])
    assert "age" in rows and "diagnosis" in rows
    # A second press reuses the cached dataset instead of preparing again.
    started = time.monotonic()
    widget.start_loading()
    _wait_for(widget, qtbot)
    assert time.monotonic() - started < 30


def test_folder_with_csv_prepares_and_shows_rows(
    make_napari_viewer, qtbot, cache_home, write_nii, tmp_path
):
    rng = np.random.default_rng(0)
    for k in range(6):
        write_nii(
            f"scans/s{k}.nii.gz",
            rng.random((12, 14, 10)).astype(np.float32),
            np.diag([2.0, 2.0, 2.0, 1.0]),
        )
    csv = tmp_path / "meta.csv"
    csv.write_text(
        "subject_id,age,diagnosis\n" + "".join(f"s{k},{60 + k},healthy\n" for k in range(6))
    )
    viewer = make_napari_viewer()
    widget = _load_folder(viewer, qtbot, tmp_path / "scans", csv)
    layer = _population_layer(viewer)
    assert layer.data.shape == (6, 10, 14, 12)  # display orientation (I, P, R)
    assert tuple(layer.scale[1:]) == pytest.approx((2.0, 2.0, 2.0))
    viewer.dims.set_current_step(0, 4)
    rows = widget.subject_info.shown()
    assert rows["subject_id"] == "s4" and rows["age"] == "64"


def test_bad_file_is_reported_by_name(make_napari_viewer, qtbot, cache_home, write_nii, tmp_path):
    write_nii("scans/good.nii.gz", np.ones((8, 8, 8), np.float32))
    bad = tmp_path / "scans" / "broken.nii.gz"
    bad.write_bytes(b"this is not a NIfTI file at all")
    viewer = make_napari_viewer()
    widget = _load_folder(viewer, qtbot, tmp_path / "scans")
    assert "broken.nii.gz" in widget.status.value
    assert not any(layer.name.startswith("population") for layer in viewer.layers)
    # Asking to skip bad files loads the rest and says what was skipped.
    widget.skip_bad.value = True
    widget.start_loading()
    _wait_for(widget, qtbot)
    assert _population_layer(viewer).data.shape[0] == 1
    assert "1 file(s) skipped" in widget.status.value


def test_missing_folder_is_a_clear_message(make_napari_viewer, cache_home, tmp_path):
    viewer = make_napari_viewer()
    widget = DataWidget(viewer)
    widget.source.value = FOLDER
    widget.folder.value = tmp_path / "does-not-exist"
    widget.start_loading()
    assert widget._worker is None
    assert "does-not-exist" in widget.status.value


def test_form_builds_the_config(make_napari_viewer, cache_home):
    viewer = make_napari_viewer()
    widget = DataWidget(viewer)
    widget.source.value = FOLDER
    widget.preset.value = "flair3d"
    widget.form.slice_axis.value = "coronal"
    widget.form.slice_range.value = "10:30"
    config = widget.build_config()
    assert config.slice_axis == 1  # coronal, as a display-axis number
    assert tuple(config.slice_range) == (10, 30)
    assert config.block in (4, (4, 4, 4), [4, 4, 4])


def test_sample_data_menu_opens_population(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-brainvae", "population_2d")
    layer = viewer.layers["population (sample 2D)"]
    assert layer.data.ndim == 3 and layer.data.shape[0] >= 200
    table = layer.metadata["brainvae"]["table"]
    assert len(table) == layer.data.shape[0]
    assert Path(layer.metadata["brainvae"]["folder"]).is_dir()
    assert "ROI atlas" in viewer.layers


def test_cancel_leaves_no_dataset(make_napari_viewer, qtbot, cache_home, write_nii, tmp_path):
    rng = np.random.default_rng(1)
    for k in range(40):
        write_nii(f"scans/s{k:02d}.nii.gz", rng.random((24, 24, 24)).astype(np.float32))
    viewer = make_napari_viewer()
    widget = DataWidget(viewer)
    widget.source.value = FOLDER
    widget.folder.value = tmp_path / "scans"
    widget.start_loading()
    assert widget.cancel_button.enabled
    widget.cancel()
    _wait_for(widget, qtbot)
    assert widget.status.value.startswith("Cancelled")
    assert not any(layer.name.startswith("population") for layer in viewer.layers)
    leftovers = (
        list((cache_home / "brainvae" / "datasets").glob("*")) if cache_home.exists() else []
    )
    assert leftovers == []
    # The form still works afterwards: the next press prepares the whole folder.
    widget.start_loading()
    _wait_for(widget, qtbot)
    assert _population_layer(viewer).data.shape[0] == 40


def test_presets_in_the_form_are_the_library_presets(make_napari_viewer, cache_home):
    from brainvae.data.preprocessing import PREPROCESS_RECIPES

    viewer = make_napari_viewer()
    widget = DataWidget(viewer)
    widget.source.value = FOLDER
    for name, make in PREPROCESS_RECIPES.items():
        widget.preset.value = name
        assert widget.build_config().to_dict() == make().to_dict(), name


def _load_folder(viewer, qtbot, folder, csv=None) -> DataWidget:
    """A Population data dock on `viewer` that prepared and loaded `folder` (with `csv`)."""
    widget = DataWidget(viewer)
    widget.source.value = FOLDER
    widget.folder.value = folder
    if csv is not None:
        widget.csv.value = csv
    widget.start_loading()
    _wait_for(widget, qtbot)
    return widget


def _shown_in(widget, dock) -> bool:
    """Not hidden, nor inside a hidden container, up to the dock (the viewer is not shown)."""
    native = widget.native
    while native is not None and native is not dock.native:
        if native.isHidden():
            return False
        native = native.parentWidget()
    return True


def test_folder_source_starts_from_the_cli_default_and_shows_every_field(
    make_napari_viewer, cache_home
):
    from dataclasses import fields

    from brainvae.cli import build_parser
    from brainvae.cli.prepare import build_config
    from brainvae.data.preprocessing import PreprocessConfig

    viewer = make_napari_viewer()
    widget = DataWidget(viewer)
    widget.source.value = FOLDER
    cli_default = build_config(build_parser().parse_args(["prepare", "src", "--out", "ds"]))
    assert widget.build_config() == cli_default == PreprocessConfig.default()
    for field in fields(PreprocessConfig):
        if field.name != "version":
            assert _shown_in(widget.form.widget_for(field.name), widget), field.name
    assert widget.form.clip.value == 99.5 and widget.form.scale.value is True
    # Every field is editable, scaling and clipping included.
    widget.form.scale.value = False
    widget.form.clip.value = 0.0
    widget.form.clip_region.value = "brain"
    widget.form.split_fractions.value = "0.9, 0.1, 0"
    widget.form.block.value = "2, 2, 1"
    config = widget.build_config()
    assert not config.scale and config.clip_percentile is None and config.clip_region == "brain"
    assert config.split_fractions == (0.9, 0.1, 0.0) and config.block == (2, 2, 1)
    # A preset or a saved config fills every field of the form.
    widget.preset.value = "mouse2d"
    assert widget.build_config() == PreprocessConfig.mouse_2d()
    saved = PreprocessConfig.flair_3d(crop_shape=None, block=(2, 2, 2), split_seed=7)
    widget.config_file.value = saved.save(cache_home.parent / "prep.json")
    assert widget.build_config() == saved


def test_id_column_named_in_the_dock(make_napari_viewer, qtbot, cache_home, write_nii, tmp_path):
    for k in range(3):
        write_nii(f"scans/p{k}.nii.gz", np.random.default_rng(k).random((8, 8, 8), np.float32))
    csv = tmp_path / "meta.tsv"
    csv.write_text("my_id\tage\n" + "".join(f"p{k}\t{70 + k}\n" for k in range(3)))
    viewer = make_napari_viewer()
    widget = _load_folder(viewer, qtbot, tmp_path / "scans", csv)
    assert "my_id" in widget.status.value and "--id-column" in widget.status.value
    widget.id_column.value = "my_id"
    widget.start_loading()
    _wait_for(widget, qtbot)
    assert _population_layer(viewer).data.shape[0] == 3
    viewer.dims.set_current_step(0, 2)
    rows = widget.subject_info.shown()
    assert rows["subject_id"] == "p2" and rows["age"] == "72"


def test_edited_folder_is_prepared_again(
    make_napari_viewer, qtbot, cache_home, write_nii, tmp_path
):
    for k in range(3):
        write_nii(f"scans/s{k}.nii.gz", np.full((8, 8, 8), k, np.float32))
    viewer = make_napari_viewer()
    widget = _load_folder(viewer, qtbot, tmp_path / "scans")
    assert _population_layer(viewer).data.shape[0] == 3
    write_nii("scans/s3.nii.gz", np.ones((8, 8, 8), np.float32))
    widget.start_loading()
    _wait_for(widget, qtbot)
    assert _population_layer(viewer).data.shape[0] == 4


def test_atlas_in_another_grid_still_shows_the_population(
    make_napari_viewer, qtbot, cache_home, write_nii, tmp_path
):
    for k in range(3):
        write_nii(f"scans/s{k}.nii.gz", np.random.default_rng(k).random((8, 8, 8), np.float32))
    atlas = write_nii("atlas.nii.gz", np.ones((16, 16, 16), np.int16))
    viewer = make_napari_viewer()
    widget = DataWidget(viewer)
    widget.source.value = FOLDER
    widget.folder.value = tmp_path / "scans"
    widget.atlas.value = atlas
    widget.start_loading()
    _wait_for(widget, qtbot)
    assert _population_layer(viewer).data.shape == (3, 8, 8, 8)
    assert "ROI atlas" not in viewer.layers
    assert "atlas not shown" in widget.status.value


def test_plugin_modules_import_without_heavy_libraries():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import brainvae.napari._sample_data, brainvae.napari.population_layers\n"
        "import brainvae.napari.widgets.data_widget, brainvae.napari.workers.prepare\n"
        "heavy = [m for m in ('torch', 'sklearn', 'nilearn', 'scipy', 'pandas') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_volume_opens_on_its_middle_slice(make_napari_viewer, qtbot, cache_home):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((40, 48, 40), np.float32), name="other")  # a layer already there
    viewer.dims.set_current_step(viewer.dims.ndim - 3, 39)
    widget = DataWidget(viewer)
    widget.source.value = SAMPLE_3D
    widget.start_loading()
    _wait_for(widget, qtbot)
    layer = _population_layer(viewer)
    inferior = viewer.dims.ndim - 3
    middle = layer.extent.world[:, 1].mean()
    assert abs(viewer.dims.point[inferior] - middle) <= layer.scale[1]


def test_border_share_measures_how_much_of_an_atlas_its_outlines_cover():
    from brainvae.napari.widgets.data_widget import border_share

    blocks = np.zeros((40, 40), int)
    blocks[:, :20], blocks[:, 20:] = 1, 2  # two large regions: only the seam is border
    assert border_share(blocks) == pytest.approx(2 * 40 / 1600)
    stripes = np.tile(np.array([1, 2]), (40, 20))  # one-voxel regions: all border
    assert border_share(stripes) == 1.0
    assert border_share(np.zeros((5, 5), int)) == 0.0


def test_the_dock_shows_the_default_memory_budget_the_cli_uses(make_napari_viewer, capsys):
    """One default: the dock names the per-volume budget `brainvae prepare --help` gives."""
    import re

    from brainvae.cli import main
    from brainvae.data.io.nifti_integrity import default_memory_budget

    widget = DataWidget(make_napari_viewer())
    assert "50% of the available memory" in widget.memory.value
    if default_memory_budget() is not None:  # the figure now (memory moves: not compared)
        assert re.search(r"now [\d,]+ MiB", widget.memory.value)
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    assert "of the available memory" in " ".join(capsys.readouterr().out.split())
