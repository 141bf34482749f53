"""Population datasets: CSV matching, splits by subject, the on-disk cache and its opening."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainvae.data.dataset import PreparedDataset
from brainvae.data.file_matching import find_image_files, match_files
from brainvae.data.io.images import read_image
from brainvae.data.metadata import read_metadata
from brainvae.data.prepare import PrepareProgress, prepare, prepare_dataset
from brainvae.data.preprocessing import PreprocessConfig
from brainvae.data.split import split_by_subject
from brainvae.errors import DatasetError

SHAPE = (8, 10, 6)  # display shape (inferior, posterior, right) of the test volumes
RAS_SHAPE = SHAPE[::-1]  # the same volume as stored with a diagonal (RAS) affine


def write_population(folder, n=6, sessions=1, shape=RAS_SHAPE, seed=0):
    """n subjects x sessions NIfTI files named sub-XX_ses-Y plus a subjects.csv (filename column)."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        for s in range(1, sessions + 1):
            name = f"images/sub-{i:02d}_ses-{s}.nii.gz"
            data = (rng.random(shape) * 100 + i).astype(np.float32)
            nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])), str(folder / name))
            rows.append(
                dict(
                    subject_id=f"sub-{i:02d}",
                    session=str(s),
                    filename=name,
                    age=20 + i,
                    diagnosis="MS" if i % 2 else "healthy",
                    scanner=f"S{i % 3}",
                )
            )
    pd.DataFrame(rows).to_csv(folder / "subjects.csv", index=False)
    return folder


def test_csv_matching_by_filename(tmp_path):
    src = write_population(tmp_path / "pop", n=3, sessions=2)
    table = read_metadata(src / "subjects.csv")
    result = match_files(table, find_image_files(src), src)
    assert result.rule == "filename" and len(result.table) == 6
    assert not result.unmatched_rows and not result.unmatched_files
    assert result.table["session"].tolist()[:2] == ["1", "2"]  # ids stay text


def test_side_files_next_to_the_csv_are_ignored_not_unmatched(tmp_path):
    src = write_population(tmp_path / "pop", n=3)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), str(src / "atlas.nii.gz"))
    (src / "images" / "extra.nii.gz").write_bytes(
        (src / "images" / "sub-00_ses-1.nii.gz").read_bytes()
    )
    result = match_files(read_metadata(src / "subjects.csv"), find_image_files(src), src)
    assert [p.rsplit("/", 1)[-1] for p in result.ignored_files] == ["atlas.nii.gz"]
    assert [p.rsplit("/", 1)[-1] for p in result.unmatched_files] == ["extra.nii.gz"]


def test_csv_matching_by_stem(tmp_path):
    src = write_population(tmp_path / "pop", n=3, sessions=2)
    pd.read_csv(src / "subjects.csv").drop(columns="filename").to_csv(
        src / "stems.csv", index=False
    )
    table = read_metadata(src / "stems.csv")
    result = match_files(table, find_image_files(src), src)
    assert result.rule == "stem" and len(result.table) == 6
    assert result.table["source"].str.endswith("sub-01_ses-2.nii.gz").sum() == 1
    # bare subject stems (sub-01.npy) for subjects with one row
    np.save(tmp_path / "sub-07.npy", np.zeros((4, 4)))
    pd.DataFrame({"subject_id": ["sub-07"], "age": [30]}).to_csv(tmp_path / "one.csv", index=False)
    one = match_files(read_metadata(tmp_path / "one.csv"), [tmp_path / "sub-07.npy"], tmp_path)
    assert one.table["source"].iloc[0].endswith("sub-07.npy")


def test_unmatched_rows_and_files_are_reported(tmp_path):
    src = write_population(tmp_path / "pop", n=4)
    table = pd.read_csv(src / "subjects.csv")
    table = table.astype(object)
    table.loc[len(table)] = ["sub-99", "1", "images/sub-99_ses-1.nii.gz", 50, "MS", "S0"]
    table = table[table["subject_id"] != "sub-02"]
    table.to_csv(src / "subjects.csv", index=False)
    with pytest.raises(DatasetError, match=r"sub-99.*sub-02_ses-1") as err:
        prepare(src, tmp_path / "ds", PreprocessConfig.identity(), src / "subjects.csv", workers=1)
    assert "--allow-unmatched" in str(err.value)
    assert not (tmp_path / "ds").exists()
    ds = prepare(
        src,
        tmp_path / "ds",
        PreprocessConfig.identity(),
        src / "subjects.csv",
        workers=1,
        allow_unmatched=True,
    )
    assert len(ds) == 3
    assert any("sub-99" in row for row in ds.report["unmatched_rows"])
    assert [p.endswith("sub-02_ses-1.nii.gz") for p in ds.report["unmatched_files"]] == [True]


