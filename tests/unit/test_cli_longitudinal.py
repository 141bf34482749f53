"""`brainvae longitudinal` on the shipped sample models and populations: every file of the
result folder is there and agrees with the library's own result (loadings, pairs, codes,
decoded frames on the population's grid), the simulated control brain's ventricles darken with
age and the MS lesion zone is brighter than the controls' at every age (issue 18's check on the
shipped 2D model), the pictures are real, and bad input exits 2 with one line that says what
to do and leaves nothing half-written."""

from __future__ import annotations

import contextlib
import io
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from brainvae.cli import main

YEARS = (50.0, 80.0)
FRAMES = 7
BOOTSTRAP = 20


def finish(steps):
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


@pytest.fixture(scope="module")
def sample_2d(sample_data_dir):
    return sample_data_dir / "models" / "beta_vae_2d", sample_data_dir / "population_2d"


@pytest.fixture(scope="module")
def run_2d(sample_2d, tmp_path_factory):
    """The command on the 2D sample, its printed lines, and the library's result of the same
    request on the same population."""
    from brainvae.longitudinal import LongitudinalRequest
    from brainvae.models import load_model
    from brainvae.usecases.longitudinal_run import longitudinal_run
    from brainvae.usecases.population_run import open_population

    model_dir, population_dir = sample_2d
    out = tmp_path_factory.mktemp("longitudinal") / "result"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(
            ["longitudinal", str(model_dir), str(population_dir), "--years", "50,80",
             "--frames", str(FRAMES), "--splits", str(BOOTSTRAP), "--out", str(out),
             "--quiet"]
        )  # fmt: skip
    assert code == 0
    population = open_population(population_dir)
    request = LongitudinalRequest(years=YEARS, frames=FRAMES, n_splits=BOOTSTRAP)
    result = finish(longitudinal_run(load_model(model_dir), population, request))
    return out, result, population, request, printed.getvalue()


def test_every_file_is_written(run_2d):
    out, result, _, _, _ = run_2d
    groups = ("healthy", "leuko", "ms")
    expected = {
        "loadings.csv", "pairs.csv", "trajectories.csv", "trajectory_rois.csv", "summary.json",
        "strip.png", "trajectory.gif", "loadings.png",
        *(f"trajectory_{g}.nii.gz" for g in groups), *(f"change_{g}.nii.gz" for g in groups),
    }  # fmt: skip
    assert {path.name for path in out.iterdir()} == expected
    assert set(result.frames) == set(groups)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_tables_equal_the_library_result(run_2d):
    out, result, population, _, _ = run_2d
    analysis = result.analysis
    loadings = pd.read_csv(out / "loadings.csv", index_col=0)
    pd.testing.assert_frame_equal(loadings, analysis.loadings(), check_names=False, rtol=1e-6)
    assert list(loadings.columns) == ["tau_a", "tau_d (leuko)", "tau_d (ms)"]

    pairs = pd.read_csv(out / "pairs.csv")
    assert len(pairs) == analysis.pairs.n_pairs == sum(analysis.directions.n_pairs.values())
    np.testing.assert_array_equal(pairs["earlier_row"], analysis.pairs.earlier)
    np.testing.assert_array_equal(pairs["later_row"], analysis.pairs.later)
    np.testing.assert_allclose(pairs["years"], analysis.pairs.years, rtol=1e-6)
    np.testing.assert_allclose(pairs["share_a"], analysis.directions.share_a, rtol=1e-6)
    table = population.table.reset_index(drop=True)
    np.testing.assert_array_equal(pairs["subject"], table["subject_id"][pairs["earlier_row"]])
    np.testing.assert_array_equal(
        pairs["later_session"].astype(str), table["session"][pairs["later_row"]].astype(str)
    )
    assert (pairs["later_age"] - pairs["earlier_age"]).sub(pairs["years"]).abs().max() < 1e-6
    assert pairs.loc[pairs["group"] == "healthy", "share_d"].isna().all()
    for group in ("leuko", "ms"):
        mine = (pairs["group"] == group).to_numpy()
        np.testing.assert_allclose(
            pairs.loc[mine, "share_d"], analysis.directions.share_d[group][mine], rtol=1e-6
        )

    trajectories = pd.read_csv(out / "trajectories.csv")
    for group, path in analysis.trajectories.items():
        part = trajectories[trajectories["group"] == group]
        np.testing.assert_allclose(part["age"], np.linspace(*YEARS, FRAMES))
        np.testing.assert_allclose(part[list(analysis.latent_names)], path.codes, rtol=1e-6)
        np.testing.assert_allclose(part["phi"], analysis.scale.phi(path.years), rtol=1e-6)


