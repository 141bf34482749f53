"""One way to write a file or folder all at once (brainvae.atomic), and what a kill leaves.

A write killed between moving the old output aside and moving the new one in used to leave
the output missing and a hidden `.NAME.old-…` folder nobody cleaned; now the next write of
the same output puts the old one back (then decides, as always, whether it may replace it).
The leftovers here are made on the real file system with the owner a killed run would record:
a process id that no longer exists.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from brainvae.atomic import _host, atomic_file, atomic_folder, recover
from brainvae.cli import main
from brainvae.data.io.output_folder import atomic_output_folder
from brainvae.data.split import split_by_subject
from brainvae.errors import DataFileError
from helpers.processes import group_members


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _left(out: Path, kind: str, pid: int) -> Path:
    return out.parent / f".{out.name}.{kind}-0123abcd-{pid}@{_host()}"


def test_old_output_moved_aside_by_a_killed_swap_is_put_back(tmp_path, dead_pid):
    out = tmp_path / "results"
    aside = _left(out, "old", dead_pid)
    aside.mkdir()
    (aside / "a.csv").write_text("old\n")
    built = _left(out, "partial", dead_pid)
    built.mkdir()
    (built / "a.csv").write_text("new, complete\n")
    with pytest.raises(DataFileError, match="already exists"):
        with atomic_output_folder(out, overwrite=False):
            pass
    assert (out / "a.csv").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_leftovers_of_live_runs_other_hosts_and_other_outputs_are_kept(tmp_path, dead_pid):
    out = tmp_path / "ds"
    out.mkdir()
    stale_old = _left(out, "old", dead_pid)
    stale_old.mkdir()
    live = _left(out, "partial", os.getpid())
    live.mkdir()
    other_host = tmp_path / f".ds.partial-0123abcd-{dead_pid}@another-host"
    other_host.mkdir()
    longer_name = tmp_path / f".ds.x.partial-0123abcd-{dead_pid}@{_host()}"
    longer_name.mkdir()
    assert recover(out) == [stale_old]
    assert live.is_dir() and other_host.is_dir() and longer_name.is_dir() and out.is_dir()


def test_folder_swap_replaces_a_file_or_folder_and_cleans_up_on_failure(tmp_path):
    out = tmp_path / "model"
    out.write_text("a file where the folder goes")
    with atomic_folder(out) as folder:
        (folder / "config.json").write_text("{}")
    assert (out / "config.json").is_file()
    with pytest.raises(RuntimeError), atomic_folder(out) as folder:
        (folder / "config.json").write_text("half")
        raise RuntimeError("stopped")
    assert (out / "config.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_temporary_file_of_a_killed_write_goes_with_the_next_write(tmp_path, dead_pid):
    path = tmp_path / "run.json"
    stale = _left(path, "partial", dead_pid)
    stale.write_text('{"half')
    live = _left(path, "partial", os.getpid())
    live.write_text('{"being written')
    with atomic_file(path) as temporary:
        temporary.write_text("{}\n")
    assert path.read_text() == "{}\n"
    assert not stale.exists() and live.exists()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_phantom_workers_die_with_a_killed_parent(tmp_path):
    """`brainvae phantom --workers 2` renders in a fork pool; SIGKILL the command while it
    renders: within seconds nothing of its process group is left and the pipe is closed."""
    child = subprocess.Popen(
        [sys.executable, "-m", "brainvae", "phantom", "--dims", "3", "--n", "400"]
        + ["--workers", "2", "--out", str(tmp_path / "pop")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    group = child.pid
    try:
        deadline = time.monotonic() + 60
        while len(group_members(group)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(group_members(group)) >= 3, "the two workers never started"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + 10
        while group_members(group) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert group_members(group) == []
        assert child.stdout.read() == b""
    finally:
        for pid in group_members(group):
            os.kill(pid, signal.SIGKILL)
    assert not (tmp_path / "pop").exists()


def test_phantom_overwrite_keeps_the_users_files_in_one_swap(tmp_path):
    out = tmp_path / "pop"
    args = ["phantom", "--dims", "2", "--n", "3", "--workers", "1", "--out", str(out)]
    assert main([*args, "--seed", "1"]) == 0
    (out / "notes.txt").write_text("mine")
    (out / "images" / "README").write_text("also mine")
    (out / "mine").mkdir()
    before = (out / "subjects.csv").read_text()
    assert main([*args, "--seed", "2", "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "images" / "README").read_text() == "also mine"
    assert (out / "mine").is_dir()
    assert (out / "subjects.csv").read_text() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pop"]


def test_long_subject_ids_are_split_without_a_fixed_width_copy():
    """numpy's fixed-width strings cost rows x longest id x 4 bytes (1,000 ids of 20,000
    characters: 80 MB); the split works on the Python strings instead."""
    ids = [f"{i % 400:04d}" + "x" * (20_000 if i == 0 else 10) for i in range(1_000)]
    tracemalloc.start()
    try:
        splits = split_by_subject(ids, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak
    by_subject: dict[str, set] = {}
    for subject, split in zip(ids, splits, strict=True):
        by_subject.setdefault(subject, set()).add(split)
    assert all(len(found) == 1 for found in by_subject.values())
    assert set(splits) == {"train", "val", "test"}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0, -5, True, "100"])
def test_memory_budget_of_the_python_api_is_validated_before_any_work(tmp_path, bad):
    from brainvae.data.prepare import prepare_dataset

    (tmp_path / "images").mkdir()
    np.save(tmp_path / "images" / "a.npy", np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="max_bytes"):
        next(prepare_dataset(tmp_path / "images", tmp_path / "ds", max_bytes=bad))
    assert not (tmp_path / "ds").exists()