def test_split_by_subject_groups_and_is_reproducible():
    subjects = np.repeat([f"s{i}" for i in range(20)], 3)
    split = split_by_subject(subjects, (0.8, 0.1, 0.1), seed=3)
    for subject in np.unique(subjects):
        assert len(set(split[subjects == subject])) == 1
    assert {"train", "val", "test"} == set(split)
    assert (split == "train").sum() == 16 * 3
    np.testing.assert_array_equal(split, split_by_subject(subjects, seed=3))
    order = np.random.default_rng(1).permutation(len(subjects))
    np.testing.assert_array_equal(split_by_subject(subjects[order], seed=3), split[order])
    assert not np.array_equal(split, split_by_subject(subjects, seed=4))
    assert set(split_by_subject(["a", "b", "c"])) == {"train", "val", "test"}


def test_prepare_writes_cached_dataset(tmp_path):
    src = write_population(tmp_path / "pop", n=6, sessions=2)
    updates = list(
        prepare_dataset(
            src, tmp_path / "ds", PreprocessConfig(block=2), src / "subjects.csv", workers=1
        )
    )
    assert all(isinstance(u, PrepareProgress) for u in updates)
    assert updates[-1].stage == "done" and updates[-1].dataset == tmp_path / "ds"
    assert [u.done for u in updates if u.stage == "preprocess"] == list(range(1, 13))
    ds = PreparedDataset.open(tmp_path / "ds")
    assert isinstance(ds.images, np.memmap) and not ds.images.flags.writeable
    assert len(ds) == 12 and ds.images.shape == (12, 4, 5, 3) and ds.images.dtype == np.float32
    assert ds.scan_shape == (4, 5, 3) and ds.voxel_size == (4.0, 4.0, 4.0)
    assert float(ds.images.min()) == 0.0 and float(ds.images.max()) == 1.0
    assert {
        "subject_id",
        "session",
        "filename",
        "age",
        "diagnosis",
        "scanner",
        "source",
        "split",
    } <= set(ds.metadata.columns)
    assert ds.subjects() == [f"sub-{i:02d}" for i in range(6)]
    indices = [ds.indices(s) for s in ("train", "val", "test")]
    assert sum(len(i) for i in indices) == 12
    for part in indices:
        others = set(ds.metadata["subject_id"].drop(index=part))
        assert not others & set(ds.metadata["subject_id"].iloc[part])
    assert ds.config == PreprocessConfig(block=2)
    info = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert info["format_version"] == 1 and info["axis_names"] == ["inferior", "posterior", "right"]
    assert ds.report["counts"]["samples"] == 12 and "total_s" in ds.report["timing"]
    # the stored affine writes a sample that overlays the original
    original = read_image(src / "images" / "sub-00_ses-1.nii.gz")
    np.testing.assert_allclose(ds.affine @ [0, 0, 0, 1], original.affine @ [0.5, 0.5, 0.5, 1])


def test_parallel_workers_give_the_same_dataset(tmp_path):
    src = write_population(tmp_path / "pop", n=5)
    one = prepare(src, tmp_path / "a", PreprocessConfig(), src / "subjects.csv", workers=1)
    two = prepare(src, tmp_path / "b", PreprocessConfig(), src / "subjects.csv", workers=2)
    np.testing.assert_array_equal(one.images, two.images)
    assert one.metadata["source"].tolist() == two.metadata["source"].tolist()


def test_slices_become_rows(tmp_path):
    src = write_population(tmp_path / "pop", n=3)
    config = PreprocessConfig.identity(
        slice_axis="coronal", slice_range=(2, 6), split_fractions=(0.5, 0.5, 0)
    )
    ds = prepare(src, tmp_path / "ds", config, src / "subjects.csv", workers=1)
    assert len(ds) == 12 and ds.scan_shape == (SHAPE[0], SHAPE[2])
    assert ds.metadata["slice_index"].tolist()[:4] == [2, 3, 4, 5]
    assert ds.metadata.groupby("subject_id")["split"].nunique().max() == 1
    raw = read_image(ds.metadata["source"].iloc[1]).data
    np.testing.assert_allclose(ds.images[1], raw[:, 3, :])
    np.testing.assert_allclose(
        ds.sample_affine(1)[:, 3], read_image(ds.metadata["source"].iloc[1]).affine @ [0, 3, 0, 1]
    )


