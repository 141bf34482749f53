"""Phantom population: real MNI152 renders, known factors, the folder contract, the CLI."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from brainvae.cli import main
from brainvae.data.io.nifti import read_nifti
from brainvae.data.phantom import (
    ATLAS_LABELS,
    PopulationConfig,
    ScanFactors,
    age_effects,
    get_grid,
    read_factors,
    reference_factors,
    render,
    sample_population,
    warp_jacobian,
)
from brainvae.data.phantom.deform import lesion_sites
from brainvae.data.phantom.population import FIRST_COLUMNS

REQUIRED_REGIONS = {
    "ventricles",
    "hippocampus",
    "thalamus",
    "striatum",
    "cortex",
    "white_matter",
    "lesion_zone",
}


def aged(age: float, **changes) -> ScanFactors:
    """A healthy scan whose age effects follow `age` exactly, other factors fixed."""
    expansion, thinning, shrinkage = age_effects(age)
    return replace(
        ScanFactors(
            age=age, ventricle_expansion=expansion, cortical_thinning=thinning, shrinkage=shrinkage
        ),
        **changes,
    )


def read_rows(folder: Path) -> list[dict]:
    with open(folder / "subjects.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def population_2d(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("phantom") / "pop2d"
    assert (
        main(
            [
                "phantom",
                "--dims",
                "2",
                "--n",
                "8",
                "--seed",
                "3",
                "--out",
                str(folder),
                "--workers",
                "1",
                "--longitudinal-share",
                "0.5",
                "--artefacts",
                "leakage,missing,grid",
            ]
        )
        == 0
    )
    return folder


def test_cli_2d_writes_the_folder_contract(population_2d):
    rows = read_rows(population_2d)
    assert list(rows[0])[: len(FIRST_COLUMNS)] == list(FIRST_COLUMNS)
    assert {"severity", "lesion_load_ml", "ventricle_volume_ml", "site", "noise_sd"} <= set(rows[0])
    assert len(rows) >= 8 and len({r["subject_id"] for r in rows}) == 8
    files = sorted(
        p.relative_to(population_2d).as_posix() for p in (population_2d / "images").glob("*.nii.gz")
    )
    assert sorted(r["filename"] for r in rows) == files
    assert {r["diagnosis"] for r in rows} <= {"healthy", "ms", "leuko"}
    image = read_nifti(population_2d / rows[0]["filename"])
    atlas = read_nifti(population_2d / "atlas.nii.gz")
    assert image.data.shape == atlas.data.shape == (128, 160)
    np.testing.assert_allclose(image.affine, atlas.affine)
    assert 0.0 <= image.data.min() and image.data.max() <= 1.0
    with open(population_2d / "atlas_labels.csv", newline="") as handle:
        names = {int(r["label"]): r["name"] for r in csv.DictReader(handle)}
    assert REQUIRED_REGIONS <= set(names.values())
    assert set(np.unique(atlas.data)) - {0} <= set(names)
    assert {names[v] for v in np.unique(atlas.data) if v} >= REQUIRED_REGIONS
    meta = json.loads((population_2d / "phantom.json").read_text())
    assert meta["config"]["seed"] == 3 and meta["grid"]["dims"] == 2 and meta["format_version"] == 1
    assert read_nifti(population_2d / "template.nii.gz").data.shape == (128, 160)
    assert read_nifti(population_2d / "brain_mask.nii.gz").data.shape == (128, 160)


def test_same_seed_same_population(population_2d, tmp_path):
    again = tmp_path / "again"
    assert (
        main(
            [
                "phantom",
                "--dims",
                "2",
                "--n",
                "8",
                "--seed",
                "3",
                "--out",
                str(again),
                "--workers",
                "2",
                "--longitudinal-share",
                "0.5",
                "--artefacts",
                "leakage,missing,grid",
            ]
        )
        == 0
    )
    assert (again / "subjects.csv").read_text() == (population_2d / "subjects.csv").read_text()
    for row in read_rows(again):
        np.testing.assert_array_equal(
            read_nifti(again / row["filename"]).data,
            read_nifti(population_2d / row["filename"]).data,
        )


def test_stored_factors_rerender_exactly(population_2d):
    grid = get_grid(2)
    scan = read_factors(population_2d)[0]
    stored = read_nifti(population_2d / f"images/{scan.subject_id}_ses-{scan.session}.nii.gz").data
    np.testing.assert_allclose(render(scan, grid).image, stored, atol=1e-4)


def test_cli_refuses_non_empty_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["phantom", "--dims", "2", "--n", "2", "--out", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert (
        main(
            [
                "phantom",
                "--dims",
                "2",
                "--n",
                "2",
                "--out",
                str(tmp_path),
                "--overwrite",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert (tmp_path / "keep.txt").exists() and (tmp_path / "subjects.csv").exists()


@pytest.mark.slow
def test_cli_3d_end_to_end(tmp_path):
    folder = tmp_path / "pop3d"
    assert (
        main(
            [
                "phantom",
                "--dims",
                "3",
                "--n",
                "3",
                "--seed",
                "1",
                "--out",
                str(folder),
                "--workers",
                "1",
            ]
        )
        == 0
    )
    rows = read_rows(folder)
    image = read_nifti(folder / rows[0]["filename"])
    atlas = read_nifti(folder / "atlas.nii.gz")
    assert image.data.shape == atlas.data.shape == (40, 48, 40)
    assert image.zooms == (4.0, 4.0, 4.0)
    np.testing.assert_allclose(image.affine, atlas.affine)
    names = {ATLAS_LABELS[v] for v in np.unique(atlas.data) if v}
    assert REQUIRED_REGIONS <= names


@pytest.mark.parametrize("dims", [2, 3])
def test_ventricles_grow_with_age(dims):
    grid = get_grid(dims)
    ages = (20, 35, 50, 65, 80, 90)
    volumes = [render(aged(a), grid).volume_ml("ventricles", grid.voxel_volume_ml) for a in ages]
    assert all(b > a for a, b in zip(volumes, volumes[1:], strict=False)), volumes
    assert volumes[-1] > 3.0 * volumes[0], volumes  # several-fold across the age range


@pytest.mark.parametrize("dims", [2, 3])
def test_warps_never_fold(dims):
    grid = get_grid(dims)
    young, old = age_effects(20.0), age_effects(90.0)
    for expansion, shrinkage in ((young[0] - 0.75, 0.0), (old[0] + 0.75, old[2]), (1.0, 0.02)):
        for rotation in ((2.0, 2.0, -2.0), (0.0, -2.0, 0.0)):
            factors = ScanFactors(
                ventricle_expansion=expansion,
                shrinkage=shrinkage,
                rotation_deg=rotation,
                shift_mm=(1.0, -1.0, 1.0),
            )
            assert warp_jacobian(factors, grid).min() > 0.0


def test_lesions_brighten_the_lesion_zone():
    grid = get_grid(2)
    scans = sample_population(PopulationConfig(dims=2, n_subjects=12, seed=5), lesion_sites(grid))
    ms = next(s for s in scans if s.diagnosis == "ms")
    base = replace(ms, noise_sd=0.0, lesions=())
    with_lesions = render(replace(base, lesions=ms.lesions), grid)
    without = render(base, grid)
    zone = grid.atlas == 7
    assert with_lesions.image[zone].mean() > without.image[zone].mean() + 0.01
    assert with_lesions.volume_ml("lesions", grid.voxel_volume_ml) > 0.01
    assert without.rois["lesions"].sum() == 0.0
    np.testing.assert_array_equal(without.image, render(base, grid).image)


def _ms_scan(burden: float, seed: int = 5) -> ScanFactors:
    """The first MS scan of a small 2D population whose MS burden is fixed to `burden`."""
    config = PopulationConfig(
        dims=2, n_subjects=12, seed=seed, longitudinal_share=0.0, lesion_burden_range=(burden,) * 2
    )
    scans = sample_population(config, lesion_sites(get_grid(2)))
    return replace(next(s for s in scans if s.diagnosis == "ms"), noise_sd=0.0)


def test_lesion_load_grows_linearly_with_the_burden():
    grid = get_grid(2)
    load = {
        b: render(_ms_scan(b), grid).volume_ml("lesions", grid.voxel_volume_ml) for b in (0.25, 1.0)
    }
    assert _ms_scan(0.25).lesion_burden == 0.25
    # radii scale with sqrt(burden), so the lesion area (2D load) scales with the burden
    assert 3.0 < load[1.0] / load[0.25] < 5.0, load
    assert load[1.0] > 0.2  # ml: several hundred 1.1 mm pixels, not a speck


def test_ms_lesions_sit_at_the_fixed_periventricular_sites():
    from brainvae.data.phantom.factors import site_set

    grid = get_grid(2)
    candidates, _ = lesion_sites(grid)
    sites = candidates[site_set(candidates, PopulationConfig(dims=2).n_lesion_sites())]
    assert len(sites) == 4
    distance = grid.maps["distance"]
    assert distance.max() > 6.0  # the rim filter had something to exclude
    config = PopulationConfig(dims=2, n_subjects=40, seed=1, longitudinal_share=0.0)
    ms = [s for s in sample_population(config, (candidates, _)) if s.diagnosis == "ms"]
    assert len(ms) >= 5
    for scan in ms:
        assert len(scan.lesions) == len(sites)
        centres = np.asarray([lesion.centre_mm for lesion in scan.lesions])
        # each lesion within the +-1 mm (per axis, in-plane) jitter of its own site
        assert np.abs(centres - sites).max() <= 1.0 + 1e-6
        assert 0.15 <= scan.lesion_burden <= 1.0


def test_lesions_outshine_the_leuko_glow():
    grid = get_grid(2)
    ms = _ms_scan(1.0)
    lesion_image = render(ms, grid)
    leuko = render(
        aged(60, diagnosis="leuko", severity=3, leuko_extent_mm=14.0, leuko_seed=4), grid
    )
    core = lesion_image.rois["lesions"] > 0.99
    assert core.sum() > 100
    glow = leuko.rois["leuko"] > 0.5
    assert glow.sum() > 100
    # lesion cores (about 1.0) are clearly brighter than the brightest leuko change (<= 0.78)
    assert np.percentile(lesion_image.image[core], 10) > leuko.image[glow].max() + 0.1


def test_leuko_severity_orders_white_matter_change():
    grid = get_grid(2)
    change = {}
    for severity, extent in ((1, 3.0), (3, 13.0)):
        rendered = render(
            aged(60, diagnosis="leuko", severity=severity, leuko_extent_mm=extent, leuko_seed=4),
            grid,
        )
        change[severity] = rendered.volume_ml("leuko", grid.voxel_volume_ml)
    assert change[3] > 2.0 * change[1] > 0.0


def test_longitudinal_visits_age_and_progress():
    config = PopulationConfig(dims=2, n_subjects=30, seed=2, longitudinal_share=1.0)
    scans = sample_population(config, lesion_sites(get_grid(2)))
    by_subject: dict[str, list[ScanFactors]] = {}
    for scan in scans:
        by_subject.setdefault(scan.subject_id, []).append(scan)
    assert all(len(v) in (2, 3) for v in by_subject.values())
    for visits in by_subject.values():
        for before, after in zip(visits, visits[1:], strict=False):
            assert after.session == before.session + 1
            assert after.age > before.age and after.visit_interval_years >= 1.0
            assert after.diagnosis == before.diagnosis and after.site == before.site
            assert after.severity >= before.severity
            assert after.leuko_extent_mm >= before.leuko_extent_mm
            assert len(after.lesions) >= len(before.lesions)
            for old, new in zip(before.lesions, after.lesions, strict=False):
                assert new.long_radius_mm >= old.long_radius_mm and new.centre_mm == old.centre_mm
            assert after.ventricle_expansion > before.ventricle_expansion


@pytest.mark.parametrize("ventricles", ["age", "independent"])
def test_ventricle_size_follows_age_or_its_own_ventricle_age(ventricles):
    config = PopulationConfig(dims=2, n_subjects=200, seed=4, ventricles=ventricles)
    scans = sample_population(config, lesion_sites(get_grid(2)))
    age = np.array([s.age for s in scans])
    expansion = np.array([s.ventricle_expansion for s in scans])
    thinning = np.array([s.cortical_thinning for s in scans])
    r = np.corrcoef(age, expansion)[0, 1]
    assert (r > 0.9) if ventricles == "age" else (abs(r) < 0.25), r
    assert np.corrcoef(age, thinning)[0, 1] > 0.9  # the rest of aging still follows age
    assert expansion.std() > 0.8  # ventricles still vary several-fold
    if ventricles == "independent":  # and still grow between a subject's visits
        by_subject: dict[str, list[float]] = {}
        for scan in scans:
            by_subject.setdefault(scan.subject_id, []).append(scan.ventricle_expansion)
        assert all(np.all(np.diff(v) > 0) for v in by_subject.values() if len(v) > 1)


def test_unknown_ventricle_mode_is_refused():
    with pytest.raises(ValueError, match="ventricles must be 'age' or 'independent'"):
        sample_population(
            PopulationConfig(dims=2, n_subjects=3, ventricles="random"), lesion_sites(get_grid(2))
        )


def test_healthy_render_resembles_the_template():
    for dims in (2, 3):
        grid = get_grid(dims)
        template = render(reference_factors(), grid).image
        scan = render(
            aged(
                50,
                noise_sd=0.01,
                noise_seed=1,
                intensity_scale=1.03,
                bias_amplitude=0.04,
                rotation_deg=(0.0, 1.5, 0.0),
            ),
            grid,
        ).image
        assert np.corrcoef(template.ravel(), scan.ravel())[0, 1] > 0.9


def test_shipped_sample_data_loads(sample_data_dir):
    for name, dims, minimum, shape in (
        ("population_2d", 2, 200, (128, 160)),
        ("population_3d", 3, 60, (40, 48, 40)),
    ):
        folder = sample_data_dir / name
        rows = read_rows(folder)
        assert len(rows) >= minimum
        files = sorted(
            p.relative_to(folder).as_posix() for p in (folder / "images").glob("*.nii.gz")
        )
        assert sorted(r["filename"] for r in rows) == files
        assert read_nifti(folder / rows[-1]["filename"]).data.shape == shape
        assert read_nifti(folder / "atlas.nii.gz").data.shape == shape
        assert json.loads((folder / "phantom.json").read_text())["grid"]["dims"] == dims
        diagnoses = [r["diagnosis"] for r in rows]
        assert all(diagnoses.count(d) >= 0.15 * len(rows) for d in ("healthy", "ms", "leuko"))
    assert (sample_data_dir / "PROVENANCE.md").is_file()


@pytest.mark.parametrize("seed", range(16))
def test_missing_band_always_cuts_through_the_brain(seed):
    from brainvae.data.phantom.render import apply_artefacts

    grid = get_grid(2)
    clean = render(reference_factors(), grid).image
    cut = apply_artefacts(clean, ("missing",), seed)
    lost = (clean > 0.3) & (cut == 0)
    assert lost.sum() >= 0.02 * (clean > 0.3).sum()


def test_nuisance_and_artefacts_change_the_image():
    grid = get_grid(2)
    base = reference_factors()
    clean = render(base, grid).image
    for change in (
        {"intensity_scale": 1.04},
        {"rotation_deg": (0.0, 2.0, 0.0)},
        {"artefacts": ("grid",)},
        {"artefacts": ("leakage",)},
    ):
        changed = render(replace(base, **change), grid).image
        assert np.abs(changed - clean).mean() > 1e-3, change


def test_axial_slice_population_is_another_grid_and_orientation(tmp_path):
    """Issue 13: a 2D population unlike the sample (axial, 144 x 120 at 1.25 mm)."""
    import json

    import nibabel as nib

    from brainvae.cli import main
    from brainvae.data.io.nifti import read_nifti
    from brainvae.data.phantom.grid import GRID_2D_AXIAL, grid_spec

    assert grid_spec(2, "axial") is GRID_2D_AXIAL and GRID_2D_AXIAL.slice_axis == 0
    assert GRID_2D_AXIAL.world_slice_axis == 2 and grid_spec(3, "axial").dims == 3
    out = tmp_path / "axial"
    assert main(["phantom", "--dims", "2", "--orientation", "axial", "--n", "4", "--seed", "3",
                 "--workers", "1", "--out", str(out)]) == 0  # fmt: skip
    first = sorted((out / "images").glob("*.nii.gz"))[0]
    image = nib.load(first)
    assert sorted(image.shape) == [1, 120, 144]
    in_plane = [axis for axis, n in enumerate(image.shape) if n > 1]
    assert np.allclose(image.affine[2, in_plane], 0.0)  # both in-plane axes keep world z: axial
    assert read_nifti(first).data.shape == (144, 120)
    metadata = json.loads((out / "phantom.json").read_text())
    assert metadata["grid"]["orientation"] == "axial"
    assert metadata["grid"]["shape"] == [144, 120]
    with pytest.raises(Exception, match="unknown slice orientation 'sagittal'"):
        grid_spec(2, "sagittal")
