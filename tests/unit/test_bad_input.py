"""Bad input: each case raises a clear error naming the file and the problem, leaving nothing."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainvae.data.prepare import prepare
from brainvae.data.preprocessing import PreprocessConfig
from brainvae.errors import DataFileError, DatasetError, MemoryBudgetError


def _good(folder, name, shape=(6, 8, 4), value=1.0):
    folder.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(len(name)).random(shape).astype(np.float32) + value
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(folder / name))
    return folder / name


def _fails(tmp_path, error, match, config=None, csv=None, **options):
    """prepare() on tmp_path/src must raise `error` matching `match` and leave no dataset."""
    with pytest.raises(error, match=match):
        prepare(
            tmp_path / "src",
            tmp_path / "ds",
            config or PreprocessConfig(),
            csv,
            workers=1,
            **options,
        )
    assert not (tmp_path / "ds").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds")]


def test_truncated_nifti(tmp_path):
    _good(tmp_path / "src", "a.nii.gz")
    good = _good(tmp_path / "src", "b.nii.gz", shape=(40, 40, 40))
    raw = gzip.decompress(good.read_bytes())
    (tmp_path / "src" / "b.nii.gz").write_bytes(gzip.compress(raw[: len(raw) // 2]))
    _fails(tmp_path, DataFileError, r"b\.nii\.gz: .*(truncated|corrupt|readable)")


def test_corrupt_gzip(tmp_path):
    _good(tmp_path / "src", "a.nii.gz")
    data = bytearray(_good(tmp_path / "src", "b.nii.gz").read_bytes())
    data[30:60] = b"\x00" * 30
    (tmp_path / "src" / "b.nii.gz").write_bytes(bytes(data))
    _fails(tmp_path, DataFileError, r"b\.nii\.gz")


def test_non_image_with_nifti_name(tmp_path):
    _good(tmp_path / "src", "a.nii.gz")
    (tmp_path / "src" / "notes.nii").write_text("subject notes, not an image\n" * 20)
    _fails(tmp_path, DataFileError, r"notes\.nii: not a readable NIfTI")


def test_2d_where_3d_expected(tmp_path):
    _good(tmp_path / "src", "a.nii.gz")
    _good(tmp_path / "src", "flat.nii.gz", shape=(6, 8, 1))
    _fails(
        tmp_path,
        DataFileError,
        r"flat\.nii\.gz: is a 2D image .* 3D images are expected",
        PreprocessConfig(expected_ndim=3),
    )


def test_4d_where_3d_expected_offers_volume_index(tmp_path):
    _good(tmp_path / "src", "a.nii.gz")
    _good(tmp_path / "src", "run.nii.gz", shape=(6, 8, 4, 3))
    _fails(
        tmp_path,
        DataFileError,
        r"run\.nii\.gz: is 4D with 3 volumes.*volume_index=K \(--volume-index K",
    )


def test_nonfinite_voxels_named_and_counted(tmp_path):
    _good(tmp_path / "src", "a.nii.gz")
    data = np.ones((6, 8, 4), np.float32)
    data[0, 0, 0], data[1, 1, 1] = np.nan, np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / "src" / "nan.nii.gz"))
    _fails(tmp_path, DataFileError, r"nan\.nii\.gz: has 2 non-finite voxel")
    ds = prepare(tmp_path / "src", tmp_path / "ds", PreprocessConfig(nonfinite="zero"), workers=1)
    assert np.isfinite(ds.images).all()
    assert ds.report["nonfinite_replaced"][0]["count"] == 2


def test_shapes_differ_after_preprocessing(tmp_path):
    _good(tmp_path / "src", "a.nii.gz", shape=(6, 8, 6))
    _good(tmp_path / "src", "b.nii.gz")
    _good(tmp_path / "src", "c.nii.gz")
    _fails(
        tmp_path,
        DataFileError,
        r"a\.nii\.gz: shape \(6, 8, 6\) after preprocessing differs from the majority shape "
        r"\(4, 8, 6\) \(2 of 3 files, e.g. .*b\.nii\.gz\)",
    )


def test_preset_too_big_for_the_data_says_why(tmp_path):
    _good(tmp_path / "src", "small.nii.gz", shape=(40, 48, 40))
    _fails(
        tmp_path,
        DataFileError,
        r"small\.nii\.gz: crop shape \(160, 192, 160\) is larger than the image \(40, 48, 40\); "
        r"the size comes from the preprocessing config .*display orientation \(axes inferior, "
        r"posterior, right\).*flair3d preset expects 1 mm MNI-registered volumes of 182 x 218 x 182",
        config=PreprocessConfig.flair_3d(),
    )


def test_empty_folder(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "readme.txt").write_text("no images here")
    _fails(tmp_path, DatasetError, r"no supported image files .* in .*src")


def _csv(tmp_path, rows, columns):
    path = tmp_path / "src" / "meta.csv"
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def test_csv_missing_required_columns(tmp_path):
    _good(tmp_path / "src", "a.nii.gz")
    csv = _csv(tmp_path, [["a.nii.gz", 30]], ["filename", "age"])
    _fails(tmp_path, DataFileError, r"meta\.csv: missing required column\(s\) subject_id", csv=csv)


def test_csv_duplicate_subject_ids(tmp_path):
    _good(tmp_path / "src", "a.nii.gz")
    _good(tmp_path / "src", "b.nii.gz")
    csv = _csv(
        tmp_path,
        [["s1", 1, "a.nii.gz"], ["s1", 1, "b.nii.gz"]],
        ["subject_id", "session", "filename"],
    )
    _fails(
        tmp_path,
        DataFileError,
        r"meta\.csv: duplicate subject_id and session: subject_id=s1 session=1 \(lines 2, 3\)",
        csv=csv,
    )


def test_csv_rows_pointing_at_missing_files(tmp_path):
    _good(tmp_path / "src", "a.nii.gz")
    csv = _csv(tmp_path, [["s1", "a.nii.gz"], ["s2", "gone.nii.gz"]], ["subject_id", "filename"])
    _fails(tmp_path, DatasetError, r"subject_id=s2 \(file gone\.nii\.gz not found\)", csv=csv)


def test_volume_over_memory_budget(tmp_path):
    _good(tmp_path / "src", "a.nii.gz")
    _good(tmp_path / "src", "big.nii.gz", shape=(20, 20, 20))
    _fails(
        tmp_path,
        MemoryBudgetError,
        r"big\.nii\.gz: volume of shape .* over the memory budget",
        max_bytes=10_000,
    )


def test_skip_bad_goes_on_and_lists_every_problem(tmp_path):
    _good(tmp_path / "src", "a.nii.gz")
    _good(tmp_path / "src", "big.nii.gz", shape=(20, 20, 20))
    _good(tmp_path / "src", "run.nii.gz", shape=(6, 8, 4, 2))
    (tmp_path / "src" / "notes.nii").write_text("text")
    ds = prepare(
        tmp_path / "src",
        tmp_path / "ds",
        PreprocessConfig(),
        workers=1,
        skip_bad=True,
        max_bytes=10_000,
    )
    reasons = {s["file"].rsplit("/", 1)[-1]: s["reason"] for s in ds.report["skipped"]}
    assert set(reasons) == {"big.nii.gz", "run.nii.gz", "notes.nii"}
    assert "memory budget" in reasons["big.nii.gz"] and "volume_index" in reasons["run.nii.gz"]
    assert len(ds) == 1


def test_all_files_bad_is_an_error(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "notes.nii").write_text("text")
    _fails(tmp_path, DatasetError, r"all 1 files were skipped.*notes\.nii", skip_bad=True)
