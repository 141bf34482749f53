"""Metadata tables and prepared datasets as they arrive damaged or odd: one scan named twice,
ids that are whole records, formulas, other separators and encodings, a subject named NA,
truncated or foreign images.npy, metadata.csv without its columns, unreadable history.csv."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pandas as pd
import pytest

from brainvae.cli import main
from brainvae.data.csv_safety import neutralise_cell, neutralised, restore_cell
from brainvae.data.dataset import PreparedDataset
from brainvae.data.metadata import MAX_ID_LENGTH, read_metadata
from brainvae.data.population_folder import read_population_folder
from brainvae.errors import DataFileError, DatasetError
from brainvae.training.history import read_history, write_history
from helpers.tiny_scans import SHAPE, prepare, write_scan

FORMULA = '=HYPERLINK("http://evil.example","click")'
COMMAND = "=cmd|' /C calc'!A0"


def _population(root, names=("a", "b", "c", "d")):
    for i, name in enumerate(names):
        write_scan(root / "images" / f"{name}.nii.gz", i)
    return root


# ---- one scan, two rows ---------------------------------------------------------------------
@pytest.mark.parametrize("second", ["images/x.nii.gz", "images/../images/x.nii.gz", "link"])
def test_two_spellings_of_one_file_are_refused_naming_both_rows(tmp_path, second):
    root = _population(tmp_path, ("x", "y"))
    if second == "link":
        (root / "images" / "link.nii.gz").symlink_to(root / "images" / "x.nii.gz")
        second = "images/link.nii.gz"
    csv = root / "meta.csv"
    csv.write_text(
        "subject_id,filename\nsub-0001,./images/x.nii.gz\n"
        f"sub-0002,images/y.nii.gz\nsub-9999,{second}\n"
    )
    with pytest.raises(DataFileError, match="same file") as caught:
        read_metadata(csv)
    message = str(caught.value)
    assert "meta.csv" in message and "line 2: ./images/x.nii.gz" in message
    assert f"line 4: {second}" in message
    assert prepare(root, tmp_path / "ds", "--csv", str(csv)) == 2
    assert not (tmp_path / "ds").exists()


def test_population_folder_refuses_one_scan_listed_twice(tmp_path):
    root = _population(tmp_path, ("x", "y"))
    (root / "subjects.csv").write_text(
        "subject_id,filename\ns1,./images/x.nii.gz\ns2,images/y.nii.gz\ns3,images/x.nii.gz\n"
    )
    with pytest.raises(DataFileError, match=r"subjects\.csv: lines 2 and 4 name the same scan"):
        read_population_folder(root)


def test_population_folder_reads_a_semicolon_latin1_table(tmp_path):
    root = _population(tmp_path, ("x", "y"))
    (root / "subjects.csv").write_bytes(
        "subject_id;filename;diagnosis\ns1;images/x.nii.gz;Sjögren\ns2;images/y.nii.gz;HC\n".encode(
            "latin-1"
        )
    )
    population = read_population_folder(root)
    assert len(population.images) == 2 and sorted(population.images.shape[1:]) == sorted(SHAPE)
    assert population.table[0]["diagnosis"] == "Sjögren"


# ---- ids that are not ids -------------------------------------------------------------------
def test_a_50kb_id_is_refused_fast_naming_its_row(tmp_path):
    root = _population(tmp_path, ("a",))
    rows = [f"s{i},{i}\n" for i in range(5000)]
    rows.insert(10, "x" * 50_000 + ",7\n")  # line 12 of the file (the header is line 1)
    csv = root / "meta.csv"
    csv.write_text("subject_id,age\n" + "".join(rows))
    started = time.perf_counter()
    with pytest.raises(DataFileError, match=rf"longer than {MAX_ID_LENGTH} characters") as caught:
        read_metadata(csv)
    assert time.perf_counter() - started < 3.0
    assert "meta.csv: subject_id longer" in str(caught.value)
    assert "on line 12 (50000 characters)" in str(caught.value)
    assert prepare(root, tmp_path / "ds", "--csv", str(csv), "--allow-unmatched") == 2
    assert not (tmp_path / "ds").exists()


def test_subject_named_na_or_none_is_a_subject_and_empty_is_still_refused(tmp_path):
    root = tmp_path / "src"
    for i, name in enumerate(("NA", "None", "null")):
        write_scan(root / f"{name}.nii.gz", i)
    csv = tmp_path / "meta.csv"
    csv.write_text("subject_id,age\nNA,30\nNone,NA\nnull,32\n")
    table = read_metadata(csv)
    assert list(table["subject_id"]) == ["NA", "None", "null"]
    assert np.isnan(table["age"].iloc[1])  # NA is still missing in a measurement column
    assert prepare(root, tmp_path / "ds", "--csv", str(csv)) == 0
    assert PreparedDataset.open(tmp_path / "ds").subjects() == ["NA", "None", "null"]
    csv.write_text("subject_id,age\nNA,30\n,31\nn/a,32\n")
    with pytest.raises(DataFileError, match=r"empty subject_id on line\(s\) 3, 4"):
        read_metadata(csv)


# ---- separators and encodings ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "separator", "said"),
    [("meta.csv", ";", "semicolon"), ("meta.csv", "\t", "tab"), ("meta.txt", "|", "pipe")],
)
def test_other_separators_are_read_and_reported(tmp_path, capsys, name, separator, said):
    root = _population(tmp_path / "src", ("p1", "p2", "p3"))
    csv = tmp_path / name
    rows = [["subject_id", "filename", "age", "note"]]
    rows += [[f"p{i}", f"images/p{i}.nii.gz", str(30 + i), "a,b"] for i in (1, 2, 3)]
    csv.write_text("".join(separator.join(row) + "\n" for row in rows))
    shutil.copy(csv, root / name)
    assert prepare(root, tmp_path / "ds", "--csv", str(root / name)) == 0
    assert f"read as {said}-separated utf-8" in capsys.readouterr().out
    table = PreparedDataset.open(tmp_path / "ds").metadata.set_index("subject_id")
    assert table.loc["p2", "age"] == 32 and table.loc["p3", "note"] == "a,b"


def test_latin1_table_is_read_and_the_guess_is_said(tmp_path, capsys):
    root = _population(tmp_path / "src", ("p1", "p2"))
    csv = root / "meta.csv"
    csv.write_bytes("subject_id,filename,diagnosis\np1,images/p1.nii.gz,Sjögren\n"
                    "p2,images/p2.nii.gz,Ménière\n".encode("latin-1"))  # fmt: skip
    assert read_metadata(csv).attrs["table_format"].encoding == "latin-1"
    assert prepare(root, tmp_path / "ds", "--csv", str(csv)) == 0
    out = capsys.readouterr().out
    assert "read as comma-separated latin-1" in out
    assert "Warning: the metadata table is not UTF-8" in out
    written = (tmp_path / "ds" / "metadata.csv").read_bytes().decode("utf-8")
    assert "Sjögren" in written and "Ménière" in written


def test_utf8_with_byte_order_mark_finds_its_id_column(tmp_path):
    csv = tmp_path / "meta.csv"
    csv.write_bytes("subject_id;age\ns1;30\ns2;31\n".encode("utf-8-sig"))
    table = read_metadata(csv)
    assert list(table["subject_id"]) == ["s1", "s2"]
    assert table.attrs["table_format"].encoding == "utf-8-sig"


# ---- formulas -------------------------------------------------------------------------------
def test_neutralise_keeps_numbers_and_round_trips_text():
    for value in ("-1.5", "-1,5", "+3", "1e-3", "plain", "", "'quoted"):
        assert neutralise_cell(value) == value
    for value in (FORMULA, COMMAND, "+A1", "-A1+1", "@SUM(A1)", "\t=1", "\r=1", "'=x", "''+y"):
        written = neutralise_cell(value)
        assert written.startswith("'") and restore_cell(written) == value
    table = neutralised(pd.DataFrame({"n": [-1.5, 2.0], "=t": ["-x", "y"]}, index=["=i", "j"]))
    assert table["n"].tolist() == [-1.5, 2.0] and table["'=t"].tolist() == ["'-x", "y"]
    assert table.index.tolist() == ["'=i", "j"]


@pytest.fixture(scope="module")
def formula_dataset(tmp_path_factory):
    """A prepared dataset whose table holds formulas, a negative number and a subject NA."""
    root = tmp_path_factory.mktemp("formulas")
    names = ("NA", "s2", "s3", "s4", "s5", "s6")
    for i, name in enumerate(names):
        write_scan(root / "src" / f"{name}.nii.gz", i)
    table = pd.DataFrame(
        {
            "subject_id": names,
            "diagnosis": [FORMULA, COMMAND, "@SUM(1)", "HC", "MS", "-MS"],
            "score": [-1.5, 2, 3, 4, 5, 6],
        }
    )
    table.to_csv(root / "meta.csv", index=False)
    assert prepare(root / "src", root / "ds", "--csv", str(root / "meta.csv")) == 0
    return root / "ds"


def test_formula_cells_are_neutralised_in_metadata_csv(formula_dataset):
    written = (formula_dataset / "metadata.csv").read_text(encoding="utf-8")
    cells = [cell.strip('"') for line in written.splitlines() for cell in line.split(",")]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "@"))]
    assert "'=HYPERLINK" in written and "'@SUM(1)" in written and "'-MS" in written
    assert "-1.5" in cells  # a number stays a number
    metadata = PreparedDataset.open(formula_dataset).metadata.set_index("subject_id")
    assert metadata.loc["NA", "diagnosis"] == FORMULA  # read back as it was
    assert metadata.loc["s2", "diagnosis"] == COMMAND and metadata.loc["NA", "score"] == -1.5


def test_encode_output_is_neutralised(formula_dataset, tmp_path):
    from brainvae.models import ModelConfig, build_model

    dataset = PreparedDataset.open(formula_dataset)
    config = ModelConfig(
        input_shape=tuple(dataset.scan_shape), latent_dim=2, family="pca",
        likelihood="gaussian",
    )  # fmt: skip
    build_model(config).fit(np.asarray(dataset.images)).save(tmp_path / "run")
    out = tmp_path / "codes.csv"
    assert main(["encode", str(tmp_path / "run"), str(formula_dataset), "--out", str(out)]) == 0
    written = out.read_text(encoding="utf-8")
    assert "'=HYPERLINK" in written and "'=cmd" in written
    codes = pd.read_csv(out, keep_default_na=False)
    assert not codes["diagnosis"].str.startswith(("=", "+", "@")).any()
    assert "NA" in set(codes["subject_id"]) and pd.api.types.is_float_dtype(codes["mu_1"])


# ---- damaged prepared datasets --------------------------------------------------------------
@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepared")
    _population(root / "src", ("a", "b", "c", "d"))
    assert prepare(root / "src", root / "ds") == 0
    return root / "ds"


def _copy(prepared, tmp_path):
    return shutil.copytree(prepared, tmp_path / "ds")


def _refused(folder, name: str, pattern: str) -> None:
    with pytest.raises(DataFileError, match=pattern) as caught:
        PreparedDataset.open(folder)
    assert caught.value.path == folder / name
    assert isinstance(caught.value, DatasetError)  # run folders try their next location


def test_truncated_images_npy_is_refused_naming_it(prepared, tmp_path):
    folder = _copy(prepared, tmp_path)
    images = folder / "images.npy"
    size = images.stat().st_size
    with open(images, "r+b") as handle:
        handle.truncate(size - 100)
    _refused(
        folder, "images.npy", rf"truncated: {size - 100} bytes where its header .* needs {size}"
    )


def test_object_dtype_images_npy_is_refused_naming_it(prepared, tmp_path):
    folder = _copy(prepared, tmp_path)
    stack = np.empty(4, dtype=object)
    stack[:] = [np.zeros(SHAPE)] * 4
    np.save(folder / "images.npy", stack, allow_pickle=True)
    _refused(folder, "images.npy", "holds object values, not numbers")


def test_images_npy_that_is_not_an_array_is_refused(prepared, tmp_path):
    folder = _copy(prepared, tmp_path)
    (folder / "images.npy").write_bytes(b"PK\x03\x04 a zip, not an array")
    _refused(folder, "images.npy", "not a readable .npy array")


@pytest.mark.parametrize("column", ["split", "subject_id"])
def test_metadata_without_a_required_column_is_refused(prepared, tmp_path, column):
    folder = _copy(prepared, tmp_path)
    table = pd.read_csv(folder / "metadata.csv")
    table.drop(columns=column).to_csv(folder / "metadata.csv", index=False)
    _refused(folder, "metadata.csv", rf"missing column\(s\) {column}")


def test_metadata_with_other_rows_or_splits_is_refused(prepared, tmp_path):
    folder = _copy(prepared, tmp_path)
    table = pd.read_csv(folder / "metadata.csv")
    table.iloc[:-1].to_csv(folder / "metadata.csv", index=False)
    _refused(folder, "metadata.csv", "has 3 rows but images.npy holds 4 images")
    table.assign(split=["train", "val", "tset", "train"]).to_csv(
        folder / "metadata.csv", index=False
    )
    _refused(folder, "metadata.csv", r"split not one of train, val, test on line\(s\) 4")
    (folder / "metadata.csv").write_bytes(b"")
    _refused(folder, "metadata.csv", "not a readable table")


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested 100000 levels deep"),
        (b'{"format": "\xff\xfe"}', "is not text"),
        (b"", "is not valid JSON"),
    ],
    ids=["deeply nested", "not UTF-8", "empty"],
)
def test_a_damaged_dataset_json_is_refused_naming_it(prepared, tmp_path, content, pattern):
    """Found by benchmarks/reliability_report.py: a RecursionError and a UnicodeDecodeError
    escaped, and an empty file was 'unreadable dataset description' without its name."""
    folder = _copy(prepared, tmp_path)
    (folder / "dataset.json").write_bytes(content)
    _refused(folder, "dataset.json", pattern)


def test_a_bad_preprocessing_record_names_dataset_json(prepared, tmp_path):
    folder = _copy(prepared, tmp_path)
    description = json.loads((folder / "dataset.json").read_text())
    description["preprocess"]["version"] = 1e-300
    (folder / "dataset.json").write_text(json.dumps(description))
    _refused(folder, "dataset.json", "version must be a positive integer")


def test_encode_names_images_npy_holding_nan_voxels(prepared, tmp_path):
    from brainvae.models import load_model
    from brainvae.usecases.encoding import encode_dataset

    folder = _copy(prepared, tmp_path)
    images = np.load(folder / "images.npy", mmap_mode="r+")
    images[2, 0] = np.nan
    images.flush()
    del images
    run = tmp_path / "run"
    assert main(["train", str(prepared), "--model", "pca", "--latent", "2", "--quiet",
                 "--out", str(run)]) == 0  # fmt: skip
    with pytest.raises(DataFileError, match="scan 2 holds NaN or Inf voxels") as caught:
        encode_dataset(load_model(run), PreparedDataset.open(folder))
    assert caught.value.path == folder / "images.npy"


def test_the_train_command_says_which_file_is_damaged(prepared, tmp_path, capsys):
    folder = _copy(prepared, tmp_path)
    table = pd.read_csv(folder / "metadata.csv")
    table.drop(columns="split").to_csv(folder / "metadata.csv", index=False)
    code = main(["train", str(folder), "--latent", "2", "--epochs", "1", "--device", "cpu",
                 "--quiet", "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "metadata.csv: missing column(s) split" in err and "Traceback" not in err


# ---- history.csv ----------------------------------------------------------------------------
def test_history_reader_refuses_empty_and_binary_files(tmp_path):
    history = tmp_path / "history.csv"
    history.write_bytes(b"")
    with pytest.raises(DataFileError, match="history.csv: is empty"):
        read_history(tmp_path)
    history.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataFileError, match="history.csv: is not a text table"):
        read_history(tmp_path)
    history.write_text("epoch,train_loss\n1,0.5\n2,oops\n")
    with pytest.raises(DataFileError, match="column train_loss holds 'oops' on line 3"):
        read_history(history)
    history.write_text("name,value\na,1\n")
    with pytest.raises(DataFileError, match="missing the epoch column"):
        read_history(history)


def test_history_written_by_a_run_reads_back_as_numbers(tmp_path):
    rows = [{"epoch": e, "step": 4 * e, "train_loss": 1.0 / e, "kl_1": 0.1 * e} for e in (1, 2)]
    write_history(rows, tmp_path)
    table = read_history(tmp_path)
    assert table["epoch"].tolist() == [1, 2] and table["kl_1"].tolist() == [0.1, 0.2]
    assert pd.api.types.is_float_dtype(table["val_loss"])  # empty column: NaN, not text
