"""`brainvae resample-rois` end to end through brainvae.cli.main: a 2 mm RAS atlas written on the
grid of 4 mm LAS scans, in the scans' voxel order, once and atomically."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from test_roi_resampling import (
    CORONAL_SLICE,
    ROI_AFFINE,
    SCAN_AFFINE,
    SCAN_SHAPE,
    atlas_2mm,
    scans_at_4mm,
    write_labels,
)

from brainvae.cli import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resample_rois")
    return {
        "root": root,
        "ds3d": scans_at_4mm(root, 3),
        "ds2d": scans_at_4mm(root, 3, CORONAL_SLICE),
        "atlas": write_labels(root / "atlas_2mm.nii.gz", atlas_2mm(), ROI_AFFINE),
    }


def _labels(path, dataset):
    from brainvae.data.roi_files import load_rois

    return load_rois(path, dataset, tuple(dataset.scan_shape))


def test_writes_the_labels_on_the_dataset_grid_in_its_files_order(setup, capsys):
    dataset, out = setup["ds3d"], setup["root"] / "on_4mm" / "atlas_4mm.nii.gz"
    argv = ["resample-rois", str(setup["atlas"]), str(dataset.path), "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "ROIs resampled from 42 x 50 x 38 at 2 mm (axes RAS) to the dataset's " in printed
    assert "label(s) 4 vanished" in printed
    assert f"Wrote {out}: 3 label(s) on the dataset's grid (20 x 24 x 18)." in printed
    written = nib.load(str(out))
    assert written.shape == SCAN_SHAPE and nib.aff2axcodes(written.affine) == ("L", "A", "S")
    np.testing.assert_allclose(written.affine, SCAN_AFFINE, atol=1e-4)
    assert written.get_data_dtype().kind in "iu"
    assert set(np.unique(np.asarray(written.dataobj)).tolist()) == {0, 1, 2, 3}
    again = _labels(out, dataset)
    assert again.resampling is None  # on the grid now: read as it is
    assert np.array_equal(again.labels, _labels(setup["atlas"], dataset).labels)
    assert sorted(p.name for p in out.parent.iterdir()) == ["atlas_4mm.nii.gz"]

    assert main(argv) == 2
    assert "already exists: choose another --out or pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0


def test_slice_dataset_gets_a_one_slice_file_at_its_slice(setup, capsys):
    dataset, out = setup["ds2d"], setup["root"] / "slice.nii"
    argv = ["resample-rois", str(setup["atlas"]), str(dataset.path), "--out", str(out)]
    assert main(argv) == 0
    assert "its coronal slice 10" in capsys.readouterr().out
    written = nib.load(str(out))
    assert written.shape == (20, 1, 18)
    assert (written.affine @ [0, 0, 0, 1])[1] == pytest.approx(-46 + 4 * (24 - 1 - CORONAL_SLICE))
    again = _labels(out, dataset)
    assert again.resampling is None
    assert np.array_equal(again.labels, _labels(setup["atlas"], dataset).labels)


def test_grid_elsewhere_writes_nothing(setup, capsys):
    elsewhere = ROI_AFFINE.copy()
    elsewhere[2, 3] -= 400.0
    rois = write_labels(setup["root"] / "elsewhere.nii.gz", atlas_2mm(), elsewhere)
    out = setup["root"] / "never.nii.gz"
    assert main(["resample-rois", str(rois), str(setup["ds3d"].path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "brainvae resample-rois: error:" in err and "elsewhere.nii.gz" in err
    assert "42 x 50 x 38 at 2 mm" in err and "does not overlap" in err
    assert not out.exists()


def test_help_shows_every_default(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["resample-rois", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--out OUT.nii.gz label image to write (required)" in text
    assert "--overwrite replace an existing OUT (default: refuse to)" in text
