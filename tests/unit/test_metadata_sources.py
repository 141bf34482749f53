"""Metadata as users have it: other id column names, TSV files, BIDS trees, typo columns."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainvae.data.dataset import PreparedDataset
from brainvae.errors import DataFileError
from helpers.tiny_scans import SHAPE, prepare, write_scan


def test_participants_tsv_with_bids_ids_matches_bids_file_names(tmp_path, capsys):
    src = tmp_path / "scans"
    for i in range(1, 5):
        write_scan(src / f"sub-0{i}_T1w.nii.gz", i)
    tsv = tmp_path / "participants.tsv"
    tsv.write_text(
        "participant_id\tage\tdiagnosis\n"
        + "".join(f"sub-0{i}\t{40 + i}\t{'MS' if i % 2 else 'HC'}\n" for i in range(1, 5))
    )
    assert prepare(src, tmp_path / "ds", "--csv", str(tsv)) == 0
    out = capsys.readouterr().out
    assert "Metadata columns: id participant_id (as subject_id); known: age, diagnosis" in out
    table = PreparedDataset.open(tmp_path / "ds").metadata
    assert sorted(table["subject_id"]) == ["sub-01", "sub-02", "sub-03", "sub-04"]
    by_subject = table.set_index("subject_id")
    assert by_subject.loc["sub-03", "age"] == 43 and by_subject.loc["sub-02", "diagnosis"] == "HC"


def test_subject_column_is_found_without_being_named(tmp_path):
    src = tmp_path / "scans"
    for name in ("p1", "p2", "p3"):
        write_scan(src / f"{name}.nii.gz", len(name))
    csv = tmp_path / "meta.csv"
    csv.write_text("subject,age\np1,30\np2,31\np3,32\n")
    assert prepare(src, tmp_path / "ds", "--csv", str(csv)) == 0
    table = PreparedDataset.open(tmp_path / "ds").metadata
    assert table.set_index("subject_id").loc["p2", "age"] == 31


def test_id_column_named_on_the_command_line(tmp_path, capsys):
    src = tmp_path / "scans"
    for name in ("a", "b", "c"):
        write_scan(src / f"{name}.nii.gz", ord(name))
    csv = tmp_path / "meta.csv"
    csv.write_text("my_id,age\na,50\nb,51\nc,52\n")
    assert prepare(src, tmp_path / "refused", "--csv", str(csv)) == 2
    err = capsys.readouterr().err
    assert "subject_id (or participant_id or subject" in err and "--id-column" in err
    assert prepare(src, tmp_path / "ds", "--csv", str(csv), "--id-column", "my_id") == 0
    assert "id my_id (as subject_id)" in capsys.readouterr().out
    table = PreparedDataset.open(tmp_path / "ds").metadata
    assert table.set_index("subject_id").loc["c", "age"] == 52


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("meta.txt", "subject_id;age\n01;30\n02;31\n"),
        ("meta.csv", "subject_id\tage\n01\t30\n02\t31\n"),
    ],
)
def test_separator_is_sniffed_when_the_extension_does_not_say(tmp_path, name, text):
    from brainvae.data.metadata import read_metadata

    path = tmp_path / name
    path.write_text(text)
    table = read_metadata(path)
    assert list(table["subject_id"]) == ["01", "02"] and list(table["age"]) == [30, 31]


def test_id_column_named_but_missing_is_refused(tmp_path):
    from brainvae.data.metadata import read_metadata

    path = tmp_path / "meta.csv"
    path.write_text("subject_id,age\n01,30\n")
    with pytest.raises(DataFileError, match="the id column 'my_id' named with --id-column"):
        read_metadata(path, "my_id")


def test_typo_column_is_listed_in_the_summary(tmp_path, capsys):
    src = tmp_path / "scans"
    for name in ("s1", "s2", "s3"):
        write_scan(src / f"{name}.nii.gz", int(name[1]))
    csv = tmp_path / "meta.csv"
    csv.write_text("subject_id,age,diagnosos,scanner\ns1,30,MS,A\ns2,31,HC,B\ns3,32,MS,A\n")
    assert prepare(src, tmp_path / "ds", "--csv", str(csv)) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("Metadata columns:"))
    assert "known: age, scanner" in line
    assert (
        "other (kept as they are; check the spelling): diagnosos (did you mean diagnosis?)" in line
    )


def _bids_tree(root):
    """3 subjects x 2 sessions of anat T1w, a functional file, participants and sessions tables."""
    for s in range(1, 4):
        for v in (1, 2):
            write_scan(root / f"sub-0{s}/ses-{v}/anat/sub-0{s}_ses-{v}_T1w.nii.gz", 10 * s + v)
        (root / f"sub-0{s}" / f"sub-0{s}_sessions.tsv").write_text(
            "session_id\tage\tscanner_field\n"
            + "".join(f"ses-{v}\t{60 + s + 2 * v}\t3T\n" for v in (1, 2))
        )
    func = root / "sub-01/ses-1/func/sub-01_ses-1_task-rest_bold.nii.gz"
    func.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.zeros((*SHAPE, 3), np.float32), np.eye(4)), str(func))
    (root / "participants.tsv").write_text(
        "participant_id\tage\tsex\tdiagnosis\n"
        "sub-01\t61\tF\tMS\nsub-02\t62\tM\tHC\nsub-03\tn/a\tF\tMS\nsub-04\t70\tM\tHC\n"
    )
    (root / "dataset_description.json").write_text('{"Name": "tiny", "BIDSVersion": "1.8.0"}')
    return root


def test_bids_root_is_prepared_with_participants_and_sessions(tmp_path, capsys):
    root = _bids_tree(tmp_path / "bids")
    assert prepare(root, tmp_path / "ds", "--preset", "identity") == 0
    out = capsys.readouterr().out
    assert "Prepared 6 scans" in out and "of 3 subjects" in out
    assert "Metadata columns: id participant_id (as subject_id); known: age, sex, diagnosis" in out
    assert "participants.tsv subjects without an anatomical scan (1): sub-04" in out
    assert "BIDS files left out (not under sub-*/[ses-*/]anat/) (1): " in out
    dataset = PreparedDataset.open(tmp_path / "ds")
    table = dataset.metadata.set_index(["subject_id", "session"])
    assert len(table) == 6 and table.index.is_unique
    # Session-level age (sessions.tsv) replaces the participants' one, per session.
    assert table.loc[("sub-02", "ses-1"), "age"] == 64
    assert table.loc[("sub-02", "ses-2"), "age"] == 66
    assert table.loc[("sub-03", "ses-2"), "age"] == 67  # participants.tsv had n/a
    assert table.loc[("sub-01", "ses-2"), "sex"] == "F"
    assert set(table["scanner_field"]) == {"3T"}
    assert not any("bold" in s for s in dataset.metadata["source"])
    assert any("_bold.nii.gz" in f for f in dataset.report["not_anatomical_files"])
    # Both scans of a subject land in one split.
    assert dataset.metadata.groupby("subject_id")["split"].nunique().max() == 1


def test_subject_level_table_claims_every_session_of_a_subject(tmp_path):
    from brainvae.data.file_matching import find_image_files, match_files
    from brainvae.data.metadata import read_metadata

    src = tmp_path / "scans"
    for s in (1, 2):
        for v in (1, 2):
            write_scan(src / f"sub-0{s}_ses-{v}_FLAIR.nii.gz", 10 * s + v)
    tsv = tmp_path / "participants.tsv"
    tsv.write_text("participant_id\tage\n01\t30\nsub-02\t40\nsub-09\t50\n")
    result = match_files(read_metadata(tsv), find_image_files(src), tmp_path)
    table = result.table
    assert list(zip(table["subject_id"], table["session"], strict=True)) == [
        ("01", "ses-1"),
        ("01", "ses-2"),
        ("sub-02", "ses-1"),
        ("sub-02", "ses-2"),
    ]
    assert list(table["age"]) == [30, 30, 40, 40]
    assert len(result.unmatched_rows) == 1 and "sub-09" in result.unmatched_rows[0]
    assert not result.unmatched_files


def test_table_with_both_id_names_keeps_subject_id(tmp_path):
    from brainvae.data.metadata import read_metadata

    path = tmp_path / "meta.tsv"
    pd.DataFrame({"participant_id": ["x"], "subject_id": ["s1"], "age": [3]}).to_csv(
        path, sep="\t", index=False
    )
    table = read_metadata(path)
    assert table.attrs["id_column"] == "subject_id" and list(table["participant_id"]) == ["x"]


def test_bids_scans_without_a_participants_row_are_kept_and_named(tmp_path, capsys):
    root = _bids_tree(tmp_path / "bids")
    (root / "participants.tsv").write_text("participant_id\tsex\nsub-01\tF\nsub-02\tM\n")
    assert prepare(root, tmp_path / "ds", "--preset", "identity") == 0
    out = capsys.readouterr().out
    assert "Prepared 6 scans" in out
    assert (
        "Warning: 1 subject(s) with scans have no participants.tsv row (their columns are "
        "empty): sub-03" in out
    )
    table = PreparedDataset.open(tmp_path / "ds").metadata.set_index(["subject_id", "session"])
    assert pd.isna(table.loc[("sub-03", "ses-1"), "sex"])
    assert table.loc[("sub-03", "ses-1"), "age"] == 65  # its sessions.tsv still applies
