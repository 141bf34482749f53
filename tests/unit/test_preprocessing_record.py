"""One default recipe, a model's record of its training data, and `brainvae encode` using both."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainvae.cli import main
from brainvae.data.dataset import PreparedDataset
from brainvae.data.fingerprint import (
    NO_RECORD,
    TRAINING_DATA_KEY,
    check_same_preprocessing,
    dataset_fingerprint,
    preprocessing_warning,
)
from brainvae.data.prepare import prepare
from brainvae.data.preprocessing.config import PREPROCESS_RECIPES, PreprocessConfig
from brainvae.models import ModelConfig, build_model

SHAPE = (24, 20)


def _raw_scans(folder, factor: float = 1.0, n: int = 6) -> None:
    """Phantom slices with MRI-like raw intensities (hundreds), times `factor`."""
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for i in range(n):
        rng = np.random.default_rng(i)
        brain = ((yy - 12) ** 2 / 81 + (xx - 10) ** 2 / 64) < 1
        image = brain * (400 + 40 * i) + rng.normal(0, 20, SHAPE)
        np.save(folder / f"sub-{i:02d}.npy", (factor * image).astype(np.float32))
    pd.DataFrame(
        {
            "subject_id": [f"sub-{i:02d}" for i in range(n)],
            "age": [30 + i for i in range(n)],
            "diagnosis": ["MS" if i % 2 else "HC" for i in range(n)],
        }
    ).to_csv(folder / "meta.csv", index=False)


def _model_folder(folder, dataset: PreparedDataset | None) -> str:
    """An (untrained) model saved as training saves one; with a dataset, it records that
    dataset the way the trainer does (preprocessing + the training-data fingerprint)."""
    model = build_model(ModelConfig(input_shape=SHAPE, latent_dim=2, architecture="small"))
    training = {}
    if dataset is not None:
        model.config.preprocessing = dataset.config.to_dict()
        training = {TRAINING_DATA_KEY: dataset_fingerprint(dataset)}
    model.save(folder, training=training)
    return str(folder)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """(trained-on dataset: default recipe, same scans raw x1000 with identity, other folder)."""
    root = tmp_path_factory.mktemp("record")
    _raw_scans(root / "raw")
    _raw_scans(root / "raw1000", factor=1000.0)
    default = prepare(root / "raw", root / "default", csv=root / "raw" / "meta.csv", workers=1)
    identity = prepare(
        root / "raw1000",
        root / "identity",
        PreprocessConfig.identity(),
        csv=root / "raw1000" / "meta.csv",
        workers=1,
    )
    return default, identity, root


def test_one_default_recipe_for_the_library_and_the_cli():
    from brainvae.cli import build_parser
    from brainvae.cli.prepare import build_config

    default = PreprocessConfig.default()
    assert default.clip_percentile == 99.5 and default.scale
    assert PREPROCESS_RECIPES["default"]() == default
    args = build_parser().parse_args(["prepare", "src", "--out", "ds"])
    assert build_config(args) == default


def test_prepare_help_shows_the_default(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "without --preset or --config: default (clip at the 99.5th percentile" in help_text
    assert "scale to [0, 1])" in help_text


def test_fingerprint_records_recipe_and_intensity_range(prepared):
    default, identity, _ = prepared
    record = dataset_fingerprint(default)
    assert record["preprocess"] == default.config.to_dict()
    assert 0.9 <= record["intensity"]["p99_5"] <= 1.0 and record["intensity"]["p0_5"] >= 0
    assert dataset_fingerprint(identity)["intensity"]["p99_5"] > 1e5


def test_same_preparation_raises_no_warning(prepared, tmp_path):
    from brainvae.models import load_model

    default, _, _ = prepared
    model = load_model(_model_folder(tmp_path / "run", default))
    assert check_same_preprocessing(model.config, default) == []
    assert preprocessing_warning(model.config, default.images, default.config) is None


def test_encode_warns_naming_each_difference(prepared, tmp_path, capsys):
    default, identity, _ = prepared
    run = _model_folder(tmp_path / "run", default)
    out = tmp_path / "codes.csv"
    assert main(["encode", run, str(identity.path), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert (
        "brainvae encode: Warning: preprocessing clip_percentile is none here but 99.5 in the "
        "model's training data" in err
    )
    assert "preprocessing scale is false here but true in the model's training data" in err
    assert "intensities: the 99.5th percentile is" in err and "in the model's training data" in err
    assert "split" not in err  # split settings do not change the images
    assert out.is_file()


def test_model_without_a_record_says_it_cannot_check(prepared, tmp_path, capsys):
    default, identity, _ = prepared
    run = _model_folder(tmp_path / "run", None)
    out = tmp_path / "codes.csv"
    assert main(["encode", run, str(default.path), "--out", str(out)]) == 0
    assert f"brainvae encode: Note: {NO_RECORD}" in capsys.readouterr().err
    # It still falls back to the range its Bernoulli likelihood expects: [0, 1].
    assert main(["encode", run, str(identity.path), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert NO_RECORD in err
    assert "far outside the [0, 1] this model expects" in err


def test_model_with_recipe_but_no_range_compares_with_the_recipe(prepared, tmp_path):
    from brainvae.models import load_model

    default, identity, _ = prepared
    model = build_model(
        ModelConfig(input_shape=SHAPE, latent_dim=2, architecture="small", likelihood="gaussian")
    )
    model.config.preprocessing = default.config.to_dict()  # saved before the fingerprint
    model.save(tmp_path / "run")
    notes = check_same_preprocessing(load_model(tmp_path / "run").config, identity)
    assert NO_RECORD not in notes
    assert any("scale is false here but true" in n for n in notes)
    assert any("far outside the [0, 1] this model expects" in n for n in notes)


def test_encode_carries_every_metadata_column(prepared, tmp_path):
    default, _, _ = prepared
    run = _model_folder(tmp_path / "run", default)
    out = tmp_path / "codes.csv"
    assert main(["encode", run, str(default.path), "--out", str(out)]) == 0
    table = pd.read_csv(out, dtype={"subject_id": str})
    assert list(table.columns[:1]) == ["subject_id"]
    assert {"age", "diagnosis", "split", "source"} <= set(table.columns)
    assert list(table.columns[-4:]) == ["mu_1", "mu_2", "logvar_1", "logvar_2"]
    metadata = default.metadata
    assert list(table["age"]) == list(metadata["age"])
    assert list(table["diagnosis"]) == list(metadata["diagnosis"])


def test_encode_columns_put_session_second():
    from brainvae.usecases.encoding import metadata_columns

    metadata = pd.DataFrame(
        {"subject_id": ["a"], "age": [3], "session": ["1"], "split": ["train"], "site": ["X"]}
    )
    table = metadata_columns(metadata, ["mu_1", "logvar_1"])
    assert list(table.columns) == ["subject_id", "session", "age", "split", "site"]


def test_encode_refuses_metadata_columns_named_like_codes(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        np.save(src / f"sub-{i}.npy", np.random.default_rng(i).random(SHAPE).astype(np.float32))
    pd.DataFrame({"subject_id": [f"sub-{i}" for i in range(3)], "mu_score": [1, 2, 3]}).to_csv(
        src / "meta.csv", index=False
    )
    dataset = prepare(src, tmp_path / "ds", csv=src / "meta.csv", workers=1)
    run = _model_folder(tmp_path / "run", dataset)
    assert main(["encode", run, str(dataset.path), "--out", str(tmp_path / "c.csv")]) == 2
    err = capsys.readouterr().err
    assert "mu_score" in err and "named like the codes" in err


def test_status_line_for_a_population_given_by_its_dataset_folder(prepared, tmp_path):
    from brainvae.models import load_model

    default, identity, _ = prepared
    recorded = load_model(_model_folder(tmp_path / "run", default)).config
    line = preprocessing_warning(recorded, np.asarray(identity.images), identity.path)
    assert line.startswith("Warning: data differ from the model's training data: ")
    assert "clip_percentile is none here but 99.5" in line and "scale is false" in line
    # Without the recipe (a population opened from files) the range alone still warns.
    line = preprocessing_warning(recorded, np.asarray(identity.images))
    assert "scale is false" not in line and "99.5th percentile" in line
    unrecorded = load_model(_model_folder(tmp_path / "old", None)).config
    assert preprocessing_warning(unrecorded, np.asarray(default.images)) == f"Note: {NO_RECORD}."


def test_recipe_saved_before_a_field_existed_is_compared_with_its_default():
    from brainvae.data.fingerprint import recipe_differences

    old = PreprocessConfig.identity().to_dict()
    del old["clip_region"]  # the shipped models' recipes predate clip_region
    assert recipe_differences(old, PreprocessConfig.identity().to_dict()) == []
    notes = recipe_differences(old, PreprocessConfig.identity(clip_region="brain").to_dict())
    assert notes == [
        "preprocessing clip_region is brain here but image in the model's training data"
    ]


def test_a_check_of_the_files_dimensions_is_not_a_preprocessing_difference():
    """The sample population loaded in the dock checks expected_ndim; the shipped model's
    recipe did not: the images are the same, so no warning."""
    from brainvae.data.fingerprint import recipe_differences

    trained = PreprocessConfig.identity().to_dict()
    loaded = PreprocessConfig.identity().with_changes(expected_ndim=2).to_dict()
    assert recipe_differences(trained, loaded) == []
    scaled = PreprocessConfig.identity().with_changes(expected_ndim=2, scale=True).to_dict()
    assert recipe_differences(trained, scaled) != []