def test_nifti_series_are_the_frames_on_the_population_grid(run_2d):
    """One frame per age along the 4th axis, the 2D slice's dropped axis kept (length 1), the
    population's affine: the series overlays the scans."""
    out, result, population, _, _ = run_2d
    (squeezed,) = population.squeezed_axes
    for group, frames in result.frames.items():
        for name, expected in (("trajectory", frames), ("change", result.change(group))):
            image = nib.load(out / f"{name}_{group}.nii.gz")
            assert image.shape[3] == FRAMES and image.shape[squeezed] == 1
            np.testing.assert_allclose(image.affine, population.affine, atol=1e-5)
            data = np.moveaxis(np.squeeze(image.get_fdata(), axis=squeezed), -1, 0)
            np.testing.assert_allclose(data, expected, rtol=1e-5, atol=1e-6)
        assert np.all(result.change(group)[0] == 0)


def test_control_ventricles_darken_and_ms_lesion_zone_is_brighter(run_2d):
    """Issue 18's check on the shipped 2D model, read from trajectory_rois.csv: the simulated
    control brain's ventricle ROI darkens at every step from 50 to 80 years (dark CSF fills
    it as the ventricles enlarge), and the MS trajectory's lesion zone is brighter than the
    controls' at every age."""
    out, result, population, _, printed = run_2d
    rois = pd.read_csv(out / "trajectory_rois.csv")
    ventricles = rois[(rois["group"] == "healthy") & (rois["roi"] == "ventricles")]
    values = ventricles.sort_values("age")["mean_intensity"].to_numpy()
    assert len(values) == FRAMES and np.all(np.diff(values) < 0)
    assert values[0] - values[-1] > 0.02
    lesion = rois[rois["roi"] == "lesion_zone"].pivot(
        index="age", columns="group", values="mean_intensity"
    )
    assert np.all(lesion["ms"] > lesion["healthy"] + 0.05)
    ms = rois[(rois["group"] == "ms") & (rois["roi"] == "lesion_zone")]
    np.testing.assert_allclose(
        ms["minus_control"], ms["mean_intensity"] - lesion["healthy"].to_numpy(), atol=1e-6
    )
    # the table is the frames averaged over the atlas ROI, not something else
    label = {name: value for value, name in population.atlas_names.items()}["ventricles"]
    mask = np.asarray(population.atlas) == label
    direct = [float(frame[mask].mean()) for frame in result.frames["healthy"]]
    np.testing.assert_allclose(values, direct, rtol=1e-5)
    assert "largest change in ROI ventricles" in printed and "falls at every step" in printed
    assert "ms vs healthy, largest difference in ROI lesion_zone" in printed


def test_summary_states_stability_honestly(run_2d):
    out, result, _, request, printed = run_2d
    summary = json.loads((out / "summary.json").read_text())
    assert summary["request"] == request.to_json()
    assert summary["description"] == result.analysis.describe()
    directions = result.analysis.directions
    assert summary["directions"]["tau_a"]["stability"] == pytest.approx(directions.stability_a)
    for entry in summary["directions"].values():
        assert entry["stable"] == (entry["stability"] >= summary["stable_threshold"])
        assert ("NOT stable" in entry["verdict"]) == (not entry["stable"])
    # the shipped 2D model's directions are not stable: said in summary, print and pictures
    assert not summary["directions"]["tau_a"]["stable"]
    assert "NOT stable" in printed
    assert summary["run"].endswith("beta_vae_2d") and summary["n_scans"] == 244
    assert summary["pictures"]["view"] == "coronal" and summary["pictures"]["slice"] is None
    assert summary["years"] == pytest.approx(list(np.linspace(*YEARS, FRAMES)))