def test_brightness_pass_over_cache(tmp_path):
    for i, level in enumerate((1.0, 2.0, 4.0)):
        image = np.full((6, 6), level, dtype=np.float32)
        image[0, 0] = 200 * level
        np.save(tmp_path / f"m{i}.npy", image)
    ds = prepare(
        tmp_path, tmp_path / "ds", PreprocessConfig.mouse_2d(brightness_normalise=False), workers=1
    )
    raw_means = np.array([(35 + 200) / 36 * lv for lv in (1, 2, 4)])
    population = raw_means.mean()
    assert ds.description["brightness"]["population_mean"] == pytest.approx(population, rel=1e-5)
    np.testing.assert_allclose(ds.images[:, 0, 0], 3.8 * population, rtol=1e-5)
    np.testing.assert_allclose(
        ds.images[:, 1, 1],
        [population / m * lv for m, lv in zip(raw_means, (1, 2, 4), strict=True)],
        rtol=1e-5,
    )


def test_npy_and_tif_inputs(tmp_path):
    import tifffile

    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.random((6, 8, 4)))
    tifffile.imwrite(
        tmp_path / "b.tif", rng.random((6, 8, 4)).astype(np.float32), photometric="minisblack"
    )
    tifffile.imwrite(tmp_path / "c.tiff", rng.random((6, 8)).astype(np.float32))
    assert read_image(tmp_path / "b.tif").data.shape == (6, 8, 4)
    flat = read_image(tmp_path / "c.tiff")
    assert flat.data.shape == (6, 8) and flat.squeezed_axes == (0,)
    (tmp_path / "c.tiff").unlink()
    ds = prepare(tmp_path, tmp_path / "ds", PreprocessConfig.identity(), workers=1)
    assert len(ds) == 2 and ds.metadata["subject_id"].tolist() == ["a", "b"]
    np.testing.assert_allclose(ds.images[0], np.load(tmp_path / "a.npy"), rtol=1e-6)


def test_4d_input_with_volume_index(tmp_path, write_nii):
    data = np.stack([np.full((4, 5, 6), v, np.float32) for v in (1.0, 2.0, 3.0)], axis=-1)
    write_nii("src/run.nii.gz", data)
    ds = prepare(
        tmp_path / "src", tmp_path / "ds", PreprocessConfig.identity(volume_index=2), workers=1
    )
    assert ds.scan_shape == (6, 5, 4) and float(ds.images[0].max()) == 3.0


