"""Nothing is left behind when a brainvae command is killed (issue 15, point 5).

A killed `prepare` used to leave its two workers and multiprocessing's resource tracker
running forever (holding the caller's pipes open) and its hidden `.partial-*` folder on disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers.processes import group_members

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

# Prepares a dataset with two workers and stops mid-way, pool alive, until it is killed.
PAUSED_PREPARE = """\
import sys, time
from brainvae.data.prepare import prepare_dataset
from brainvae.data.preprocessing import PreprocessConfig

for progress in prepare_dataset("images", "ds", PreprocessConfig.identity(), workers=2):
    if progress.stage == "preprocess" and progress.done >= 1:
        print("workers running", flush=True)
        time.sleep(120)
"""


def _write_images(folder: Path, count: int) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        np.save(folder / f"sub-{i:02d}_ses-1.npy", rng.random((8, 10), dtype=np.float32))


def _start_paused_prepare(tmp_path: Path) -> subprocess.Popen:
    """The paused prepare in its own process group, once its workers exist."""
    _write_images(tmp_path / "images", 8)
    (tmp_path / "paused.py").write_text(PAUSED_PREPARE, encoding="utf-8")
    child = subprocess.Popen(
        [sys.executable, "paused.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    line = child.stdout.readline()
    assert line == b"workers running\n", child.stderr.read()[-3000:]
    return child


def test_workers_and_resource_tracker_die_with_a_killed_parent(tmp_path: Path) -> None:
    """SIGKILL the parent mid-preprocess: within seconds no process of its group is left,
    and the caller's pipe reaches end-of-file (no orphan holds it open)."""
    child = _start_paused_prepare(tmp_path)
    group = child.pid
    try:
        before = group_members(group)
        assert len(before) >= 3, before  # parent + two workers (+ resource tracker)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + 10
        while group_members(group) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert group_members(group) == []
        assert child.stdout.read() == b""  # EOF: nobody holds the pipe any more
    finally:
        for pid in group_members(group):
            os.kill(pid, signal.SIGKILL)


def _prepare_cli(cwd: Path, out: str) -> subprocess.CompletedProcess:
    """`brainvae prepare images --out OUT --workers 1 --quiet` in a fresh interpreter."""
    code = (
        "import sys; from brainvae.cli import main; "
        f"sys.exit(main(['prepare', 'images', '--out', {out!r}, '--workers', '1', '--quiet']))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_next_prepare_removes_partial_folders_of_killed_runs(tmp_path: Path) -> None:
    """A killed prepare leaves its hidden partial folder; the next prepare of the same output
    removes it and says so in one line, but keeps partial folders whose owner still runs."""
    child = _start_paused_prepare(tmp_path)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    left = sorted(tmp_path.glob(".ds.partial-*"))
    assert len(left) == 1 and f"-{child.pid}@" in left[0].name
    host = left[0].name.split("@")[1]
    running = tmp_path / f".ds.partial-0123abcd-{os.getpid()}@{host}"  # this process: alive
    running.mkdir()
    elsewhere = tmp_path / ".ds.partial-0123abcd-1@another-host"  # cannot be checked
    elsewhere.mkdir()
    other_output = tmp_path / f".other.partial-0123abcd-{child.pid}@{host}"
    other_output.mkdir()

    done = _prepare_cli(tmp_path, "ds")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not left[0].exists()
    assert running.is_dir() and elsewhere.is_dir() and other_output.is_dir()
    notes = [line for line in done.stderr.splitlines() if "partial folder" in line]
    assert notes == [
        f"removed 1 partial folder(s) left by an interrupted run next to ds: {left[0].name}"
    ]
    assert (tmp_path / "ds" / "images.npy").is_file()
    assert sorted(p.name for p in tmp_path.glob(".ds.partial-*")) == sorted(
        [running.name, elsewhere.name]
    )


# -- run folders after a kill -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """12 blob images of 12 x 10, split 50/50 train/val."""
    from brainvae.data.prepare import prepare
    from brainvae.data.preprocessing import PreprocessConfig

    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:12, :10]
    for i in range(12):
        cy, cx, radius = rng.uniform(3, 9), rng.uniform(3, 7), rng.uniform(2, 4)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
        np.save(root / f"s{i:02d}.npy", (0.05 + 0.9 * blob).astype(np.float32))
    config = PreprocessConfig.identity(split_fractions=(0.5, 0.5, 0.0))
    return prepare(root, root / "ds", config, workers=1)


def _model():
    import torch

    from brainvae.models import ModelConfig, build_model

    torch.manual_seed(0)
    return build_model(ModelConfig(input_shape=(12, 10), latent_dim=2, architecture="small"))