def test_pictures_open_and_the_movie_has_a_frame_per_age(run_2d):
    out, _, _, _, _ = run_2d
    with Image.open(out / "trajectory.gif") as movie:
        assert movie.n_frames == FRAMES and movie.info.get("loop") == 0
        first = np.asarray(movie.convert("L"), dtype=float)
        movie.seek(FRAMES - 1)
        last = np.asarray(movie.convert("L"), dtype=float)
    assert np.abs(first - last).mean() > 0  # the age in the title and the brains change
    for name in ("strip.png", "loadings.png"):
        with Image.open(out / name) as picture:
            picture.load()
            assert picture.format == "PNG" and min(picture.size) > 300
            assert np.asarray(picture.convert("L")).std() > 10


def test_3d_series_and_axial_strip(sample_data_dir, tmp_path):
    from brainvae.usecases.population_run import open_population

    out = tmp_path / "result"
    code = main(
        ["longitudinal", str(sample_data_dir / "models" / "beta_vae_3d"),
         str(sample_data_dir / "population_3d"), "--frames", "3", "--splits", "5",
         "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    population = open_population(sample_data_dir / "population_3d")
    image = nib.load(out / "trajectory_healthy.nii.gz")
    assert image.shape == (*population.scan_shape, 3)
    np.testing.assert_allclose(image.affine, population.affine, atol=1e-5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pictures"]["view"] == "axial"
    assert 0 <= summary["pictures"]["slice"] < population.scan_shape[0]
    with Image.open(out / "trajectory.gif") as movie:
        assert movie.n_frames == 3


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--control", "controls"], ["'controls'", "healthy, leuko, ms"]),
        (["--group", "cohort"], ["no column 'cohort'", "diagnosis", "age"]),
        (["--age", "age_years"], ["no column 'age_years'", "diagnosis"]),
        (["--order", "visit"], ["--order", "no column 'visit'", "session"]),
    ],
    ids=["unknown-control", "missing-group-column", "missing-age-column", "missing-order"],
)
def test_bad_input_exits_2_with_one_line(sample_2d, tmp_path, capsys, options, words):
    model_dir, population_dir = sample_2d
    out = tmp_path / "result"
    code = main(["longitudinal", str(model_dir), str(population_dir), *options,
                 "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("brainvae longitudinal: error:")
    for word in words:
        assert word in error
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_existing_output_is_refused_and_kept(sample_2d, tmp_path, capsys):
    model_dir, population_dir = sample_2d
    out = tmp_path / "result"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    code = main(["longitudinal", str(model_dir), str(population_dir), "--out", str(out)])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--overwrite" in error
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_bad_years_are_refused_by_the_parser(sample_2d, tmp_path, capsys):
    model_dir, population_dir = sample_2d
    with pytest.raises(SystemExit) as stopped:
        main(["longitudinal", str(model_dir), str(population_dir), "--years", "80,50",
              "--out", str(tmp_path / "result")])  # fmt: skip
    assert stopped.value.code == 2
    assert "the last age must be above the first" in capsys.readouterr().err


def test_a_failed_write_leaves_the_old_folder_whole(run_2d, tmp_path):
    """A write that fails half-way (here: a population grid whose affine is not finite, found
    when the first NIfTI is written, after the tables) leaves the old folder as it was and no
    temporary folder beside it."""
    from dataclasses import replace

    from brainvae.errors import DataFileError
    from brainvae.exports.longitudinal_folder import write_longitudinal_results

    _, result, population, _, _ = run_2d
    out = tmp_path / "result"
    out.mkdir()
    (out / "old.csv").write_text("old")
    broken = replace(population, affine=np.full((4, 4), np.nan))
    with pytest.raises(DataFileError):
        write_longitudinal_results(out, result, broken, {}, overwrite=True)
    assert [p.name for p in out.iterdir()] == ["old.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["result"]


def test_a_population_without_atlas_gets_no_roi_table(run_2d, tmp_path):
    """A prepared dataset has no atlas: every other file is written and summary.json says
    why trajectory_rois.csv is missing."""
    from dataclasses import replace

    from brainvae.exports.longitudinal_folder import write_longitudinal_results
    from brainvae.exports.longitudinal_summary import summary_lines

    _, result, population, _, _ = run_2d
    bare = replace(population, atlas=None, atlas_names={})
    out = write_longitudinal_results(tmp_path / "result", result, bare, {}, overwrite=False)
    written = {p.name for p in out.iterdir()}
    assert "trajectory_rois.csv" not in written and "strip.png" in written
    summary = json.loads((out / "summary.json").read_text())
    assert any("no atlas" in note for note in summary["notes"])
    assert not any("ROI" in line for line in summary_lines(result, bare))
