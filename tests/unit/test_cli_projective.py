"""`brainvae projective` end to end through brainvae.cli.main, on small phantom datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainvae.cli import main
from helpers.oracle_model import ROI_NAMES
from helpers.phantom_datasets import prepared_phantom

FAST = ["--range=-1,1", "--step", "0.25", "--split", "0.5", "--quiet"]


def _prepared(root: Path, shape: tuple[int, ...], n: int, record: bool = True):
    """The phantom dataset, a 3-component PCA saved from it, and the ROI labels."""
    return prepared_phantom(root, shape, n, latent_dim=3, record_dataset=record)


@pytest.fixture(scope="module")
def setup_2d(tmp_path_factory):
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.io.nifti_writing import write_nifti

    root = tmp_path_factory.mktemp("projective2d")
    dataset_dir, run_dir, labels = _prepared(root, (24, 30), 24)
    dataset = PreparedDataset.open(dataset_dir)
    rois = write_nifti(
        root / "rois.nii.gz", labels, dataset.affine, squeezed_axes=dataset.squeezed_axes
    )
    names = root / "names.csv"
    pd.DataFrame(list(enumerate(ROI_NAMES, start=1)), columns=["label", "name"]).to_csv(
        names, index=False
    )
    return {"root": root, "ds": dataset_dir, "run": run_dir, "rois": rois, "names": names,
            "labels": labels, "dataset": dataset}  # fmt: skip


def _run(setup, out, *extra: str) -> int:
    return main(["projective", str(setup["run"]), "--out", str(out), *FAST, *extra])


def test_writes_maps_montage_table_and_summary(setup_2d, capsys):
    from brainvae.data.io.nifti import read_nifti

    out = setup_2d["root"] / "out"
    rois = ["--rois", str(setup_2d["rois"]), "--roi-names", str(setup_2d["names"])]
    assert _run(setup_2d, out, "--latents", "1,3", *rois) == 0  # dataset from the run record
    expected = {f"z{k}_{band}.nii.gz" for k in (1, 3)
                for band in ("small_negative", "small_positive", "large_negative",
                             "large_positive", "large", "bands_per_var_c", "colour")}  # fmt: skip
    assert {p.name for p in out.iterdir()} == expected | {
        "montage.png",
        "projective.csv",
        "summary.json",
    }
    dataset = setup_2d["dataset"]
    band = read_nifti(out / "z1_small_negative.nii.gz")
    np.testing.assert_allclose(band.affine, dataset.affine)
    assert band.data.shape == (24, 30) and np.all(band.data >= 0)
    colour = read_nifti(out / "z3_colour.nii.gz")
    np.testing.assert_allclose(colour.affine, dataset.affine)
    assert colour.is_4d and colour.data.size == 24 * 30 * 3
    assert 0.0 <= colour.data.min() and colour.data.max() <= 1.0
    normalised = read_nifti(out / "z1_bands_per_var_c.nii.gz")
    assert normalised.is_4d and normalised.data.size == 24 * 30 * 4
    table = pd.read_csv(out / "projective.csv", index_col="roi")
    assert list(table.index) == [*ROI_NAMES, "active"] and list(table.columns) == ["z1", "z3"]
    assert table.loc["active"].tolist() == [1.0, 1.0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["latents"] == ["z1", "z3"] and summary["base"] == "mean"
    assert summary["range"] == [-1.0, 1.0] and summary["units"] == "sd"
    assert summary["band_counts"] == {
        "small_negative": 3, "small_positive": 3, "large_negative": 2, "large_positive": 2
    }  # fmt: skip
    assert summary["bands"]["large_negative"] == {
        "c_from": -1.0, "c_to": -0.75, "c_variance": pytest.approx(1 / 64)
    }  # fmt: skip
    assert "zK_bands_per_var_c.nii.gz" in summary["files"]
    assert summary["decodes_per_latent"] == 9
    assert set(summary["most_enriched_roi"]) == {"z1", "z3"}
    assert summary["activity"]["inactive"] == [] and summary["inactive_swept"] == []
    assert summary["swept_in_prior_units"] == []
    colour = summary["colour"]
    assert colour["limits_mode"] == "per-latent" and colour["scheme"] == "paper"
    assert set(colour["limits"]) == {"z1", "z3"}
    assert set(colour["limits"]["z1"]) == {"small_negative", "small_positive", "large"}
    assert colour["legend"][0].startswith("cyan: small positive")
    assert set(summary["far_side_asymmetry"]) == {"z1", "z3"}
    assert summary["brain_mask_voxels"] > 0
    assert summary["dataset"] == str(setup_2d["ds"])
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out.")]
    printed = capsys.readouterr().out
    assert "Projective fields of 2 latent(s)" in printed and "limits per-latent" in printed
    assert "Activity: 3 of 3 latents active." in printed
    assert "large negative / large positive" in printed


def test_published_preset_subject_base_and_rgb(setup_2d):
    out = setup_2d["root"] / "published"
    extra = ["--preset", "published", "--base", "sub-000", "--scheme", "rgb", "--units", "prior"]
    assert _run(setup_2d, out, "--dataset", str(setup_2d["ds"]), *extra) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["base"] == "sub-000" and summary["colour"]["scheme"] == "rgb"
    assert summary["units"] == "prior" and summary["latents"] == ["z1", "z2", "z3"]
    assert summary["scale"] == {"z1": 1.0, "z2": 1.0, "z3": 1.0}
    assert not (out / "projective.csv").exists()


def test_existing_output_needs_overwrite_and_interrupts_leave_nothing(setup_2d, monkeypatch):
    import brainvae.exports.figures as figure

    out = setup_2d["root"] / "again"
    assert _run(setup_2d, out, "--latents", "1") == 0
    before = (out / "summary.json").read_text()
    assert _run(setup_2d, out, "--latents", "1") == 2
    assert _run(setup_2d, out, "--latents", "2", "--overwrite") == 0
    assert (out / "summary.json").read_text() != before

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(figure, "save_projective_figure", interrupted)
    fresh = setup_2d["root"] / "fresh"
    assert _run(setup_2d, fresh, "--latents", "1") == 130
    assert not fresh.exists()
    assert not [p for p in fresh.parent.iterdir() if p.name.startswith(".fresh")]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--range=0,3"], "must contain both signs (low < 0 < high)"),
        (["--range=-1,1", "--step", "5"], "at most the range's width 2"),
        (["--range=1"], "--range needs two numbers LOW HIGH"),
        (["--latents", "1,4"], "latent 4 is out of bounds; the model has L = 3 latents"),
        (["--latents", "x"], "--latents must be comma-separated 1-based numbers"),
        (["--base", "sub-999"], "subject 'sub-999' is not in the dataset (known: sub-000, sub-001"),
        (["--batch", "0"], "--batch must be >= 1"),
    ],
)
def test_bad_arguments_are_named_and_leave_no_folder(setup_2d, capsys, extra, message):
    out = setup_2d["root"] / "bad"
    assert _run(setup_2d, out, *extra) == 2
    err = capsys.readouterr().err
    assert "brainvae projective: error:" in err and message in err
    assert not out.exists()


def test_unknown_family_and_missing_dataset_are_refused(setup_2d, tmp_path, capsys):
    import shutil

    broken = tmp_path / "mystery"
    shutil.copytree(setup_2d["run"], broken)
    config = json.loads((broken / "config.json").read_text())
    config["family"] = "mystery_vae"
    (broken / "config.json").write_text(json.dumps(config))
    assert _run({**setup_2d, "run": broken}, tmp_path / "out1") == 2
    assert "mystery_vae" in capsys.readouterr().err
    # A model recording no dataset, and one recording a folder that is gone.
    root = tmp_path / "plain"
    _, run_dir, _ = _prepared(root, (24, 30), 6, record=False)
    assert _run({"run": run_dir}, tmp_path / "out2") == 2
    assert "give the population with --dataset" in capsys.readouterr().err
    shutil.rmtree(root / "ds")
    moved = tmp_path / "moved"
    _prepared(moved, (24, 30), 6)
    shutil.rmtree(moved / "ds")
    assert _run({"run": moved / "run"}, tmp_path / "out3") == 2
    err = capsys.readouterr().err
    assert "cannot be opened" in err and "give it with --dataset" in err
    assert not (tmp_path / "out3").exists()


def test_volume_dataset_with_brain_mask(tmp_path):
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.io.nifti import read_nifti
    from brainvae.data.io.nifti_writing import write_nifti

    dataset_dir, run_dir, labels = _prepared(tmp_path, (12, 14, 10), 10)
    dataset = PreparedDataset.open(dataset_dir)
    rois = write_nifti(tmp_path / "rois.nii.gz", labels, dataset.affine)
    mask = write_nifti(tmp_path / "mask.nii.gz", (labels > 0).astype(np.int16), dataset.affine)
    out = tmp_path / "out"
    setup = {"run": run_dir}
    assert _run(setup, out, "--rois", str(rois), "--brain-mask", str(mask), "--batch", "4") == 0
    colour = read_nifti(out / "z2_colour.nii.gz")
    assert colour.is_4d and colour.data.size == 12 * 14 * 10 * 3
    np.testing.assert_allclose(colour.affine, dataset.affine)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["brain_mask_voxels"] == int((labels > 0).sum())
    assert pd.read_csv(out / "projective.csv", index_col="roi").shape == (5, 3)  # + active
    from PIL import Image

    with Image.open(out / "montage.png") as picture:  # not one axial strip: 3 views a latent
        width, height = picture.size
        assert abs(width - round(180 / 25.4 * 300)) <= 1 and height > 0.5 * width


def test_slice_datasets_get_their_slice_and_ranges_parse_both_ways():
    from types import SimpleNamespace

    from brainvae.cli import build_parser
    from brainvae.cli.projective import sweep_settings
    from brainvae.data.dataset import PreparedDataset

    table = pd.DataFrame({"slice_index": [12, 12, 13]})
    dataset = SimpleNamespace(affine=np.diag([2.0, 2.0, 2.0, 1.0]), slice_axis=1, metadata=table)
    affine = PreparedDataset.maps_affine(dataset)
    np.testing.assert_allclose(affine[:3, 3], [0.0, 24.0, 0.0])  # slice 12 along axis 1, 2 mm
    volume = SimpleNamespace(affine=np.eye(4), slice_axis=None, metadata=table)
    np.testing.assert_allclose(PreparedDataset.maps_affine(volume), np.eye(4))
    parser = build_parser()
    for argv in (["--range=-7,7"], ["--range", "-7", "7"], ["--range=-7.0,7"]):
        args = parser.parse_args(["projective", "run", "--out", "o", *argv])
        settings = sweep_settings(args)
        assert (settings.low, settings.high, settings.units) == (-7.0, 7.0, "sd")
    args = parser.parse_args(["projective", "run", "--out", "o", "--preset", "published"])
    assert sweep_settings(args).values().size == 2801


def test_impact_of_a_receptive_run_is_compared_per_latent(setup_2d, capsys):
    rois = ["--rois", str(setup_2d["rois"]), "--roi-names", str(setup_2d["names"])]
    receptive = setup_2d["root"] / "receptive"
    args = ["receptive", str(setup_2d["run"]), str(setup_2d["ds"]), *rois, "--quiet"]
    assert main([*args, "--kind", "add", "--out", str(receptive)]) == 0
    out = setup_2d["root"] / "compared"
    impact = str(receptive / "impact.csv")
    assert _run(setup_2d, out, *rois, "--impact", impact) == 0
    summary = json.loads((out / "summary.json").read_text())
    rho = summary["field_agreement_rho"]
    assert set(rho) == {"z1", "z2", "z3"}
    # recompute from the written tables: Spearman rho of each latent's enrichment and its
    # receptive impact per ROI voxel (the same ROIs: the labels' voxel counts)
    projective = pd.read_csv(out / "projective.csv", index_col="roi").drop(index="active")
    receptive_impact = pd.read_csv(impact, index_col="roi").loc[projective.index]
    sizes = [int((setup_2d["labels"] == label).sum()) for label in range(1, 5)]
    assert summary["roi_voxels"] == sizes
    per_voxel = receptive_impact.div(sizes, axis=0)
    for name, value in rho.items():
        expected = projective[name].rank().corr(per_voxel[name].rank())
        assert value == pytest.approx(expected, abs=1e-9)
    flagged = [name for name, value in rho.items() if value < 0.5]
    assert summary["fields_disagree"] == flagged and summary["agreement_inactive"] == []
    assert "disagree (rho < 0.5)" in capsys.readouterr().out


def test_impact_needs_matching_rois(setup_2d, capsys):
    bad = setup_2d["root"] / "impact_other_rois.csv"
    pd.DataFrame({"z1": [1.0, 2.0]}, index=pd.Index(["a", "b"], name="roi")).to_csv(bad)
    rois = ["--rois", str(setup_2d["rois"]), "--roi-names", str(setup_2d["names"])]
    out = setup_2d["root"] / "not_compared"
    assert _run(setup_2d, out, *rois, "--impact", str(bad)) == 2
    err = capsys.readouterr().err
    assert "impact_other_rois.csv: has no ROI rows ventricles" in err and "latent columns z2" in err
    assert not out.exists()
    assert _run(setup_2d, out, "--impact", str(bad)) == 2  # no --rois: nothing to rank
    assert "at least 3 ROIs" in capsys.readouterr().err


def test_collapsed_model_names_its_inactive_latents_everywhere(setup_2d, tmp_path, capsys):
    """Issue 12 (1): one live latent of four. stdout names the inactive latents and why their
    fields mean little; summary.json records the activity and the prior-unit fallback and
    reports no top ROI for them; projective.csv marks them; the agreement does not flag them;
    the active latent is in colour in the figure (montage.png; per-latent limits)."""
    from PIL import Image

    from helpers.collapsed_model import collapsed_beta_vae

    images = np.asarray(setup_2d["dataset"].images)
    run = tmp_path / "collapsed"
    collapsed_beta_vae(images, latent_dim=4, live=(0,)).save(run)
    rois = ["--rois", str(setup_2d["rois"]), "--roi-names", str(setup_2d["names"])]
    receptive = tmp_path / "receptive"
    argv = ["receptive", str(run), str(setup_2d["ds"]), *rois, "--quiet", "--out", str(receptive)]
    assert main(argv) == 0
    capsys.readouterr()
    out = tmp_path / "pf"
    impact = ["--impact", str(receptive / "impact.csv")]
    assert _run({"run": run}, out, "--dataset", str(setup_2d["ds"]), *rois, *impact) == 0
    printed = capsys.readouterr().out
    assert "Activity: 1 of 4 latents active; inactive: z2, z3, z4" in printed
    assert "Inactive swept latents z2, z3, z4: their projective fields mean little" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["activity"]["active"] == ["z1"]
    assert summary["inactive_swept"] == ["z2", "z3", "z4"] and "inactive_note" in summary
    enriched = summary["most_enriched_roi"]
    assert enriched["z1"] in ROI_NAMES and [enriched[f"z{k}"] for k in (2, 3, 4)] == [None] * 3
    fallback = summary["swept_in_prior_units"]
    assert all(summary["scale"][name] == 1.0 for name in fallback)
    if fallback:
        assert f"Swept in prior units, not population sd: {', '.join(fallback)}" in printed
    assert set(summary["fields_disagree"]).isdisjoint({"z2", "z3", "z4"})
    assert summary["agreement_inactive"] == ["z2", "z3", "z4"]
    assert "not compared (inactive): z2, z3, z4" in printed
    table = pd.read_csv(out / "projective.csv", index_col="roi")
    assert table.loc["active"].tolist() == [1.0, 0.0, 0.0, 0.0]
    with Image.open(out / "montage.png") as picture:  # the publication figure, 180 mm
        assert abs(picture.size[0] - round(180 / 25.4 * 300)) <= 1
        assert picture.info["dpi"][0] == pytest.approx(300, abs=0.01)
        pixels = np.asarray(picture.convert("RGB")).astype(int)
    grey = np.abs(pixels - pixels.mean(axis=-1, keepdims=True)).max(axis=-1) < 8
    assert (~grey).sum() > 100  # the live latent in colour, not only the grey brain and text


def test_rois_and_brain_mask_at_2mm_for_4mm_scans_are_resampled_and_it_is_said(tmp_path, capsys):
    from test_roi_resampling import ROI_AFFINE, atlas_2mm, scans_at_4mm, write_labels

    from brainvae.models import ModelConfig, build_model

    dataset = scans_at_4mm(tmp_path, 6)
    config = ModelConfig(
        input_shape=tuple(dataset.scan_shape), latent_dim=2, family="pca", likelihood="gaussian"
    )
    build_model(config).fit(np.asarray(dataset.images)).save(tmp_path / "run")
    atlas = atlas_2mm()
    rois = write_labels(tmp_path / "atlas_2mm.nii.gz", atlas, ROI_AFFINE)
    mask = write_labels(tmp_path / "brain_2mm.nii.gz", (atlas > 0).astype(np.int16), ROI_AFFINE)
    out = tmp_path / "out"
    argv = ["projective", str(tmp_path / "run"), "--dataset", str(dataset.path), "--out", str(out)]
    sweep = ["--range=-1,1", "--step", "0.25", "--split", "0.5"]
    assert main([*argv, *sweep, "--rois", str(rois), "--brain-mask", str(mask)]) == 0
    err = capsys.readouterr().err
    assert f"brainvae projective: {rois}: ROIs resampled from 42 x 50 x 38 at 2 mm" in err
    assert "label(s) 4 vanished" in err
    assert f"brainvae projective: {mask}: ROIs resampled from 42 x 50 x 38 at 2 mm" in err
    table = pd.read_csv(out / "projective.csv", index_col="roi")
    assert list(table.index) == ["roi_1", "roi_2", "roi_3", "active"]
    summary = json.loads((out / "summary.json").read_text())
    assert 0 < summary["brain_mask_voxels"] < 20 * 24 * 18