def test_error_midway_leaves_nothing(tmp_path):
    src = write_population(tmp_path / "pop", n=4)
    (src / "images" / "sub-02_ses-1.nii.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(Exception, match="sub-02_ses-1.nii.gz"):
        prepare(src, tmp_path / "ds", PreprocessConfig(), src / "subjects.csv", workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pop"]
    # a consumer that stops early (a cancelled GUI worker) leaves nothing either
    progress = prepare_dataset(src, tmp_path / "ds", PreprocessConfig(), workers=1)
    next(progress)
    progress.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pop"]


def test_overwrite_refused_unless_asked(tmp_path):
    src = write_population(tmp_path / "pop", n=3)
    prepare(src, tmp_path / "ds", PreprocessConfig(), workers=1)
    with pytest.raises(DatasetError, match="already exists.*overwrite"):
        prepare(src, tmp_path / "ds", PreprocessConfig(), workers=1)
    ds = prepare(src, tmp_path / "ds", PreprocessConfig(block=2), workers=1, overwrite=True)
    assert ds.scan_shape == (4, 5, 3)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not a prepared dataset"):
        prepare(src, tmp_path / "notes", PreprocessConfig(), workers=1, overwrite=True)
    assert (tmp_path / "notes" / "keep.txt").exists()


def test_skip_bad_reports_exactly_which(tmp_path):
    src = write_population(tmp_path / "pop", n=5)
    (src / "images" / "sub-01_ses-1.nii.gz").write_text("not an image")
    nan = np.ones(RAS_SHAPE, np.float32)
    nan[0, 0, :3] = np.nan
    nib.save(nib.Nifti1Image(nan, np.eye(4)), str(src / "images" / "sub-03_ses-1.nii.gz"))
    updates = list(
        prepare_dataset(
            src, tmp_path / "ds", PreprocessConfig(), src / "subjects.csv", workers=1, skip_bad=True
        )
    )
    skipped = {s.file.split("/")[-1]: s.reason for s in updates[-1].skipped}
    assert set(skipped) == {"sub-01_ses-1.nii.gz", "sub-03_ses-1.nii.gz"}
    assert "3 non-finite" in skipped["sub-03_ses-1.nii.gz"]
    ds = PreparedDataset.open(tmp_path / "ds")
    assert len(ds) == 3 and ds.images.shape[0] == 3
    assert [s["file"] for s in ds.report["skipped"]] == [s.file for s in updates[-1].skipped]
    assert ds.report["counts"]["files_skipped"] == 2
    assert not ds.metadata["subject_id"].isin(["sub-01", "sub-03"]).any()


def test_open_refuses_non_dataset_and_newer_format(tmp_path):
    with pytest.raises(DatasetError, match="not a prepared dataset"):
        PreparedDataset.open(tmp_path)
    src = write_population(tmp_path / "pop", n=3)
    prepare(src, tmp_path / "ds", PreprocessConfig(), workers=1)
    info = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    info["format_version"] = 99
    (tmp_path / "ds" / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match=r"ds.*version 99 is newer"):
        PreparedDataset.open(tmp_path / "ds")


def _write_volume(path, shape=RAS_SHAPE, seed=0, affine=None):
    """One random float32 NIfTI at `path` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).random(shape).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), str(path))


def test_no_csv_bids_visits_of_a_subject_share_a_split(tmp_path):
    for i in range(6):
        for s in (1, 2):
            _write_volume(tmp_path / "src" / f"sub-{i:04d}_ses-{s}_FLAIR.nii.gz", seed=i * 2 + s)
    ds = prepare(tmp_path / "src", tmp_path / "ds", PreprocessConfig(), workers=1)
    assert ds.subjects() == [f"sub-{i:04d}" for i in range(6)]
    assert sorted(set(ds.metadata["session"])) == ["ses-1", "ses-2"]
    assert (ds.metadata.groupby("subject_id")["split"].nunique() == 1).all()
    assert ds.report["counts"]["subjects"] == 6


def test_no_csv_subject_is_the_first_folder_under_source(tmp_path):
    for i in range(5):
        _write_volume(tmp_path / "src" / f"sub{i:02d}" / "T1.nii.gz", seed=i)
    ds = prepare(tmp_path / "src", tmp_path / "ds", PreprocessConfig(), workers=1)
    assert ds.subjects() == [f"sub{i:02d}" for i in range(5)]
    for visit in (1, 2):
        _write_volume(tmp_path / "deep" / "patientA" / f"visit{visit}" / "scan.nii.gz", seed=visit)
    _write_volume(tmp_path / "deep" / "patientB" / "visit1" / "scan.nii.gz", seed=3)
    ds = prepare(tmp_path / "deep", tmp_path / "ds2", PreprocessConfig(), workers=1)
    assert ds.metadata["subject_id"].tolist() == ["patientA", "patientA", "patientB"]
    assert ds.metadata.groupby("subject_id")["split"].nunique().max() == 1


def test_skip_bad_keeps_the_majority_shape_not_the_first_file(tmp_path):
    _write_volume(tmp_path / "src" / "a-odd.nii.gz", shape=(6, 12, 10))
    for i in range(4):
        _write_volume(tmp_path / "src" / f"b{i}.nii.gz", seed=i + 1)
    updates = list(prepare_dataset(tmp_path / "src", tmp_path / "ds", workers=1, skip_bad=True))
    ds = PreparedDataset.open(tmp_path / "ds")
    assert len(ds) == 4 and ds.scan_shape == SHAPE
    skipped = updates[-1].skipped
    assert [s.file.split("/")[-1] for s in skipped] == ["a-odd.nii.gz"]
    assert f"majority shape {SHAPE}" in skipped[0].reason
    assert not [p for p in (tmp_path / "ds").iterdir() if "shape" in p.name]


def test_shape_tie_goes_to_the_first_file(tmp_path):
    _write_volume(tmp_path / "src" / "a.nii.gz", shape=(6, 12, 10))
    _write_volume(tmp_path / "src" / "b.nii.gz")
    ds = prepare(tmp_path / "src", tmp_path / "ds", workers=1, skip_bad=True)
    assert ds.scan_shape == (10, 12, 6)
    assert ds.report["skipped"][0]["file"].endswith("b.nii.gz")


def test_warnings_for_other_grids_and_empty_splits(tmp_path):
    _write_volume(tmp_path / "src" / "sub-01.nii.gz")
    _write_volume(tmp_path / "src" / "sub-02.nii.gz", affine=np.diag([2.0, 2.0, 2.0, 1.0]))
    updates = list(prepare_dataset(tmp_path / "src", tmp_path / "ds", workers=1))
    ds = PreparedDataset.open(tmp_path / "ds")
    assert ds.report["affine_reference"].endswith("sub-01.nii.gz")
    warnings = ds.report["warnings"]
    assert list(updates[-1].warnings) == warnings
    assert "1 file(s) have a different voxel size or position" in warnings[0]
    assert "sub-02.nii.gz" in warnings[0]
    assert "only 2 subject(s)" in warnings[1] and "test" in warnings[1]


def test_format_constants_are_defined_once():
    import inspect

    from brainvae.data import dataset as dataset_module
    from brainvae.data.prepare import folder as prepare_folder

    assert "FORMAT_NAME =" not in inspect.getsource(prepare_folder)
    assert prepare_folder.FORMAT_VERSION is dataset_module.FORMAT_VERSION
