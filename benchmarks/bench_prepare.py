"""Benchmark `prepare_dataset` with the FLAIR preset: 182x218x182 -> 40x48x40.

Generates a few distinct brain-like .nii.gz volumes (int16, MNI152 grid) and
hard-links them up to N files, then prepares them with workers=1 and workers=2,
each run in a fresh child interpreter. Peak memory is VmHWM from /proc/<pid>/status:
the child reads its own at the end of the run, and a sampling thread in the child
reads each worker process's VmHWM every 0.1 s (it only rises, so the last reading
is the worker's peak). ru_maxrss is not used: it survives fork+exec, so a process
spawned from a big parent reports the parent's peak. A run at N/4 checks that
peak memory does not grow with the number of volumes.

    python benchmarks/bench_prepare.py --n 1000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RAW_SHAPE = (182, 218, 182)
MNI_AFFINE = np.array([[-1, 0, 0, 90], [0, 1, 0, -126], [0, 0, 1, -72], [0, 0, 0, 1]], float)


def brain_like(seed: int) -> np.ndarray:
    """An ellipsoidal 'brain' with smooth tissue contrast, a few lesions and noise (int16)."""
    rng = np.random.default_rng(seed)
    grid = np.ogrid[tuple(slice(0, s) for s in RAW_SHAPE)]
    centre = np.array(RAW_SHAPE) / 2 + rng.normal(0, 2, 3)
    radii = np.array([70, 85, 65]) * rng.uniform(0.93, 1.07, 3)
    r = sum(((g - c) / a) ** 2 for g, c, a in zip(grid, centre, radii, strict=True))
    image = np.where(r < 1, 600 + 300 * np.cos(6 * np.sqrt(r)) ** 2, 0.0)
    for _ in range(5):
        spot = np.array(centre) + rng.normal(0, 25, 3)
        d = sum((g - c) ** 2 for g, c in zip(grid, spot, strict=True))
        image = image + 500 * np.exp(-d / 30) * (r < 1)
    image = image + rng.normal(0, 20, RAW_SHAPE) * (r < 1)
    return np.clip(image, 0, 32000).astype(np.int16)


def make_inputs(folder: Path, n: int, distinct: int) -> None:
    """`distinct` real files, hard-linked (or copied where links fail) up to n files."""
    import nibabel as nib

    folder.mkdir(parents=True, exist_ok=True)
    originals = []
    for i in range(distinct):
        path = folder / f"orig-{i}.nii.gz"
        if not path.exists():
            nib.save(nib.Nifti1Image(brain_like(i), MNI_AFFINE), str(path))
        originals.append(path)
    files = folder / f"n{n}"
    if files.exists():
        return
    files.mkdir()
    for k in range(n):
        target = files / f"sub-{k:05d}.nii.gz"
        try:
            os.link(originals[k % distinct], target)
        except OSError:
            shutil.copy(originals[k % distinct], target)


def vm_hwm_mib(pid: int | str = "self") -> float | None:
    """Peak resident memory (VmHWM) of a process in MiB, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def worker_pids() -> list[int]:
    """This process's children that are multiprocessing workers (not the resource tracker)."""
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    workers = []
    for pid in pids:
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)
        except OSError:
            continue
    return workers


