"""No room to write (issue 15): a clean one-line error naming the file, exit code 2, nothing
half-written left behind.

A full disk is simulated for real, without root: the child process runs the `brainvae`
command under RLIMIT_FSIZE (ulimit -f), so every write past that size fails with EFBIG, the
same way a write fails with ENOSPC on a full disk. SIGXFSZ is ignored so the write returns
the error instead of killing the process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainvae.cli import main
from brainvae.data.prepare import check_free_space
from brainvae.errors import DiskFullError, free_bytes
from helpers.blob_population import write_blob_dataset

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE is Linux-tested")

CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from brainvae.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)
FAST = ["--arch", "small", "--batch", "4", "--lr", "1e-3", "--device", "cpu", "--quiet"]


def run_limited(max_file_bytes: int, *args: str) -> subprocess.CompletedProcess:
    """`brainvae ARGS` in a child process that cannot write a file past max_file_bytes."""
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(max_file_bytes), *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=environment,
    )


def assert_clean_failure(result: subprocess.CompletedProcess, command: str, named: str) -> None:
    """Exit 2, one line on stderr naming the file and saying there was no room, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    error_lines = [line for line in lines if line.startswith(f"brainvae {command}: error:")]
    assert len(error_lines) == 1, result.stderr
    assert named in error_lines[0] and "could not be written" in error_lines[0], error_lines[0]


def hidden_leftovers(folder) -> list[str]:
    """Temporary or partial entries (hidden names, .tmp, .partial) anywhere under `folder`."""
    found = []
    for parent, folders, files in os.walk(folder):
        for name in folders + files:
            if name.startswith(".") or ".tmp" in name or ".partial" in name:
                found.append(os.path.join(parent, name))
    return found


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """12 blob images of 24 x 20 (6 subjects)."""
    return write_blob_dataset(
        tmp_path_factory.mktemp("full_disk"), subjects=6, seed=3, split_fractions=(0.67, 0.17, 0.16)
    )


def _scans(folder, count: int, shape=(32, 32, 32)) -> None:
    """`count` real NIfTI scans and a subjects table."""
    (folder / "images").mkdir(parents=True)
    rows = []
    for i in range(count):
        name = f"images/sub-{i:02d}.nii.gz"
        data = np.random.default_rng(i).random(shape).astype(np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(folder / name))
        rows.append({"subject_id": f"sub-{i:02d}", "filename": name})
    pd.DataFrame(rows).to_csv(folder / "subjects.csv", index=False)


def test_prepare_on_a_full_disk_exits_cleanly_and_leaves_nothing(tmp_path):
    source = tmp_path / "pop"
    _scans(source, count=6)  # images.npy: 6 x 128 KiB = 768 KiB
    out = tmp_path / "result" / "ds"
    args = ["prepare", str(source), "--csv", str(source / "subjects.csv"), "--preset", "identity"]
    result = run_limited(300_000, *args, "--workers", "1", "--quiet", "--out", str(out))
    assert_clean_failure(result, "prepare", str(out / "images.npy"))
    assert not out.exists()
    assert list((tmp_path / "result").iterdir()) == []  # no hidden partial folder either
    # the same command with room to write succeeds: the limit, not the data, was the cause
    assert main([*args, "--workers", "1", "--quiet", "--out", str(out)]) == 0
    assert np.load(out / "images.npy", mmap_mode="r").shape == (6, 32, 32, 32)


@pytest.mark.slow
def test_phantom_on_a_full_disk_names_the_scan_it_could_not_write(tmp_path):
    """gzip's own error names no file; found by benchmarks/reliability_report.py."""
    out = tmp_path / "pop"
    result = run_limited(1024, "phantom", "--dims", "2", "--n", "2", "--workers", "1",
                         "--out", str(out))  # fmt: skip
    assert_clean_failure(result, "phantom", str(out))
    assert "(unknown file)" not in result.stderr and ".nii.gz" in result.stderr
    assert not out.exists() and hidden_leftovers(tmp_path) == []


def test_prepare_refuses_up_front_when_the_disk_has_less_free_than_needed(tmp_path):
    free = free_bytes(tmp_path)
    assert free is not None
    with pytest.raises(DiskFullError) as caught:
        check_free_space(tmp_path, free + 10**15)
    message = str(caught.value)
    assert str(tmp_path) in message
    assert str(free + 10**15) in message and "free there" in message
    assert caught.value.needed == free + 10**15 and caught.value.free <= free + 2**30
    check_free_space(tmp_path, 1)  # one byte fits


def test_encode_on_a_full_disk_leaves_no_temporary_csv(dataset_dir, tmp_path):
    run = tmp_path / "run"
    assert (
        main(
            ["train", str(dataset_dir), "--latent", "2", "--epochs", "1", *FAST, "--out", str(run)]
        )
        == 0
    )
    out = tmp_path / "latents" / "codes.lat.csv"
    result = run_limited(
        300, "encode", str(run), str(dataset_dir), "--device", "cpu", "--out", str(out)
    )
    assert_clean_failure(result, "encode", str(out))
    assert not out.exists() and hidden_leftovers(out.parent) == []


@pytest.mark.slow
def test_train_on_a_full_disk_exits_cleanly_without_temporary_files(dataset_dir, tmp_path):
    run = tmp_path / "run"
    args = ["train", str(dataset_dir), "--latent", "2", "--epochs", "1", *FAST, "--out", str(run)]
    result = run_limited(100_000, *args)  # room for run.json, not for the weights
    assert_clean_failure(result, "train", str(run))
    assert "safetensors" in result.stderr
    assert hidden_leftovers(tmp_path) == []
    assert not (run / "weights.safetensors").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_real_enospc_becomes_disk_full_error_and_the_temporary_file_goes(tmp_path):
    """/dev/full answers every write with ENOSPC, as a full disk does."""
    import errno

    from brainvae.atomic import atomic_file

    target = tmp_path / "table.csv"
    with pytest.raises(DiskFullError) as caught:
        with atomic_file(target) as temporary:
            temporary.write_text("partial")
            with open("/dev/full", "w") as full:
                full.write("x" * 10_000)
                full.flush()
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, OSError)
    assert str(target) in str(caught.value) and "no space left" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_receptive_report_on_a_full_disk_leaves_no_temporary_folder(tmp_path):
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.io.nifti_writing import write_nifti
    from helpers.phantom_datasets import prepared_phantom

    dataset_dir, run_dir, labels = prepared_phantom(tmp_path, (32, 40), 40, latent_dim=4)
    dataset = PreparedDataset.open(dataset_dir)
    rois = write_nifti(
        tmp_path / "rois.nii.gz", labels, dataset.affine, squeezed_axes=dataset.squeezed_axes
    )
    out = tmp_path / "reports" / "receptive"
    args = ["receptive", str(run_dir), str(dataset_dir), "--rois", str(rois), "--quiet"]
    result = run_limited(2_000, *args, "--out", str(out))  # impact_per_voxel.csv is larger
    assert_clean_failure(result, "receptive", str(out))
    assert not out.exists() and hidden_leftovers(out.parent) == []