def _train(dataset, run_dir: Path, epochs: int, stop_after: int | None = None, **options):
    """Drain train(); with stop_after, abandon it after that epoch's report (as a kill would:
    no finishing step runs, the files on disk are those written so far)."""
    from brainvae.training import EpochReport, TrainConfig, train

    config = TrainConfig(epochs=epochs, batch_size=3, lr=1e-3, seed=1, device="cpu")
    generator = train(_model(), dataset, config, run_dir, **options)
    for report in generator:
        if isinstance(report, EpochReport) and report.epoch == stop_after:
            generator.close()
            return


@pytest.mark.parametrize("leftover", [".run.json.partial-0123abcd-1@host", "checkpoints"])
def test_run_killed_before_run_json_can_be_started_again(tiny_dataset, tmp_path, leftover):
    """A folder a run left before writing run.json: resume and a plain start both name one
    way out (overwrite), and overwrite starts the run."""
    from brainvae.models import ModelError

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if leftover == "checkpoints":
        (run_dir / "checkpoints").mkdir()
    else:
        (run_dir / leftover).write_text("{", encoding="utf-8")  # cut short mid-write
    with pytest.raises(ModelError, match="nothing to resume.*interrupted.*overwrite=True"):
        _train(tiny_dataset, run_dir, 1, resume=True)
    with pytest.raises(ModelError, match="interrupted before it wrote run.json.*overwrite=True"):
        _train(tiny_dataset, run_dir, 1)
    _train(tiny_dataset, run_dir, 1, overwrite=True)
    assert (run_dir / "run.json").is_file() and (run_dir / "config.json").is_file()


def test_resume_of_finished_model_without_checkpoints_is_refused(tiny_dataset, tmp_path):
    """run.json and a saved model but no checkpoint: resume would silently train from
    scratch over the model; it says so and names overwrite instead."""
    import shutil

    from brainvae.models import ModelError

    run_dir = tmp_path / "run"
    _train(tiny_dataset, run_dir, 1)
    shutil.rmtree(run_dir / "checkpoints")
    with pytest.raises(ModelError, match="nothing to resume.*no checkpoint.*overwrite=True"):
        _train(tiny_dataset, run_dir, 2, resume=True)


def test_encode_names_a_model_left_stale_by_a_killed_resume(tiny_dataset, tmp_path, capsys):
    """Two epochs finished, then a resume to four killed after epoch 3: encode warns in one
    line with both epochs; after the run is finished the warning is gone."""
    from brainvae.cli import main

    run_dir = tmp_path / "run"
    _train(tiny_dataset, run_dir, 2)
    out = tmp_path / "latents.csv"
    arguments = ["encode", str(run_dir), str(tiny_dataset.path), "--out", str(out)]
    assert main(arguments) == 0
    assert "stale" not in capsys.readouterr().err
    _train(tiny_dataset, run_dir, 4, stop_after=3, resume=True)
    assert main(arguments) == 0
    stale = [line for line in capsys.readouterr().err.splitlines() if "stale" in line]
    assert len(stale) == 1
    assert "saved model is from epoch 2 but history.csv reaches epoch 3" in stale[0]
    _train(tiny_dataset, run_dir, 4, resume=True)
    assert main(arguments) == 0
    assert "stale" not in capsys.readouterr().err


# -- brainvae phantom is atomic ---------------------------------------------------------------