class WorkerPeaks:
    """Samples each worker's VmHWM in a thread while a run goes on."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for pid in worker_pids():
                peak = vm_hwm_mib(pid)
                if peak is not None:
                    self.peaks[pid] = max(peak, self.peaks.get(pid, 0.0))
            self._stop.wait(self.interval)

    def __enter__(self) -> WorkerPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_one(source: Path, workers: int) -> dict:
    """Prepare once in this process; return speed and peak memory figures."""
    import nibabel  # noqa: F401  (imported here so the baseline includes the libraries)
    import pandas  # noqa: F401

    from brainvae.data.prepare import prepare_dataset
    from brainvae.data.preprocessing import PreprocessConfig

    out = Path(tempfile.mkdtemp(prefix="bench-ds-", dir=source.parent)) / "ds"
    baseline = vm_hwm_mib()
    n = 0
    with WorkerPeaks() as sampler:
        start = time.perf_counter()
        for progress in prepare_dataset(source, out, PreprocessConfig.flair_3d(), workers=workers):
            n = progress.total if progress.stage == "preprocess" else n
        seconds = time.perf_counter() - start
    shape = tuple(json.loads((out / "dataset.json").read_text())["sample_shape"])
    shutil.rmtree(out.parent)
    peaks = list(sampler.peaks.values())
    main_peak = vm_hwm_mib() or 0.0
    return {
        "n": n,
        "workers": workers,
        "seconds": seconds,
        "volumes_per_s": n / seconds,
        "sample_shape": shape,
        "main_baseline_mib": baseline,
        "main_peak_mib": main_peak,
        "worker_peaks_mib": peaks,
        "total_peak_mib": main_peak + sum(peaks),
    }


def child(source: Path, workers: int) -> dict:
    """run_one in a fresh interpreter so each run's peak memory is its own."""
    command = [sys.executable, __file__, "--child", str(source), "--workers", str(workers)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def describe(run: dict) -> str:
    """One line of speed and memory for a run."""
    workers = ", ".join(f"{p:.0f}" for p in run["worker_peaks_mib"]) or "none"
    return (
        f"workers={run['workers']} N={run['n']}: {run['seconds']:.1f} s = "
        f"{run['volumes_per_s']:.2f} volumes/s; peak main {run['main_peak_mib']:.0f} MiB "
        f"(after imports {run['main_baseline_mib']:.0f}), workers [{workers}] MiB, "
        f"total {run['total_peak_mib']:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="volumes to prepare (default 1000)")
    parser.add_argument("--distinct", type=int, default=8, help="distinct generated volumes")
    parser.add_argument(
        "--work", type=Path, default=Path(__file__).parent / "_work", help="scratch folder"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.workers)))
        return

    quarter = max(args.n // 4, 1)
    print(
        f"Generating {args.distinct} distinct brain-like volumes {RAW_SHAPE} in {args.work}; "
        f"the {args.n} input files are hard links to them (page cache helps reading)."
    )
    make_inputs(args.work, args.n, args.distinct)
    make_inputs(args.work, quarter, args.distinct)
    runs = [child(args.work / f"n{args.n}", w) for w in (1, 2)]
    small = child(args.work / f"n{quarter}", 2)
    report(args.n, runs, small)


def report(n: int, runs: list[dict], small: dict) -> None:
    """Print speed, the memory bound check and the growth check."""
    raw_mib = float(np.prod(RAW_SHAPE)) * 4 / 2**20
    final_mib = n * 40 * 48 * 40 * 4 / 2**20
    bound = final_mib + 4 * raw_mib
    print(
        f"\nFLAIR preset (crop 160x192x160, block 4, clip 99.5, scale) -> {runs[0]['sample_shape']}"
    )
    print(
        "memory = VmHWM from /proc/<pid>/status: main process read by itself; each worker's "
        "sampled every 0.1 s by the main process (not ru_maxrss, which survives fork+exec); "
        "total = main + sum of workers (an upper bound: the peaks need not coincide)"
    )
    for r in (*runs, small):
        print(describe(r))
    ratio = runs[1]["volumes_per_s"] / runs[0]["volumes_per_s"]
    print(
        f"speed: workers=1 {runs[0]['volumes_per_s']:.2f} volumes/s, workers=2 "
        f"{runs[1]['volumes_per_s']:.2f} volumes/s, ratio {ratio:.2f}x"
    )
    total = runs[1]["total_peak_mib"]
    print(
        f"bound: final array {final_mib:.0f} MiB + 4 raw float32 volumes x {raw_mib:.1f} MiB "
        f"= {bound:.0f} MiB; peak total (workers=2, N={n}) {total:.0f} MiB -> "
        + ("PASS" if total < bound else "FAIL")
    )
    grows = total > 1.1 * small["total_peak_mib"] + 20
    print(
        f"growth: peak total N={small['n']} {small['total_peak_mib']:.0f} MiB vs "
        f"N={n} {total:.0f} MiB -> "
        + ("grows with N (FAIL)" if grows else "does not grow with N (PASS)")
    )


if __name__ == "__main__":
    main()
