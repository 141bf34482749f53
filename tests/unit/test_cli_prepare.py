"""`brainvae prepare` end to end through brainvae.cli.main."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd

from brainvae.cli import main
from brainvae.data.dataset import PreparedDataset


def _population(folder, n=5):
    (folder / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        name = f"images/sub-{i:02d}_ses-1.nii.gz"
        data = np.random.default_rng(i).random((8, 30, 6)).astype(np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(folder / name))
        rows.append(
            dict(subject_id=f"sub-{i:02d}", session=1, filename=name, age=30 + i, diagnosis="MS")
        )
    pd.DataFrame(rows).to_csv(folder / "subjects.csv", index=False)
    return folder


def test_cli_prepare_slices_with_summary(tmp_path, capsys):
    src = _population(tmp_path / "pop")
    code = main(
        [
            "prepare",
            str(src),
            "--csv",
            str(src / "subjects.csv"),
            "--preset",
            "identity",
            "--slice-axis",
            "coronal",
            "--slice-range",
            "10:14",
            "--workers",
            "1",
            "--seed",
            "2",
            "--out",
            str(tmp_path / "ds"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Prepared 20 scans of shape (6, 8)" in out
    assert "Split by subject: train" in out and "Skipped 0 file(s)" in out
    ds = PreparedDataset.open(tmp_path / "ds")
    assert ds.config.split_seed == 2 and ds.config.slice_axis == 1
    assert ds.metadata["slice_index"].tolist()[:4] == [10, 11, 12, 13]


def test_cli_prepare_config_file_and_skip_bad(tmp_path, capsys):
    src = _population(tmp_path / "pop")
    (src / "images" / "sub-02_ses-1.nii.gz").write_bytes(b"garbage")
    config = tmp_path / "prep.json"
    config.write_text(json.dumps({"block": 2, "clip_percentile": 99.0}))
    code = main(
        [
            "prepare",
            str(src),
            "--csv",
            str(src / "subjects.csv"),
            "--config",
            str(config),
            "--skip-bad",
            "--workers",
            "1",
            "--out",
            str(tmp_path / "ds"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Prepared 4 scans of shape (3, 15, 4)" in out
    assert "Skipped 1 file(s):" in out and "sub-02_ses-1.nii.gz: not a readable NIfTI" in out


def test_cli_prepare_bad_input_exits_2_naming_the_file(tmp_path, capsys):
    src = _population(tmp_path / "pop")
    (src / "images" / "sub-03_ses-1.nii.gz").write_bytes(b"garbage")
    code = main(
        [
            "prepare",
            str(src),
            "--csv",
            str(src / "subjects.csv"),
            "--workers",
            "1",
            "--quiet",
            "--out",
            str(tmp_path / "ds"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "brainvae prepare: error:" in err and "sub-03_ses-1.nii.gz" in err
    assert not (tmp_path / "ds").exists()


def test_cli_prepare_refuses_existing_output(tmp_path, capsys):
    src = _population(tmp_path / "pop", n=3)
    args = ["prepare", str(src), "--workers", "1", "--quiet", "--out", str(tmp_path / "ds")]
    assert main(args) == 0
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_cli_summary_counts_subjects_and_warns(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name in ("sub-01_ses-1", "sub-01_ses-2", "sub-02_ses-1"):
        data = rng.random((8, 10, 6)).astype(np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(src / f"{name}.nii.gz"))
    data = rng.random((8, 10, 6)).astype(np.float32)
    data[0, 0, 0] = np.nan
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])), str(src / "sub-02_ses-2.nii.gz"))
    args = ["prepare", str(src), "--nonfinite", "zero", "--workers", "1", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    assert "from 4 files of 2 subjects" in out
    assert "Split by subject: train 4 scans (2 subjects), val 0 scans (0 subjects)" in out
    assert (
        "Warning: 1 file(s) have a different voxel size or position (affine) from the reference "
        f"{(src / 'sub-01_ses-1.nii.gz').resolve()}" in out
    )
    assert "sub-02_ses-2.nii.gz" in out.split("Warning: 1 file(s) have")[1].splitlines()[0]
    assert "Warning: NaN/Inf voxels were replaced with 0 in 1 file(s): " in out
    assert "sub-02_ses-2.nii.gz (1 voxels)" in out
    assert "Warning: only 2 subject(s), so the val, test split(s) are empty" in out


def test_cli_prepare_flair_recipe_splits_90_10_and_says_there_is_no_test_split(tmp_path, capsys):
    from brainvae.data.preprocessing import PreprocessConfig

    src = tmp_path / "src"
    src.mkdir()
    for i in range(10):
        data = np.random.default_rng(i).random((8, 10, 6)).astype(np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(src / f"sub-{i:02d}.nii.gz"))
    config = PreprocessConfig.flair_3d(crop_shape=None, block=2).save(tmp_path / "flair.json")
    args = ["prepare", str(src), "--config", str(config), "--workers", "1", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    assert "Split by subject: train 9 scans (9 subjects), val 1 scans (1 subjects), " in out
    assert "no test split (fraction 0)" in out and "Warning" not in out
    description = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert description["split"]["fractions"] == [0.9, 0.1, 0.0]
