"""`brainvae denoise`: the folder it writes (tables, montage, NIfTI on the dataset's grid,
summary.json) in 2D and 3D, and the bad inputs it refuses with a message naming the problem."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_artefacts import brain_like

from brainvae.cli import main
from helpers.pca_runs import save_pca


def write_dataset(root, shape, subjects, fractions=(0.5, 0.2, 0.3)):
    """Brain-like scans saved as .npy and prepared (identity preprocessing); returns ds/."""
    from brainvae.data.prepare import prepare
    from brainvae.data.preprocessing import PreprocessConfig

    source = root / "src"
    source.mkdir(parents=True)
    for subject in range(subjects):
        np.save(source / f"sub-{subject:02d}.npy", brain_like(shape, subject))
    config = PreprocessConfig.identity(split_fractions=fractions)
    prepare(source, root / "ds", config, workers=1)
    return root / "ds"


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    root = tmp_path_factory.mktemp("denoise2d")
    dataset = write_dataset(root, (28, 32), 12)
    return dataset, save_pca(root / "pca", dataset, 3), save_pca(root / "identity", dataset)


def test_the_folder_holds_tables_montage_nifti_and_summary(flat, tmp_path, capsys):
    import nibabel as nib
    from PIL import Image

    from brainvae.data.dataset import PreparedDataset

    dataset, pca, identity = flat
    out = tmp_path / "out"
    code = main(["denoise", str(pca), str(identity), str(dataset), "--artefacts", "grid,missing",
                 "--names", "PCA,copy", "--montage-scan", "1", "--seed", "3", "--quiet",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "reproduces it least: PCA" in printed and f"Wrote {out}" in printed
    opened = PreparedDataset.open(dataset)
    test_rows = opened.indices("test")
    table = pd.read_csv(out / "denoising.csv")
    assert len(table) == len(test_rows) * 3 * 2
    assert list(table.columns[:4]) == ["scan", "row", "subject_id", "split"]
    assert set(table["artefact"]) == {"none", "grid", "missing"}
    assert sorted(set(table["row"])) == sorted(test_rows)
    copied = table.query("model == 'copy' and artefact != 'none'")["artefact_reproduced"]
    assert np.allclose(copied, 1.0, atol=1e-4)
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 3 * 2 and set(summary.columns) >= {"artefact", "model", "cw_ssim"}
    assert len(pd.read_csv(out / "inputs.csv")) == len(test_rows) * 2
    record = json.loads((out / "summary.json").read_text())
    assert record["reproduces_least"] == {"grid": "PCA", "missing": "PCA"}
    assert record["montage_scan"]["dataset_row"] == int(test_rows[1])
    assert record["runs"]["PCA"]["is"] == "PCA, L 3" and record["severity"] == 1.0
    with Image.open(out / "montage.png") as picture:
        assert picture.size[0] > 1500  # 180 mm at 300 dpi
    assert (out / "montage.pdf").read_bytes().startswith(b"%PDF")
    # the montage scan's images on the dataset's grid, with that scan's affine
    clean = nib.load(out / "clean.nii.gz")
    assert np.allclose(clean.affine, opened.sample_affine(int(test_rows[1])))
    assert np.allclose(np.squeeze(clean.get_fdata()), opened.images[test_rows[1]], atol=1e-6)
    corrupted = np.squeeze(nib.load(out / "grid_corrupted.nii.gz").get_fdata())
    copy = np.squeeze(nib.load(out / "grid_copy.nii.gz").get_fdata())
    changed = np.squeeze(nib.load(out / "grid_changed.nii.gz").get_fdata()) > 0
    assert np.allclose(copy, corrupted, atol=1e-5) and changed.any()
    assert np.array_equal(changed, np.abs(corrupted - np.squeeze(clean.get_fdata())) > 0.01)
    assert sorted(record["images"]) == sorted(p.name for p in out.glob("*.nii.gz"))


def test_volumes(tmp_path):
    import nibabel as nib

    from brainvae.data.dataset import PreparedDataset
    from brainvae.evaluation.denoising import default_brain_mask
    from brainvae.figures.denoising_figure import visible_slices

    dataset = write_dataset(tmp_path, (16, 18, 15), 8, (0.5, 0.0, 0.5))
    pca = save_pca(tmp_path / "pca3d", dataset, 2)
    out = tmp_path / "out"
    assert main(["denoise", str(pca), str(dataset), "--quiet", "--out", str(out)]) == 0
    table = pd.read_csv(out / "denoising.csv")
    assert len(table) == 4 * 4 and set(table["model"]) == {"pca3d"}
    assert nib.load(out / "leakage_pca3d.nii.gz").shape[:3] == (16, 18, 15)
    changed = nib.load(out / "missing_changed.nii.gz").get_fdata() > 0
    views = json.loads((out / "summary.json").read_text())["montage_views"]
    view, _, rest = views["missing"].partition(" slice ")
    index = int(rest.split(" ")[0])
    assert view in ("axial", "coronal", "sagittal") and "(most artefact in view)" in rest
    opened = PreparedDataset.open(dataset)
    brain = default_brain_mask(opened.images[opened.indices("test")])
    cut = {"axial": 0, "coronal": 1, "sagittal": 2}[view]  # the display axes run I, P, R
    scores = visible_slices(changed, brain, cut)
    assert scores[index] == scores.max() > 0


def test_bad_inputs_are_named(flat, tmp_path, capsys):
    dataset, pca, _identity = flat
    other = write_dataset(tmp_path / "other", (20, 20), 6, (0.7, 0.3, 0.0))
    square = save_pca(tmp_path / "square", other, 2)
    out = str(tmp_path / "out")

    def refused(*argv) -> str:
        assert main(["denoise", *map(str, argv), "--quiet", "--out", out]) == 2
        return capsys.readouterr().err

    message = refused(pca, square, dataset)
    assert f"{pca}" in message and f"{square}" in message
    assert "(28, 32)" in message and "(20, 20)" in message
    message = refused(square, other)  # a dataset without a test split
    assert "no scan in the 'test' split" in message and "train (" in message and "val (" in message
    message = refused(square, dataset)  # a run whose scans are not the dataset's
    assert str(square) in message and "(28, 32)" in message and "(20, 20)" in message
    message = refused(pca, dataset, "--montage-scan", "99")
    assert "montage scan 99" in message
    with pytest.raises(SystemExit) as exit_info:
        main(["denoise", str(pca), str(dataset), "--artefacts", "leakage,ghost", "--out", out])
    assert exit_info.value.code == 2
    assert "known: leakage, missing, grid" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["denoise", str(pca), str(dataset), "--severity", "-1", "--out", out])
    assert "--severity" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
