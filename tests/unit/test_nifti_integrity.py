"""Damaged NIfTI files fail with a DataFileError naming the file; nothing wrong is displayed.

Covers the gzip stream checked to its end (CRC-32, ISIZE, truncation), header sanity
(vox_offset, dims, geometry), gzip bombs and memory budgets refused before any voxel is
allocated, --max-mb validation, 4D files read one volume at a time, and a small run of
the fuzz corpus of benchmarks/fuzz_nifti.py with no uncaught exception.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainvae.data.io import read_nifti
from brainvae.data.io.nifti_integrity import available_memory_bytes, default_memory_budget
from brainvae.data.prepare import prepare
from brainvae.data.preprocessing import PreprocessConfig, preprocess_volume
from brainvae.errors import DataFileError, MemoryBudgetError
from brainvae.napari._reader import get_reader

FUZZ_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_nifti.py"
AFFINE = np.diag([1.0, 1.0, 1.0, 1.0])


def _fuzz_module():
    """benchmarks/fuzz_nifti.py as a module: the tests use the script's own mutant generator."""
    spec = importlib.util.spec_from_file_location("fuzz_nifti", FUZZ_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_nifti", module)
    spec.loader.exec_module(module)
    return module


fuzz = _fuzz_module()


def _save(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def _random_volume(seed: int = 0, shape=(20, 20, 20)) -> np.ndarray:
    # Random floats do not compress: deflate stores them, so a changed byte of the stream
    # is a changed byte of a voxel, exactly what a reader that stops early cannot see.
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _damage(path: Path, kind: str) -> Path:
    """Damage a .nii.gz in place: a flipped data byte, a 1-byte cut, a bad CRC or ISIZE."""
    raw = bytearray(path.read_bytes())
    if kind == "data byte":
        raw[len(raw) // 2] ^= 0x01
    elif kind == "truncated":
        raw = raw[:-1]
    elif kind == "crc":
        raw[-8] ^= 0xFF
    elif kind == "isize":
        raw[-4] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def _read_napari(path: Path):
    return get_reader(str(path))(str(path))


def _prepare_folder(folder: Path, out: Path, **config):
    return prepare(folder, out, PreprocessConfig(**config), workers=1)


# ---------------------------------------------------------------- gzip stream to its end

GZIP_DAMAGE = {
    "data byte": "damaged: the gzip checksum",
    "truncated": "truncated: the compressed stream ends",
    "crc": "damaged: the gzip checksum",
    "isize": "length field \\(ISIZE\\)",
}


@pytest.mark.parametrize("kind", list(GZIP_DAMAGE))
def test_damaged_gzip_refused_by_reader_and_napari(tmp_path, kind):
    path = _damage(
        _save(tmp_path / f"scan_{kind.replace(' ', '_')}.nii.gz", _random_volume()), kind
    )
    for read in (read_nifti, _read_napari):
        with pytest.raises(DataFileError, match=GZIP_DAMAGE[kind]) as info:
            read(path)
        assert path.name in str(info.value)
        assert info.value.path == path


@pytest.mark.parametrize("kind", list(GZIP_DAMAGE))
def test_damaged_gzip_refused_by_prepare(tmp_path, kind):
    source = tmp_path / "src"
    _save(source / "good.nii.gz", _random_volume(1))
    bad = _damage(_save(source / "bad.nii.gz", _random_volume(2)), kind)
    with pytest.raises(DataFileError, match=GZIP_DAMAGE[kind]) as info:
        _prepare_folder(source, tmp_path / "ds")
    assert bad.name in str(info.value)
    assert not (tmp_path / "ds").exists()


def test_flipped_byte_would_have_changed_voxels(tmp_path):
    # The damage the tests above catch is real: the stream still inflates, to other voxels.
    import gzip
    import zlib

    path = _damage(_save(tmp_path / "scan.nii.gz", _random_volume()), "data byte")
    inflated = zlib.decompressobj(31).decompress(path.read_bytes()[:-8])  # trailer unchecked
    original = gzip.decompress(_save(tmp_path / "again.nii.gz", _random_volume()).read_bytes())
    assert len(inflated) == len(original) and inflated != original


def test_intact_gzip_with_zero_padding_still_reads(tmp_path):
    path = _save(tmp_path / "padded.nii.gz", _random_volume())
    path.write_bytes(path.read_bytes() + bytes(32))  # tape-style padding is legal gzip
    assert read_nifti(path).data.shape == (20, 20, 20)


# ---------------------------------------------------------------- header sanity


def _header_patched(tmp_path: Path, name: str, fmt: str, offset: int, *values) -> Path:
    path = _save(tmp_path / "ok.nii", _random_volume(shape=(6, 7, 8)), np.diag([2.0, 2, 2, 1]))
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, offset, *values)
    (tmp_path / name).write_bytes(bytes(raw))
    return tmp_path / name


@pytest.mark.parametrize(
    ("name", "fmt", "offset", "values", "field"),
    [
        ("vox0.nii", "<f", 108, (0.0,), "vox_offset"),
        ("sform_huge.nii", "<f", 280, (1e38,), "sform"),
        ("sform_far.nii", "<f", 292, (1e38,), "sform"),
        ("sform_nan.nii", "<f", 300, (float("nan"),), "sform"),
        ("neg_dim.nii", "<h", 44, (-7,), "dim"),
    ],
)
def test_header_damage_refused_naming_the_field(tmp_path, name, fmt, offset, values, field):
    path = _header_patched(tmp_path, name, fmt, offset, *values)
    for read in (read_nifti, _read_napari):
        with pytest.raises(DataFileError, match=f"{name}: header field {field}"):
            read(path)
    source = tmp_path / "src"
    source.mkdir()
    (source / name).write_bytes(path.read_bytes())
    with pytest.raises(DataFileError, match=f"{name}: header field {field}"):
        _prepare_folder(source, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_sform_1e38_never_reaches_dataset_json(tmp_path):
    path = _header_patched(tmp_path, "huge.nii", "<f", 280, 1e38)
    source = tmp_path / "src"
    source.mkdir()
    (source / path.name).write_bytes(path.read_bytes())
    _save(source / "fine.nii", _random_volume(3, shape=(6, 7, 8)), np.diag([2.0, 2, 2, 1]))
    dataset = prepare(source, tmp_path / "ds", PreprocessConfig(), workers=1, skip_bad=True)
    assert [Path(s["file"]).name for s in dataset.report["skipped"]] == ["huge.nii"]
    assert "NaN" not in (tmp_path / "ds" / "dataset.json").read_text()


# ---------------------------------------------------------------- bombs and budgets


def _peak_while(action) -> tuple[BaseException | None, float]:
    """(error raised, peak traced allocation MiB) while running ``action``."""
    tracemalloc.start()
    error = None
    try:
        action()
    except BaseException as err:  # noqa: BLE001 - the test inspects it
        error = err
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return error, peak / 2**20


def test_gzip_bomb_refused_before_allocating(tmp_path):
    path = tmp_path / "bomb.nii.gz"
    path.write_bytes(fuzz.gzip_bomb(claimed_shape=(2000, 2000, 2000), inflated_mb=4))
    assert path.stat().st_size < 100_000  # claims 30 GB of float32
    for read in (read_nifti, _read_napari):
        error, peak_mb = _peak_while(lambda read=read: read(path))
        assert isinstance(error, DataFileError) and "bomb.nii.gz" in str(error)
        assert "cannot hold that much" in str(error)
        assert peak_mb < 200


def test_consistent_bomb_refused_by_budget_before_inflating(tmp_path):
    # The header tells the truth (64 MiB of zeros in a 65 KB file): only a budget stops it.
    path = tmp_path / "zeros.nii.gz"
    path.write_bytes(fuzz.gzip_bomb(claimed_shape=(256, 256, 256), inflated_mb=64))
    error, peak_mb = _peak_while(lambda: read_nifti(path, max_bytes=16 * 2**20))
    assert isinstance(error, MemoryBudgetError) and "zeros.nii.gz" in str(error)
    assert peak_mb < 8  # nothing was inflated
    assert read_nifti(path, max_bytes=64 * 2**20).data.shape == (256, 256, 256)


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="Linux memory figures")
def test_default_budget_is_half_the_available_memory(tmp_path):
    available = available_memory_bytes()
    assert available is not None
    assert abs(default_memory_budget() - available / 2) < 0.1 * available  # memory moves
    # A sparse .nii whose uint8 voxels would need twice the budget as float32: refused
    # by default (napari never passes a budget), before a byte is read.
    voxels = default_memory_budget() // 2
    side = int(np.ceil(voxels ** (1 / 3)))
    header = nib.Nifti1Header()
    header.set_data_shape((side, side, side))
    header.set_data_dtype(np.uint8)
    header.set_sform(AFFINE, code=1)
    header["vox_offset"] = 352
    path = tmp_path / "huge.nii"
    with open(path, "wb") as handle:
        handle.write(header.binaryblock + bytes(4))
        handle.truncate(352 + side**3)  # sparse: no disk used
    for read in (read_nifti, _read_napari):
        error, peak_mb = _peak_while(lambda read=read: read(path))
        assert isinstance(error, MemoryBudgetError), error
        assert "huge.nii" in str(error) and "half the memory available" in str(error)
        assert peak_mb < 50


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-5", "lots"])
def test_cli_refuses_bad_max_mb(tmp_path, capsys, value):
    from brainvae.cli import main

    _save(tmp_path / "src" / "a.nii.gz", _random_volume())
    with pytest.raises(SystemExit) as info:
        main(["prepare", str(tmp_path / "src"), "--out", str(tmp_path / "ds"), f"--max-mb={value}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--max-mb" in err and ("above 0" in err or "a number of MiB" in err)
    assert not (tmp_path / "ds").exists()


def test_cli_accepts_a_fractional_max_mb(tmp_path, capsys):
    from brainvae.cli import main

    _save(tmp_path / "src" / "a.nii.gz", _random_volume())
    args = ["prepare", str(tmp_path / "src"), "--out", str(tmp_path / "ds"), "--quiet"]
    assert main([*args, "--max-mb", "0.01"]) == 2  # 20^3 float32 is 31 KiB > 10 KiB
    assert "over the memory budget" in capsys.readouterr().err
    assert main([*args, "--max-mb", "1.5"]) == 0


# ---------------------------------------------------------------- 4D: one volume


def _series(shape=(64, 64, 64, 8)) -> np.ndarray:
    """Volume k holds 1000 k plus a ramp along axis k mod 3 (compresses fast; even after
    intensity normalisation neighbouring volumes differ)."""
    ramps = np.indices(shape[:3]).astype(np.float32)
    return np.stack([ramps[k % 3] + 1000 * k for k in range(shape[3])], axis=-1)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_4d_reads_only_the_chosen_volume(tmp_path, suffix):
    path = _save(tmp_path / f"run{suffix}", _series(), np.diag([2.0, 2, 2, 1]))
    whole = read_nifti(path)
    assert whole.is_4d and whole.data.shape[0] == 8
    error, peak_mb = _peak_while(lambda: read_nifti(path, volume_index=5))
    assert error is None
    one = read_nifti(path, volume_index=5)
    assert not one.is_4d and one.data.shape == whole.data.shape[1:]
    np.testing.assert_array_equal(one.data, whole.data[5])
    np.testing.assert_array_equal(one.affine, whole.affine)
    assert one.header["volume_index"] == 5
    volume_mb = whole.data[0].nbytes / 2**20
    # Two copies of one volume and a 1 MiB decompression chunk, far below the 8 volumes.
    assert peak_mb < 3 * volume_mb + 1.5 < whole.data.nbytes / 2**20
    with pytest.raises(DataFileError, match=r"run.*has 8 volumes; volume_index 8 is out of range"):
        read_nifti(path, volume_index=8)


def test_4d_damage_after_the_chosen_volume_is_still_caught(tmp_path):
    path = _damage(_save(tmp_path / "run.nii.gz", _series()), "crc")
    with pytest.raises(DataFileError, match="run.nii.gz: damaged: the gzip checksum"):
        read_nifti(path, volume_index=0)


def test_prepare_uses_the_chosen_volume(tmp_path):
    source = tmp_path / "src"
    _save(source / "run.nii.gz", _series(), np.diag([2.0, 2, 2, 1]))
    config = PreprocessConfig(volume_index=3)
    dataset = prepare(source, tmp_path / "ds", config, workers=1)
    assert len(dataset) == 1
    # The same sample as preprocessing the whole 4D file and picking volume 3 there.
    whole = preprocess_volume(read_nifti(source / "run.nii.gz"), config)
    np.testing.assert_allclose(dataset.images[0], whole.samples[0], rtol=1e-6)
    other = preprocess_volume(read_nifti(source / "run.nii.gz", volume_index=2), config)
    assert not np.allclose(dataset.images[0], other.samples[0])


# ---------------------------------------------------------------- a small fuzz run


def test_fuzz_corpus_has_no_uncaught_exception(tmp_path):
    corpus = fuzz.mutants(seed=0, flips=4, bomb_mb=1)
    rng = np.random.default_rng(0)
    chosen = [corpus[i] for i in sorted(rng.choice(len(corpus), size=30, replace=False))]
    folder = tmp_path / "mutants"
    folder.mkdir()
    bad = []
    for name, mutant, data in chosen:
        (folder / name).write_bytes(data)
        for reader in fuzz.READERS:
            outcome, detail = fuzz.read_outcome(reader, folder / name, tmp_path / "work")
            wrong = (outcome == "valid" and mutant.must_refuse is True) or (
                outcome != "valid" and mutant.must_refuse is False
            )
            if outcome not in ("valid", "clean") or wrong:
                bad.append(f"{reader} {name} ({mutant.note}): {outcome}: {detail}")
    assert not bad, "\n".join(bad)
    kinds = {mutant.kind for _, mutant, _ in chosen}
    assert len(kinds) >= 10  # the sample spans the corpus, not one family