@pytest.fixture
def file_size_limit():
    """Set RLIMIT_FSIZE for the block (writes past it fail with EFBIG, not SIGXFSZ)."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def limit(size: int) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))

    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_phantom_failing_mid_way_leaves_no_population(tmp_path, file_size_limit):
    """A write that fails at the largest scan (disk full, file-size limit) leaves no output
    folder and no hidden partial one; with --overwrite the old population stays whole."""
    from brainvae.data.phantom import PopulationConfig, build_population

    config = PopulationConfig(dims=2, n_subjects=3, seed=0)
    good = tmp_path / "good"
    build_population(config, good, progress=False)
    sizes = {p.name: p.stat().st_size for p in sorted((good / "images").iterdir())}
    before = {p.relative_to(good): p.read_bytes() for p in good.rglob("*") if p.is_file()}
    (good / "keep.txt").write_text("mine", encoding="utf-8")

    file_size_limit(max(sizes.values()) - 1)
    with pytest.raises(OSError):
        build_population(config, tmp_path / "new", progress=False)
    with pytest.raises(OSError):
        build_population(PopulationConfig(dims=2, n_subjects=3, seed=1), good, overwrite=True)
    file_size_limit(2**40)

    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]  # no hidden leftovers
    after = {p.relative_to(good): p.read_bytes() for p in good.rglob("*") if p.is_file()}
    assert after.pop(Path("keep.txt")) == b"mine"
    assert after == before


# -- receptive: long runs are announced -------------------------------------------------------


@pytest.fixture(scope="module")
def receptive_setup(tmp_path_factory):
    """A 2D phantom dataset of 12 scans, a PCA saved from it, and a label image with one ROI
    per 2 x 2 block of voxels (a fine atlas: many ROIs)."""
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.io.nifti_writing import write_nifti
    from helpers.phantom_datasets import prepared_phantom

    root = tmp_path_factory.mktemp("receptive")
    dataset_dir, run_dir, _ = prepared_phantom(root, (16, 20), 12, latent_dim=3)
    dataset = PreparedDataset.open(dataset_dir)
    yy, xx = np.mgrid[:16, :20]
    blocks = (yy // 2) * 10 + xx // 2 + 1  # 80 ROIs
    rois = write_nifti(
        root / "rois.nii.gz", blocks.astype(np.int16), dataset.affine,
        squeezed_axes=dataset.squeezed_axes,
    )  # fmt: skip
    return {"root": root, "ds": dataset_dir, "run": run_dir, "rois": rois, "blocks": blocks}


def test_long_run_estimate_is_the_time_per_pass_times_the_passes_left():
    """After a warm-up pass, the passes timed so far give the time per pass; the estimate is
    the time spent plus that times the passes left (a clock the test controls: the arithmetic,
    not this machine's speed, is what is checked)."""
    from types import SimpleNamespace

    from brainvae.usecases.receptive_run import LongRunTimer

    per_pass, total = 0.25, 2000
    timer = LongRunTimer(over_s=60.0)
    timer.begun, now = 0.0, [3.0]  # the warm-up pass took 3 s
    timer.clock = lambda: now[0]
    estimate, done = None, 1
    while estimate is None and done < total:
        estimate = timer.long_run_s(SimpleNamespace(done=done, total=total))
        if estimate is None:
            done += 1
            now[0] += per_pass
    assert done < 100  # decided after a few timed passes, not at the end
    assert estimate == pytest.approx(now[0] + per_pass * (total - done))
    assert timer.long_run_s(SimpleNamespace(done=done + 1, total=total)) is None  # said once
    short = LongRunTimer(over_s=1e9)  # a run under the threshold says nothing
    short.begun, short.clock = 0.0, lambda: now[0]
    assert all(short.long_run_s(SimpleNamespace(done=k, total=total)) is None for k in range(50))


def test_receptive_says_how_long_a_long_run_takes(receptive_setup, capsys, monkeypatch):
    """Over the threshold (here lowered to 0 s: the run itself is fast) the command prints one
    line naming the time, ROIs, weights and images; under it, nothing."""
    import brainvae.usecases.receptive_run as receptive
    from brainvae.cli import main

    setup = receptive_setup
    arguments = ["receptive", str(setup["run"]), str(setup["ds"]), "--rois", str(setup["rois"])]
    assert main([*arguments, "--out", str(setup["root"] / "short")]) == 0
    assert "about" not in capsys.readouterr().err
    monkeypatch.setattr(receptive, "LONG_RUN_S", 0.0)
    assert main([*arguments, "--out", str(setup["root"] / "long"), "--batch", "1"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "about" in line]
    assert len(notes) == 1
    assert "brainvae receptive: about " in notes[0]
    assert "for 80 ROIs x 5 weights x 12 images" in notes[0]


def test_receptive_dock_status_says_how_long_a_long_run_takes(
    make_napari_viewer, qtbot, monkeypatch
):
    """The dock's status line gets the same estimate while the run goes on (threshold
    lowered to 0 s: the run itself is fast); the result then replaces it."""
    from test_receptive_widget import SHAPE, add_population_atlas_and_pca

    import brainvae.usecases.receptive_run as receptive
    from brainvae.napari.widgets.receptive_widget import ROI_LAYER, ReceptiveFieldWidget

    viewer = make_napari_viewer()
    explorer, _ = add_population_atlas_and_pca(viewer)
    widget = ReceptiveFieldWidget(viewer)
    viewer.window.add_dock_widget(widget)
    try:
        widget.new_roi_layer()
        yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
        viewer.layers[ROI_LAYER].data = ((yy // 2) * 10 + xx // 2 + 1).astype(np.int32)
        statuses: list[str] = []

        def finished() -> bool:  # polled between Qt events: every status the user could see
            if not statuses or statuses[-1] != widget.status.value:
                statuses.append(widget.status.value)
            return widget._worker is None

        monkeypatch.setattr(receptive, "LONG_RUN_S", 0.0)
        widget.run()
        qtbot.waitUntil(finished, timeout=120_000)
        assert widget.last_run is not None, widget.status.value
        noted = [s for s in statuses if "About" in s]
        assert len(noted) == 1, statuses
        assert noted[0].startswith("Perturbing 120 ROI(s)")
        assert "for 120 ROIs x 5 weights x 40 images" in noted[0]
        assert "About" not in widget.status.value  # the result's summary replaced it
    finally:
        explorer.shutdown()
