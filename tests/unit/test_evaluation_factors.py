"""The phantom's independent generating factors: read from the shipped 2D sample's
subjects.csv (age effects and measurements left out, constant nuisances dropped with a note),
matched to a real prepared dataset by subject and session, and bad input named."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainvae.errors import DataFileError, DatasetError
from brainvae.evaluation.factors import (
    INDEPENDENT_VENTRICLES_FACTOR,
    PHANTOM_FACTORS,
    dataset_factors,
    factor_table,
)

AGE_EFFECTS = ("ventricle_expansion", "cortical_thinning", "shrinkage")
MEASUREMENTS = ("ventricle_volume_ml", "lesion_load_ml", "leuko_load_ml")
SAMPLE_2D_FACTORS = (
    "age", "lesion_burden", "leuko_extent_mm", "site", "rotation_coronal_deg",
    "shift_inferior_mm", "shift_right_mm", "intensity_scale", "bias_amplitude", "noise_sd",
)  # fmt: skip
"""What varies in the 2D coronal sample: one in-plane rotation, two in-plane shifts, no
artefacts (the sample was drawn without them)."""
CONSTANT_IN_2D = (
    "rotation_axial_deg", "rotation_sagittal_deg", "shift_posterior_mm",
    "artefact_leakage", "artefact_missing", "artefact_grid",
)  # fmt: skip


@pytest.fixture(scope="module")
def subjects_csv(sample_data_dir) -> Path:
    return sample_data_dir / "population_2d" / "subjects.csv"


@pytest.fixture(scope="module")
def subjects(subjects_csv) -> pd.DataFrame:
    return pd.read_csv(subjects_csv)


def test_phantom_factors_leave_out_age_effects_and_measurements():
    for name in (*AGE_EFFECTS, *MEASUREMENTS, "severity", "diagnosis"):
        assert name not in PHANTOM_FACTORS
    assert INDEPENDENT_VENTRICLES_FACTOR in AGE_EFFECTS


def test_factor_table_of_the_2d_sample(subjects):
    table = factor_table(subjects)
    assert table.names == SAMPLE_2D_FACTORS
    assert table.dropped == CONSTANT_IN_2D
    for name in CONSTANT_IN_2D:
        assert any(note.startswith(f"{name} left out:") for note in table.notes)
    assert table.discrete == tuple(name == "site" for name in SAMPLE_2D_FACTORS)
    assert table.values.shape == (len(subjects), len(SAMPLE_2D_FACTORS))
    np.testing.assert_array_equal(table.values, subjects[list(SAMPLE_2D_FACTORS)].to_numpy(float))
    # The drawn factors are nearly uncorrelated: the largest pair is lesion burden against
    # leukoencephalopathy extent (-0.26), each zero outside its own diagnosis.
    correlation = table.correlation()
    off_diagonal = np.abs(correlation - np.eye(len(table.names)))
    assert off_diagonal.max() < 0.3
    assert not [note for note in table.notes if "correlate" in note]


def test_age_effects_chosen_as_factors_get_a_note(subjects):
    table = factor_table(subjects, ["age", *AGE_EFFECTS, "diagnosis"])
    correlated = [note for note in table.notes if "correlate" in note]
    assert any(
        note.startswith("age and ventricle_expansion correlate (r = 0.97") for note in correlated
    )
    assert any(
        note.startswith("age and cortical_thinning correlate (r = 1.00") for note in correlated
    )
    assert table.discrete[-1] is True  # diagnosis: text turned into classes
    assert sorted(set(table.values[:, -1])) == [0.0, 1.0, 2.0]


def test_missing_and_empty_factor_columns_are_named(subjects):
    with pytest.raises(DatasetError, match=r"factor column\(s\) age, site not found \(columns: "):
        factor_table(subjects.drop(columns=["age", "site"]))
    with pytest.raises(DatasetError, match="give the phantom's subjects.csv as the factors file"):
        factor_table(subjects.drop(columns=["age"]))
    holes = subjects.copy()
    holes.loc[[3, 9], "noise_sd"] = np.nan
    with pytest.raises(DatasetError, match=r"noise_sd is empty on 2 row\(s\) \(first: row 3\)"):
        factor_table(holes)
    with pytest.raises(DatasetError, match="every factor .* is constant"):
        factor_table(subjects, ["rotation_axial_deg", "artefact_grid"])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, subjects_csv, subjects):
    """A real prepared dataset of six sample scans (two sessions of one subject, one MS scan)
    whose own table holds ids and file names only, no factor."""
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.prepare import prepare
    from brainvae.data.preprocessing import PreprocessConfig

    root = tmp_path_factory.mktemp("factors")
    (root / "images").mkdir()
    twice = subjects[subjects["session"] == 2]["subject_id"].iloc[0]
    rows = subjects[subjects["subject_id"] == twice].head(2)
    others = subjects[(subjects["session"] == 1) & (subjects["subject_id"] != twice)]
    ms = others[others["diagnosis"] == "ms"].head(1)
    rows = pd.concat([rows, others[others["diagnosis"] != "ms"].head(3), ms])
    for name in rows["filename"]:
        shutil.copy(subjects_csv.parent / name, root / "images")
    rows[["subject_id", "session", "filename"]].to_csv(root / "ids.csv", index=False)
    config = PreprocessConfig.identity(split_fractions=(0.5, 0.0, 0.5))
    prepare(root / "images", root / "ds", config, csv=root / "ids.csv", workers=1)
    return PreparedDataset.open(root / "ds")


def test_dataset_factors_match_a_prepared_dataset_by_subject_and_session(
    prepared, subjects_csv, subjects
):
    metadata = prepared.metadata
    assert "age" not in metadata.columns
    table = dataset_factors(metadata, subjects_csv, names=["age", "lesion_burden", "site"])
    assert table.names == ("age", "lesion_burden", "site")
    keys = subjects.set_index(["subject_id", "session"])
    for row, (subject, session) in enumerate(
        zip(metadata["subject_id"], metadata["session"], strict=True)
    ):
        expected = keys.loc[(subject, int(session)), ["age", "lesion_burden", "site"]]
        np.testing.assert_array_equal(table.values[row], expected.to_numpy(float))
    assert len(set(metadata["subject_id"])) < len(metadata)  # one subject's two sessions


def test_dataset_factors_from_the_metadata_itself(prepared, subjects):
    metadata = prepared.metadata.merge(
        subjects.assign(session=subjects["session"].astype(str))[
            ["subject_id", "session", "age", "site"]
        ],
        on=["subject_id", "session"],
    )
    table = dataset_factors(metadata, names=["age", "site"])
    np.testing.assert_array_equal(table.values, metadata[["age", "site"]].to_numpy(float))


def test_dataset_factors_name_a_missing_file_and_rows_that_do_not_match(
    prepared, subjects, tmp_path
):
    missing = tmp_path / "nowhere" / "subjects.csv"
    with pytest.raises(DataFileError, match="MIG, DCI and SAP need") as error:
        dataset_factors(prepared.metadata, missing)
    assert str(missing) in str(error.value)
    partial = tmp_path / "partial.csv"
    metadata = prepared.metadata
    gone = metadata["subject_id"].iloc[-1]
    subjects[subjects["subject_id"] != gone].to_csv(partial, index=False)
    unmatched = metadata[metadata["subject_id"] == gone]
    first = unmatched.iloc[0]
    with pytest.raises(
        DataFileError,
        match=rf"{len(unmatched)} of {len(metadata)} dataset rows have no row here \(matched by "
        rf"subject_id and session; first: subject_id={first['subject_id']} "
        rf"session={first['session']}\)",
    ):
        dataset_factors(metadata, partial)
    with pytest.raises(DatasetError, match=r"factor column\(s\) lesion_burden not found"):
        dataset_factors(metadata, _without(subjects, tmp_path))


def test_dataset_factors_without_sessions_match_by_subject(prepared, subjects, tmp_path):
    metadata = prepared.metadata.drop(columns=["session"])
    with pytest.raises(DataFileError, match="several rows per subject_id, and the dataset's"):
        dataset_factors(metadata, _write(subjects, tmp_path))
    baseline = subjects[subjects["session"] == 1].drop(columns=["session"])
    path = tmp_path / "baseline.csv"
    baseline.to_csv(path, index=False)
    single = metadata[prepared.metadata["session"] == "1"].reset_index(drop=True)
    table = dataset_factors(single, path, names=["age", "site"])
    expected = baseline.set_index("subject_id").loc[single["subject_id"], ["age", "site"]]
    np.testing.assert_array_equal(table.values, expected.to_numpy(float))


def _write(subjects: pd.DataFrame, folder: Path) -> Path:
    """The whole subjects table (several sessions per subject) as all.csv."""
    path = folder / "all.csv"
    subjects.to_csv(path, index=False)
    return path


def _without(subjects: pd.DataFrame, folder: Path) -> Path:
    """A factors file lacking the lesion_burden column."""
    path = folder / "no_burden.csv"
    subjects.drop(columns=["lesion_burden"]).to_csv(path, index=False)
    return path
